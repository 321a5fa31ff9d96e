"""Training on the CPU with the tiny model: LoRA, QLoRA and full fine-tuning overfit a few samples,
checkpoints reload to the same logits, and an interrupted run resumes where it stopped."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from tests.conftest import REPO
from train.callbacks import RUN_SUMMARY
from train.checkpoints import COMPLETE_MARKER
from train.collator import VisionSFTCollator
from train.config import parse_recipe
from train.inputs import IGNORE_INDEX
from train.modeling import load_model, load_model_and_processor, load_processor

TINY = REPO / "recipes" / "tiny"
FEW = 4  # samples to overfit


@pytest.fixture(scope="session")
def sample_dataset_dir(tmp_path_factory) -> Path:
    """The bundled CROHME sample built by data_prep.build with recipes/data/crohme_sample.yaml."""
    from data_prep.build import build_dataset

    out = tmp_path_factory.mktemp("crohme-sample-data")
    cwd = os.getcwd()
    os.chdir(REPO)  # the data recipe's paths are relative to the repository root
    try:
        build_dataset(REPO / "recipes" / "data" / "crohme_sample.yaml", out, progress=False)
    finally:
        os.chdir(cwd)
    return out


def tiny_recipe(name: str, out: Path, data_dir: Path, model_dir: Path, *overrides: str):
    return parse_recipe(
        [
            "--config", str(TINY / f"{name}.yaml"),
            "--model_name_or_path", str(model_dir),
            "--dataset_dir", str(data_dir),
            "--output_dir", str(out),
            *overrides,
        ]
    )  # fmt: skip


class CaptureModel(TrainerCallback):
    """Keeps the trained model the Trainer holds at the end."""

    model = None

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.model = model


def fixed_batch(model_dir: Path, data_dir: Path, script_args, n: int = FEW):
    from data_prep.dataset import load_split

    rows = [load_split(data_dir, "train")[i] for i in range(n)]
    processor = load_processor(str(model_dir), bounds=script_args.bounds)
    return VisionSFTCollator(processor, script_args.bounds, script_args.max_length)(rows)


@torch.no_grad()
def loss_and_logits(model, batch) -> tuple[float, torch.Tensor]:
    model.eval()
    out = model(**batch)
    return float(out.loss), out.logits.float()


# Loss must fall by at least this much (nats per answer token) after overfitting FEW samples.
MARGIN = {"lora": 0.3, "qlora": 0.3, "full": 1.0}


@pytest.mark.parametrize("method", ["lora", "qlora", "full"])
def test_overfits_few_samples_and_reloads(method, tmp_path, sample_dataset_dir, tiny_model_dir):
    from train.sft import train

    out = tmp_path / method
    steps = 12
    model_args, script_args, training_args = tiny_recipe(
        method, out, sample_dataset_dir, tiny_model_dir,
        "--max_train_samples", str(FEW), "--per_device_train_batch_size", str(FEW),
        "--max_steps", str(steps), "--save_steps", str(steps),
    )  # fmt: skip
    batch = fixed_batch(tiny_model_dir, sample_dataset_dir, script_args)
    assert (batch["labels"] != IGNORE_INDEX).sum() > 0
    base = load_model(str(tiny_model_dir), dtype="float32", load_in_4bit=model_args.load_in_4bit)
    loss_before, _ = loss_and_logits(base, batch)

    capture = CaptureModel()
    summary = train(model_args, script_args, training_args, callbacks=[capture], recipe=f"tiny/{method}")
    loss_after, logits = loss_and_logits(capture.model, batch)
    assert loss_after < loss_before - MARGIN[method], (loss_before, loss_after)

    # The output folder loads on its own (weights or adapter + processor) to the same logits.
    reloaded, processor = load_model_and_processor(
        str(out), dtype="float32", load_in_4bit=model_args.load_in_4bit
    )
    assert processor.tokenizer.eos_token == "<|im_end|>"
    _, reloaded_logits = loss_and_logits(reloaded, batch)
    torch.testing.assert_close(reloaded_logits, logits, atol=1e-4, rtol=1e-4)

    checkpoint = out / f"checkpoint-{steps}"
    assert (checkpoint / COMPLETE_MARKER).is_file() and (checkpoint / "tokenizer_config.json").is_file()
    written = json.loads((out / RUN_SUMMARY).read_text())
    assert written["engine"] == "trl" and written["global_step"] == steps == summary["global_step"]
    assert written["tokens_per_second"] > 0 and written["train_samples_per_second"] > 0
    assert written["peak_memory"]["bytes"] > 0 and written["final_loss"] is not None

    names = [n for n, _ in capture.model.named_modules()]
    if model_args.use_peft:
        adapted = [n for n in names if n.endswith("lora_A")]
        assert adapted and all("language_model.layers" in n for n in adapted)
        assert not any("visual" in n for n in adapted)
    if model_args.load_in_4bit:
        import bitsandbytes as bnb

        modules = dict(capture.model.named_modules())
        quantised = [n for n, m in modules.items() if isinstance(m, bnb.nn.Linear4bit)]
        assert any("language_model.layers" in n for n in quantised)
        assert not any("visual" in n or "lm_head" in n for n in quantised)


class StopAtStep(TrainerCallback):
    """Simulates a kill: raises inside the save of ``step``, before the completeness marker."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"simulated kill while saving step {self.step}")


