"""K-fold split of a built dataset's training records, and writing a subset back as a built dataset.

Used by :mod:`eval.mining.mine_errors`: each fold's model trains on the other folds and predicts this one.

Folds are balanced and deterministic: the main-task ids are ordered by a seeded stable hash
(:func:`data_prep.build.stable_fraction`) and dealt round-robin, so fold sizes differ by at most one
and the same ids with the same seed always give the same folds. An auxiliary record (Tree-CoT,
counting, error-driven) belongs to the fold of the main record it was derived from: it carries that
record's formula, so it must never train the model that predicts that record.

A subset is written in the layout :mod:`data_prep.build` writes and :func:`data_prep.dataset.load_split`
reads: ``<dir>/<split>/shard-NNNNN-of-NNNNN.parquet`` plus ``<dir>/manifest.json`` marking the split
complete. The build's own shard writer is internal to its resumable builder, so shards are written
here with ``datasets.Dataset.to_parquet`` (same columns and features; images stay embedded bytes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_prep.build import stable_fraction
from data_prep.contract import TASK_MAIN
from data_prep.dataset import SHARD_ROWS, write_split

logger = logging.getLogger(__name__)


def assign_folds(ids: Sequence[str], folds: int, seed: int) -> dict[str, int]:
    """``{id: fold}``: ids ordered by a seeded stable hash, dealt round-robin into ``folds`` folds."""
    if folds < 2:
        raise ValueError(f"k-fold mining needs at least 2 folds, got {folds}")
    if len(set(ids)) != len(ids):
        raise ValueError("record ids repeat; folds are assigned by id")
    if len(ids) < folds:
        raise ValueError(f"{len(ids)} main-task records cannot fill {folds} folds")
    order = sorted(ids, key=lambda record_id: (stable_fraction(seed, "fold", record_id), record_id))
    return {record_id: position % folds for position, record_id in enumerate(order)}


def base_id(row_id: str, task: str) -> str:
    """The main record an auxiliary row was derived from (``ID#task`` or ``ID#task#k`` ids)."""
    if task == TASK_MAIN:
        return row_id
    head, marker, _ = row_id.rpartition(f"#{task}")
    return head if marker else row_id


def write_subset(
    dataset, indices: Sequence[int], out_dir: str | Path, split: str, info: dict[str, Any]
) -> Path:
    """Write rows ``indices`` of ``dataset`` (a loaded built split) as split ``split`` of a built
    dataset folder ``out_dir`` (shards renamed into place, then the manifest); returns ``out_dir``."""
    write_split(out_dir, split, dataset.select(indices), info, shard_rows=SHARD_ROWS)
    logger.info("wrote %d rows to %s", len(indices), Path(out_dir) / split)
    return Path(out_dir)


__all__ = ["SHARD_ROWS", "assign_folds", "base_id", "write_subset"]
