"""Tasks: the task table and the auxiliary tasks derived from a main-task record (Uni-MuMER).

:mod:`~data_prep.tasks.registry` is the task table (name, prompt, answer builder, LaTeX extractor,
checked/scored); :mod:`~data_prep.tasks.tree_cot`, :mod:`~data_prep.tasks.structural_tree` and
:mod:`~data_prep.tasks.counting` build the Tree-CoT and counting answers (``latex -> answer``,
exactly the reference's serialisation; :class:`TaskError` where the reference skips a sample);
:mod:`~data_prep.tasks.error_driven` builds error detection/correction records from wrong
predictions. ``python -m data_prep.tasks TASK CAPTIONS_FILE`` shows what captions become.

:func:`aux_task_builder` gives a derived task's ``main Record -> derived Record`` function (a
style for Tree-CoT: :data:`TREE_COT_STYLES`); the dataset build calls it for every main record and
counts a :class:`TaskError` as a rejection with its ``reason``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from data_prep.contract import TASK_COUNTING, TASK_MAIN, TASK_TREE_COT, Record, prompt_for
from data_prep.tasks.counting import count_symbols
from data_prep.tasks.errors import TaskError
from data_prep.tasks.registry import TASKS, Task, derived_tasks, get_task, register_task
from data_prep.tasks.structural_tree import TreeError, build_structural_tree_cot
from data_prep.tasks.tree_cot import build_tree_cot

#: Tree-CoT answer styles: the reference's serialisation (default) and the structural tree.
TREE_COT_STYLES: dict[str, Callable[[str], str]] = TASKS[TASK_TREE_COT].styles
DEFAULT_TREE_COT_STYLE = TASKS[TASK_TREE_COT].default_style


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
    return derive_record(record, TASK_TREE_COT, get_task(TASK_TREE_COT).builder(style))


def counting_record(record: Record) -> Record:
    """The symbol-counting record of a main-task record (raises :class:`TaskError`)."""
    return derive_record(record, TASK_COUNTING, count_symbols)


def aux_task_builder(task: str, style: str | None = None) -> Callable[[Record], Record]:
    """The record builder of derived ``task``; ``style`` picks one of the task's styles."""
    spec = get_task(task)
    if style is not None and not spec.styles:
        raise ValueError(f"task {task!r} has no styles")
    answer_builder = spec.builder(style)
    return lambda record: derive_record(record, task, answer_builder)


class _DerivedBuilders(Mapping):
    """``task -> (main Record -> derived Record)`` for every derived task of the table, read live."""

    def __getitem__(self, task: str) -> Callable[[Record], Record]:
        if task not in derived_tasks():
            raise KeyError(task)
        return aux_task_builder(task)

    def __iter__(self):
        return iter(derived_tasks())

    def __len__(self) -> int:
        return len(derived_tasks())


#: Derived task -> record builder, following the task table (a registered task appears here).
AUX_TASK_BUILDERS: Mapping[str, Callable[[Record], Record]] = _DerivedBuilders()


__all__ = [
    "TASKS",
    "Task",
    "get_task",
    "register_task",
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
