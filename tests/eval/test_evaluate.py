"""The evaluate command: predictions files, resume, failure rows, vote, reports, test-set lookup."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from data_prep.contract import TASK_COUNTING, TASK_MAIN, TASK_TREE_COT, extract_latex, prompt_for
from eval.backends import Backend, BackendOptions
from eval.evaluate import EvalArgs, evaluate, main, predictions_path
from eval.scoring.predictions import ERROR_CORRUPT_IMAGE, ERROR_GENERATION_FAILED, read_prediction_rows
from eval.scoring.test_sets import TestSetNotFound, parse_set_names, resolve_test_set
from eval.scoring.vote import majority_vote

REPO = Path(__file__).resolve().parents[2]
SET = "crohme2014_sample"


@pytest.fixture(scope="module")
def built_data(crohme_sample_data) -> Path:
    """The bundled CROHME sample built by the real data build (conftest; its held-out test split)."""
    return crohme_sample_data


def _key(image: Image.Image) -> str:
    return hashlib.sha1(image.convert("RGB").tobytes()).hexdigest()


@pytest.fixture(scope="module")
def truths(built_data) -> dict[str, str]:
    """Image fingerprint -> truth, so a scripted backend can answer right."""
    from data_prep.dataset import load_split

    return {
        _key(row["image"]): row["answer"] for row in load_split(built_data, SET) if row["task"] == TASK_MAIN
    }


class ScriptedBackend(Backend):
    """Answers from a script: the truth (right), per-prompt variants, or a simulated kill."""

    name = "scripted"

    def __init__(self, truths, chunk_size=2, kill_after=None, answer=None, fail_width=None):
        self.truths = truths
        self.chunk_size = chunk_size
        self.kill_after = kill_after
        self.answer = answer
        self.fail_width = fail_width
        self.seen = 0

    def _generate(self, images, prompts):
        if self.fail_width is not None and any(im.width == self.fail_width for im in images):
            raise ValueError("simulated failure on one image")
        if self.kill_after is not None and self.seen + len(images) > self.kill_after:
            raise KeyboardInterrupt  # like Ctrl-C or a killed job: not caught by the evaluate loop
        self.seen += len(images)
        gts = [self.truths[_key(im)] for im in images]
        return [self.answer(gt, p) if self.answer else gt for gt, p in zip(gts, prompts)]


def _args(data_dir: Path, out: Path, **kw) -> EvalArgs:
    return EvalArgs(
        model="scripted", sets=SET, output_dir=str(out), data_dir=str(data_dir), progress=False, **kw
    )


def test_hf_backend_end_to_end_writes_predictions_and_reports(built_data, tiny_model_dir, tmp_path):
    argv = ["--model", str(tiny_model_dir), "--sets", SET, "--data-dir", str(built_data), "--backend", "hf"]
    argv += ["--limit", "3", "--max-new-tokens", "4", "--output-dir", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    rows = read_prediction_rows(predictions_path(tmp_path, SET, TASK_MAIN))
    assert len(rows) == 3 and len({r.id for r in rows}) == 3
    for row in rows:
        assert row.set == SET and row.gt and row.raw_output is not None
        assert row.pred == extract_latex(row.raw_output)
        assert row.error is None or (row.error == "empty_generation" and not row.pred)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sets"][SET]["n"] == 3 and summary["backend"] == "hf"
    assert "| crohme2014_sample | 3 |" in (tmp_path / "summary.md").read_text()
    assert SET in (tmp_path / "report.html").read_text()


def test_scripted_right_answers_score_100(built_data, truths, tmp_path):
    summary = evaluate(_args(built_data, tmp_path), backend=ScriptedBackend(truths))
    assert summary["sets"][SET]["exprate"] == 100.0
    assert summary["sets"][SET]["n"] == len(truths)
    assert "Against published results" in (tmp_path / "summary.md").read_text()


def test_resume_after_a_kill_does_not_redo_items(built_data, truths, tmp_path):
    path = predictions_path(tmp_path, SET, TASK_MAIN)
    with pytest.raises(KeyboardInterrupt):
        evaluate(_args(built_data, tmp_path), backend=ScriptedBackend(truths, chunk_size=2, kill_after=4))
    first = read_prediction_rows(path)
    assert len(first) == 4  # two chunks of two were written before the kill
    # A half-written last line, as a kill in the middle of a write leaves it.
    with path.open("a") as f:
        f.write('{"id": "half')
    rerun = ScriptedBackend(truths, chunk_size=2)
    summary = evaluate(_args(built_data, tmp_path), backend=rerun)
    assert rerun.seen == len(truths) - 4
    rows = read_prediction_rows(path)
    assert len(rows) == len({r.id for r in rows}) == len(truths)
    assert [r.to_dict() for r in rows[:4]] == [r.to_dict() for r in first]
    assert summary["sets"][SET]["n"] == len(truths)


def test_corrupt_image_becomes_a_failure_row(built_data, truths, tmp_path):
    import datasets

    from data_prep.contract import record_features
    from data_prep.dataset import load_split

    rows = load_split(built_data, SET).cast_column("image", datasets.Image(decode=False)).to_list()[:3]
    rows[1]["image"] = {"bytes": b"not an image at all", "path": None}
    bad_dir = tmp_path / "data"
    (bad_dir / "broken").mkdir(parents=True)
    datasets.Dataset.from_list(rows, features=record_features()).to_parquet(
        str(bad_dir / "broken" / "shard-00000-of-00001.parquet")
    )
    args = EvalArgs(
        model="scripted",
        sets="broken",
        output_dir=str(tmp_path / "out"),
        data_dir=str(bad_dir),
        progress=False,
    )
    summary = evaluate(args, backend=ScriptedBackend(truths))
    by_id = {r.id: r for r in read_prediction_rows(predictions_path(tmp_path / "out", "broken", TASK_MAIN))}
    assert len(by_id) == 3
    assert by_id[rows[1]["id"]].error == ERROR_CORRUPT_IMAGE and by_id[rows[1]["id"]].pred == ""
    assert by_id[rows[0]["id"]].error is None and by_id[rows[0]["id"]].distance == 0
    assert summary["sets"]["broken"]["failed"] == {ERROR_CORRUPT_IMAGE: 1}
    assert summary["sets"]["broken"]["n"] == 3  # the failure stays in the denominator


def test_generation_failure_is_isolated_to_its_item(built_data, truths, tmp_path):
    from data_prep.dataset import load_split

    widths = [row["image"].width for row in load_split(built_data, SET)]
    target = next(w for w in widths if widths.count(w) == 1)
    evaluate(_args(built_data, tmp_path), backend=ScriptedBackend(truths, chunk_size=4, fail_width=target))
    rows = read_prediction_rows(predictions_path(tmp_path, SET, TASK_MAIN))
    failed = [r for r in rows if r.error]
    assert [r.error for r in failed] == [ERROR_GENERATION_FAILED]
    assert all(r.distance == 0 for r in rows if not r.error)


def test_auxiliary_prompt_scores_its_last_line(built_data, truths, tmp_path):
    def tree_answer(gt, prompt):
        assert prompt == prompt_for(TASK_TREE_COT)
        return f"root\n\tchild (right)\n{gt}"

    summary = evaluate(
        _args(built_data, tmp_path, task=TASK_TREE_COT), backend=ScriptedBackend(truths, answer=tree_answer)
    )
    assert summary["sets"][SET]["exprate"] == 100.0
    rows = read_prediction_rows(predictions_path(tmp_path, SET, TASK_TREE_COT))
    assert all(r.raw_output.startswith("root\n") and r.task == TASK_TREE_COT for r in rows)


def test_vote_runs_three_prompts_and_scores_the_majority(built_data, truths, tmp_path):
    def answer(gt, prompt):
        if prompt == prompt_for(TASK_MAIN):
            return "x"  # main is wrong; the two auxiliary answers agree on the truth
        return f"some reasoning\n{gt}"

    summary = evaluate(_args(built_data, tmp_path, vote=True), backend=ScriptedBackend(truths, answer=answer))
    for task in (TASK_MAIN, TASK_TREE_COT, TASK_COUNTING, "vote"):
        assert len(read_prediction_rows(predictions_path(tmp_path, SET, task))) == len(truths)
    assert summary["sets"][SET]["exprate"] == 0.0  # the main prompt's own column
    assert summary["vote"][SET]["exprate"] == 100.0
    assert json.loads((tmp_path / "vote" / "summary.json").read_text())["sets"][SET]["exprate"] == 100.0
    assert (tmp_path / "vote" / "report.html").is_file()


def test_majority_vote_rules():
    assert majority_vote({"main": "a", "tree_cot": "b", "counting": "b"}) == "b"
    assert majority_vote({"main": "a", "tree_cot": "b", "counting": "c"}) == "a"  # tie -> main
    assert majority_vote({"main": "a", "tree_cot": "", "counting": ""}) == "a"  # empty answers do not vote
    assert majority_vote({"main": "x  ^ { 2 }", "tree_cot": "x ^ { 2 }", "counting": "y"}) == "x ^ { 2 }"
    assert majority_vote({"main": "", "tree_cot": "", "counting": ""}) == ""


def test_test_set_lookup(built_data, tmp_path):
    assert parse_set_names("crohme2014, crohme2016,,crohme2014") == ["crohme2014", "crohme2016"]
    found = resolve_test_set(SET, data_root=built_data.parent)  # searched under the data root
    assert found.data_dir == built_data and found.split == SET
    assert resolve_test_set(SET, data_dir=built_data).split == SET
    with pytest.raises(TestSetNotFound, match=r"crohme2019.*Available splits: .*crohme2014_sample"):
        resolve_test_set("crohme2019", data_root=built_data.parent)
    with pytest.raises(TestSetNotFound, match="none"):
        resolve_test_set("hme100k", data_root=tmp_path / "empty")


def test_unknown_task_is_refused(built_data, tmp_path):
    with pytest.raises(ValueError, match="--task"):
        evaluate(_args(built_data, tmp_path, task="error_detection"), backend=ScriptedBackend({}))
    assert not os.listdir(tmp_path)


def test_user_mistakes_are_plain_errors_not_tracebacks(built_data, tiny_model_dir, tmp_path, caplog):
    common = [
        "--data-dir",
        str(built_data),
        "--output-dir",
        str(tmp_path),
        "--no-progress",
        "--backend",
        "hf",
    ]
    assert main(["--model", str(tiny_model_dir), "--sets", "crohme2019", *common]) == 2
    assert "Available splits" in caplog.text and SET in caplog.text
    caplog.clear()
    assert main(["--model", str(tmp_path / "no-model"), "--sets", SET, *common]) == 2
    assert str(tmp_path / "no-model") in caplog.text


def test_ctrl_c_keeps_the_predictions_and_says_how_to_resume(monkeypatch, tmp_path, caplog):
    import eval.evaluate as evaluate_module

    def interrupted(args, backend=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_module, "evaluate", interrupted)
    assert main(["--model", "m", "--sets", SET, "--output-dir", str(tmp_path)]) == 130
    assert "run the same command to resume" in caplog.text


# --------------------------------------------------------------------------- #
# Results keyed to what made them
# --------------------------------------------------------------------------- #


def test_two_models_never_share_predictions(built_data, truths, tmp_path, monkeypatch):
    """The default folder is per model; and a folder started by one model refuses another's rows."""
    from eval.provenance import default_output_dir
    from eval.scoring.predictions import PredictionsMismatch, read_meta

    monkeypatch.setattr("train.modeling.weights_sha256", lambda name: f"sha-of-{name}")
    first = EvalArgs(
        model="runs/a", sets=SET, data_dir=str(built_data), output_root=str(tmp_path), progress=False
    )
    second = dataclasses.replace(first, model="runs/b")
    evaluate(first, backend=ScriptedBackend(truths))
    wrong = ScriptedBackend(truths, answer=lambda gt, prompt: "x")
    summary = evaluate(second, backend=wrong)
    assert default_output_dir("runs/a", tmp_path) != default_output_dir("runs/b", tmp_path)
    assert wrong.seen == len(truths)  # nothing of model a was reused
    assert summary["sets"][SET]["exprate"] == 0.0
    meta = read_meta(predictions_path(default_output_dir("runs/b", tmp_path), SET, TASK_MAIN))
    assert meta["complete"] and meta["n_items"] == len(truths) and meta["model_sha256"] == "sha-of-runs/b"
    assert meta["backend"] == "scripted" and meta["task"] == TASK_MAIN and "greedy" in meta["decoding"]

    # Both models into one explicit folder: the second is refused, naming what differs.
    shared = dataclasses.replace(first, output_dir=str(tmp_path / "shared"))
    evaluate(shared, backend=ScriptedBackend(truths))
    with pytest.raises(PredictionsMismatch, match="model_sha256"):
        evaluate(dataclasses.replace(shared, model="runs/b"), backend=ScriptedBackend(truths))
    with pytest.raises(PredictionsMismatch, match="max_new_tokens"):
        evaluate(shared, BackendOptions(max_new_tokens=17), backend=ScriptedBackend(truths))


