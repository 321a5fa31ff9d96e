"""Exact resume for every recipe: a run killed with SIGKILL and run again with the same command
ends with the same weights, bit for bit, as a run that was never interrupted.

Each training run is a subprocess (the kill must be a real SIGKILL of a real process). A test-only
callback makes the run stop and wait at a chosen point (after a step, or inside a checkpoint save
before its completeness marker), the test kills it there, then reruns the same command. DeepSpeed
runs stub out its shared-memory op build (see tests/train/test_train_deepspeed.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REPO
from tests.train.test_train import TINY, sample_dataset_dir  # noqa: F401
from train.callbacks import RUN_SUMMARY

# The driver: train.sft's command line, plus a callback that waits forever at HMER_STOP_AT
# ("step:N" after step N, "save:N" inside the save of step N, "end:N" when training ends at step N,
# after its last checkpoint and before the final save) once it has touched HMER_STOP_FLAG.
DRIVER = """
import os, sys, time
from transformers import TrainerCallback
if os.environ.get("HMER_STUB_SHM"):
    import deepspeed.comm.torch as ds_torch
    ds_torch.build_shm_op = lambda: None
import train.sft as sft

class WaitToBeKilled(TrainerCallback):
    def __init__(self):
        kind, step = os.environ["HMER_STOP_AT"].split(":")
        self.kind, self.step = kind, int(step)
    def _wait(self, state):
        if state.global_step == self.step:
            open(os.environ["HMER_STOP_FLAG"], "w").close()
            time.sleep(3600)
    def on_step_end(self, args, state, control, **kw):
        if self.kind == "step":
            self._wait(state)
    def on_save(self, args, state, control, **kw):
        if self.kind == "save":
            self._wait(state)
    def on_train_end(self, args, state, control, **kw):
        if self.kind == "end":  # after the last checkpoint, before the final save
            self._wait(state)

if os.environ.get("HMER_STOP_AT"):
    original = sft.train
    sft.train = lambda *a, callbacks=(), **k: original(*a, callbacks=[*callbacks, WaitToBeKilled()], **k)
