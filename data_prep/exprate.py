"""The one ExpRate criterion and token edit distance (the reference protocol), used by eval's
metrics, training's validation and the error-driven tasks alike.

ExpRate: the whitespace-split token sequences of truth and prediction are identical (nothing
stripped beyond ``strip()``, no LaTeX normalisation); ``<= k``: the token-level Levenshtein distance
(rapidfuzz) is at most ``k``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rapidfuzz.distance import Levenshtein


def tokens(latex: str | Sequence[str]) -> list[str]:
    """Whitespace tokens of a LaTeX string (a token sequence is taken as it is)."""
    return latex.split() if isinstance(latex, str) else list(latex)


def token_distance(gt: str | Sequence[str], pred: str | Sequence[str]) -> int:
    """Token-level Levenshtein distance between truth and prediction (strings or token lists; an
    empty prediction costs ``len(gt)`` tokens)."""
    return Levenshtein.distance(tokens(pred), tokens(gt))


def is_exact(gt: str | Sequence[str], pred: str | Sequence[str]) -> bool:
    """The ExpRate criterion: identical whitespace token sequences."""
    return tokens(gt) == tokens(pred)


def exprate_scores(pairs: Iterable[tuple[str, str]], thresholds: Sequence[int] = (1,)) -> dict[str, float]:
    """``{"exprate": %, "exprate_le{k}": % ...}`` of ``(truth, prediction)`` pairs (unrounded
    percentages; 0 for no pairs)."""
    n = exact = 0
    within = dict.fromkeys(thresholds, 0)
    for gt, pred in pairs:
        distance = token_distance(gt, pred)
        n += 1
        exact += distance == 0
        for k in thresholds:
            within[k] += distance <= k
    n = max(n, 1)
    return {"exprate": 100.0 * exact / n, **{f"exprate_le{k}": 100.0 * c / n for k, c in within.items()}}
