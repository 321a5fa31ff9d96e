"""The predictions file every evaluation writes, as rows: JSON lines, one row per test item.

This is the lowest layer that reads predictions: ``eval`` writes and scores them
(``eval.predictions.PredictionWriter``), the error-driven tasks and confusion tables read them
(:func:`iter_prediction_rows`, which skips unusable rows with a counted reason).

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
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_prep.contract import TASK_MAIN, extract_latex, normalize_answer
from data_prep.exprate import is_exact, token_distance
from data_prep.rejects import Rejects

logger = logging.getLogger(__name__)

FIELDS = ("id", "set", "task", "image_path", "gt", "pred", "distance", "raw_output", "error")
REQUIRED_FIELDS = ("id", "gt", "pred")

#: A ``gt`` or ``pred`` longer than this many whitespace tokens is no formula (the longest real
#: truths are a few hundred tokens): the row is rejected as ``too_long``, counted, never scored,
#: since its token distance alone would take minutes and gigabytes.
MAX_PREDICTION_TOKENS = 10_000
#: A predictions line longer than this many bytes is rejected as ``too_long`` before it is parsed.
MAX_LINE_BYTES = 1_000_000
#: The reject reason of both limits.
TOO_LONG = "too_long"
#: The ``source`` of the rejections counted while reading a predictions file.
PREDICTIONS_SOURCE = "predictions"

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
    #: Where the row was read from (file and 1-based line), when it was read from a file.
    file: str | None = dataclasses.field(default=None, repr=False, compare=False)
    line: int | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.distance is None:
            self.distance = token_distance(self.gt, self.pred)

    @property
    def is_correct(self) -> bool:
        """Exact match of the whitespace token sequences (the ExpRate criterion)."""
        return is_exact(self.gt, self.pred)

    def within(self, max_distance: int) -> bool:
        """The prediction is at most ``max_distance`` token edits from the truth (0: ExpRate's exact
        match; 1, 2: the <=1 and <=2 columns). A row without a distance (a failed item) is not."""
        return self.distance is not None and self.distance <= max_distance

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


def too_long(**fields: object) -> str | None:
    """Why one of the text ``fields`` (``gt=..., pred=...``) is over :data:`MAX_PREDICTION_TOKENS`
    (None when none is): ``gt has 200,000 tokens (limit 10,000)``. Every reader of predictions and
    truths calls it before scoring a row."""
    for name, value in fields.items():
        if isinstance(value, str) and len(value) > MAX_PREDICTION_TOKENS:  # cheap test first
            n = len(value.split())
            if n > MAX_PREDICTION_TOKENS:
                return f"{name} has {n:,} tokens (limit {MAX_PREDICTION_TOKENS:,})"
    return None


def _line_too_long(line: bytes | str) -> str | None:
    if len(line) > MAX_LINE_BYTES:
        return f"a line of {len(line):,} bytes (limit {MAX_LINE_BYTES:,})"
    return None


def _reject(rejects: Rejects | None, path: Path, line_no: int, detail: str) -> None:
    if rejects is not None:
        rejects.add(PREDICTIONS_SOURCE, TOO_LONG, path, line_no, detail)
    else:
        logger.warning("%s:%d: rejected as %s: %s", path, line_no, TOO_LONG, detail)


def complete_prefix_length(data: bytes) -> int:
    """Length of the part of ``data`` that ends with a newline (the complete lines)."""
    return data.rfind(b"\n") + 1


def is_json_line(raw: bytes) -> bool:
    try:
        json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def _parse_lines(path: Path, rejects: Rejects | None) -> list[tuple[int, dict[str, Any]]]:
    data = path.read_bytes()
    complete = complete_prefix_length(data)
    tail = data[complete:]
    parsed: list[tuple[int, dict[str, Any]]] = []
    lines = data[:complete].split(b"\n")[:-1]
    if tail.strip():
        # A last line without its newline is either a complete row (a file written by another tool)
        # or a row cut off by a killed run. Keep it when it parses; report it when it does not.
        if is_json_line(tail):
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
        oversized = _line_too_long(line)
        if oversized:
            _reject(rejects, path, line_no, oversized)
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}:{line_no}: not UTF-8 ({exc.reason}); the file is damaged") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{line_no}: not a JSON line ({exc.msg}); the file is damaged") from exc
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{line_no}: expected a JSON object, got {type(obj).__name__}")
        oversized = too_long(gt=obj.get("gt"), pred=obj.get("pred"))
        if oversized:
            _reject(rejects, path, line_no, oversized)
            continue
        parsed.append((line_no, obj))
    return parsed


def read_prediction_rows(path: str | Path, rejects: Rejects | None = None) -> list[PredictionRow]:
    """Read a predictions JSONL file.

    A damaged line in the middle is an error (file and line named): dropping it would silently
    change the denominator. A truncated last line (an interrupted run) is reported through
    ``rejects`` (or a warning) and left out; the items it held are simply not in the file. So is a
    row over the length limits (``too_long``: :data:`MAX_LINE_BYTES`, :data:`MAX_PREDICTION_TOKENS`).
    """
    path = Path(path)
    return [PredictionRow.from_dict(obj, f"{path}:{line_no}") for line_no, obj in _parse_lines(path, rejects)]


def iter_prediction_rows(path: str | Path, rejects: Rejects | None = None) -> Iterator[PredictionRow]:
    """The usable rows of a predictions JSONL file (``id``, ``gt``, ``pred``; other keys ignored),
    with ``gt`` and ``pred`` whitespace-normalised and ``file``/``line`` set; integer ids read as text.

    Unlike :func:`read_prediction_rows` (which scores a whole file and refuses a damaged one), rows
    that are malformed (bad JSON, not an object, a missing or non-string ``id``/``gt``/``pred``, an
    empty ``id`` or ``gt``, a line or field over the length limits) or that record a generation failure (a non-empty ``error`` field) are
    counted in ``rejects`` with file, line and reason, and skipped.
    """
    rejects = rejects if rejects is not None else Rejects()
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            oversized = _line_too_long(text)
            if oversized:
                rejects.add(PREDICTIONS_SOURCE, TOO_LONG, path, number, oversized)
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as error:
                rejects.add(PREDICTIONS_SOURCE, "invalid_json", path, number, str(error))
                continue
            if not isinstance(row, dict):
                rejects.add(PREDICTIONS_SOURCE, "not_an_object", path, number, type(row).__name__)
                continue
            missing = [key for key in REQUIRED_FIELDS if key not in row]
            if missing:
                rejects.add(PREDICTIONS_SOURCE, "missing_field", path, number, ", ".join(missing))
                continue
            if isinstance(row["id"], int) and not isinstance(row["id"], bool):
                row["id"] = str(row["id"])
            wrong = [key for key in REQUIRED_FIELDS if not isinstance(row[key], str)]
            if wrong:
                rejects.add(PREDICTIONS_SOURCE, "not_a_string", path, number, ", ".join(wrong))
                continue
            if not row["id"].strip() or not row["gt"].strip():
                rejects.add(PREDICTIONS_SOURCE, "empty_id_or_gt", path, number)
                continue
            oversized = too_long(gt=row["gt"], pred=row["pred"])
            if oversized:
                rejects.add(PREDICTIONS_SOURCE, TOO_LONG, path, number, oversized)
                continue
            if row.get("error"):
                # A failed generation (unreadable image, crash, missing output) is not a misreading.
                rejects.add(PREDICTIONS_SOURCE, "generation_error", path, number, str(row["error"]))
                continue
            yield PredictionRow(
                id=row["id"],
                set=str(row.get("set") or ""),
                gt=normalize_answer(row["gt"]),
                pred=normalize_answer(row["pred"]),
                task=str(row.get("task") or TASK_MAIN),
                file=str(path),
                line=number,
            )
