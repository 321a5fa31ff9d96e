"""Synthetic wrong predictions (confusable symbols, dropped or duplicated tokens, misplaced scripts) for when no model exists yet."""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence

from data_prep.contract import (
    Record,
)
from data_prep.rejects import Rejects
from data_prep.tasks.error_driven.confusions import ConfusionTable
from data_prep.tasks.error_driven.marking import BRACES, RESERVED_TOKENS, SCRIPTS, SOURCE, check_tokens
from data_prep.tasks.error_driven.samples import samples_from_predictions

# --------------------------------------------------------------------------- #
# Synthetic errors
# --------------------------------------------------------------------------- #


def braces_balanced(tokens: Sequence[str]) -> bool:
    depth = 0
    for token in tokens:
        depth += (token == "{") - (token == "}")
        if depth < 0:
            return False
    return depth == 0


def _matching_brace(tokens: Sequence[str], open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(tokens)):
        depth += (tokens[index] == "{") - (tokens[index] == "}")
        if depth == 0:
            return index
    raise ValueError("unbalanced braces")


def _is_plain(tokens: Sequence[str], index: int) -> bool:
    """A symbol, not a brace, a script marker or a command that takes a braced argument."""
    token = tokens[index]
    follows = tokens[index + 1] if index + 1 < len(tokens) else None
    takes_argument = token.startswith("\\") and follows == "{"
    return token not in BRACES and token not in SCRIPTS and not takes_argument


def _is_droppable(tokens: Sequence[str], index: int) -> bool:
    """A plain symbol that is not the only content of a group (no ``{ }`` left behind)."""
    alone = 0 < index < len(tokens) - 1 and tokens[index - 1] == "{" and tokens[index + 1] == "}"
    return _is_plain(tokens, index) and not alone


def _substitute(tokens: list[str], rng: random.Random, table: ConfusionTable) -> list[str] | None:
    def usable(token: str) -> list[str]:
        return [c for c in table.candidates(token) if c not in BRACES and c not in RESERVED_TOKENS]

    indices = [i for i, t in enumerate(tokens) if t not in BRACES and usable(t)]
    if not indices:
        return None
    index = rng.choice(indices)
    excluded = set(table.candidates(tokens[index])) - set(usable(tokens[index]))
    return tokens[:index] + [table.sample(tokens[index], rng, exclude=excluded)] + tokens[index + 1 :]


def _drop(tokens: list[str], rng: random.Random, table: ConfusionTable) -> list[str] | None:
    indices = [i for i in range(len(tokens)) if _is_droppable(tokens, i)]
    if not indices or len(tokens) < 2:
        return None
    index = rng.choice(indices)
    return tokens[:index] + tokens[index + 1 :]


def _duplicate(tokens: list[str], rng: random.Random, table: ConfusionTable) -> list[str] | None:
    indices = [i for i in range(len(tokens)) if _is_plain(tokens, i)]
    if not indices:
        return None
    index = rng.choice(indices)
    return tokens[: index + 1] + tokens[index:]


def _swap_script(tokens: list[str], rng: random.Random, table: ConfusionTable) -> list[str] | None:
    """``x ^ { 2 }`` -> ``x _ { 2 }`` and back."""
    indices = [i for i, t in enumerate(tokens) if t in SCRIPTS]
    if not indices:
        return None
    index = rng.choice(indices)
    return tokens[:index] + ["_" if tokens[index] == "^" else "^"] + tokens[index + 1 :]


def _script_to_baseline(tokens: list[str], rng: random.Random, table: ConfusionTable) -> list[str] | None:
    """``x ^ { 2 }`` -> ``x 2``: the script's content written on the baseline."""
    indices = [i for i, t in enumerate(tokens) if t in SCRIPTS and i + 1 < len(tokens)]
    if not indices:
        return None
    index = rng.choice(indices)
    if tokens[index + 1] != "{":
        return tokens[:index] + tokens[index + 1 :]
    close = _matching_brace(tokens, index + 1)
    return tokens[:index] + tokens[index + 2 : close] + tokens[close + 1 :]


@functools.cache
def _builtin_table() -> ConfusionTable:
    return ConfusionTable.builtin()  # built once; synthetic_errors only reads it


#: Synthetic error kinds and their relative weights (applicable kinds only are drawn from).
SYNTHETIC_KINDS = {
    _substitute: 0.45,
    _drop: 0.15,
    _duplicate: 0.1,
    _swap_script: 0.15,
    _script_to_baseline: 0.15,
}
#: Probability that a synthetic prediction carries a second error.
SECOND_ERROR_PROBABILITY = 0.25


def synthetic_errors(
    latex: str, rng: random.Random, n: int, confusions: ConfusionTable | None = None
) -> list[str]:
    """Up to ``n`` distinct plausible wrong predictions of ``latex`` (fewer when it allows fewer).

    Each carries one error (a second with probability :data:`SECOND_ERROR_PROBABILITY`): a
    confusable symbol from ``confusions`` (default: the built-in table), a dropped or duplicated
    token, a sub/superscript swapped, or a script's content moved to the baseline. Results always
    differ from ``latex``, are non-empty and keep braces balanced.
    """
    tokens = latex.split()
    if not tokens:
        raise ValueError("synthetic_errors needs a non-empty LaTeX string")
    if not braces_balanced(tokens):
        raise ValueError(f"unbalanced braces in {latex!r}")
    check_tokens(tokens, "truth")
    table = confusions if confusions is not None else _builtin_table()
    results: list[str] = []
    for _ in range(20 * n + 20):
        if len(results) >= n:
            break
        candidate = tokens
        for step in range(2):
            if step and rng.random() >= SECOND_ERROR_PROBABILITY:
                break
            kinds = list(SYNTHETIC_KINDS)
            weights = list(SYNTHETIC_KINDS.values())
            while kinds:
                pick = rng.choices(range(len(kinds)), weights=weights)[0]
                mutated = kinds[pick](candidate, rng, table)
                if mutated is not None:
                    candidate = mutated
                    break
                del kinds[pick], weights[pick]
        text = " ".join(candidate)
        if candidate != tokens and candidate and braces_balanced(candidate) and text not in results:
            results.append(text)
    return results


def synthetic_samples(
    record: Record,
    rng: random.Random,
    n: int = 2,
    confusions: ConfusionTable | None = None,
    rejects: Rejects | None = None,
) -> list[Record]:
    """Error-driven records for ``record`` from ``n`` synthetic wrong predictions."""
    rejects = rejects if rejects is not None else Rejects()
    try:
        predictions = synthetic_errors(record.latex, rng, n, confusions)
    except ValueError as error:
        rejects.add(SOURCE, "unusable_truth", record.id, detail=str(error))
        return []
    return samples_from_predictions(record, predictions, n, origin="synthetic", rejects=rejects)