def test_resume_continues_from_last_complete_checkpoint(
    tmp_path, sample_dataset_dir, tiny_model_dir, monkeypatch
):
    from train.sft import train

    seen: list[list[str]] = []
    original = VisionSFTCollator.__call__

    def recording(self, rows):
        seen.append([row["id"] for row in rows])
        return original(self, rows)

    monkeypatch.setattr(VisionSFTCollator, "__call__", recording)
    overrides = (
        "--max_train_samples",
        "24",
        "--per_device_train_batch_size",
        "2",
        "--max_steps",
        "6",
        "--save_steps",
        "2",
        "--learning_rate",
        "1e-3",
    )

    straight = CaptureModel()
    train(
        *tiny_recipe("lora", tmp_path / "a", sample_dataset_dir, tiny_model_dir, *overrides),
        callbacks=[straight],
    )
    # The data loader may fetch one batch beyond the last step; the steps used the first six.
    straight_batches = seen[:6]

    seen.clear()
    out = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        train(
            *tiny_recipe("lora", out, sample_dataset_dir, tiny_model_dir, *overrides),
            callbacks=[StopAtStep(4)],
        )
    assert seen[:4] == straight_batches[:4]
    assert not (out / "checkpoint-4" / COMPLETE_MARKER).exists()  # the interrupted save

    seen.clear()
    resumed = CaptureModel()
    summary = train(
        *tiny_recipe("lora", out, sample_dataset_dir, tiny_model_dir, *overrides), callbacks=[resumed]
    )
    assert summary["resumed_from"] == str(out / "checkpoint-2")
    assert (out / "incomplete-checkpoint-4").is_dir()  # set aside, not resumed from
    assert summary["global_step"] == 6
    assert seen[:4] == straight_batches[2:]  # same data order after the resume
    # Same steps on the same data from the same state: the same weights.
    straight_state = {n: p for n, p in straight.model.named_parameters() if p.requires_grad}
    for name, param in resumed.model.named_parameters():
        if param.requires_grad:
            assert torch.equal(param, straight_state[name]), name


def test_vision_and_merger_learning_rates(tiny_model_dir):
    from train.engines.trl_engine import freeze_parts, parameter_groups, parameter_part

    model = load_model(str(tiny_model_dir), dtype="float32")
    parts = {parameter_part(n) for n, _ in model.named_parameters()}
    assert parts == {"vision", "merger", "language"}
    groups = parameter_groups(
        model.named_parameters(),
        1e-5,
        0.1,
        {n for n, _ in model.named_parameters() if "bias" not in n},
        2e-6,
        5e-5,
    )
    by_part = {g["part"]: g["lr"] for g in groups}
    assert by_part == {"language": 1e-5, "vision": 2e-6, "merger": 5e-5}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert any(g["weight_decay"] == 0.0 for g in groups) and any(g["weight_decay"] == 0.1 for g in groups)

    frozen = freeze_parts(model, freeze_vision_tower=True, freeze_merger=False)
    assert frozen["vision"] > 0 and frozen["merger"] == 0
    for name, param in model.named_parameters():
        assert param.requires_grad == (parameter_part(name) != "vision"), name
    groups = parameter_groups(model.named_parameters(), 1e-5, 0.0, set(), None, None)
    assert {g["part"] for g in groups} == {"language", "merger"}


