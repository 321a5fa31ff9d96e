"""Detection and correction records from a record and its wrong predictions; wrong predictions from an eval predictions file."""

from __future__ import annotations

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
from data_prep.predictions import iter_prediction_rows
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


def read_predictions(path: str | Path, rejects: Rejects | None = None) -> dict[str, list[str]]:
    """Wrong predictions per id from an eval predictions JSONL file (``id``, ``gt``, ``pred``).

    Several rows per id (sampled predictions) are kept in file order, deduplicated. Malformed rows
    and rows whose ``gt`` contradicts an earlier row of the same id are counted in ``rejects``.
    """
    rejects = rejects if rejects is not None else Rejects()
    truths: dict[str, str] = {}
    wrong: dict[str, list[str]] = {}
    for row in iter_prediction_rows(path, rejects):
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
