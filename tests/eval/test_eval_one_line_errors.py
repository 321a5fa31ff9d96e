"""Evaluation and scoring end in one line, not a traceback, on a full disk, a read-only output
folder or truncated weights; a finished dataset on read-only storage can still be evaluated."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

import eval.evaluate as evaluate_module
from data_prep.dataset import load_split
from eval.evaluate import evaluate
from eval.score import main as score_main
from tests.eval.eval_support import SET, ConstantBackend, build_test_set, copy_sample, eval_args, read_only


@pytest.fixture(scope="module")
def test_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval-errors")
    return build_test_set(copy_sample(root / "src"), root / "data")


def _error_lines(text: str) -> list[str]:
    assert "Traceback" not in text, text
    return [line for line in text.splitlines() if line.startswith("ERROR")]


def _main(data: Path, out: Path) -> int:
    argv = ["--model", "m", "--sets", SET, "--data-dir", str(data), "--output-dir", str(out)]
    return evaluate_module.main([*argv, "--no-progress"])


def test_full_disk_while_predicting_is_one_line(test_set, tmp_path, monkeypatch, caplog):
    from eval.scoring.predictions import PredictionWriter

    def disk_full(self, row):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(evaluate_module, "open_backend", lambda options, model: ConstantBackend())
    monkeypatch.setattr(PredictionWriter, "write", disk_full)
    assert _main(test_set, tmp_path / "out") == 2
    (line,) = _error_lines(caplog.text)
    assert "No space left on device" in line and "disk is full" in line


def test_read_only_output_folder_is_one_line(test_set, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(evaluate_module, "open_backend", lambda options, model: ConstantBackend())
    with read_only(tmp_path / "out") as out:
        assert _main(test_set, out) == 2
    (line,) = _error_lines(caplog.text)
    assert "Read-only file system" in line and "writable output folder" in line


def test_scoring_on_a_full_disk_or_read_only_folder_is_one_line(tmp_path, monkeypatch, capsys):
    pred = tmp_path / "s.main.jsonl"
    pred.write_text(json.dumps({"id": "a", "set": "s", "gt": "x", "pred": "y"}) + "\n")
    with read_only(tmp_path / "ro") as out:
        assert score_main([str(pred), "--output-dir", str(out), "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write") and "Read-only" in err and "\n" not in err

    import eval.report.summary as summary_module

    def disk_full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(summary_module, "write_text_atomic", disk_full)
    assert score_main([str(pred), "--output-dir", str(tmp_path / "s"), "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "disk is full" in err and "\n" not in err


def test_truncated_weights_are_one_line(test_set, tiny_model_dir, tmp_path, caplog):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    argv = ["--model", str(model), "--sets", SET, "--data-dir", str(test_set), "--backend", "hf"]
    assert evaluate_module.main([*argv, "--output-dir", str(tmp_path / "out"), "--no-progress"]) == 2
    (line,) = _error_lines(caplog.text)
    assert "damaged or truncated" in line and str(model) in line


def test_a_finished_dataset_on_read_only_storage_can_be_evaluated(test_set, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(test_set, data, ignore=shutil.ignore_patterns(".cache"))
    monkeypatch.setenv("HMER_DATASETS_CACHE", str(tmp_path / "cache"))
    with read_only(data):
        rows = load_split(data, SET)  # what training and evaluation both read a split with
        assert len(rows) == 6
        backend = ConstantBackend()
        summary = evaluate(eval_args(data, tmp_path / "out"), backend=backend)
    assert backend.seen == 6 and summary["sets"][SET]["n"] == 6
    assert not (data / ".cache").exists()
    assert any((tmp_path / "cache").iterdir())


@pytest.mark.parametrize(
    "content", [b"sets: [crohme2014\n", b"\xff\xfe not utf-8", b"- a list\n- of items\n"]
)
def test_bad_config_files_are_one_line(tmp_path, capsys, content):
    from train.export import main as export_main

    config = tmp_path / "options.yaml"
    config.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        evaluate_module.main(["--config", str(config), "--model", "m", "--sets", SET])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and str(config) in err
    assert export_main(["--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("export failed: config") and "\n" not in err
