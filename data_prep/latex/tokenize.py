"""Deciding whether a caption is already tokenised, and tokenising it when it is not.

A published answer (CROHME, HME100K, MathWriting, the Uni-MuMER data) is already space-separated
tokens; it must reach training and scoring exactly as published, even where it breaks the
convention (``\\le``, ``\\dots``, a bare ``{ }`` group, an unbraced ``x ^ 2``, a broken brace, a
``\\begin{cases}`` written as one token). Raw LaTeX (im2latex, InkML truths) is written without
spaces between most of its tokens. :func:`is_tokenised` tells the two apart by the only thing that
distinguishes them reliably: in a tokenised caption every whitespace-separated piece is exactly one
LaTeX token.
"""

from __future__ import annotations

import re

from data_prep.latex.parser import LatexError, format_tokens, parse_latex

#: One LaTeX token as a tokenised caption writes it: a command (``\\alpha``), a control symbol
#: (``\\{``, ``\\\\``), one character that is not a backslash (``x``, ``{``, ``^``, ``、``), an
#: environment opener or closer written whole (``\\begin{array}{l}``, ``\\end{cases}``).
_ONE_TOKEN = re.compile(r"\\[A-Za-z]+|\\[^A-Za-z\s]|[^\\\s]|\\(?:begin|end)\{[A-Za-z]+\*?\}(?:\{[^{}\s]*\})*")
#: An environment name or column specification written as its own token (``\\begin {cases}``,
#: ``\\begin {array} {l}``): one token only right after ``\\begin``/``\\end`` or another such token.
_NAME_TOKEN = re.compile(r"\{[^{}\s]+\}")
_ENVIRONMENT_MARKERS = frozenset({"\\begin", "\\end"})


def is_tokenised(text: str) -> bool:
    """Whether ``text`` is already a tokenised caption: every whitespace-separated piece is one
    LaTeX token (see :data:`_ONE_TOKEN`). ``x^2``, ``\\frac{a}{b}``, ``12`` are not; ``x ^ 2``,
    ``\\le``, ``{ a } ^ { 2 }`` are. Empty text is not."""
    previous_opens_name = False
    pieces = text.split()
    for piece in pieces:
        if _ONE_TOKEN.fullmatch(piece) is None:
            if not (previous_opens_name and _NAME_TOKEN.fullmatch(piece)):
                return False
            # a name token may be followed by a column specification token
        previous_opens_name = piece in _ENVIRONMENT_MARKERS or (
            previous_opens_name and _NAME_TOKEN.fullmatch(piece) is not None
        )
    return bool(pieces)


def tokenize_latex(raw: str) -> str:
    """Caption tokens of ``raw``: an already tokenised caption (:func:`is_tokenised`) comes back
    exactly as given, whitespace included (the reference trains and scores on the published string;
    scoring splits on whitespace anyway); raw LaTeX is tokenised into the convention
    (see :mod:`data_prep.latex`).

    Raises :class:`LatexError` (with a ``reason`` slug) for raw LaTeX that cannot be tokenised:
    unbalanced braces or environments, a script or command without its argument, unknown
    environments, unsupported control sequences.
    """
    if is_tokenised(raw):
        return raw
    return " ".join(format_tokens(parse_latex(raw)))


def is_canonical(text: str) -> bool:
    """Whether tokenising ``text`` gives ``text`` back exactly."""
    try:
        return tokenize_latex(text) == text
    except LatexError:
        return False
