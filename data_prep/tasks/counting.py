"""Symbol counting (Uni-MuMER): how many times each visible symbol occurs, then the LaTeX.

The answer's first line counts every whitespace token except ``{`` and ``}``, in order of first
appearance, as ``tok: n, tok: n``; the second line is the LaTeX. For
``\\frac { a ^ { 2 } + 1 } { b }``: ``\\frac: 1, a: 1, ^: 1, 2: 1, +: 1, 1: 1, b: 1``.
"""

from __future__ import annotations

import re

from data_prep.contract import normalize_answer
from data_prep.latex import is_canonical
from data_prep.tasks import TaskError

#: Tokens that are grouping only, never drawn, hence never counted.
UNCOUNTED_TOKENS = frozenset({"{", "}"})

_COUNT_ITEM = re.compile(r"(\S+): ([0-9]+)(, |$)")


def symbol_counts(latex: str) -> dict[str, int]:
    """Counts of the countable tokens of space-separated ``latex``, in order of first appearance."""
    counts: dict[str, int] = {}
    for token in latex.split():
        if token not in UNCOUNTED_TOKENS:
            counts[token] = counts.get(token, 0) + 1
    return counts


def format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{token}: {n}" for token, n in counts.items())


def count_symbols(latex: str) -> str:
    """The full counting answer: the counts line, then the LaTeX line.

    Raises :class:`TaskError` when ``latex`` is not in the tokenised convention (counting raw
    LaTeX such as ``x^2`` would count ``x^2`` as one symbol) or is empty. Tokenised LaTeX always
    holds a token other than a brace, so the counts line is never empty.
    """
    latex = normalize_answer(latex)
    if not latex:
        raise TaskError("empty", "no LaTeX to count")
    if not is_canonical(latex):
        raise TaskError("non_canonical", f"not tokenised LaTeX: {latex[:80]!r}")
    return f"{format_counts(symbol_counts(latex))}\n{latex}"


def parse_counts(answer: str) -> dict[str, int]:
    """The counts of a counting answer (its first non-empty line), in their order.

    Raises :class:`TaskError` for a malformed line (missing ``: n``, a token listed twice).
    """
    line = next((line.strip() for line in answer.splitlines() if line.strip()), "")
    if not line:
        raise TaskError("malformed_counts", "empty answer")
    counts: dict[str, int] = {}
    position = 0
    while position < len(line):
        match = _COUNT_ITEM.match(line, position)
        if match is None:
            raise TaskError("malformed_counts", f"column {position}: {line[position : position + 40]!r}")
        token, n, separator = match.groups()
        if token in counts:
            raise TaskError("malformed_counts", f"{token!r} counted twice")
        counts[token] = int(n)
        position = match.end()
        if separator and position == len(line):
            raise TaskError("malformed_counts", "the line ends with a separator")
    return counts
