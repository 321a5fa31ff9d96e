"""Scores of prediction rows: per set (:func:`score_rows`) and bootstrap intervals of ExpRate
(:func:`exprate_cis`). Reading any predictions file is :mod:`eval.scoring.formats`; the ``score``
command, which also writes the reports, is :mod:`eval.score`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from eval.scoring.compare import bootstrap_ci
from eval.scoring.metrics import Scores, score_items
from eval.scoring.predictions import PredictionRow

logger = logging.getLogger(__name__)

# Scoring
# --------------------------------------------------------------------------- #


def score_rows(rows: Sequence[PredictionRow], normalize: bool = False) -> dict[str, Scores]:
    """Scores per set (in order of first appearance)."""
    by_set: dict[str, list[PredictionRow]] = {}
    for row in rows:
        by_set.setdefault(row.set, []).append(row)
    return {
        name: score_items(((r.gt, r.pred, r.error) for r in set_rows), normalize=normalize)
        for name, set_rows in by_set.items()
    }


def exprate_cis(rows: Sequence[PredictionRow], n_resamples: int, seed: int) -> dict[str, tuple[float, float]]:
    """Bootstrap 95% interval of each set's ExpRate."""
    by_set: dict[str, list[bool]] = {}
    for row in rows:
        by_set.setdefault(row.set, []).append(row.distance == 0)
    return {name: bootstrap_ci(np.array(v), n_resamples, seed) for name, v in by_set.items()}
