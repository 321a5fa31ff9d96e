"""Predictions of test items, written resumably: one predictions file per (set, task).

:func:`predict_set` generates the rows a file lacks, chunk by chunk, flushing each row, so an
interrupted run resumes; a failing batch is retried item by item (:func:`generate_safely`), so one
bad item becomes one failure row; :func:`write_votes` adds the majority-vote rows;
:func:`load_rows` reads a run's rows back. Used by :mod:`eval.evaluate` and :mod:`eval.mining`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from data_prep.contract import prompt_for
from data_prep.io_utils import atomic_output
from eval.backends import Backend
from eval.scoring.items import Item, decode_item
from eval.scoring.predictions import (
    ERROR_GENERATION_FAILED,
    PredictionRow,
    PredictionWriter,
    check_provenance,
    make_row,
    meta_path,
    read_prediction_rows,
    stale_reason,
    write_meta,
)
from eval.scoring.vote import VOTE_TASK_NAME, VOTE_TASKS, vote_row

logger = logging.getLogger(__name__)

IMAGES_DIR = "images"
THUMBNAIL = (640, 320)


def generate_safely(
    backend: Backend, images: list[Image.Image], prompts: list[str]
) -> list[tuple[str | None, str | None]]:
    """``(raw_output, error)`` per item. A failing batch is retried item by item, so one bad item
    becomes one ``generation_failed`` row instead of stopping the run."""
    try:
        return [(text, None) for text in backend.generate(images, prompts)]
    except Exception as err:
        if len(images) == 1:
            logger.warning("generation failed: %s: %s", type(err).__name__, err)
            return [(None, ERROR_GENERATION_FAILED)]
        logger.warning("a batch of %d failed (%s); retrying item by item", len(images), err)
    return [generate_safely(backend, [im], [p])[0] for im, p in zip(images, prompts)]


def _safe_name(item_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", item_id)[:120]


def sample_safely(
    backend: Backend, images: list, prompts: list[str], n: int, temperature: float, top_p: float
) -> list[list[tuple[str | None, str | None]]]:
    """``n`` ``(raw_output, error)`` per item; a failing batch is retried item by item."""
    try:
        return [
            [(text, None) for text in texts]
            for texts in backend.sample(images, prompts, n, temperature, top_p)
        ]
    except Exception as err:
        if len(images) == 1:
            logger.warning("sampling failed: %s: %s", type(err).__name__, err)
            return [[(None, ERROR_GENERATION_FAILED)] * n]
        logger.warning("sampling a batch of %d failed (%s); retrying item by item", len(images), err)
    return [sample_safely(backend, [im], [p], n, temperature, top_p)[0] for im, p in zip(images, prompts)]


def save_thumbnail(image: Image.Image, out_dir: Path, set_name: str, item_id: str) -> str:
    """Save a small PNG of a wrong item's image for the HTML report; returns its path under out_dir."""
    relative = Path(IMAGES_DIR) / _safe_name(set_name) / f"{_safe_name(item_id)}.png"
    target = out_dir / relative
    if not target.exists():
        thumb = image.convert("RGB")
        thumb.thumbnail(THUMBNAIL)
        with atomic_output(target) as tmp:
            thumb.save(tmp, format="PNG")
    return relative.as_posix()


def predictions_path(out_dir: Path, set_name: str, task: str) -> Path:
    return out_dir / f"{set_name}.{task}.jsonl"


