"""LaTeX captions: tell tokenised captions from raw LaTeX, tokenise the raw ones, normalise for scoring.

**Tokenised captions pass through unchanged.** A caption whose whitespace-separated pieces are each
one LaTeX token (CROHME, HME100K, MathWriting, the Uni-MuMER answers: :func:`is_tokenised`) is
returned by :func:`tokenize_latex` exactly as published (whitespace included): no
``\\le`` -> ``\\leq``, no ``\\dots`` -> ``\\ldots``, no dropped ``{ }`` groups, no environment
rewrite, even where the caption breaks the convention below. Published test answers and training
targets stay the published ones.

**Raw LaTeX is tokenised** into the convention of those captions: one token per symbol, single
spaces, every digit and letter a token of its own (``1 2``, ``x y``), command names whole
(``\\alpha``), every argument and every sub/superscript braced (``x ^ { 2 }``,
``\\frac { 1 } { 2 }``, ``\\sqrt [ 3 ] { x }``), ``\\left (`` as two tokens, and environments the
way the Uni-MuMER answers write them, the name a token of its own (``\\begin {cases}`` ... ``\\\\``
... ``&`` ... ``\\end {cases}``; a column specification is one more token: ``\\begin {array} {l}``).
What the tokeniser drops from raw LaTeX (invisible in handwriting): ``$``, math-mode delimiters,
comments, spacing (:data:`DROPPED_TOKENS`), ``\\label``-like commands with their argument, font and
style wrappers (``\\mathrm{d}`` becomes ``d``; ``\\mathbb``/``\\mathcal``/``\\mathfrak``/
``\\mathscr`` are kept), bare ``{ }`` groups, ``\\big``-like size commands. It rewrites pure TeX
aliases to the caption vocabulary (:data:`ALIASES`, e.g. ``\\le`` to ``\\leq``) and ``a \\over b``
to ``\\frac { a } { b }``; it keeps ``\\limits`` and ``\\left``/``\\right``.

:func:`normalize_equivalent` is a separate, stronger canonical form for an optional "normalised"
metric column only; ExpRate itself compares raw token sequences.

Modules: :mod:`~data_prep.latex.vocabulary` (tables), :mod:`~data_prep.latex.parser` (lexer,
parser, :func:`format_tokens`), :mod:`~data_prep.latex.tokenize` (the pass-through decision and
:func:`tokenize_latex`), :mod:`~data_prep.latex.normalize`, :mod:`~data_prep.latex.cli`.
"""

from __future__ import annotations

from data_prep.latex.cli import main
from data_prep.latex.normalize import (
    EQUIVALENT_COMMANDS,
    EQUIVALENT_SYMBOLS,
    has_cjk,
    normalize_equivalent,
)
from data_prep.latex.parser import (
    Command,
    Environment,
    LatexError,
    Script,
    Symbol,
    environment_tokens,
    format_tokens,
    parse_latex,
)
from data_prep.latex.tokenize import is_canonical, is_tokenised, tokenize_latex
from data_prep.latex.vocabulary import (
    ALIASES,
    ARG_COMMANDS,
    CONTROL_SYMBOLS,
    DELIMITERS,
    DROPPED_TOKENS,
    DROPPED_WITH_ARGUMENT,
    DROPPED_WITH_DIMENSION,
    ENVIRONMENTS,
    INFIX_COMMANDS,
    PLAIN_TEX_ENVIRONMENTS,
    SPEC_ENVIRONMENTS,
    SWITCH_COMMANDS,
    TEXT_ACCENTS,
    UNWRAPPED_COMMANDS,
)

__all__ = [
    "ALIASES",
    "ARG_COMMANDS",
    "CONTROL_SYMBOLS",
    "DELIMITERS",
    "DROPPED_TOKENS",
    "DROPPED_WITH_ARGUMENT",
    "DROPPED_WITH_DIMENSION",
    "ENVIRONMENTS",
    "EQUIVALENT_COMMANDS",
    "EQUIVALENT_SYMBOLS",
    "INFIX_COMMANDS",
    "PLAIN_TEX_ENVIRONMENTS",
    "SPEC_ENVIRONMENTS",
    "SWITCH_COMMANDS",
    "TEXT_ACCENTS",
    "UNWRAPPED_COMMANDS",
    "Command",
    "Environment",
    "LatexError",
    "Script",
    "Symbol",
    "environment_tokens",
    "format_tokens",
    "has_cjk",
    "is_canonical",
    "is_tokenised",
    "main",
    "normalize_equivalent",
    "parse_latex",
    "tokenize_latex",
]