sys.exit(sft.main(sys.argv[1:]))
"""

STEPS, SAVE_STEPS = 8, 3

METHODS = {
    # method: (recipe, extra args, where the kill lands)
    "full": ("full", [], "save:6"),  # inside the save of step 6: resumes from checkpoint-3
    "lora": ("lora", [], "step:5"),
    "qlora": ("qlora", [], "step:4"),
}


def _env(tmp_path: Path, deepspeed: bool, stop_at: str | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("HMER_STOP_AT", None)
    if deepspeed:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
        env["HMER_STUB_SHM"] = "1"
    if stop_at:
        env.update(HMER_STOP_AT=stop_at, HMER_STOP_FLAG=str(tmp_path / "stopped.flag"))
    return env


def run(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]


def run_and_kill(args: list[str], env: dict[str, str]) -> None:
    flag = Path(env["HMER_STOP_FLAG"])
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not flag.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before the kill point: {proc.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    name = (
        "adapter_model.safetensors" if (out / "adapter_model.safetensors").is_file() else "model.safetensors"
    )
    return load_file(str(out / name))


def max_difference(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> float:
    return max((expected[k].float() - got[k].float()).abs().max().item() for k in expected)


def check_resumed_run(straight: Path, interrupted: Path, stop_at: str, save_steps: int = SAVE_STEPS) -> None:
    """The rerun of the killed run resumed from the right checkpoint and ended where the
    uninterrupted run ended: same steps, same mean loss, the same tensors bit for bit."""
    kind, step = stop_at.split(":")
    summary = json.loads((interrupted / RUN_SUMMARY).read_text())
    reference = json.loads((straight / RUN_SUMMARY).read_text())
    if kind == "end":  # the Trainer checkpoints the last step too
        last_complete = int(step)
    elif kind == "save":  # the checkpoint before the one the kill cut short
        last_complete = (int(step) - 1) // save_steps * save_steps
    else:
        last_complete = int(step) // save_steps * save_steps
    assert summary["resumed_from"] == str(interrupted / f"checkpoint-{last_complete}")
    if kind == "save":  # the checkpoint the kill cut short was set aside, not resumed from
        assert (interrupted / f"incomplete-checkpoint-{step}").is_dir()
    assert summary["global_step"] == reference["global_step"]
    # The run's mean loss covers every step, resumed or not.
    assert summary["train_loss"] == pytest.approx(reference["train_loss"], rel=1e-6)
    expected, got = final_weights(straight), final_weights(interrupted)
    assert expected.keys() == got.keys() and expected
    differing = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not differing, (
        f"{len(differing)} tensors differ (max difference {max_difference(expected, got):.3g}), "
        f"e.g. {differing[:3]}"
    )
    # The log holds each step once, as the uninterrupted run logged it.
    log = [json.loads(line) for line in (interrupted / "trainer_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == list(range(1, summary["global_step"] + 1))


@pytest.mark.slow  # a training subprocess killed and rerun, per method
@pytest.mark.parametrize("method", list(METHODS))
def test_sigkill_then_rerun_is_bit_identical(method, tmp_path, sample_dataset_dir, tiny_model_dir):  # noqa: F811
    """The uninterrupted run and the rerun run in this process (the test session runs torch on one
    thread, like the killed subprocess); the run that is killed is a subprocess."""
    from train.sft import main

    recipe, extra, stop_at = METHODS[method]
    if method == "qlora":
        pytest.importorskip("bitsandbytes")

    def args(out: Path) -> list[str]:
        return [
            "--config", str(TINY / f"{recipe}.yaml"),
            "--model_name_or_path", str(tiny_model_dir),
            "--dataset_dir", str(sample_dataset_dir),
            "--output_dir", str(out),
            "--max_train_samples", "8", "--per_device_train_batch_size", "2",
            "--max_steps", str(STEPS), "--save_steps", str(SAVE_STEPS),
            *extra,
        ]  # fmt: skip

    assert torch.get_num_threads() == 1
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert main(args(straight)) == 0
    run_and_kill(args(interrupted), _env(tmp_path, False, stop_at))
    assert not (interrupted / RUN_SUMMARY).exists()
    assert main(args(interrupted)) == 0
    check_resumed_run(straight, interrupted, stop_at)


#: max_steps not a whole number of epochs (8 rows, batch 2: 4 steps an epoch): the Trainer also
#: checkpoints the last step, and a resume from that checkpoint used to train step 8 of 7.
PARTIAL_EPOCH_STEPS = 7
PARTIAL_EPOCH_KILLS = ("step:5", "save:7", "end:7")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
def test_kill_points_with_a_partial_last_epoch(method, tmp_path, sample_dataset_dir, tiny_model_dir):  # noqa: F811
    """Killed mid-run, inside the last checkpoint's save, and after the last checkpoint but before
    the final save: each rerun ends at step 7, with every tensor equal to the uninterrupted run's."""
    from train.sft import main

    if method == "qlora":
        pytest.importorskip("bitsandbytes")

    def args(out: Path) -> list[str]:
        return [
            "--config", str(TINY / f"{method}.yaml"),
            "--model_name_or_path", str(tiny_model_dir),
            "--dataset_dir", str(sample_dataset_dir),
            "--output_dir", str(out),
            "--max_train_samples", "8", "--per_device_train_batch_size", "2",
            "--max_steps", str(PARTIAL_EPOCH_STEPS), "--save_steps", str(SAVE_STEPS),
        ]  # fmt: skip

    straight = tmp_path / "straight"
    assert main(args(straight)) == 0
    assert json.loads((straight / RUN_SUMMARY).read_text())["global_step"] == PARTIAL_EPOCH_STEPS
    for stop_at in PARTIAL_EPOCH_KILLS:
        interrupted = tmp_path / f"interrupted-{stop_at.replace(':', '-')}"
        (tmp_path / "stopped.flag").unlink(missing_ok=True)
        run_and_kill(args(interrupted), _env(tmp_path, False, stop_at))
        assert not (interrupted / RUN_SUMMARY).exists()
        assert main(args(interrupted)) == 0
        check_resumed_run(straight, interrupted, stop_at)
        # A finished run stays a no-op.
        before = (interrupted / RUN_SUMMARY).read_bytes()
        assert main(args(interrupted)) == 0
        assert (interrupted / RUN_SUMMARY).read_bytes() == before


def test_the_wrapped_trainer_method_keeps_its_signature():
    """train.checkpoints.finish_without_steps_past_max wraps this private Trainer method."""
    import inspect

    from transformers import Trainer

    params = list(inspect.signature(Trainer._init_training_state).parameters)
    assert params == [
        "self", "max_steps", "num_update_steps_per_epoch", "num_train_epochs", "resume_from_checkpoint", "trial"
    ]  # fmt: skip
