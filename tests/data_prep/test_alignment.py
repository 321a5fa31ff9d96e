"""Token alignment: blocks cover both sequences, tags read from the prediction's side."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.exprate import token_distance
from data_prep.tasks.error_driven.alignment import (
    EditOp,
    align,
    error_regions,
    token_confusions,
)

TOKENS = st.lists(st.sampled_from(["x", "y", "2", "^", "_", "{", "}", "\\frac", "+", "="]), max_size=12)


def test_replace_delete_insert_are_from_the_prediction_side():
    ops = align("a b c", "a x c d")
    assert [op.tag for op in ops] == ["equal", "replace", "equal", "delete"]
    assert ops[1].gt_tokens == ("b",) and ops[1].pred_tokens == ("x",)
    assert ops[3].pred_tokens == ("d",) and ops[3].gt_tokens == ()
    missing = align(["a", "b"], ["a"])
    assert [op.tag for op in missing] == ["equal", "insert"]
    assert missing[1].gt_tokens == ("b",) and missing[1].pred_start == missing[1].pred_end == 1


def test_empty_sides():
    assert align([], []) == []
    assert [op.tag for op in align([], ["a", "b"])] == ["delete"]
    assert [op.tag for op in align(["a"], [])] == ["insert"]


def test_token_confusions_pairs_substitutions_in_order():
    assert token_confusions("x ^ { 2 }", "x _ { z }") == [("^", "_"), ("2", "z")]
    assert token_confusions("a b", "a b") == []
    # A pure deletion is not a confusion.
    assert token_confusions("a b", "a b c") == []


def test_error_regions_merge_adjacent_errors():
    regions = error_regions(align("a b c d e", "a x y e"))
    assert len(regions) == 1
    (region,) = regions
    assert region.tag == "replace"
    assert region.gt_tokens == ("b", "c", "d") and region.pred_tokens == ("x", "y")
    separate = error_regions(align("a b c d", "x b d"))
    assert [r.tag for r in separate] == ["replace", "insert"]


def test_editop_validates_its_spans():
    with pytest.raises(ValueError, match="tag"):
        EditOp("swap", 0, 0, 0, 0, (), ())
    with pytest.raises(ValueError, match="gt_tokens"):
        EditOp("equal", 0, 2, 0, 1, ("a",), ("a",))


@settings(max_examples=300, deadline=None)
@given(TOKENS, TOKENS)
def test_blocks_cover_both_sequences_and_cost_the_distance(gt, pred):
    ops = align(gt, pred)
    assert [t for op in ops for t in op.gt_tokens] == gt
    assert [t for op in ops for t in op.pred_tokens] == pred
    cost = 0
    for op in ops:
        if op.tag == "equal":
            assert op.gt_tokens == op.pred_tokens
        elif op.tag == "replace":
            assert len(op.gt_tokens) == len(op.pred_tokens)
            assert all(g != p for g, p in zip(op.gt_tokens, op.pred_tokens))
        cost += max(len(op.gt_tokens), len(op.pred_tokens)) if op.is_error else 0
    assert cost == token_distance(gt, pred)
    # Rebuilding the truth from the regions' replacements gives the ground truth back.
    rebuilt, cursor = [], 0
    for region in error_regions(ops):
        rebuilt += pred[cursor : region.pred_start] + list(region.gt_tokens)
        cursor = region.pred_end
    assert rebuilt + pred[cursor:] == gt
