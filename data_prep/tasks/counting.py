"""Symbol counting exactly as Uni-MuMER writes it: how often each symbol occurs, then the LaTeX.

The reference (BFlameSwift/Uni-MuMER, ``preprocess/make_unimumer_tree_data.py``) counts every
whitespace token except ``{`` and ``}``, in order of first appearance, as ``tok: n, tok: n``; the
second line is the LaTeX as given. Environment names are tokens like any other
(``\\begin {cases} .. \\end {cases}`` counts ``{cases}: 2``). It never refuses a formula. For
``\\frac { a ^ { 2 } + 1 } { b }``: ``\\frac: 1, a: 1, ^: 1, 2: 1, +: 1, 1: 1, b: 1``.
"""

from __future__ import annotations

import re

from data_prep.tasks.errors import TaskError

#: Tokens that are grouping only, never drawn, hence never counted.
UNCOUNTED_TOKENS = frozenset({"{", "}"})

_COUNT_ITEM = re.compile(r"(\S+): ([0-9]+)(, |$)")


def symbol_counts(latex: str) -> dict[str, int]:
    """Counts of the countable whitespace tokens of ``latex``, in order of first appearance."""
    counts: dict[str, int] = {}
    for token in latex.split():
        if token not in UNCOUNTED_TOKENS:
            counts[token] = counts.get(token, 0) + 1
    return counts


def format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{token}: {n}" for token, n in counts.items())


def count_symbols(latex: str) -> str:
    """The counting answer as the reference writes it: the counts line, a newline, ``latex``.

    ``latex`` is kept as given on the last line. Never raises: the reference counts every
    caption (a caption of braces only gives an empty counts line, as there).
    """
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
