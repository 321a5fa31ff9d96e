"""Majority vote over the final LaTeX of the main, Tree-CoT and counting answers to one image.

Each prompt's answer ends with the LaTeX on its last line (``contract.extract_latex``); the vote
counts those lines (compared as whitespace-token sequences). A LaTeX given by more answers than any
other wins; a tie (e.g. three different answers) goes to the main prompt's answer. Empty answers do
not vote, so two failed auxiliary answers never outvote a real main answer.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping

from data_prep.contract import TASK_MAIN, normalize_answer
from data_prep.tasks.registry import scored_tasks
from eval.scoring.predictions import PredictionRow, make_row

#: The prompts a vote runs (the task table's scored tasks), in order; the first one breaks ties.
VOTE_TASKS = scored_tasks()
VOTE_TASK_NAME = "vote"
ERROR_ALL_PROMPTS_FAILED = "all_prompts_failed"


def majority_vote(candidates: Mapping[str, str], prefer: str = TASK_MAIN) -> str:
    """The voted LaTeX among ``{task: latex}``; ties go to ``prefer`` (then to the first given)."""
    answers = {task: normalize_answer(latex) for task, latex in candidates.items()}
    counts = collections.Counter(latex for latex in answers.values() if latex)
    if not counts:
        return ""
    top = max(counts.values())
    winners = [latex for latex, n in counts.items() if n == top]
    if len(winners) == 1:
        return winners[0]
    if answers.get(prefer) in winners:
        return answers[prefer]
    return next(latex for latex in answers.values() if latex in winners)


def vote_row(rows: Mapping[str, PredictionRow], prefer: str = TASK_MAIN) -> PredictionRow:
    """The vote's prediction row for one item from its per-task rows (same set, id and truth)."""
    if not rows:
        raise ValueError("no rows to vote on")
    first = rows.get(prefer) or next(iter(rows.values()))
    keys = {row.key for row in rows.values()}
    if len(keys) != 1:
        raise ValueError(f"rows of different items cannot vote together: {sorted(keys)}")
    voted = majority_vote({task: row.pred for task, row in rows.items()}, prefer=prefer)
    # A failure only when nothing could vote: the prompts' shared reason, or that they all failed.
    errors = {row.error for row in rows.values() if row.error}
    error = None if voted else (errors.pop() if len(errors) == 1 else ERROR_ALL_PROMPTS_FAILED)
    return make_row(
        first.id,
        first.set,
        first.gt,
        voted,
        task=VOTE_TASK_NAME,
        image_path=first.image_path,
        error=error,
    )
