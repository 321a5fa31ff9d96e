"""Exports record what they were made from, overwrite only their own earlier export, never write
into their inputs, take one writer per output folder and fail in one line on a full disk."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from train import export
from train.export.provenance import EXPORT_PROVENANCE
from train.modeling import load_model_and_processor, save_processor

LORA_TARGETS = r"model\.language_model\.layers\.\d+\.self_attn\.(q|v)_proj"
FINGERPRINT = {"rows": 12, "content": "c0ffee" * 10, "answers": "a" * 64, "ids": "b" * 64}


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter as the trainer writes it, with the run folder's recipe.yaml recording the
    training data's fingerprint."""
    from peft import LoraConfig, get_peft_model

    out = tmp_path_factory.mktemp("run") / "adapter"
    model, processor = load_model_and_processor(str(tiny_model_dir), dtype="float32")
    torch.manual_seed(0)
    get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=LORA_TARGETS)).save_pretrained(out)
    save_processor(processor, out)
    recipe = {"dataset_dir": "outputs/data/x", "inputs": {"dataset": {"train": FINGERPRINT}}}
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return out


def _export(adapter: Path, out: Path, *extra: str) -> int:
    return export.main(["--adapter", str(adapter), "--output-dir", str(out), *extra])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("export failed:") == 1, err
    (line,) = [line for line in err.splitlines() if "export failed:" in line]
    return line


def test_export_records_weights_and_training_data(adapter_dir, tiny_model_dir, tmp_path, capsys):
    from train.modeling import ModelSource, weights_sha256

    out = tmp_path / "merged"
    assert _export(adapter_dir, out) == 0
    record = json.loads((out / EXPORT_PROVENANCE).read_text())
    assert record["export_format"] == "merged"
    assert record["adapter_sha256"] == weights_sha256(ModelSource(base=str(adapter_dir)))
    assert record["base_sha256"] == weights_sha256(ModelSource(base=str(tiny_model_dir)))
    assert record["training_data"] == {"dataset": {"train": FINGERPRINT}}
    card = (out / "README.md").read_text()
    assert "## Provenance" in card and FINGERPRINT["content"] in card and record["adapter_sha256"] in card

    # A second export from the merged one carries the training data's fingerprint on.
    nf4 = tmp_path / "nf4"
    assert _export(out, nf4, "--format", "bnb-4bit") == 0
    assert json.loads((nf4 / EXPORT_PROVENANCE).read_text())["training_data"] == record["training_data"]

    # --overwrite replaces its own earlier export.
    (out / "stale.txt").write_text("old")
    assert _export(adapter_dir, out, "--overwrite") == 0
    assert not (out / "stale.txt").exists() and (out / EXPORT_PROVENANCE).is_file()


def test_overwrite_refuses_a_folder_that_is_not_an_export(adapter_dir, tmp_path, capsys):
    other = tmp_path / "someone_elses_adapter"
    shutil.copytree(adapter_dir, other)
    before = sorted(p.name for p in other.iterdir())
    assert _export(adapter_dir, other, "--overwrite") == 2
    assert "not an export" in _one_error_line(capsys)
    assert sorted(p.name for p in other.iterdir()) == before

    dataset = tmp_path / "dataset"
    (dataset / "train").mkdir(parents=True)
    (dataset / "manifest.json").write_text("{}")
    assert _export(adapter_dir, dataset, "--overwrite") == 2
    assert "not an export" in _one_error_line(capsys)
    assert (dataset / "manifest.json").is_file()


@pytest.mark.parametrize("where", ["adapter", "inside adapter", "above adapter", "base", "inside base"])
def test_export_never_writes_into_its_inputs(adapter_dir, tiny_model_dir, where, capsys):
    target = {
        "adapter": adapter_dir,
        "inside adapter": adapter_dir / "export",
        "above adapter": adapter_dir.parent,
        "base": tiny_model_dir,
        "inside base": tiny_model_dir / "export",
    }[where]
    files = {p: p.stat().st_mtime_ns for p in (adapter_dir, tiny_model_dir) for p in p.rglob("*")}
    assert _export(adapter_dir, target, "--overwrite") == 2
    line = _one_error_line(capsys)
    assert "adapter" in line or "base model" in line
    assert not (adapter_dir / "export").exists() and not (tiny_model_dir / "export").exists()
    assert {p: p.stat().st_mtime_ns for p in (adapter_dir, tiny_model_dir) for p in p.rglob("*")} == files


def test_second_export_into_one_folder_is_refused(adapter_dir, tmp_path, capsys):
    from data_prep.output_lock import output_lock

    out = tmp_path / "merged"
    with output_lock(out, what="export"):
        assert _export(adapter_dir, out) == 2
    assert "in use by export" in _one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_full_disk_or_read_only_output_is_one_line(adapter_dir, tmp_path, capsys, monkeypatch, code):
    import transformers

    def no_space(self, path, *args, **kwargs):
        raise OSError(code, "simulated", str(Path(path) / "model.safetensors"))

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", no_space)
    out = tmp_path / "merged"
    assert _export(adapter_dir, out) == 2
    line = _one_error_line(capsys)
    assert "cannot write" in line and ("disk is full" in line or "read-only" in line)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".merged.partial")]
