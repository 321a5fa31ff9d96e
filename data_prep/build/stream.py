"""Where the dataset build's records come from: the splits a recipe makes (:func:`plan_splits`)
and, per split, each source's reader stream after the holdout and the cap, processed in order
(in worker processes when ``num_proc > 1``), with the positions a resumed build needs."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_prep.build.recipe import DataRecipe, RecipeError, SourceSpec
from data_prep.build.records import (
    RecordProcessor,
    StreamItem,
    init_worker,
    learned_confusions,
    process_item,
    stable_fraction,
    work,
)
from data_prep.build.state import rejects_to_state
from data_prep.contract import Record
from data_prep.rejects import Rejects

if TYPE_CHECKING:
    from data_prep.tasks.error_driven.confusions import ConfusionTable

logger = logging.getLogger("data_prep.build")
#: Records in flight between the reader and the writer when encoding in worker processes.
MAX_IN_FLIGHT = 256


@dataclasses.dataclass
class SplitPlan:
    """One output split: which sources feed it and which side of each holdout it takes."""

    name: str
    is_train: bool
    sources: list[SourceSpec]
    holdout_side: str | None = None  # "in" (the holdout test set) or "out" (train minus holdouts)


def plan_splits(recipe: DataRecipe) -> list[SplitPlan]:
    plans = [SplitPlan(s.name, False, [s]) for s in recipe.test_sets]
    plans += [SplitPlan(s.holdout.name, False, [s], "in") for s in recipe.train if s.holdout]
    if recipe.train:
        plans.append(SplitPlan("train", True, list(recipe.train), "out"))
    return plans


def selected_records(
    seed: int, plan: SplitPlan, spec: SourceSpec, position: dict[str, Any], reader_rejects: Rejects
):
    """:class:`StreamItem`\\ s of one source after the holdout and the cap, then an end marker.

    ``index`` is the reader's cursor after each record (the resume position). The first
    ``items`` were handled by completed shards, whose saved reader rejections already count
    them: the reader passes over them without opening their images and without reporting
    their rejections (:class:`~data_prep.readers.common.ReadCursor`).
    """
    from data_prep.readers import get_reader
    from data_prep.readers.common import ReadCursor

    reader = get_reader(spec.reader)
    # A test split reads one source: its answer policy is the split's (readers/common.checked_answer).
    reader_rejects.keep_answers = spec.answers == "published"
    cursor = ReadCursor(skip=position.get("items", 0))
    selected = position.get("selected", 0)
    last_total = -1

    def snapshot() -> dict[str, Any] | None:
        nonlocal last_total
        if len(reader_rejects) == last_total:
            return None
        last_total = len(reader_rejects)
        return rejects_to_state(reader_rejects)

    try:
        records = reader(Path(spec.root), spec.split, reader_rejects, cursor=cursor, **spec.options)
    except TypeError as err:  # an option the reader does not take
        raise RecipeError(f"source {spec.name!r}: {spec.reader} reader: {err}") from None
    if cursor.skip:
        logger.info("%s: passing over the %d items completed shards cover", spec.name, cursor.skip)
    for record in _options_checked(records, spec):
        index = cursor.passed
        if spec.holdout is not None and plan.holdout_side is not None:
            in_holdout = stable_fraction(seed, "holdout", spec.name, record.id) < spec.holdout.fraction
            if in_holdout != (plan.holdout_side == "in"):
                continue
        if spec.max_records is not None and selected >= spec.max_records:
            break
        selected += 1
        yield StreamItem(index, selected, snapshot(), record)
    yield StreamItem(None, selected, rejects_to_state(reader_rejects), None)


def _options_checked(records: Iterator[Record], spec: SourceSpec) -> Iterator[Record]:
    """``records``, with a reader's ``ValueError`` (a bad option value or an unusable file: bad
    items are rejects, never errors) turned into a :class:`RecipeError` naming the source."""
    try:
        yield from records
    except RecipeError:
        raise
    except ValueError as err:
        raise RecipeError(f"source {spec.name!r}: {err}") from None


def prepared_stream(
    recipe: DataRecipe,
    plan: SplitPlan,
    position: dict[str, Any],
    reader_rejects: Rejects,
    confusions: dict[str, dict[str, ConfusionTable]],
    num_proc: int,
):
    """``(spec, StreamItem)`` with ``prepared`` filled in, in reader order, source after source."""
    for spec in plan.sources:
        source_position = position.get(spec.name, {})
        if source_position.get("done"):
            continue
        if plan.is_train:
            processor = RecordProcessor(
                recipe.seed,
                spec.name,
                spec.tasks,
                load_predictions(spec),
                confusions.get(spec.name),
                spec.vanilla_prompt,
            )
        else:
            processor = RecordProcessor(
                recipe.seed, spec.name, {}, {}, keep_answers=spec.answers == "published"
            )
        items = selected_records(recipe.seed, plan, spec, source_position, reader_rejects)
        for item in map_items(processor, items, num_proc):
            yield spec, item


def map_items(processor: RecordProcessor, items, num_proc: int) -> Iterator[StreamItem]:
    """``process_item`` over ``items``, in order; in ``num_proc`` worker processes when above 1."""
    if num_proc == 1:
        for item in items:
            yield process_item(processor, item)
        return
    # Workers encode while the pool's feeder thread runs the reader; the semaphore bounds the
    # number of decoded images waiting in between.
    slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)

    def bounded():
        for item in items:
            slots.acquire()
            yield item

    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with context.Pool(num_proc, initializer=init_worker, initargs=(processor,)) as pool:
        for item in pool.imap(work, bounded(), chunksize=4):
            slots.release()
            yield item


def load_confusions(recipe: DataRecipe) -> dict[str, dict[str, ConfusionTable]]:
    """Per train source and error task, the built-in table plus the learned one it names."""
    tables: dict[str, ConfusionTable] = {}
    out: dict[str, dict[str, ConfusionTable]] = {}
    for spec in recipe.train:
        for task, task_spec in spec.tasks.items():
            path = task_spec.confusions
            if path:
                if path not in tables:
                    where = f"{recipe.path}: source {spec.name!r}: tasks.{task}.confusions"
                    tables[path] = learned_confusions(path, where)
                out.setdefault(spec.name, {})[task] = tables[path]
    return out


def load_predictions(spec: SourceSpec) -> dict[str, dict[str, list[str]]]:
    """Per error task, the wrong predictions of each record id in the spec's prediction files."""
    out: dict[str, dict[str, list[str]]] = {}
    for task, task_spec in spec.tasks.items():
        if task_spec.predictions:
            from data_prep.tasks.error_driven import read_predictions

            merged: dict[str, list[str]] = {}
            for path in task_spec.predictions:
                try:
                    predicted = read_predictions(path)
                except (OSError, UnicodeDecodeError, ValueError) as err:
                    raise RecipeError(f"source {spec.name!r}: tasks.{task}.predictions: {err}") from None
                for record_id, wrong in predicted.items():
                    merged.setdefault(record_id, []).extend(
                        p for p in wrong if p not in merged.get(record_id, [])
                    )
            out[task] = merged
    return out
