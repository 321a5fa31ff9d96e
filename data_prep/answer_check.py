"""Answer validation every reader applies: a formula a model should never be taught or scored on.

:func:`answer_problem` returns the reject reason for an answer that is empty after stripping
(``empty_label``), has unbalanced braces (``unbalanced_braces``: a ``}`` closing nothing, or a
``{`` never closed; ``\\{`` and ``\\}`` are literal braces and do not count) or a ``^``/``_`` with
nothing to attach (``dangling_script``: at the end, or followed by ``}``, ``&``, ``\\\\``, another
``^``/``_``). It reads characters, not tokens, so raw LaTeX and the space-separated answer format
are checked alike, and it never changes the answer.
"""

from __future__ import annotations

import re

#: A script mark (not escaped as ``\\^``/``\\_``) followed by nothing it can attach to.
_DANGLING = re.compile(r"(?<!\\)[\^_]\s*(?=$|[\^_}&]|\\\\)")


def _brace_problem(latex: str) -> str | None:
    depth = 0
    escaped = False
    for index, char in enumerate(latex):
        if escaped:
            escaped = False
            continue
        if char == "\\":
            escaped = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                return f"'}}' at character {index + 1} closes no '{{'"
    if depth:
        return f"{depth} '{{' never closed"
    return None


def answer_problem(latex: str) -> tuple[str, str] | None:
    """``(reason, detail)`` when ``latex`` cannot be an answer, else ``None`` (see the module doc)."""
    if not latex.strip():
        return "empty_label", "empty after stripping"
    problem = _brace_problem(latex)
    if problem:
        return "unbalanced_braces", problem
    match = _DANGLING.search(latex)
    if match:
        return (
            "dangling_script",
            f"{match.group().strip()!r} at character {match.start() + 1} has no argument",
        )
    return None


__all__ = ["answer_problem"]
