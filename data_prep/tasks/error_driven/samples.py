"""Detection and correction records from a record and its wrong predictions; wrong predictions from an eval predictions file."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from data_prep.contract import (
    TASK_ERROR_CORRECTION,
    TASK_ERROR_DETECTION,
    TASK_MAIN,
    Record,
    extract_latex,
    normalize_answer,
    prompt_for,
)
from data_prep.exprate import token_distance
from data_prep.predictions import PREDICTIONS_SOURCE, PredictionRow, iter_prediction_rows
from data_prep.rejects import Rejects
from data_prep.tasks.error_driven.marking import (
    RESERVED_TOKENS,
    SOURCE,
    apply_detection,
    apply_edits,
    correction_answer,
    mark_errors,
    parse_edits,
)

logger = logging.getLogger(__name__)
# --------------------------------------------------------------------------- #
# Samples
# --------------------------------------------------------------------------- #


def samples_from_predictions(
    record: Record,
    wrong_predictions: Iterable[str],
    max_per_record: int = 2,
    origin: str = "model",
    rejects: Rejects | None = None,
) -> list[Record]:
    """Detection and correction records (``[det 0, cor 0, det 1, cor 1, ...]``) for ``record``.

    ``record`` is a main-task record; predictions are normalised and deduplicated, correct ones
    skipped, the first ``max_per_record`` others used. Empty predictions and texts holding a
    reserved token are counted in ``rejects``. Ids are ``{record.id}#error_detection#{k}`` and
    ``{record.id}#error_correction#{k}``; the image, source and split are the record's; ``meta``
    adds ``base_id``, ``prediction``, ``origin`` and ``edit_distance``.
    """
    if record.task != TASK_MAIN:
        raise ValueError(
            f"record {record.id}: error-driven samples need a main-task record, not {record.task!r}"
        )
    rejects = rejects if rejects is not None else Rejects()
    truth = record.latex
    if RESERVED_TOKENS.intersection(truth.split()):
        rejects.add(SOURCE, "reserved_token_in_truth", record.id, detail=truth)
        return []
    out: list[Record] = []
    seen = {truth}
    for raw in wrong_predictions:
        if len(out) >= 2 * max_per_record:
            break
        prediction = normalize_answer(raw)
        if prediction in seen:
            continue
        seen.add(prediction)
        if not prediction:
            rejects.add(SOURCE, "empty_prediction", record.id)
            continue
        if RESERVED_TOKENS.intersection(prediction.split()):
            rejects.add(SOURCE, "reserved_token_in_prediction", record.id, detail=prediction)
            continue
        k = len(out) // 2
        marked = mark_errors(truth, prediction)
        correction = correction_answer(truth, prediction)
        # Every pair is checked: the markers undo to the prediction, the edits redo the truth.
        if (
            apply_detection(marked) != prediction
            or apply_edits(marked, parse_edits(correction)) != truth
            or extract_latex(correction) != truth
        ):
            raise RuntimeError(f"record {record.id}: inconsistent error-driven pair for {prediction!r}")
        meta = {
            **record.meta,
            "base_id": record.id,
            "prediction": prediction,
            "origin": origin,
            "edit_distance": token_distance(truth, prediction),
        }
        # Detection sees the plain prediction and answers with it marked; correction sees the
        # marked prediction and answers with the edits.
        for task, shown, answer in (
            (TASK_ERROR_DETECTION, prediction, marked),
            (TASK_ERROR_CORRECTION, marked, correction),
        ):
            out.append(
                Record(
                    id=f"{record.id}#{task}#{k}",
                    source=record.source,
                    split=record.split,
                    task=task,
                    image=record.image,
                    prompt=prompt_for(task, prediction=shown),
                    answer=answer,
                    meta=dict(meta),
                )
            )
    return out


#: Keys of the reference's ``*_pred.json`` records (``example_data/<SET>/results/``).
REFERENCE_KEYS = ("img_id", "gt", "pred")


def _is_json_array(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(64).removeprefix(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"[")


def prediction_rows(path: str | Path, rejects: Rejects) -> Iterable[PredictionRow]:
    """The rows of an eval predictions JSONL file (``iter_prediction_rows``) or of the Uni-MuMER
    reference's ``*_pred.json``: ONE JSON array of ``{"gt", "pred", "image_path", "img_id"}``
    (``img_id`` is the id; an ``id`` key is taken too). A JSON array of anything else is refused
    with one ``ValueError`` line; malformed records of a reference file are counted and skipped."""
    path = Path(path)
    if not _is_json_array(path):
        return iter_prediction_rows(path, rejects)
    try:
        items = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: starts like a JSON array but is not one: {err}") from None
    if items and not any(isinstance(i, dict) and {"gt", "pred"} <= i.keys() for i in items[:10]):
        first = items[0] if not isinstance(items[0], dict) else sorted(items[0])
        raise ValueError(
            f"{path}: a JSON array, but not of the reference's prediction records "
            f"({', '.join(REFERENCE_KEYS)}): its first item is {str(first)[:80]}"
        )
    return _reference_rows(path, items, rejects)


def _reference_rows(path: Path, items: list, rejects: Rejects) -> Iterable[PredictionRow]:
    for number, item in enumerate(items, start=1):
        record_id = item.get("img_id", item.get("id")) if isinstance(item, dict) else None
        fields = (record_id, item.get("gt"), item.get("pred")) if isinstance(item, dict) else ()
        if len(fields) != 3 or not all(isinstance(f, str) for f in fields):
            rejects.add(PREDICTIONS_SOURCE, "bad_record", path, number, "needs string img_id, gt and pred")
            continue
        if not record_id.strip() or not fields[1].strip():
            rejects.add(PREDICTIONS_SOURCE, "empty_id_or_gt", path, number)
            continue
        yield PredictionRow(
            id=record_id,
            set="",
            gt=normalize_answer(fields[1]),
            pred=normalize_answer(fields[2]),
            file=str(path),
            line=number,
        )


def read_predictions(path: str | Path, rejects: Rejects | None = None) -> dict[str, list[str]]:
    """Wrong predictions per id from an eval predictions JSONL file (``id``, ``gt``, ``pred``).

    Several rows per id (sampled predictions) are kept in file order, deduplicated. Malformed rows
    and rows whose ``gt`` contradicts an earlier row of the same id are counted in ``rejects``.
    """
    rejects = rejects if rejects is not None else Rejects()
    truths: dict[str, str] = {}
    wrong: dict[str, list[str]] = {}
    for row in prediction_rows(path, rejects):
        if truths.setdefault(row.id, row.gt) != row.gt:
            rejects.add("predictions", "conflicting_gt", row.file, row.line, f"id {row.id}")
            continue
        if row.is_correct:
            continue
        predictions = wrong.setdefault(row.id, [])
        if row.pred not in predictions:
            predictions.append(row.pred)
    logger.info(
        "%s: %d ids, %d with wrong predictions (%d distinct wrong predictions)",
        path,
        len(truths),
        len(wrong),
        sum(map(len, wrong.values())),
    )
    return wrong
