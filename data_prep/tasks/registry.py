"""The task table: every task a record can carry, declared once.

Each :class:`Task` says its name, its prompt (the wording is the contract's,
:mod:`data_prep.contract`), how its answer is built from a main-task LaTeX caption (derived tasks),
how the LaTeX is read back from an answer (:func:`data_prep.contract.extract_latex` for all tasks
here), whether a built or read answer's LaTeX line is checked, and whether a model's answer to it
is scored (evaluate, predict, vote, the app). Readers, the build, training and evaluation all read
this table; adding an auxiliary task is one module with its answer builder plus one
:func:`register_task` call below (docs/contributing.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from data_prep import contract
from data_prep.contract import (
    COUNTING_PROMPT,
    ERROR_CORRECTION_PROMPT,
    ERROR_DETECTION_PROMPT,
    MAIN_PROMPT,
    TASK_COUNTING,
    TASK_ERROR_CORRECTION,
    TASK_ERROR_DETECTION,
    TASK_MAIN,
    TASK_TREE_COT,
    TREE_COT_PROMPT,
    VANILLA_PROMPT,
    extract_latex,
)
from data_prep.tasks.counting import count_symbols
from data_prep.tasks.structural_tree import build_structural_tree_cot
from data_prep.tasks.tree_cot import build_tree_cot

#: How a task's records come about.
KIND_MAIN = "main"  # read from a dataset
KIND_DERIVED = "derived"  # built from one main record by ``answer_builder``
KIND_ERROR = "error"  # built from a main record and a wrong prediction (tasks/error_driven)
KINDS = (KIND_MAIN, KIND_DERIVED, KIND_ERROR)


@dataclasses.dataclass(frozen=True)
class Task:
    """One task of the table."""

    name: str
    #: The prompt; ``{prediction}`` in it is filled by :func:`data_prep.contract.prompt_for`.
    prompt: str
    kind: str = KIND_DERIVED
    #: What a person picking the task sees (the web app's task list).
    label: str = ""
    #: ``latex -> answer`` for derived tasks (raises ``TaskError`` where a sample is skipped);
    #: with several styles, the default one.
    answer_builder: Callable[[str], str] | None = None
    #: ``answer -> latex``: the LaTeX a scorer compares with the truth.
    extract: Callable[[str], str] = extract_latex
    #: The answer ends with the correct LaTeX, checked like a main answer when built or read.
    checked: bool = True
    #: A model's answer to this prompt is scored against the image's LaTeX (evaluate, predict, app).
    scored: bool = True
    #: Other answer styles by name (a recipe's ``style:``), the default one included.
    styles: dict[str, Callable[[str], str]] = dataclasses.field(default_factory=dict)
    default_style: str | None = None
    #: Other wordings of the prompt a dataset may carry (variant name -> prompt), recognised by readers.
    prompt_variants: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name!r}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind == KIND_DERIVED and self.answer_builder is None:
            raise ValueError(f"task {self.name!r}: a derived task needs an answer_builder")

    def builder(self, style: str | None = None) -> Callable[[str], str]:
        """The ``latex -> answer`` function of ``style`` (default: the task's default)."""
        if style is None:
            if self.answer_builder is None:
                raise ValueError(f"task {self.name!r} is not derived from a caption")
            return self.answer_builder
        if style not in self.styles:
            known = ", ".join(self.styles) or "none"
            raise ValueError(f"unknown {self.name} style {style!r}; known: {known}")
        return self.styles[style]


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add ``task`` to the table (and its prompt to the contract's, so records may carry it)."""
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    contract.TASK_PROMPTS.setdefault(task.name, task.prompt)
    return task


def unregister_task(name: str) -> None:
    """Remove a task added by :func:`register_task` (tests register throwaway tasks)."""
    TASKS.pop(name)
    if name not in contract.BUILTIN_TASKS:
        contract.TASK_PROMPTS.pop(name, None)


def get_task(name: str) -> Task:
    """The task called ``name``; a one-line error naming the known tasks otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def task_names(
    *, kind: str | None = None, scored: bool | None = None, checked: bool | None = None
) -> tuple[str, ...]:
    """Names of the registered tasks, in registration order, filtered by kind/scored/checked."""
    return tuple(
        t.name
        for t in TASKS.values()
        if (kind is None or t.kind == kind)
        and (scored is None or t.scored == scored)
        and (checked is None or t.checked == checked)
    )


def scored_tasks() -> tuple[str, ...]:
    """Tasks whose answer is scored (``main`` first): evaluate ``--task``, predict, vote, the app."""
    return task_names(scored=True)


def checked_tasks() -> tuple[str, ...]:
    """Tasks whose answer ends with a LaTeX line that is checked when built or read."""
    return task_names(checked=True)


def derived_tasks() -> tuple[str, ...]:
    """Tasks built from one main record by their answer builder (a recipe's ``tasks:`` keys)."""
    return task_names(kind=KIND_DERIVED)


def error_tasks() -> tuple[str, ...]:
    """Tasks built from wrong predictions (:mod:`data_prep.tasks.error_driven`)."""
    return task_names(kind=KIND_ERROR)


# --------------------------------------------------------------------------- #
# The table
# --------------------------------------------------------------------------- #

register_task(
    Task(
        TASK_MAIN,
        MAIN_PROMPT,
        kind=KIND_MAIN,
        label="LaTeX (main task)",
        prompt_variants={"vanilla": VANILLA_PROMPT},
    )
)
register_task(
    Task(
        TASK_TREE_COT,
        TREE_COT_PROMPT,
        label="Tree-CoT: the formula's tree, then the LaTeX",
        answer_builder=build_tree_cot,
        styles={"reference": build_tree_cot, "structural": build_structural_tree_cot},
        default_style="reference",
    )
)
register_task(
    Task(
        TASK_COUNTING,
        COUNTING_PROMPT,
        label="Symbol counting: the counts, then the LaTeX",
        answer_builder=count_symbols,
    )
)
# Detection answers are the marked prediction, not the truth: neither checked nor scored.
register_task(
    Task(
        TASK_ERROR_DETECTION,
        ERROR_DETECTION_PROMPT,
        kind=KIND_ERROR,
        label="Error detection",
        checked=False,
        scored=False,
    )
)
register_task(
    Task(
        TASK_ERROR_CORRECTION,
        ERROR_CORRECTION_PROMPT,
        kind=KIND_ERROR,
        label="Error correction",
        scored=False,
    )
)
