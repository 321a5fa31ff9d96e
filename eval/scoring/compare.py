"""Paired comparison of two prediction sets on the items they share.

Two systems scored on the same test items are compared item by item, not set by set: the
ExpRate difference gets a paired bootstrap 95% confidence interval (items resampled with
replacement, the same resample for both systems; fixed seed, so deterministic), and the exact
McNemar test asks whether the discordant items (right in one, wrong in the other) split
unevenly more than chance would (two-sided binomial test on the discordant pairs, p = 0.5).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest

from eval.scoring.metrics import percent
from eval.scoring.predictions import PredictionRow

#: Resamples per chunk, so memory stays at chunk x n booleans however many resamples are asked.
_CHUNK = 256


def bootstrap_ci(
    values: np.ndarray, n_resamples: int, seed: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``100 * mean(values)`` (values are per-item scores, e.g.
    1/0 correctness, or a paired difference in {-1, 0, 1})."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0 or n_resamples <= 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, _CHUNK):
        size = min(_CHUNK, n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        means[start : start + size] = values[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return (round(100 * float(low), 2), round(100 * float(high), 2))


def paired_bootstrap_diff_ci(
    correct_a: Sequence[bool],
    correct_b: Sequence[bool],
    n_resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """95% interval of ExpRate(B) - ExpRate(A) in points, resampling items jointly."""
    a = np.asarray(correct_a, dtype=np.int8)
    b = np.asarray(correct_b, dtype=np.int8)
    if a.shape != b.shape:
        raise ValueError("paired outcomes must have the same length")
    return bootstrap_ci(b - a, n_resamples, seed, confidence)


def mcnemar_exact(only_a_right: int, only_b_right: int) -> float:
    """Exact two-sided McNemar p-value: binomial test of the discordant split against 1/2."""
    discordant = only_a_right + only_b_right
    if discordant == 0:
        return 1.0
    return float(binomtest(only_b_right, discordant, 0.5, alternative="two-sided").pvalue)


@dataclasses.dataclass
class Comparison:
    name_a: str
    name_b: str
    n_shared: int
    only_in_a: list[str]
    only_in_b: list[str]
    #: Shared ids whose truth differs between the two files (each side is scored on its own truth).
    gt_mismatch: list[str]
    exprate_a: float
    exprate_b: float
    #: ExpRate(B) - ExpRate(A), in points.
    diff: float
    #: 95% interval of ``diff`` (None when no bootstrap was asked for).
    ci: tuple[float, float] | None
    n_resamples: int
    seed: int
    both_right: int
    both_wrong: int
    only_a_right: int
    only_b_right: int
    mcnemar_p: float
    examples_only_a: list[dict[str, str]]
    examples_only_b: list[dict[str, str]]

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["ci"] = list(self.ci) if self.ci else None
        out["n_only_in_a"] = len(self.only_in_a)
        out["n_only_in_b"] = len(self.only_in_b)
        out["n_gt_mismatch"] = len(self.gt_mismatch)
        return out

    def _ci_text(self) -> str:
        if self.ci is None:
            return "no bootstrap interval"
        return (
            f"95% CI {self.ci[0]:+.2f} to {self.ci[1]:+.2f}, paired bootstrap, "
            f"{self.n_resamples} resamples, seed {self.seed}"
        )

    def to_markdown(self, max_ids: int = 10) -> str:
        a, b = self.name_a, self.name_b
        lines = [
            f"## Paired comparison: A = {a}, B = {b}",
            "",
            f"Items in both files: {self.n_shared}",
            f"- only in A: {len(self.only_in_a)} {_ids(self.only_in_a, max_ids)}",
            f"- only in B: {len(self.only_in_b)} {_ids(self.only_in_b, max_ids)}",
        ]
        if self.gt_mismatch:
            lines.append(
                f"- truth differs between the files for {len(self.gt_mismatch)} shared items "
                f"(different caption editions?) {_ids(self.gt_mismatch, max_ids)}"
            )
        lines += [
            "",
            "| | ExpRate on shared items |",
            "|---|---|",
            f"| A ({a}) | {self.exprate_a:.2f} |",
            f"| B ({b}) | {self.exprate_b:.2f} |",
            f"| B - A | {self.diff:+.2f} ({self._ci_text()}) |",
            "",
            f"Both right {self.both_right}, both wrong {self.both_wrong}, only A right {self.only_a_right}, "
            f"only B right {self.only_b_right}; exact McNemar p = {self.mcnemar_p:.4g}",
        ]
        for title, examples in (
            ("Only A right", self.examples_only_a),
            ("Only B right", self.examples_only_b),
        ):
            if examples:
                lines += ["", f"### {title} (examples)", "", "| id | truth | A | B |", "|---|---|---|---|"]
                for ex in examples:
                    cells = [_md(ex[k]) for k in ("id", "gt", "pred_a", "pred_b")]
                    lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _ids(ids: list[str], limit: int) -> str:
    if not ids:
        return ""
    shown = ", ".join(ids[:limit])
    return f"({shown}{', ...' if len(ids) > limit else ''})"


def _md(text: str) -> str:
    """A table-safe cell: pipes escaped, code-quoted so LaTeX backslashes show as written."""
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`" if text else "(empty)"


def _join_key(rows_a: Sequence[PredictionRow], rows_b: Sequence[PredictionRow]):
    """Join on ``id`` when each file holds a single set (their set names may differ, e.g. taken
    from the file names); on ``(set, id)`` otherwise."""
    single = len({r.set for r in rows_a}) <= 1 and len({r.set for r in rows_b}) <= 1
    return (lambda r: r.id) if single else (lambda r: f"{r.set}/{r.id}")


def compare_rows(
    rows_a: Sequence[PredictionRow],
    rows_b: Sequence[PredictionRow],
    name_a: str = "A",
    name_b: str = "B",
    n_resamples: int = 10_000,
    seed: int = 0,
    n_examples: int = 5,
    max_distance: int = 0,
) -> Comparison:
    """Compare two lists of scored rows (ids unique within each list) on their shared items. An item
    counts as right when its token distance is at most ``max_distance``: 0 compares ExpRate, 1 the
    <=1 rate (the same interval and test on that criterion)."""
    key = _join_key(rows_a, rows_b)
    by_a = {key(r): r for r in rows_a}
    by_b = {key(r): r for r in rows_b}
    if len(by_a) != len(rows_a) or len(by_b) != len(rows_b):
        raise ValueError("duplicated ids: compare needs unique ids within each file")
    shared = [k for k in by_a if k in by_b]
    only_in_a = [k for k in by_a if k not in by_b]
    only_in_b = [k for k in by_b if k not in by_a]
    gt_mismatch = [k for k in shared if by_a[k].gt.split() != by_b[k].gt.split()]
    correct_a = np.array([by_a[k].within(max_distance) for k in shared], dtype=bool)
    correct_b = np.array([by_b[k].within(max_distance) for k in shared], dtype=bool)
    only_a = [k for k, ca, cb in zip(shared, correct_a, correct_b) if ca and not cb]
    only_b = [k for k, ca, cb in zip(shared, correct_a, correct_b) if cb and not ca]

    def example(k: str) -> dict[str, str]:
        return {"id": k, "gt": by_a[k].gt, "pred_a": by_a[k].pred, "pred_b": by_b[k].pred}

    n = len(shared)
    exprate_a = percent(int(correct_a.sum()), n)
    exprate_b = percent(int(correct_b.sum()), n)
    return Comparison(
        name_a=name_a,
        name_b=name_b,
        n_shared=n,
        only_in_a=only_in_a,
        only_in_b=only_in_b,
        gt_mismatch=gt_mismatch,
        exprate_a=exprate_a,
        exprate_b=exprate_b,
        diff=percent(int(correct_b.sum()) - int(correct_a.sum()), n),
        ci=paired_bootstrap_diff_ci(correct_a, correct_b, n_resamples, seed)
        if n_resamples > 0 and n
        else None,
        n_resamples=n_resamples,
        seed=seed,
        both_right=int((correct_a & correct_b).sum()),
        both_wrong=int((~correct_a & ~correct_b).sum()),
        only_a_right=len(only_a),
        only_b_right=len(only_b),
        mcnemar_p=mcnemar_exact(len(only_a), len(only_b)),
        examples_only_a=[example(k) for k in only_a[:n_examples]],
        examples_only_b=[example(k) for k in only_b[:n_examples]],
    )
