"""The reference protocol's metrics: token distance, ExpRate and <= k, TER, length buckets."""

from __future__ import annotations

import sys
import types

import pytest

from eval.scoring.metrics import (
    format_length_table,
    format_table,
    length_bucket,
    percent,
    score_items,
    score_pairs,
    token_distance,
)


def test_token_distance_counts_whitespace_tokens_not_characters():
    assert token_distance("x ^ { 2 }", "x ^ { 2 }") == 0
    assert token_distance("x ^ { 2 }", "x ^ { 3 }") == 1
    # "ab" is one token: against "a b" that is one substitution and one insertion.
    assert token_distance("a b", "ab") == 2
    assert token_distance("\\frac { a } { b }", "\\frac { a } { b } }") == 1


def test_extra_whitespace_is_not_an_error():
    assert token_distance("  x   +\t1 \n", "x + 1") == 0
    assert score_pairs([(" x + 1", "x  +  1 ")]).exact == 1


def test_empty_prediction_costs_every_truth_token():
    assert token_distance("2 x = 5 + \\pi", "") == 6
    assert token_distance("", "") == 0
    assert token_distance("", "a b") == 2


def test_unicode_tokens_are_tokens():
    # HME100K truths may hold CJK characters; each is one token like any other.
    assert token_distance("x = 9 。", "x = 9") == 1
    assert token_distance("长 = 2", "宽 = 2") == 1
    assert token_distance("长 = 2", "长 = 2") == 0


def test_percent_rounds_half_up_from_exact_counts():
    assert percent(809, 986) == 82.05
    assert percent(1, 32) == 3.13  # 3.125 exactly: half up, not to even
    assert percent(1, 3) == 33.33
    assert percent(2, 3) == 66.67
    assert percent(0, 0) == 0.0


@pytest.mark.parametrize(
    "n, published",
    [(986, (82.05, 89.45, 93.00)), (1147, (77.94, 87.45, 92.07)), (1199, (79.23, 90.91, 93.83))],
)
def test_published_uni_mumer_figures_are_consistent_with_integer_counts(n, published):
    # Each published percentage must come from exactly one whole number of items out of n.
    for figure in published:
        counts = [k for k in range(n + 1) if percent(k, n) == figure]
        assert len(counts) == 1, (figure, counts)


def test_score_pairs_counts_thresholds_and_ter():
    pairs = [
        ("a + b", "a + b"),  # 0
        ("a + b", "a - b"),  # 1
        ("a + b", "a"),  # 2
        ("a + b = c", "x"),  # 5 tokens vs 1 -> 5
        ("a", ""),  # 1
    ]
    s = score_pairs(pairs)
    assert s.n == 5
    assert s.exact == 1 and s.within[1] == 3 and s.within[2] == 4 and s.within[3] == 4
    assert s.exprate == 20.0 and s.within_rate(1) == 60.0 and s.within_rate(2) == 80.0
    assert s.distance_sum == 0 + 1 + 2 + 5 + 1
    assert s.gt_token_sum == 3 + 3 + 3 + 5 + 1
    assert s.ter == percent(9, 15)
    d = s.as_dict()
    assert d["counts"]["within_3"] == 4 and d["within_3"] == 80.0 and d["ter"] == 60.0


def test_length_buckets_edges():
    assert [length_bucket(n) for n in (1, 5, 6, 10, 11, 20, 21, 30, 31, 200)] == [
        "1-5",
        "1-5",
        "6-10",
        "6-10",
        "11-15",
        "16-20",
        "21-30",
        "21-30",
        "31+",
        "31+",
    ]
    assert length_bucket(0) == "0"
    s = score_pairs([("a", "a"), ("a b c d e f", "a"), ("a b c d e f", "a b c d e f")])
    assert s.by_length == {"1-5": [1, 1], "6-10": [2, 1]}
    table = format_length_table({"set": s})
    assert "100.00 (1)" in table and "50.00 (2)" in table


def test_failures_are_scored_as_wrong_and_counted():
    s = score_items([("a b", "a b", None), ("a b", "", "corrupt_image"), ("c", "", "empty_generation")])
    assert s.n == 3 and s.exact == 1
    assert s.failed == {"corrupt_image": 1, "empty_generation": 1}
    assert s.n_failed == 2


def test_normalised_column_is_separate_from_exprate(monkeypatch):
    # A stand-in for data_prep.latex (written elsewhere): drops \limits, as an equivalence would.
    fake = types.ModuleType("data_prep.latex")
    fake.normalize_equivalent = lambda latex: " ".join(t for t in latex.split() if t != "\\limits")
    monkeypatch.setitem(sys.modules, "data_prep.latex", fake)
    pairs = [("\\sum \\limits _ { i }", "\\sum _ { i }"), ("a", "a"), ("a", "b")]
    s = score_pairs(pairs, normalize=True)
    assert s.exact == 1 and s.exprate == 33.33  # ExpRate untouched by normalisation
    assert s.normalized_exact == 2 and s.normalized_exprate == 66.67
    table = format_table({"crohme2014": s})
    assert "ExpRate (normalised)" in table and "66.67" in table
    assert score_pairs(pairs).normalized_exprate is None


def test_normalised_column_without_normaliser_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "data_prep.latex", None)  # import fails
    with pytest.raises(ImportError, match="normalize_equivalent"):
        score_pairs([("a", "a")], normalize=True)


def test_format_table_rows():
    table = format_table({"crohme2014": score_pairs([("a", "a"), ("a", "b"), ("a b", "")])})
    header, _, row = table.splitlines()
    assert header.split("|")[1:-1] == [
        " set ",
        " n ",
        " ExpRate ",
        " <=1 ",
        " <=2 ",
        " <=3 ",
        " TER ",
        " failed ",
    ]
    assert row.split("|")[1:-1] == [
        " crohme2014 ",
        " 3 ",
        " 33.33 ",
        " 66.67 ",
        " 100.00 ",
        " 100.00 ",
        " 75.00 ",
        " 0 ",
    ]
