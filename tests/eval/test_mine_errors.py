"""k-fold error mining end to end on the CPU with the tiny model: the fold split, the fold models, the
held-out predictions, the mined file (wrong predictions only, readable by the data build) and resuming."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from data_prep.contract import TASK_ERROR_DETECTION, TASK_MAIN, extract_latex
from data_prep.dataset import load_split
from data_prep.tasks.error_driven import read_predictions
from eval.backends import Backend, BackendOptions
from eval.mining.folds import assign_folds, base_id
from eval.mining.mine_errors import (
    FOLDS_FILE,
    MINED_FILE,
    PREDICTIONS_FILE,
    REPORT_FILE,
    STAGES,
    MiningArgs,
    MiningError,
    fold_dir,
    marker_path,
    mine,
    parse_args,
)
from eval.scoring.predictions import read_prediction_rows

REPO = Path(__file__).resolve().parents[2]
FOLDS = 2
SAMPLES = 2
KINDS = ["greedy", "sample-1", "sample-2"]


#: The inference options of every mining run here.
OPTIONS = BackendOptions(max_new_tokens=6, batch_size=8)


def mining_args(data_dir: Path, out: Path, model_dir: Path, **kw) -> MiningArgs:
    return MiningArgs(
        data_dir=str(data_dir),
        train_recipe=str(REPO / "recipes/tiny/full.yaml"),
        output_dir=str(out),
        folds=FOLDS,
        samples=SAMPLES,
        progress=False,
        train_overrides=["--model_name_or_path", str(model_dir), "--max_steps", "1", "--save_steps", "1"],
        **kw,
    )


@pytest.fixture(scope="module")
def mined(crohme_sample_data, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("mining") / "out"
    args = mining_args(crohme_sample_data, out, tiny_model_dir)
    report = mine(args, OPTIONS)
    return out, args, report


def main_ids(data_dir: Path) -> list[str]:
    dataset = load_split(data_dir, "train")
    return [i for i, task in zip(dataset["id"], dataset["task"]) if task == TASK_MAIN]


def test_assign_folds_is_balanced_deterministic_and_seeded():
    ids = [f"item{i}" for i in range(31)]
    folds = assign_folds(ids, 3, seed=7)
    assert sorted(folds) == sorted(ids)
    sizes = sorted(list(folds.values()).count(k) for k in range(3))
    assert sizes == [10, 10, 11]
    assert assign_folds(list(reversed(ids)), 3, seed=7) == folds  # input order does not matter
    assert assign_folds(ids, 3, seed=8) != folds
    with pytest.raises(ValueError, match="at least 2"):
        assign_folds(ids, 1, seed=0)
    with pytest.raises(ValueError, match="repeat"):
        assign_folds(["a", "a", "b"], 2, seed=0)
    assert base_id("18_em_3#error_detection#1", TASK_ERROR_DETECTION) == "18_em_3"
    assert base_id("18_em_3#tree_cot", "tree_cot") == "18_em_3"


def test_folds_partition_the_training_records(mined, crohme_sample_data):
    out, args, report = mined
    all_ids = main_ids(crohme_sample_data)
    assignment = json.loads((out / FOLDS_FILE).read_text())["assignment"]
    assert sorted(assignment) == sorted(all_ids)
    held = {k: {i for i, f in assignment.items() if f == k} for k in range(FOLDS)}
    assert set().union(*held.values()) == set(all_ids)
    assert sum(map(len, held.values())) == len(all_ids)  # disjoint
    for k in range(FOLDS):
        fold_data = load_split(fold_dir(out, k) / "data", "train")
        assert set(fold_data["task"]) == {TASK_MAIN}  # main task only by default
        assert set(fold_data["id"]) == set(all_ids) - held[k]
        assert report["per_fold"][str(k)]["held_out"] == len(held[k])
        assert report["per_fold"][str(k)]["train_rows"] == len(all_ids) - len(held[k])


def test_each_fold_has_a_model_and_predictions_for_every_held_out_id(mined):
    out, args, report = mined
    assignment = json.loads((out / FOLDS_FILE).read_text())["assignment"]
    for k in range(FOLDS):
        model = fold_dir(out, k) / "model"
        assert (model / "run_summary.json").is_file() and (model / "model.safetensors").is_file()
        assert json.loads((model / "run_summary.json").read_text())["global_step"] == 1
        rows = read_prediction_rows(fold_dir(out, k) / PREDICTIONS_FILE)
        held = sorted(i for i, f in assignment.items() if f == k)
        for kind in KINDS:
            assert sorted(r.id for r in rows if r.set == kind) == held
        assert all(marker_path(out, k, stage).is_file() for stage in STAGES)


def test_mined_file_holds_only_distinct_wrong_predictions_readable_by_the_build(mined):
    out, args, report = mined
    mined_rows = [json.loads(line) for line in (out / MINED_FILE).read_text().splitlines()]
    assert mined_rows, "a 1-step tiny model gets everything wrong: there must be mined rows"
    assert all(r["gt"].split() != r["pred"].split() for r in mined_rows)
    keys = [(r["id"], r["pred"]) for r in mined_rows]
    assert len(keys) == len(set(keys))
    # Exactly the wrong, non-failed predictions of the fold files, with their kinds.
    expected: dict[tuple[str, str], list[str]] = {}
    for k in range(FOLDS):
        for row in read_prediction_rows(fold_dir(out, k) / PREDICTIONS_FILE):
            if not row.error and row.distance > 0:
                expected.setdefault((row.id, row.pred), []).append(row.set)
    assert {key: r["kinds"] for key, r in zip(keys, mined_rows)} == expected
    # The data build's reader sees the same wrong predictions, none dropped.
    wrong = read_predictions(out / MINED_FILE)
    grouped: dict[str, list[str]] = {}
    for record_id, pred in keys:
        grouped.setdefault(record_id, []).append(pred)
    assert wrong == grouped
    assert report["mined_predictions"] == len(mined_rows)
    assert json.loads((out / REPORT_FILE).read_text())["finished_folds"] == FOLDS
    assert (out / "confusions.json").is_file()


def _snapshot(out: Path) -> dict[str, float]:
    watched = [out / FOLDS_FILE]
    for k in range(FOLDS):
        d = fold_dir(out, k)
        watched += [marker_path(out, k, s) for s in STAGES]
        watched += [d / PREDICTIONS_FILE, d / "model" / "model.safetensors", *d.glob("data/train/*.parquet")]
    return {str(p): p.stat().st_mtime_ns for p in watched}


def _refuse(*_args, **_kw):
    raise AssertionError("a finished stage was run again")


def test_rerun_skips_finished_stages(mined, monkeypatch):
    out, args, report = mined
    before = _snapshot(out)
    monkeypatch.setattr("eval.mining.stages.write_subset", _refuse)
    monkeypatch.setattr("train.sft.main", _refuse)
    monkeypatch.setattr("eval.mining.stages.open_backend", _refuse)
    assert mine(args, OPTIONS) == report
    assert _snapshot(out) == before


def test_changed_fold_settings_are_refused(mined):
    out, args, _ = mined
    with pytest.raises(MiningError, match="fold settings"):
        mine(mining_args(Path(args.data_dir), out, Path(args.train_overrides[1])), replace(OPTIONS, seed=1))


def test_interrupted_prediction_resumes_with_the_missing_rows(mined, tmp_path, monkeypatch):
    out, args, _ = mined
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    path = fold_dir(copy, 1) / PREDICTIONS_FILE
    lines = path.read_text().splitlines(keepends=True)
    # A killed run: the marker never written, four rows flushed and half a fifth one.
    marker_path(copy, 1, "predict").unlink()
    path.write_text("".join(lines[:4]) + lines[4][: len(lines[4]) // 2])
    monkeypatch.setattr("train.sft.main", _refuse)
    monkeypatch.setattr("eval.mining.stages.write_subset", _refuse)
    resumed = mine(mining_args(Path(args.data_dir), copy, Path(args.train_overrides[1])), OPTIONS)
    rows = path.read_text().splitlines(keepends=True)
    assert rows[:4] == lines[:4]
    assert len(rows) == len(lines)
    assert sorted((r.set, r.id) for r in read_prediction_rows(path)) == sorted(
        (r.set, r.id) for r in read_prediction_rows(fold_dir(out, 1) / PREDICTIONS_FILE)
    )
    assert marker_path(copy, 1, "predict").is_file()
    assert resumed["finished_folds"] == FOLDS


def _key(image) -> str:
    return hashlib.sha1(image.convert("RGB").tobytes()).hexdigest()


class TruthBackend(Backend):
    """Greedy answers are right; both samples give the same wrong answer (truth plus ``x``)."""

    name = "truth"

    def __init__(self, truths):
        self.truths = truths

    def _generate(self, images, prompts):
        return [self.truths[_key(im)] for im in images]

    def _sample(self, images, prompts, n, temperature, top_p):
        return [[self.truths[_key(im)] + " x"] * n for im in images]


def test_correct_predictions_are_not_mined_and_repeats_merge(
    mined, crohme_sample_data, tmp_path, monkeypatch
):
    out, args, _ = mined
    truths = {
        _key(row["image"]): extract_latex(row["answer"])
        for row in load_split(crohme_sample_data, "train")
        if row["task"] == TASK_MAIN
    }
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    for k in range(FOLDS):
        marker_path(copy, k, "predict").unlink()
        (fold_dir(copy, k) / PREDICTIONS_FILE).unlink()
    monkeypatch.setattr("train.sft.main", _refuse)
    monkeypatch.setattr("eval.mining.stages.open_backend", lambda *a, **kw: TruthBackend(truths))
    report = mine(mining_args(crohme_sample_data, copy, Path(args.train_overrides[1])), OPTIONS)
    rows = [json.loads(line) for line in (copy / MINED_FILE).read_text().splitlines()]
    assert len(rows) == len(truths)  # one merged row per image: the greedy right answer is left out
    assert all(r["pred"] == r["gt"] + " x" and r["kinds"] == ["sample-1", "sample-2"] for r in rows)
    for k in range(FOLDS):
        fold = report["per_fold"][str(k)]
        assert fold["greedy_exprate"] == 100.0
        assert fold["distinct_wrong_per_image"] == 1.0
        assert fold["wrong_share"] == pytest.approx(100 * SAMPLES / (SAMPLES + 1), abs=0.01)


def test_mined_file_plugs_into_a_data_recipe(mined, tmp_path):
    from data_prep.build import build_dataset

    out, _, _ = mined
    recipe = yaml.safe_load((REPO / "recipes/data/crohme_sample.yaml").read_text())
    source = recipe["train"][0]
    source["root"] = str(REPO / source["root"])
    source["tasks"] = {
        "error_detection": {"predictions": [str(out / MINED_FILE)]},
        "error_correction": {"predictions": [str(out / MINED_FILE)]},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    built = build_dataset(path, tmp_path / "data", progress=False)
    dataset = load_split(built, "train")
    mined_preds = read_predictions(out / MINED_FILE)
    detection = [
        (row["id"], json.loads(row["meta"])) for row in dataset if row["task"] == TASK_ERROR_DETECTION
    ]
    assert detection
    for row_id, meta in detection:
        assert meta["prediction"] in mined_preds[base_id(row_id, TASK_ERROR_DETECTION)]


def test_command_line_passes_training_overrides():
    args, options = parse_args(
        ["--data-dir", "d", "--train-recipe", "r.yaml", "--output-dir", "o", "--folds", "3",
         "--train-overrides=--max_steps 5", "--only-folds", "0,2", "--", "--learning_rate", "1e-4"]
    )  # fmt: skip
    assert args.train_overrides == ["--max_steps", "5", "--learning_rate", "1e-4"]
    assert args.only_folds == [0, 2] and args.folds == 3 and args.samples == 4
    with pytest.raises(MiningError, match="sets --output_dir"):
        mine(
            MiningArgs("d", str(REPO / "recipes/tiny/full.yaml"), "o", train_overrides=["--output_dir", "x"])
        )
