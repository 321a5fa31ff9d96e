"""Auxiliary tasks derived from a main-task record (Uni-MuMER): Tree-CoT and symbol counting.

:data:`AUX_TASK_BUILDERS` maps a task name to a function ``main Record -> derived Record``; the
dataset build calls it for every main record and counts a :class:`TaskError` as a rejection with
its ``reason``. Error-driven learning (``data_prep.tasks.error_driven``) is not in this registry:
it derives records from a model's wrong predictions, not from one record alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from data_prep.contract import TASK_COUNTING, TASK_MAIN, TASK_TREE_COT, Record, prompt_for


class TaskError(ValueError):
    """A record from which an auxiliary task cannot be derived. ``reason`` is a short slug."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


# Imported after TaskError, which the task modules import from this package.
from data_prep.tasks.counting import count_symbols  # noqa: E402
from data_prep.tasks.tree_cot import TreeError, build_tree_cot  # noqa: E402


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


def tree_cot_record(record: Record) -> Record:
    """The Tree-CoT record of a main-task record (raises :class:`TreeError`)."""
    return derive_record(record, TASK_TREE_COT, build_tree_cot)


def counting_record(record: Record) -> Record:
    """The symbol-counting record of a main-task record (raises :class:`TaskError`)."""
    return derive_record(record, TASK_COUNTING, count_symbols)


AUX_TASK_BUILDERS: dict[str, Callable[[Record], Record]] = {
    TASK_TREE_COT: tree_cot_record,
    TASK_COUNTING: counting_record,
}

__all__ = [
    "AUX_TASK_BUILDERS",
    "TaskError",
    "TreeError",
    "build_tree_cot",
    "count_symbols",
    "counting_record",
    "derive_record",
    "tree_cot_record",
]
