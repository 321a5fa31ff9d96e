"""Writing the predictions file every evaluation writes (rows: :mod:`data_prep.predictions`).

:class:`PredictionWriter` appends and flushes one row at a time, so a killed run loses at most the
row being written; on reopening it reports the ids already done (tolerating a truncated last line,
which it cuts off) so the run resumes where it stopped. The ``.meta.json`` beside a predictions
file records its provenance.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# The rows themselves are data_prep's (the lowest layer reading predictions); re-exported so eval's
# callers keep one import for rows and writer.
from data_prep.predictions import (  # noqa: F401
    ERROR_CORRUPT_IMAGE,
    ERROR_EMPTY_GENERATION,
    ERROR_GENERATION_FAILED,
    ERROR_MISSING_PREDICTION,
    FIELDS,
    REQUIRED_FIELDS,
    PredictionRow,
    complete_prefix_length,
    is_json_line,
    make_row,
    read_prediction_rows,
)

logger = logging.getLogger(__name__)


class PredictionWriter:
    """Append prediction rows to a JSONL file, one flushed line per row, resumably.

    ``PredictionWriter(path)`` opens for appending; :meth:`done_ids` returns the ``(set, id)``
    keys already present, so a resumed run can skip them. A truncated last line left by a killed
    run is cut off (and its item predicted again). Writing a key twice is an error.
    """

    def __init__(self, path: str | Path, resume: bool = True, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._done: set[tuple[str, str]] = set()
        if self.path.exists() and not resume:
            raise FileExistsError(f"{self.path} exists; pass resume=True to continue it or remove it")
        if self.path.exists():
            self._drop_truncated_tail()
            self._done = {row.key for row in read_prediction_rows(self.path)}
            if self._done:
                logger.info("resuming %s: %d items already predicted", self.path, len(self._done))
        self._file = self.path.open("a", encoding="utf-8")

    def _drop_truncated_tail(self) -> None:
        data = self.path.read_bytes()
        complete = complete_prefix_length(data)
        if complete == len(data):
            return
        tail = data[complete:]
        if not is_json_line(tail):
            logger.warning(
                "%s: cutting off a truncated last line (%d bytes); that item is predicted again",
                self.path,
                len(tail),
            )
            with self.path.open("r+b") as f:
                f.truncate(complete)
        else:
            # A complete last row without a newline: add the newline so the next row starts cleanly.
            with self.path.open("ab") as f:
                f.write(b"\n")

    def done_ids(self, set_name: str | None = None) -> set[str] | set[tuple[str, str]]:
        """Ids already written: ``{id}`` for ``set_name``, or every ``(set, id)`` key when None."""
        if set_name is None:
            return set(self._done)
        return {item_id for item_set, item_id in self._done if item_set == set_name}

    def write(self, row: PredictionRow) -> None:
        if row.key in self._done:
            raise ValueError(f"{self.path}: item {row.set}/{row.id} is already in the file")
        self._file.write(json.dumps(row.to_dict(), ensure_ascii=False) + "\n")
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self._done.add(row.key)

    def write_all(self, rows: Iterable[PredictionRow]) -> None:
        for row in rows:
            self.write(row)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- #
# What made a predictions file, and whether it is finished
# --------------------------------------------------------------------------- #

#: Beside ``<set>.<task>.jsonl``: ``<set>.<task>.meta.json``.
META_SUFFIX = ".meta.json"
#: Keys of the record that must match for a run to add rows to an existing file.
PROVENANCE_KEYS = (
    "model",
    "model_sha256",
    "backend",
    "set",
    "task",
    "min_pixels",
    "max_pixels",
    "max_new_tokens",
    "decoding",
    "dtype",
)
#: The content fingerprint of the test split the rows were made from (data_prep.fingerprint).
DATASET_FINGERPRINT = "dataset_fingerprint"


class PredictionsMismatch(ValueError):
    """A predictions file made by another model or with other settings than this run's."""


def meta_path(predictions: str | Path) -> Path:
    predictions = Path(predictions)
    return predictions.with_name(predictions.name.removesuffix(".jsonl") + META_SUFFIX)


def read_meta(predictions: str | Path) -> dict[str, Any] | None:
    path = meta_path(predictions)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is damaged ({err.msg}); delete it and its predictions file") from err


def write_meta(predictions: str | Path, meta: dict[str, Any]) -> None:
    from data_prep.io_utils import write_json_atomic

    write_json_atomic(meta_path(predictions), meta, indent=1)


def check_provenance(predictions: str | Path, meta: dict[str, Any]) -> None:
    """Refuse to add this run's rows to a file another model or other settings started."""
    predictions = Path(predictions)
    if not _has_rows(predictions):
        return
    old = read_meta(predictions)
    if old is None:
        raise PredictionsMismatch(
            f"{predictions} has predictions but no {meta_path(predictions).name} saying what made them; "
            "delete it or choose another --output-dir"
        )
    diffs = [
        f"{key} ({old.get(key)!r} -> {meta.get(key)!r})"
        for key in PROVENANCE_KEYS
        if old.get(key) != meta.get(key)
    ]
    if diffs:
        raise PredictionsMismatch(
            f"{predictions} was made with other settings: {', '.join(diffs)}; choose another "
            "--output-dir (the default is one folder per model) or delete the file to start it again"
        )


def _has_rows(predictions: Path) -> bool:
    return predictions.is_file() and bool(predictions.read_bytes().strip())


def stale_reason(predictions: str | Path, meta: dict[str, Any]) -> str | None:
    """Why the rows already in ``predictions`` no longer answer this run (None: they do, or there
    are none): the test split was rebuilt with other content (its fingerprint changed), or the same
    model folder now holds other weights. Such rows are predicted again, never resumed into."""
    from data_prep.fingerprint import fingerprint_changes

    predictions = Path(predictions)
    if not _has_rows(predictions):
        return None
    old = read_meta(predictions)
    if old is None:
        return None  # check_provenance refuses a file nothing describes
    if DATASET_FINGERPRINT in meta:
        if DATASET_FINGERPRINT not in old and meta[DATASET_FINGERPRINT] is not None:
            return (
                "these rows record no test-split fingerprint (they were made before predictions "
                "recorded one), so they may be of another build of the set"
            )
        change = fingerprint_changes(old.get(DATASET_FINGERPRINT), meta[DATASET_FINGERPRINT])
        if change:
            return f"the test split changed since these rows were predicted: {change}"
    if old.get("model") == meta.get("model") and old.get("model_sha256") != meta.get("model_sha256"):
        return (
            f"the weights of {meta.get('model')} changed since these rows were predicted (sha256 "
            f"{str(old.get('model_sha256'))[:12]} -> {str(meta.get('model_sha256'))[:12]})"
        )
    return None


def completeness(predictions: str | Path, n_rows: int | None = None) -> str | None:
    """None when the file is finished (or records nothing), else a sentence saying what is missing."""
    meta = read_meta(predictions)
    if meta is None:
        return None
    expected = meta.get("n_items")
    if n_rows is None:
        n_rows = len(read_prediction_rows(predictions))
    if not meta.get("complete") or (expected is not None and n_rows < expected):
        return (
            f"{predictions} is INCOMPLETE: {n_rows} of {expected} items were predicted (the run was "
            "interrupted); rerun the same evaluate command to finish it"
        )
    return None