def _chunks(items: Sequence[Item], size: int) -> Iterator[list[Item]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def discard_stale(out_dir: Path, set_name: str, metas: dict[str, dict[str, Any]]) -> str | None:
    """When any task's rows of ``set_name`` were made from another build of the test split (or
    other weights of the same model folder), delete that set's predictions (every task, the vote
    and the thumbnails) so it is predicted again from scratch; returns why (None: nothing stale).

    Each file is removed before its new ``.meta.json`` is written: a run killed in between leaves
    no rows, never old rows under the new record."""
    import shutil

    reason = next(
        filter(None, (stale_reason(predictions_path(out_dir, set_name, t), m) for t, m in metas.items())),
        None,
    )
    if reason is None:
        return None
    logger.warning("%s: %s; predicting the set again (its old predictions are removed)", set_name, reason)
    for task in {*metas, VOTE_TASK_NAME, *VOTE_TASKS}:
        for path in (
            predictions_path(out_dir, set_name, task),
            meta_path(predictions_path(out_dir, set_name, task)),
        ):
            path.unlink(missing_ok=True)
    shutil.rmtree(out_dir / IMAGES_DIR / _safe_name(set_name), ignore_errors=True)
    return reason


def predict_set(
    backend: Backend,
    items: Sequence[Item],
    set_name: str,
    tasks: Sequence[str],
    out_dir: Path,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write (resumably) one predictions file per task for ``items``; returns counts and timing.

    With ``provenance`` (what makes the rows: model, weights hash, backend, bounds, decoding), a
    file another model or other settings started is refused, and each file's ``.meta.json``
    records it with ``complete`` false until every item is written.
    """
    from tqdm import tqdm

    metas = {}
    if provenance is not None:
        metas = {task: {**provenance, "set": set_name, "task": task} for task in tasks}
        discard_stale(out_dir, set_name, metas)
    for task in tasks:
        path = predictions_path(out_dir, set_name, task)
        if provenance is not None:
            check_provenance(path, metas[task])
            write_meta(path, {**metas[task], "n_items": len(items), "complete": False})
    writers = {task: PredictionWriter(predictions_path(out_dir, set_name, task)) for task in tasks}
    try:
        done = {task: writers[task].done_ids(set_name) for task in tasks}
        pending = [item for item in items if any(item.id not in done[task] for task in tasks)]
        if len(pending) < len(items):
            logger.info(
                "%s: %d of %d items already predicted; %d to go",
                set_name,
                len(items) - len(pending),
                len(items),
                len(pending),
            )
        started = time.perf_counter()
        generated = 0
        bar = tqdm(total=len(pending), desc=f"{set_name}", unit="img", disable=not progress)
        for chunk in _chunks(pending, backend.chunk_size):
            for item in chunk:
                decode_item(item)
            for task in tasks:
                todo = [item for item in chunk if item.id not in done[task]]
                ok = [item for item in todo if item.image is not None]
                outputs = dict(
                    zip(
                        (item.id for item in ok),
                        generate_safely(backend, [item.image for item in ok], [prompt_for(task)] * len(ok)),
                    )
                )
                generated += len(ok)
                for item in todo:
                    raw, error = outputs.get(item.id, (None, item.error))
                    row = make_row(
                        item.id, set_name, item.gt, raw, task=task, image_path=item.image_path, error=error
                    )
                    if row.distance and item.image is not None:
                        row.image_path = save_thumbnail(item.image, out_dir, set_name, item.id)
                    writers[task].write(row)
            for item in chunk:
                item.image = None  # free memory: the chunk is written
            bar.update(len(chunk))
        bar.close()
        seconds = time.perf_counter() - started
    finally:
        for writer in writers.values():
            writer.close()
    for task, meta in metas.items():
        # Reached only when every item has its row: the completeness marker.
        write_meta(
            predictions_path(out_dir, set_name, task), {**meta, "n_items": len(items), "complete": True}
        )
    return {
        "items": len(items),
        "predicted_now": len(pending),
        "generated": generated,
        "seconds": round(seconds, 3),
    }


def write_votes(items: Sequence[Item], set_name: str, out_dir: Path) -> Path:
    """Add the vote row of every item whose three prompt rows exist and that has none yet."""
    rows = {
        task: {r.id: r for r in read_prediction_rows(predictions_path(out_dir, set_name, task))}
        for task in VOTE_TASKS
    }
    path = predictions_path(out_dir, set_name, VOTE_TASK_NAME)
    with PredictionWriter(path) as writer:
        done = writer.done_ids(set_name)
        for item in items:
            if item.id in done or not all(item.id in rows[task] for task in VOTE_TASKS):
                continue
            writer.write(vote_row({task: rows[task][item.id] for task in VOTE_TASKS}))
    return path


def load_rows(
    out_dir: Path, set_names: Sequence[str], task: str, ids: dict[str, set[str]]
) -> list[PredictionRow]:
    """This run's rows of ``task`` (files may hold more items, from an earlier larger run)."""
    rows: list[PredictionRow] = []
    for name in set_names:
        path = predictions_path(out_dir, name, task)
        if path.exists():
            rows += [r for r in read_prediction_rows(path) if r.id in ids[name]]
    return rows