def test_engine_auto_is_portable_without_gpu(tmp_path, sample_dataset_dir, tiny_model_dir):
    from train.engines import select_engine

    model_args, _, training_args = tiny_recipe(
        "qlora", tmp_path, sample_dataset_dir, tiny_model_dir, "--engine", "auto"
    )
    engine, reason = select_engine(model_args, training_args)
    if not torch.cuda.is_available():
        assert engine == "trl" and ("no CUDA GPU" in reason or "not installed" in reason)


def test_interrupt_reports_the_checkpoint_to_resume_from(tmp_path, monkeypatch, caplog):
    import train.sft as sft

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"model_name_or_path: {tmp_path}/model\ndataset_dir: {tmp_path}/data\noutput_dir: {tmp_path}/run\n"
    )
    done = tmp_path / "run" / "checkpoint-5"
    done.mkdir(parents=True)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sft, "train", interrupted)
    monkeypatch.setattr("train.checkpoints.is_complete", lambda folder: folder.name == "checkpoint-5")
    assert sft.main(["--config", str(recipe)]) == 130
    assert "checkpoint-5" in caplog.text and "run the same command again to resume" in caplog.text


# --------------------------------------------------------------------------- #
# The run folder: recipe, reruns, curves, bad data, validation
# --------------------------------------------------------------------------- #

QUICK = (
    "--max_train_samples",
    "4",
    "--per_device_train_batch_size",
    "2",
    "--max_steps",
    "4",
    "--save_steps",
    "2",
)


def test_run_folder_records_recipe_and_reruns_are_safe(tmp_path, sample_dataset_dir, tiny_model_dir, caplog):
    import yaml

    from train.config import load_recipe_file
    from train.sft import main

    out = tmp_path / "run"
    argv = [
        "--config", str(TINY / "lora.yaml"), "--model_name_or_path", str(tiny_model_dir),
        "--dataset_dir", str(sample_dataset_dir), "--output_dir", str(out), *QUICK, "--learning_rate", "1e-3",
    ]  # fmt: skip
    assert main(argv) == 0
    recorded = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recorded["learning_rate"] == 1e-3 and recorded["lora_r"] == 8 and recorded["max_steps"] == 4
    assert recorded["run_info"]["packages"]["transformers"] and "commit" in recorded["run_info"]["git"]
    # The recorded recipe is a recipe: it parses back to the same keys.
    again = parse_recipe(["--config", str(out / "recipe.yaml")])
    assert again[2].learning_rate == 1e-3 and "run_info" not in load_recipe_file(out / "recipe.yaml")
    assert (out / "trainer_log.jsonl").is_file() and (out / "training_loss.png").stat().st_size > 1000
    adapter = (out / "adapter_model.safetensors").read_bytes()
    mtime = (out / "adapter_model.safetensors").stat().st_mtime_ns

    caplog.clear()
    caplog.set_level(logging.INFO, logger="train.sft")
    assert main(argv) == 0  # a finished run: nothing happens
    assert "already holds a finished run" in caplog.text
    assert (out / "adapter_model.safetensors").stat().st_mtime_ns == mtime
    assert (out / "adapter_model.safetensors").read_bytes() == adapter
    assert json.loads((out / RUN_SUMMARY).read_text())["global_step"] == 4
    assert not (out / "checkpoint-5").exists()

    caplog.clear()
    assert main([*argv, "--lora_r", "16", "--learning_rate", "2e-3"]) == 2  # other settings: refused
    error = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(error) == 1 and "\n" not in error[0]
    assert "learning_rate (0.001 -> 0.002)" in error[0] and "lora_r (8 -> 16)" in error[0]
    assert "--output_dir" in error[0]
    assert (out / "adapter_model.safetensors").read_bytes() == adapter


