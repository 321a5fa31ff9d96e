"""DeepSpeed ZeRO-2 and ZeRO-3 on the CPU in one process (gloo): the tiny model overfits a few
samples, the saved model reloads to its checkpoint's logits, and a run killed with SIGKILL resumes
from its DeepSpeed checkpoint to the same weights, bit for bit, as the uninterrupted run.

Each run is a subprocess (DeepSpeed's distributed state must not leak into other tests). On the
CPU, DeepSpeed JIT-compiles its shared-memory all-reduce op (deepspeed_shm_comm) the first time a
process group starts (about 45 s and more); that op only speeds up all-reduce between several CPU
processes, so these single-process runs stub ``deepspeed.comm.torch.build_shm_op`` out. The torch
AdamW optimizer is used (no offload, ``zero_force_ds_cpu_optimizer: false``), so DeepSpeedCPUAdam is
never built either.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO
from tests.train.test_train import TINY, fixed_batch, loss_and_logits, sample_dataset_dir  # noqa: F401
from tests.train.test_train_resume import DRIVER, _env, check_resumed_run, run_and_kill
from train.checkpoints import COMPLETE_MARKER
from train.config import parse_recipe
from train.modeling import load_model

pytest.importorskip("deepspeed")


def zero_config(stage: int) -> dict:
    config = {
        "zero_optimization": {"stage": stage},
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "train_batch_size": "auto",
        "gradient_clipping": "auto",
        "zero_force_ds_cpu_optimizer": False,
    }
    if stage == 3:
        config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] = True
    return config


def run_sft(args: list[str], tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        cwd=REPO,
        env=_env(tmp_path, deepspeed=True),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.mark.slow
@pytest.mark.deepspeed
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_trains_reloads_and_resumes(stage, tmp_path, sample_dataset_dir, tiny_model_dir):  # noqa: F811
    ds_file = tmp_path / f"zero{stage}.json"
    ds_file.write_text(json.dumps(zero_config(stage)))
    out = tmp_path / "out"
    args = [
        "--config",
        str(TINY / "full.yaml"),
        "--model_name_or_path",
        str(tiny_model_dir),
        "--dataset_dir",
        str(sample_dataset_dir),
        "--output_dir",
        str(out),
        "--deepspeed",
        str(ds_file),
        "--max_train_samples",
        "4",
        "--per_device_train_batch_size",
        "4",
        "--save_steps",
        "4",
        "--max_steps",
        "8",
    ]
    run_sft(args, tmp_path)

    # Parsed without --deepspeed: TrainingArguments(deepspeed=...) would switch ZeRO-3 loading on in
    # this process too.
    i = args.index("--deepspeed")
    _, script_args, _ = parse_recipe(args[:i] + args[i + 2 :])
    batch = fixed_batch(tiny_model_dir, sample_dataset_dir, script_args)
    loss_before, _ = loss_and_logits(load_model(str(tiny_model_dir), dtype="float32"), batch)
    loss_after, logits = loss_and_logits(load_model(str(out), dtype="float32"), batch)
    assert loss_after < loss_before - 1.0, (loss_before, loss_after)
    checkpoint = out / "checkpoint-8"
    assert (checkpoint / COMPLETE_MARKER).is_file()
    _, checkpoint_logits = loss_and_logits(load_model(str(checkpoint), dtype="float32"), batch)
    torch.testing.assert_close(checkpoint_logits, logits, atol=1e-4, rtol=1e-4)

    # Killed with SIGKILL after step 6 and run again: the same weights as the uninterrupted run.
    interrupted = tmp_path / "interrupted"
    again = [interrupted.as_posix() if a == str(out) else a for a in args]
    run_and_kill(again, _env(tmp_path, deepspeed=True, stop_at="step:6"))
    run_sft(again, tmp_path)
    check_resumed_run(out, interrupted, "step:6", save_steps=4)


@pytest.mark.slow
@pytest.mark.deepspeed
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_resume_at_max_steps(stage, tmp_path, sample_dataset_dir, tiny_model_dir):  # noqa: F811
    """max_steps 5 with 2 steps an epoch, killed after checkpoint-5 and before the final save: the
    rerun ends at step 5 with the uninterrupted run's weights (it used to train step 6)."""
    ds_file = tmp_path / f"zero{stage}.json"
    ds_file.write_text(json.dumps(zero_config(stage)))

    def args(out) -> list[str]:
        return [
            "--config", str(TINY / "full.yaml"), "--model_name_or_path", str(tiny_model_dir),
            "--dataset_dir", str(sample_dataset_dir), "--output_dir", str(out), "--deepspeed", str(ds_file),
            "--max_train_samples", "4", "--per_device_train_batch_size", "2",
            "--save_steps", "2", "--max_steps", "5",
        ]  # fmt: skip

    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    run_sft(args(straight), tmp_path)
    run_and_kill(args(interrupted), _env(tmp_path, deepspeed=True, stop_at="end:5"))
    run_sft(args(interrupted), tmp_path)
    check_resumed_run(straight, interrupted, "end:5", save_steps=2)
