"""Answer validation every reader applies: a formula a model should never be taught or scored on.

:func:`answer_problem` returns the reject reason for an answer that is empty after stripping
(``empty_label``), has unbalanced braces (``unbalanced_braces``: a ``}`` closing nothing, or a
``{`` never closed; ``\\{`` and ``\\}`` are literal braces and do not count) or a ``^``/``_`` with
nothing to attach (``dangling_script``: at the end, or followed by ``}``, ``&``, ``\\\\``, another
``^``/``_``). It reads characters, not tokens, so raw LaTeX and the space-separated answer format
are checked alike, and it never changes the answer.

Before any of that, an answer (or a raw caption/label line, before it is tokenised) longer than
:data:`MAX_ANSWER_TOKENS` whitespace-separated tokens or :data:`MAX_ANSWER_CHARS` characters is
``answer_too_long``: no formula is that long (CROHME's longest is under 200 tokens, im2latex's
under 1,000), and a 100 MB "caption" would otherwise be kept as a 50M-token truth. The limit is
here, once, and every reader reaches it through :func:`answer_problem` (or
:func:`length_problem` for a line it has not parsed yet).

A test set keeping its published answers verbatim (a source's ``answers: published``, see
:data:`KEPT_WHEN_PUBLISHED`) keeps an answer with the quality problems below, counted in the
build report; an over-long or empty answer is refused whatever the source says.
"""

from __future__ import annotations

import re

#: A script mark (not escaped as ``\\^``/``\\_``) followed by nothing it can attach to.
_DANGLING = re.compile(r"(?<!\\)[\^_]\s*(?=$|[\^_}&]|\\\\)")


#: Whitespace-separated tokens an answer may hold (the issue's "sane limit").
MAX_ANSWER_TOKENS = 10_000
#: Characters an answer or label line may hold (raw LaTeX has fewer spaces than tokens; also below
#: the ``csv`` module's field limit, 131,072, so a CSV label file reaches this check first).
MAX_ANSWER_CHARS = 100_000
#: Answer problems a test set with ``answers: published`` keeps (counted, never dropped).
KEPT_WHEN_PUBLISHED = frozenset({"unbalanced_braces", "dangling_script"})


def length_problem(text: str) -> tuple[str, str] | None:
    """``("answer_too_long", detail)`` for a text past :data:`MAX_ANSWER_CHARS` characters or
    :data:`MAX_ANSWER_TOKENS` tokens, else ``None``; cheap on a huge text (no split past the
    character limit)."""
    if len(text) > MAX_ANSWER_CHARS:
        return "answer_too_long", f"{len(text):,} characters > {MAX_ANSWER_CHARS:,}"
    tokens = len(text.split())
    if tokens > MAX_ANSWER_TOKENS:
        return "answer_too_long", f"{tokens:,} tokens > {MAX_ANSWER_TOKENS:,}"
    return None


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
    too_long = length_problem(latex)
    if too_long:
        return too_long
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


__all__ = ["KEPT_WHEN_PUBLISHED", "MAX_ANSWER_CHARS", "MAX_ANSWER_TOKENS", "answer_problem", "length_problem"]