def test_unreadable_training_image_is_skipped_and_counted(tmp_path, sample_dataset_dir, tiny_model_dir):
    import datasets

    from data_prep.contract import record_features
    from data_prep.dataset import load_split
    from train.run_folder import read_training_items
    from train.sft import train

    rows = (
        load_split(sample_dataset_dir, "train")
        .cast_column("image", datasets.Image(decode=False))
        .to_list()[:6]
    )
    rows[3]["image"] = {"bytes": b"\x89PNG\r\n\x1a\n truncated", "path": None}
    dataset = datasets.Dataset.from_list(rows, features=record_features())
    out = tmp_path / "run"
    summary = train(
        *tiny_recipe("lora", out, sample_dataset_dir, tiny_model_dir, *QUICK[2:]), train_dataset=dataset
    )
    assert summary["skipped_samples"]["unreadable_image"] == 1 and summary["training_rows"] == 5
    assert json.loads((out / RUN_SUMMARY).read_text())["skipped_samples"]["unreadable_image"] == 1
    assert rows[3]["id"] not in {item["id"] for item in read_training_items(out)}
    assert summary["global_step"] == 4


def test_damaged_shard_is_a_clear_error(tmp_path, sample_dataset_dir, tiny_model_dir, caplog):
    import shutil

    from train.sft import main

    data = tmp_path / "data"
    shutil.copytree(sample_dataset_dir, data, ignore=shutil.ignore_patterns(".cache"))
    shard = sorted((data / "train").glob("*.parquet"))[0]
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    argv = ["--config", str(TINY / "lora.yaml"), "--model_name_or_path", str(tiny_model_dir)]
    argv += ["--dataset_dir", str(data), "--output_dir", str(tmp_path / "run"), *QUICK]
    assert main(argv) == 2
    assert "damaged or was replaced" in caplog.text and shard.name in caplog.text


@pytest.mark.parametrize("split", [("--eval_holdout", "2"), ("--eval_split", "crohme2014_sample")])
def test_validation_while_training_logs_loss_and_exprate(split, tmp_path, sample_dataset_dir, tiny_model_dir):
    from train.curves import read_trainer_log
    from train.run_folder import read_training_items
    from train.sft import train
    from train.validation import image_key

    out = tmp_path / "run"
    overrides = [
        "--max_train_samples", "20", "--per_device_train_batch_size", "2", "--max_steps", "4",
        "--save_steps", "2", "--eval_strategy", "steps", "--eval_steps", "2", *split,
        "--eval_max_items", "2", "--eval_max_new_tokens", "8", "--metric_for_best_model", "exprate",
        "--load_best_model_at_end", "true",
    ]  # fmt: skip
    summary = train(*tiny_recipe("full", out, sample_dataset_dir, tiny_model_dir, *overrides))
    log = read_trainer_log(out / "trainer_log.jsonl")
    evals = [e for e in log if "eval_loss" in e]
    assert [e["step"] for e in evals] == [2, 4]
    assert all(0.0 <= e["eval_exprate"] <= 100.0 and e["eval_exprate_items"] == 2 for e in evals)
    assert summary["validation"]["best_metric"] is not None
    assert summary["validation"]["best_checkpoint"].startswith(str(out / "checkpoint-"))
    trained = {image_key(item["id"]) for item in read_training_items(out)}
    if split[0] == "--eval_holdout":
        # The two held-out images leave training with all their task rows.
        assert summary["training_rows"] < 20 and len(trained) == 20 // 5 - 2
        assert summary["validation"]["rows"] == 2 * 5  # every task row of the two held-out images
    else:
        assert summary["training_rows"] == 20 and summary["validation"]["rows"] == 2  # main rows only
    assert (out / "training_loss.png").stat().st_size > 1000


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "where, named",
    [
        ("model", "is the base model"),
        ("model/run", "lies inside the base model"),
        ("data", "is the dataset"),
        ("data/train", "lies inside the dataset"),
        (".", "contains the base model"),
    ],
)
def test_output_dir_over_an_input_is_refused(
    tmp_path, sample_dataset_dir, tiny_model_dir, caplog, where, named
):
    """Issue 19: --output_dir equal to the base model folder replaced its weights (exit 0)."""
    import shutil

    from train.sft import main

    model, data = tmp_path / "model", tmp_path / "data"
    shutil.copytree(tiny_model_dir, model)
    shutil.copytree(sample_dataset_dir, data, ignore=shutil.ignore_patterns(".cache"))
    before = _files(tmp_path)
    argv = [
        "--config", str(TINY / "lora.yaml"), "--model_name_or_path", str(model),
        "--dataset_dir", str(data), "--output_dir", str(tmp_path / where), *QUICK,
    ]  # fmt: skip
    assert main(argv) == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and "\n" not in errors[0] and named in errors[0], errors
    assert _files(tmp_path) == before  # nothing written, nothing replaced


