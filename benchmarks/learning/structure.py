"""Which 2-D structure a formula has, and ExpRate by structure.

A formula in the answer format (space-separated tokens) is ``script`` when it has a superscript or
subscript, ``fraction`` with ``\\frac``, ``root`` with ``\\sqrt``, and ``flat`` with none of them. A
formula can have several structures (``\\frac { x ^ { 2 } } { 3 }`` is a fraction and a script): it
counts in each, so the classes' ``n`` add up to more than the set.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eval.scoring.metrics import percent

STRUCTURES = ("flat", "script", "fraction", "root")
_MARKERS = {"script": ("^", "_"), "fraction": ("\\frac",), "root": ("\\sqrt",)}


def structures(latex: str) -> tuple[str, ...]:
    """The structures of ``latex`` (at least one; ``flat`` alone when it has none of the others)."""
    tokens = set(latex.split())
    found = tuple(name for name, markers in _MARKERS.items() if tokens.intersection(markers))
    return found or ("flat",)


def exprate_by_structure(rows: Iterable[Any], max_distance: int = 0) -> dict[str, dict[str, Any]]:
    """``{structure: {"n", "exprate"}}`` over prediction rows (``gt``, ``distance``); ExpRate counts
    rows with ``distance <= max_distance`` (0: exact match)."""
    counts = {name: [0, 0] for name in STRUCTURES}
    for row in rows:
        for name in structures(row.gt):
            counts[name][0] += 1
            counts[name][1] += int(row.within(max_distance))
    return {
        name: {"n": n, "exprate": percent(right, n) if n else None} for name, (n, right) in counts.items()
    }
