"""One ExpRate criterion: eval's metrics, training's validation and the predictions rows agree."""

from __future__ import annotations

from data_prep.exprate import exprate_scores, is_exact, token_distance
from data_prep.predictions import PredictionRow
from eval.scoring.metrics import token_distance as eval_token_distance
from train.validation import score_answers


def test_distance_counts_tokens_not_characters():
    assert token_distance("\\frac { a } { b }", "\\frac { a } { c }") == 1
    assert token_distance("x ^ { 2 }", "") == 5  # an empty prediction costs every truth token
    assert token_distance(["a", "b"], "a  b") == 0 and is_exact(" a b ", "a b")
    assert not is_exact("\\alpha", "\\a lpha")
    assert eval_token_distance is token_distance


def test_validation_and_rows_score_as_eval_does():
    gts = ["x ^ { 2 }", "a + b", "\\sqrt { 2 }", "y"]
    answers = ["tree line\nx ^ { 2 }", "a - b", "", "y"]
    preds = ["x ^ { 2 }", "a - b", "", "y"]
    scores = score_answers(gts, answers)
    assert scores == exprate_scores(zip(gts, preds), thresholds=(1,))
    assert scores == {"exprate": 50.0, "exprate_le1": 75.0}
    rows = [PredictionRow(id=str(k), set="s", gt=g, pred=p) for k, (g, p) in enumerate(zip(gts, preds))]
    assert [r.is_correct for r in rows] == [True, False, False, True]
    assert [r.distance for r in rows] == [token_distance(g, p) for g, p in zip(gts, preds)]