def test_killed_run_is_marked_incomplete_and_score_warns(built_data, truths, tmp_path, capsys, caplog):
    from eval.score import main as score_main
    from eval.scoring.predictions import completeness

    path = predictions_path(tmp_path, SET, TASK_MAIN)
    with pytest.raises(KeyboardInterrupt):
        evaluate(_args(built_data, tmp_path), backend=ScriptedBackend(truths, chunk_size=2, kill_after=4))
    assert "4 of" in completeness(path)
    assert score_main([str(path), "--output-dir", str(tmp_path / "score"), "--bootstrap", "0"]) == 0
    assert "INCOMPLETE" in caplog.text and "INCOMPLETE" in capsys.readouterr().out
    evaluate(_args(built_data, tmp_path), backend=ScriptedBackend(truths))
    assert completeness(path) is None


def test_warns_when_test_items_were_trained_on(built_data, truths, tmp_path, caplog):
    """A model whose run folder records a test image among its training rows is flagged."""
    import datasets

    from data_prep.dataset import load_split
    from train.run_folder import image_sha256, write_training_items

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    test_rows = load_split(built_data, SET).cast_column("image", datasets.Image(decode=False))
    leaked = test_rows[0]
    write_training_items(
        model, [{"id": "train-copy", "source": "x", "image_sha256": image_sha256(leaked["image"]["bytes"])}]
    )
    args = dataclasses.replace(_args(built_data, tmp_path / "out"), model=str(model))
    summary = evaluate(args, backend=ScriptedBackend(truths))
    assert summary["in_training_data"][SET]["items"] == 1
    assert summary["in_training_data"][SET]["examples"][0]["id"] == leaked["id"]
    assert "in the model's training data" in (tmp_path / "out" / "summary.md").read_text()
