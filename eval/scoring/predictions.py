"""The predictions file every evaluation writes: JSON lines, one row per test item.

Row fields (all written, in this order):

``id``          the item's id within its set (the image name without extension for CROHME)
``set``         the test set (``crohme2014``, ``hme100k`` ...)
``task``        the task whose prompt was used (``main`` unless an auxiliary prompt was scored)
``image_path``  where the image was read from (or null)
``gt``          the truth, space-separated tokens
``pred``        the LaTeX scored (:func:`data_prep.contract.extract_latex` of ``raw_output``)
``distance``    token Levenshtein distance between ``gt`` and ``pred``
``raw_output``  the model's full decoded text (or null when there was none)
``error``       null, or why the item failed (``corrupt_image``, ``empty_generation`` ...);
                failed items stay in the file and are scored as what they predicted (usually
                nothing), so they count as wrong and never shrink the denominator

:class:`PredictionWriter` appends and flushes one row at a time, so a killed run loses at most the
row being written; on reopening it reports the ids already done (tolerating a truncated last line,
which it cuts off) so the run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from data_prep.contract import TASK_MAIN, extract_latex
from data_prep.rejects import Rejects
from eval.scoring.metrics import token_distance

logger = logging.getLogger(__name__)

FIELDS = ("id", "set", "task", "image_path", "gt", "pred", "distance", "raw_output", "error")
REQUIRED_FIELDS = ("id", "gt", "pred")

#: Reasons used in the ``error`` field by the project's own writers.
ERROR_CORRUPT_IMAGE = "corrupt_image"
ERROR_EMPTY_GENERATION = "empty_generation"
ERROR_GENERATION_FAILED = "generation_failed"
ERROR_MISSING_PREDICTION = "missing_prediction"


@dataclasses.dataclass
class PredictionRow:
    id: str
    set: str
    gt: str
    pred: str
    task: str = TASK_MAIN
    image_path: str | None = None
    distance: int | None = None
    raw_output: str | None = None
    error: str | None = None
    #: The distance the file itself recorded, when it disagrees with ours (not written back).
    stored_distance: int | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.distance is None:
            self.distance = token_distance(self.gt, self.pred)

    @property
    def key(self) -> tuple[str, str]:
        return (self.set, self.id)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> PredictionRow:
        """Build a row from a parsed JSON object; ``distance`` is always recomputed (a stored one
        that disagrees is kept in :attr:`stored_distance` for the caller to report)."""
        missing = [name for name in REQUIRED_FIELDS if name not in data]
        if missing:
            raise ValueError(f"{where}: prediction row lacks {', '.join(missing)}")
        for name in ("gt", "pred"):
            if not isinstance(data[name], str):
                raise ValueError(f"{where}: field {name!r} must be a string, got {type(data[name]).__name__}")
        row = cls(
            id=str(data["id"]),
            set=str(data.get("set") or ""),
            gt=data["gt"],
            pred=data["pred"],
            task=str(data.get("task") or TASK_MAIN),
            image_path=data.get("image_path"),
            raw_output=data.get("raw_output"),
            error=data.get("error") or None,
        )
        stored = data.get("distance")
        if isinstance(stored, int) and stored != row.distance:
            row.stored_distance = stored
        return row


def make_row(
    id: str,
    set: str,
    gt: str,
    raw_output: str | None,
    *,
    task: str = TASK_MAIN,
    image_path: str | None = None,
    error: str | None = None,
) -> PredictionRow:
    """The row for one generated answer: ``pred`` is the LaTeX line of ``raw_output``; a missing or
    blank output without another error is recorded as ``empty_generation``."""
    pred = extract_latex(raw_output) if raw_output else ""
    if error is None and not pred:
        error = ERROR_EMPTY_GENERATION
    return PredictionRow(
        id=id,
        set=set,
        gt=" ".join(gt.split()),
        pred=pred,
        task=task,
        image_path=image_path,
        raw_output=raw_output,
        error=error,
    )


def _complete_prefix_length(data: bytes) -> int:
    """Length of the part of ``data`` that ends with a newline (the complete lines)."""
    return data.rfind(b"\n") + 1


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def _parse_lines(path: Path, rejects: Rejects | None) -> list[tuple[int, dict[str, Any]]]:
    data = path.read_bytes()
    complete = _complete_prefix_length(data)
    tail = data[complete:]
    parsed: list[tuple[int, dict[str, Any]]] = []
    lines = data[:complete].split(b"\n")[:-1]
    if tail.strip():
        # A last line without its newline is either a complete row (a file written by another tool)
        # or a row cut off by a killed run. Keep it when it parses; report it when it does not.
        if _is_json(tail):
            lines.append(tail)
        else:
            line_no = len(lines) + 1
            if rejects is not None:
                rejects.add("predictions", "truncated_last_line", path, line_no, f"{len(tail)} bytes")
            else:
                logger.warning("%s:%d: ignoring a truncated last line (%d bytes)", path, line_no, len(tail))
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}:{line_no}: not UTF-8 ({exc.reason}); the file is damaged") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{line_no}: not a JSON line ({exc.msg}); the file is damaged") from exc
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{line_no}: expected a JSON object, got {type(obj).__name__}")
        parsed.append((line_no, obj))
    return parsed


def read_prediction_rows(path: str | Path, rejects: Rejects | None = None) -> list[PredictionRow]:
    """Read a predictions JSONL file.

    A damaged line in the middle is an error (file and line named): dropping it would silently
    change the denominator. A truncated last line (an interrupted run) is reported through
    ``rejects`` (or a warning) and left out; the items it held are simply not in the file.
    """
    path = Path(path)
    return [PredictionRow.from_dict(obj, f"{path}:{line_no}") for line_no, obj in _parse_lines(path, rejects)]


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
        complete = _complete_prefix_length(data)
        if complete == len(data):
            return
        tail = data[complete:]
        if not _is_json(tail):
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
    if not predictions.is_file() or not predictions.read_bytes().strip():
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
