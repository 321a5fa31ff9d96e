"""Paired comparison: joins, counts, McNemar, bootstrap CI determinism, the two-file CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval.score import main
from eval.scoring.compare import bootstrap_ci, compare_rows, mcnemar_exact, paired_bootstrap_diff_ci
from eval.scoring.predictions import PredictionRow


def _rows(outcomes: dict[str, bool], set_name: str = "s") -> list[PredictionRow]:
    return [
        PredictionRow(id=k, set=set_name, gt="a b", pred="a b" if ok else "a") for k, ok in outcomes.items()
    ]


def test_mcnemar_exact_on_a_hand_checked_case():
    # 1 vs 9 discordant pairs: two-sided p = 2 * P(X <= 1 | n=10, 1/2) = 2 * 11 / 1024.
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(9, 1) == pytest.approx(22 / 1024)
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)


def test_compare_counts_and_reports_mismatched_ids():
    a = _rows({"1": True, "2": True, "3": False, "4": False, "5": True, "only_a": True})
    b = _rows({"1": True, "2": False, "3": True, "4": True, "5": True, "only_b": False}, set_name="other")
    c = compare_rows(a, b, "A", "B", n_resamples=500, seed=3)
    assert c.n_shared == 5
    assert c.only_in_a == ["only_a"] and c.only_in_b == ["only_b"]
    assert (c.both_right, c.both_wrong, c.only_a_right, c.only_b_right) == (2, 0, 1, 2)
    assert c.exprate_a == 60.0 and c.exprate_b == 80.0 and c.diff == 20.0
    assert [e["id"] for e in c.examples_only_a] == ["2"] and [e["id"] for e in c.examples_only_b] == [
        "3",
        "4",
    ]
    assert c.mcnemar_p == pytest.approx(mcnemar_exact(1, 2))
    md = c.to_markdown()
    assert "only in A: 1 (only_a)" in md and "only B right 2" in md


def test_compare_reports_truth_mismatch():
    a = [PredictionRow(id="1", set="s", gt="a", pred="a")]
    b = [PredictionRow(id="1", set="s", gt="a \\limits", pred="a")]
    c = compare_rows(a, b, n_resamples=0)
    assert c.gt_mismatch == ["1"] and c.ci is None
    assert "truth differs" in c.to_markdown()


def test_compare_joins_on_set_and_id_when_files_hold_several_sets():
    a = _rows({"1": True}, "crohme2014") + _rows({"1": False}, "crohme2016")
    b = _rows({"1": True}, "crohme2014") + _rows({"1": True}, "crohme2016")
    c = compare_rows(a, b, n_resamples=0)
    assert c.n_shared == 2 and c.only_b_right == 1


def test_paired_bootstrap_ci_is_deterministic_under_a_seed():
    rng = np.random.default_rng(0)
    a = rng.random(300) < 0.6
    b = rng.random(300) < 0.7
    first = paired_bootstrap_diff_ci(a, b, n_resamples=2000, seed=7)
    assert first == paired_bootstrap_diff_ci(a, b, n_resamples=2000, seed=7)
    diff = 100 * (b.mean() - a.mean())
    assert first[0] < diff < first[1]
    assert -100 <= first[0] < first[1] <= 100


def test_bootstrap_ci_of_a_constant_is_that_constant():
    assert bootstrap_ci(np.ones(50), 100, seed=0) == (100.0, 100.0)
    assert bootstrap_ci(np.zeros(50), 100, seed=0) == (0.0, 0.0)


def test_cli_compares_two_files(tmp_path, capsys):
    items_a = [{"img_id": str(i), "gt": "a b", "pred": "a b" if i < 6 else "a"} for i in range(10)]
    items_b = [{"img_id": str(i), "gt": "a b", "pred": "a b" if i < 8 else "a"} for i in range(1, 11)]
    pa, pb = tmp_path / "run_a.json", tmp_path / "run_b.json"
    pa.write_text(json.dumps(items_a))
    pb.write_text(json.dumps(items_b))
    out = tmp_path / "cmp"
    args = [str(pa), str(pb), "--output-dir", str(out), "--bootstrap", "300", "--seed", "5"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Paired comparison: A = run_a, B = run_b" in printed
    saved = json.loads((out / "compare.json").read_text())
    # Shared ids 1..9: A right on 1..5, B right on 1..7 -> only B right on 6, 7.
    assert saved["n_shared"] == 9 and saved["only_in_a"] == ["0"] and saved["only_in_b"] == ["10"]
    assert (saved["only_a_right"], saved["only_b_right"]) == (0, 2)
    assert (out / "run_a" / "summary.md").is_file() and (out / "run_b" / "report.html").is_file()
    assert main(args) == 0
    assert json.loads((out / "compare.json").read_text())["ci"] == saved["ci"]  # same seed, same CI


def test_compare_at_distance_one_counts_near_misses_as_right():
    # truth "a b c": A is one token off on item 1, B two tokens off; both exact on item 2.
    a = [
        PredictionRow(id="1", set="s", gt="a b c", pred="a b d"),
        PredictionRow(id="2", set="s", gt="x", pred="x"),
    ]
    b = [
        PredictionRow(id="1", set="s", gt="a b c", pred="a d d"),
        PredictionRow(id="2", set="s", gt="x", pred="x"),
    ]
    exact = compare_rows(a, b, n_resamples=0)
    near = compare_rows(a, b, n_resamples=0, max_distance=1)
    assert (exact.exprate_a, exact.exprate_b, exact.only_a_right) == (50.0, 50.0, 0)
    assert (near.exprate_a, near.exprate_b, near.only_a_right, near.only_b_right) == (100.0, 50.0, 1, 0)


def test_within_is_the_one_distance_rule_for_exprate_and_its_tolerance_columns():
    from data_prep.predictions import PredictionRow

    exact = PredictionRow(id="a", set="s", gt="x ^ { 2 }", pred="x ^ { 2 }")
    one_off = PredictionRow(id="b", set="s", gt="x ^ { 2 }", pred="x ^ { 3 }")
    failed = PredictionRow(id="c", set="s", gt="x", pred="", error="timeout")
    failed.distance = None  # a failed item has no distance
    assert exact.within(0) and exact.within(1)
    assert not one_off.within(0) and one_off.within(1) and one_off.within(2)
    assert not failed.within(0) and not failed.within(2)
