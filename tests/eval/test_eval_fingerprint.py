"""Predictions are bound to the test set they were made on: a rebuilt set is predicted again."""

from __future__ import annotations

import json
import logging

from data_prep.contract import TASK_MAIN
from data_prep.fingerprint import read_split_fingerprint
from eval.evaluate import evaluate
from eval.predict_sets import predictions_path
from eval.scoring.predictions import read_meta, read_prediction_rows
from tests.eval.eval_support import (
    SET,
    ConstantBackend,
    build_test_set,
    copy_sample,
    eval_args,
    rewrite_captions,
)


def test_rebuilt_answers_are_predicted_again_not_scored_stale(tmp_path, caplog):
    source = copy_sample(tmp_path / "src")
    data = build_test_set(source, tmp_path / "data")
    out = tmp_path / "eval"
    first = ConstantBackend()
    evaluate(eval_args(data, out), backend=first)
    path = predictions_path(out, SET, TASK_MAIN)
    old_gts = {r.id: r.gt for r in read_prediction_rows(path)}
    assert first.seen == len(old_gts) == 6

    rewrite_captions(source, "+ 1")
    build_test_set(source, data)  # the same set, rebuilt with other answers
    again = ConstantBackend()
    with caplog.at_level(logging.INFO):
        summary = evaluate(eval_args(data, out), backend=again)
    rows = read_prediction_rows(path)
    assert again.seen == 6, "the rebuilt set must be predicted again"
    assert len(rows) == 6
    assert all(r.gt == f"{old_gts[r.id]} + 1" for r in rows), "rows must carry the new answers"
    assert "already predicted" not in caplog.text
    assert "answers changed" in caplog.text and "predicting the set again" in caplog.text

    fingerprint = read_split_fingerprint(data, SET)
    assert read_meta(path)["dataset_fingerprint"]["content"] == fingerprint["content"]
    recorded = json.loads((out / "summary.json").read_text())
    assert recorded["test_sets"][SET]["fingerprint"]["content"] == fingerprint["content"]
    assert summary["test_sets"][SET]["fingerprint"]["content"] == fingerprint["content"]


def test_unchanged_set_still_resumes(tmp_path):
    data = build_test_set(copy_sample(tmp_path / "src"), tmp_path / "data")
    out = tmp_path / "eval"
    evaluate(eval_args(data, out), backend=ConstantBackend())
    again = ConstantBackend()
    evaluate(eval_args(data, out), backend=again)
    assert again.seen == 0


def test_score_summary_carries_the_fingerprint(tmp_path):
    from eval.score import main as score_main

    data = build_test_set(copy_sample(tmp_path / "src"), tmp_path / "data")
    out = tmp_path / "eval"
    evaluate(eval_args(data, out), backend=ConstantBackend())
    path = predictions_path(out, SET, TASK_MAIN)
    assert score_main([str(path), "--output-dir", str(tmp_path / "scores"), "--bootstrap", "0"]) == 0
    summary = json.loads((tmp_path / "scores" / "summary.json").read_text())
    content = read_split_fingerprint(data, SET)["content"]
    assert summary["input"]["dataset_fingerprint"]["content"] == content
    assert content[:16] in (tmp_path / "scores" / "summary.md").read_text()


def test_retrained_model_folder_is_predicted_again(tmp_path, monkeypatch, caplog):
    data = build_test_set(copy_sample(tmp_path / "src"), tmp_path / "data")
    out = tmp_path / "eval"
    monkeypatch.setattr("train.modeling.weights_sha256", lambda name: "sha-one")
    evaluate(eval_args(data, out), backend=ConstantBackend())
    monkeypatch.setattr("train.modeling.weights_sha256", lambda name: "sha-two")
    again = ConstantBackend()
    with caplog.at_level(logging.WARNING):
        evaluate(eval_args(data, out), backend=again)
    assert again.seen == 6 and "weights of constant changed" in caplog.text
    assert read_meta(predictions_path(out, SET, TASK_MAIN))["model_sha256"] == "sha-two"


def test_mining_refuses_a_rebuilt_training_split(tmp_path):
    import pytest

    from eval.backends import BackendOptions
    from eval.mining.layout import MiningArgs, MiningError, check_config

    source = copy_sample(tmp_path / "src")
    data = build_test_set(source, tmp_path / "data")
    args = MiningArgs(
        data_dir=str(data), train_recipe="r.yaml", output_dir=str(tmp_path / "mine"), train_split=SET
    )
    check_config(args, BackendOptions(), tmp_path / "mine")
    check_config(args, BackendOptions(), tmp_path / "mine")  # the same data: fine
    rewrite_captions(source, "+ 1")
    build_test_set(source, data)
    with pytest.raises(MiningError, match="answers changed"):
        check_config(args, BackendOptions(), tmp_path / "mine")


def test_rows_from_before_fingerprints_are_predicted_again(tmp_path):
    from eval.scoring.predictions import DATASET_FINGERPRINT, write_meta

    data = build_test_set(copy_sample(tmp_path / "src"), tmp_path / "data")
    out = tmp_path / "eval"
    evaluate(eval_args(data, out), backend=ConstantBackend())
    path = predictions_path(out, SET, TASK_MAIN)
    old_meta = read_meta(path)
    del old_meta[DATASET_FINGERPRINT]  # as an older version wrote it
    write_meta(path, old_meta)
    again = ConstantBackend()
    evaluate(eval_args(data, out), backend=again)
    assert again.seen == 6 and DATASET_FINGERPRINT in read_meta(path)
