"""The recognition metrics of the reference protocol (Uni-MuMER, CoMER, TAMER lineage).

* ExpRate: the whitespace-split token sequences of truth and prediction are identical (no LaTeX
  normalisation, nothing stripped beyond ``strip()``).
* ``<= k``: the token-level Levenshtein distance is at most ``k`` (k = 1, 2, 3).
* TER (token error rate): the sum of distances over the sum of truth tokens.
* ExpRate by answer length: truth token count in buckets.
* Optionally, ExpRate after :func:`data_prep.latex.normalize_equivalent` on both sides, in its own
  column and never mixed into ExpRate.

Percentages are computed from exact integer counts and rounded half up to two decimals, which is
how published tables print them (809 / 986 -> 82.05).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from data_prep.exprate import token_distance, tokens

#: ``<= k`` thresholds reported next to ExpRate.
THRESHOLDS = (1, 2, 3)
#: Truth-length buckets (inclusive token counts); ``None`` means unbounded.
LENGTH_BUCKETS: tuple[tuple[int, int | None], ...] = (
    (1, 5),
    (6, 10),
    (11, 15),
    (16, 20),
    (21, 30),
    (31, None),
)


def percent(count: int, total: int) -> float:
    """``100 * count / total`` rounded half up to two decimals (0.0 when ``total`` is 0)."""
    if total == 0:
        return 0.0
    exact = Fraction(100 * count, total)
    value = Decimal(exact.numerator) / Decimal(exact.denominator)
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def length_bucket(n_tokens: int) -> str:
    """The label of the length bucket of a truth with ``n_tokens`` tokens (``"0"`` for empty)."""
    if n_tokens <= 0:
        return "0"
    for (low, high), label in zip(LENGTH_BUCKETS, bucket_labels()):
        if high is None or low <= n_tokens <= high:
            return label
    raise AssertionError("unreachable: the last bucket is unbounded")


def bucket_labels() -> list[str]:
    return [f"{low}+" if high is None else f"{low}-{high}" for low, high in LENGTH_BUCKETS]


def _load_normalizer() -> Callable[[str], str]:
    try:
        from data_prep.latex import normalize_equivalent
    except ImportError as exc:  # the normalised column is optional; say what is missing
        raise ImportError(
            "the normalised ExpRate column needs data_prep.latex.normalize_equivalent, "
            f"which could not be imported ({exc})"
        ) from exc
    return normalize_equivalent


@dataclasses.dataclass
class Scores:
    """Integer counts of one scored set; percentages are derived from them."""

    n: int = 0
    #: Items at distance at most k, for k = 0 (ExpRate) and each of :data:`THRESHOLDS`.
    within: dict[int, int] = dataclasses.field(default_factory=lambda: {k: 0 for k in (0, *THRESHOLDS)})
    distance_sum: int = 0
    gt_token_sum: int = 0
    #: Items that failed before scoring (corrupt image, empty generation ...), by reason. They are
    #: scored as what they are (usually an empty prediction), never left out of ``n``.
    failed: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Per length bucket: ``[n, exact]``.
    by_length: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    #: Exact matches after normalisation, or None when that column was not requested.
    normalized_exact: int | None = None

    def add(self, gt: str, pred: str, error: str | None = None, normalized_equal: bool | None = None) -> int:
        """Count one item and return its distance."""
        gt_tokens, pred_tokens = tokens(gt), tokens(pred)
        distance = token_distance(gt_tokens, pred_tokens)
        self.n += 1
        for k in self.within:
            if distance <= k:
                self.within[k] += 1
        self.distance_sum += distance
        self.gt_token_sum += len(gt_tokens)
        if error:
            self.failed[error] = self.failed.get(error, 0) + 1
        bucket = self.by_length.setdefault(length_bucket(len(gt_tokens)), [0, 0])
        bucket[0] += 1
        bucket[1] += distance == 0
        if normalized_equal is not None:
            self.normalized_exact = (self.normalized_exact or 0) + bool(normalized_equal)
        return distance

    @property
    def exact(self) -> int:
        return self.within[0]

    @property
    def exprate(self) -> float:
        return percent(self.within[0], self.n)

    def within_rate(self, k: int) -> float:
        return percent(self.within[k], self.n)

    @property
    def ter(self) -> float:
        """Token error rate in percent (can exceed 100 when predictions are much too long)."""
        return percent(self.distance_sum, self.gt_token_sum)

    @property
    def normalized_exprate(self) -> float | None:
        return None if self.normalized_exact is None else percent(self.normalized_exact, self.n)

    @property
    def n_failed(self) -> int:
        return sum(self.failed.values())

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n": self.n,
            "exprate": self.exprate,
            **{f"within_{k}": self.within_rate(k) for k in THRESHOLDS},
            "ter": self.ter,
            "counts": {
                "exact": self.exact,
                **{f"within_{k}": self.within[k] for k in THRESHOLDS},
                "distance_sum": self.distance_sum,
                "gt_token_sum": self.gt_token_sum,
            },
            "failed": dict(sorted(self.failed.items())),
            "by_length": {
                label: {"n": n, "exact": exact, "exprate": percent(exact, n)}
                for label, (n, exact) in self._ordered_buckets()
            },
        }
        if self.normalized_exact is not None:
            out["normalized_exprate"] = self.normalized_exprate
            out["counts"]["normalized_exact"] = self.normalized_exact
        return out

    def _ordered_buckets(self) -> list[tuple[str, list[int]]]:
        order = ["0", *bucket_labels()]
        return [(label, self.by_length[label]) for label in order if label in self.by_length]


def score_pairs(pairs: Iterable[tuple[str, str]], normalize: bool = False) -> Scores:
    """Score ``(gt, pred)`` pairs; with ``normalize``, also the normalised ExpRate column."""
    return score_items(((gt, pred, None) for gt, pred in pairs), normalize=normalize)


def score_items(items: Iterable[tuple[str, str, str | None]], normalize: bool = False) -> Scores:
    """Score ``(gt, pred, error)`` triples; ``error`` names why an item failed (or is None)."""
    normalizer = _load_normalizer() if normalize else None
    scores = Scores(normalized_exact=0 if normalize else None)
    for gt, pred, error in items:
        normalized_equal = None
        if normalizer is not None:
            normalized_equal = tokens(normalizer(gt)) == tokens(normalizer(pred))
        scores.add(gt, pred, error=error, normalized_equal=normalized_equal)
    return scores


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_table(named_scores: Mapping[str, Scores]) -> str:
    """A Markdown table, one row per set: n, ExpRate, <=1, <=2, <=3, TER, failures (and the
    normalised ExpRate when any set has it)."""
    with_norm = any(s.normalized_exact is not None for s in named_scores.values())
    header = ["set", "n", "ExpRate", *(f"<={k}" for k in THRESHOLDS), "TER"]
    if with_norm:
        header.append("ExpRate (normalised)")
    header.append("failed")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, s in named_scores.items():
        cells = [
            name,
            str(s.n),
            _cell(s.exprate),
            *(_cell(s.within_rate(k)) for k in THRESHOLDS),
            _cell(s.ter),
        ]
        if with_norm:
            cells.append(_cell(s.normalized_exprate))
        cells.append(str(s.n_failed))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_length_table(named_scores: Mapping[str, Scores]) -> str:
    """ExpRate by truth length: one row per set, one ``ExpRate (n)`` cell per bucket."""
    labels = ["0", *bucket_labels()]
    labels = [label for label in labels if any(label in s.by_length for s in named_scores.values())]
    lines = [
        "| set | " + " | ".join(f"{label} tokens" for label in labels) + " |",
        "|" + "---|" * (len(labels) + 1),
    ]
    for name, s in named_scores.items():
        cells = []
        for label in labels:
            n, exact = s.by_length.get(label, (0, 0))
            cells.append(f"{percent(exact, n):.2f} ({n})" if n else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