def test_failed_start_does_not_block_the_corrected_rerun(
    tmp_path, sample_dataset_dir, tiny_model_dir, caplog
):
    from train.sft import main

    out = tmp_path / "run"

    def argv(data: Path) -> list[str]:
        return [
            "--config", str(TINY / "lora.yaml"), "--model_name_or_path", str(tiny_model_dir),
            "--dataset_dir", str(data), "--output_dir", str(out), *QUICK,
        ]  # fmt: skip

    assert main(argv(tmp_path / "no-such-data")) == 2  # a typo in dataset_dir
    assert len(_errors(caplog)) == 1
    assert main(argv(sample_dataset_dir)) == 0  # the corrected command trains
    assert json.loads((out / RUN_SUMMARY).read_text())["global_step"] == 4


def test_rerun_on_a_rebuilt_dataset_is_refused_naming_what_changed(tmp_path, tiny_model_dir, caplog):
    """The run folder records the dataset's fingerprint; after a rebuild with other answers, a rerun
    (resume or finished) is refused in one line instead of continuing on the new data."""
    import shutil

    import yaml

    from data_prep.build import build_dataset
    from data_prep.build.recipe import parse_recipe as parse_data_recipe
    from tests.build_support import CROHME_SAMPLE, sample_source
    from train.sft import main

    source, data, out = tmp_path / "src", tmp_path / "data", tmp_path / "run"
    shutil.copytree(CROHME_SAMPLE, source)
    data_recipe = {"output_dir": str(data), "train": [sample_source(source, max_records=8)]}
    build_dataset(parse_data_recipe(data_recipe), progress=False)
    argv = [
        "--config", str(TINY / "lora.yaml"), "--model_name_or_path", str(tiny_model_dir),
        "--dataset_dir", str(data), "--output_dir", str(out), *QUICK,
    ]  # fmt: skip
    assert main(argv) == 0
    recorded = yaml.safe_load((out / "recipe.yaml").read_text())["inputs"]["dataset"]["train"]
    assert recorded["rows"] >= 8 and recorded["content"]
    (out / RUN_SUMMARY).unlink()  # as if killed before its final save: a rerun would resume

    captions = source / "caption_comer.txt"
    lines = [line for line in captions.read_text(encoding="utf-8").splitlines() if line.strip()]
    captions.write_text("".join(f"{line.split(chr(9))[0]}\tx + 1\n" for line in lines), encoding="utf-8")
    build_dataset(parse_data_recipe(data_recipe), progress=False, fresh=True)
    caplog.clear()
    assert main(argv) == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert "trained on other data" in errors[0] and "'train': answers changed" in errors[0]
    assert not (out / RUN_SUMMARY).exists()


def test_training_into_a_held_output_dir_is_refused(tmp_path, sample_dataset_dir, tiny_model_dir, caplog):
    """One writer per output folder: the holder (here this process, as another writer would be) is
    named in one line, and the held folder is not touched."""
    from data_prep.output_lock import output_lock
    from train.sft import main

    out = tmp_path / "run"
    argv = [
        "--config", str(TINY / "lora.yaml"), "--model_name_or_path", str(tiny_model_dir),
        "--dataset_dir", str(sample_dataset_dir), "--output_dir", str(out), *QUICK,
    ]  # fmt: skip
    with output_lock(out, what="training"):
        assert main(argv) == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and f"training pid {os.getpid()}" in errors[0], errors
    assert not out.exists()
