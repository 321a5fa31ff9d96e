"""Auxiliary tasks derived from a main-task record (Uni-MuMER): Tree-CoT and symbol counting.

The public API: :func:`build_tree_cot` and :func:`count_symbols` (``latex -> answer``, both
exactly the reference's serialisation) raise :class:`TaskError` where the reference skips a
sample. ``python -m data_prep.tasks TASK CAPTIONS_FILE`` shows what captions become.

:data:`AUX_TASK_BUILDERS` maps a task name to a function ``main Record -> derived Record`` (the
default style); :func:`aux_task_builder` picks a style (:data:`TREE_COT_STYLES`: ``reference``, the
default, or the opt-in ``structural`` tree of :mod:`data_prep.tasks.structural_tree`). The
dataset build calls it for every main record and counts a :class:`TaskError` as a rejection with
its ``reason``. Error-driven learning (``data_prep.tasks.error_driven``) is not in this registry:
it derives records from a model's wrong predictions, not from one record alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from data_prep.contract import TASK_COUNTING, TASK_MAIN, TASK_TREE_COT, Record, prompt_for
from data_prep.rejects import ReasonError


class TaskError(ReasonError):
    """A record from which an auxiliary task cannot be derived. ``reason`` is a short slug."""


# Imported after TaskError, which the task modules import from this package.
from data_prep.tasks.counting import count_symbols  # noqa: E402
from data_prep.tasks.structural_tree import TreeError, build_structural_tree_cot  # noqa: E402
from data_prep.tasks.tree_cot import build_tree_cot  # noqa: E402

#: Tree-CoT answer styles: the reference's serialisation (default) and the structural tree.
TREE_COT_STYLES: dict[str, Callable[[str], str]] = {
    "reference": build_tree_cot,
    "structural": build_structural_tree_cot,
}
DEFAULT_TREE_COT_STYLE = "reference"


def derive_record(record: Record, task: str, answer_builder: Callable[[str], str]) -> Record:
    """The ``task`` record of a main-task ``record``: same image, the task's prompt and answer."""
    if record.task != TASK_MAIN:
        raise TaskError("not_main_task", f"record {record.id} has task {record.task!r}")
    try:
        answer = answer_builder(record.latex)
    except TaskError as err:
        raise type(err)(err.reason, f"record {record.id}: {err.detail}") from err
    return dataclasses.replace(
        record,
        id=f"{record.id}#{task}",
        task=task,
        prompt=prompt_for(task),
        answer=answer,
        meta=dict(record.meta),
    )


def tree_cot_record(record: Record, style: str = DEFAULT_TREE_COT_STYLE) -> Record:
    """The Tree-CoT record of a main-task record in ``style`` (raises :class:`TaskError`)."""
    if style not in TREE_COT_STYLES:
        raise ValueError(f"unknown Tree-CoT style {style!r}; known: {', '.join(TREE_COT_STYLES)}")
    return derive_record(record, TASK_TREE_COT, TREE_COT_STYLES[style])


def counting_record(record: Record) -> Record:
    """The symbol-counting record of a main-task record (raises :class:`TaskError`)."""
    return derive_record(record, TASK_COUNTING, count_symbols)


AUX_TASK_BUILDERS: dict[str, Callable[[Record], Record]] = {
    TASK_TREE_COT: tree_cot_record,
    TASK_COUNTING: counting_record,
}


def aux_task_builder(task: str, style: str | None = None) -> Callable[[Record], Record]:
    """The record builder of ``task``; ``style`` (Tree-CoT only) picks a :data:`TREE_COT_STYLES`."""
    if style is None:
        return AUX_TASK_BUILDERS[task]
    if task != TASK_TREE_COT:
        raise ValueError(f"task {task!r} has no styles (only {TASK_TREE_COT} has)")
    if style not in TREE_COT_STYLES:
        raise ValueError(f"unknown Tree-CoT style {style!r}; known: {', '.join(TREE_COT_STYLES)}")
    return lambda record: tree_cot_record(record, style)


__all__ = [
    "AUX_TASK_BUILDERS",
    "DEFAULT_TREE_COT_STYLE",
    "TREE_COT_STYLES",
    "TaskError",
    "TreeError",
    "aux_task_builder",
    "build_structural_tree_cot",
    "build_tree_cot",
    "count_symbols",
    "counting_record",
    "derive_record",
    "tree_cot_record",
]
