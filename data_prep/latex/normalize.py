"""The optional normalised form (for the "normalised" metric column only) and the CJK test."""

from __future__ import annotations

import re

from data_prep.latex.parser import (
    Command,
    Environment,
    LatexError,
    Script,
    Symbol,
    format_tokens,
    parse_latex,
)
from data_prep.latex.vocabulary import ALIASES

#: Extra equivalences for the normalised metric only: same picture, different spelling.
EQUIVALENT_COMMANDS: dict[str, str] = {
    "\\dfrac": "\\frac",
    "\\tfrac": "\\frac",
    "\\cfrac": "\\frac",
    "\\dbinom": "\\binom",
    "\\tbinom": "\\binom",
    "\\widehat": "\\hat",
    "\\widetilde": "\\tilde",
}
EQUIVALENT_SYMBOLS: dict[str, str] = {
    **{k: v for k, v in ALIASES.items() if v not in ("^", "_", "\\\\")},
    "\\vert": "|",
    "\\mid": "|",
    "\\Vert": "\\|",
    "\\ast": "*",
    "\\colon": ":",
}
_NEGATED = {"=": "\\neq", "\\in": "\\notin"}
_DROPPED_FOR_EQUIVALENCE = frozenset({"\\limits", "\\nolimits"})


def _equivalent(items: list) -> list:
    out: list = []
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        kind = type(item)
        if kind is Symbol:
            token = EQUIVALENT_SYMBOLS.get(item.token, item.token)
            if token in _DROPPED_FOR_EQUIVALENCE:
                continue
            if token in ("\\left", "\\right"):
                # The sized delimiter is the plain one; an invisible "." delimiter disappears.
                if i < len(items) and type(items[i]) is Symbol and items[i].token == ".":
                    i += 1
                continue
            if token == "\\not" and i < len(items) and type(items[i]) is Symbol:
                negated = _NEGATED.get(items[i].token)
                if negated:
                    out.append(Symbol(negated))
                    i += 1
                    continue
            out.append(Symbol(token))
        elif kind is Command:
            optional = None if item.optional is None else _equivalent(item.optional)
            name = EQUIVALENT_COMMANDS.get(item.name, item.name)
            out.append(Command(name, optional, [_equivalent(arg) for arg in item.args]))
        elif kind is Script:
            group = _equivalent(item.group)
            if item.kind == "^" and group and all(type(g) is Symbol and g.token == "\\prime" for g in group):
                out.extend(Symbol("'") for _ in group)  # f ^ { \prime } is drawn as f '
                continue
            script = Script(item.kind, group)
            previous = out[-1] if out else None
            if (
                script.kind == "_"
                and type(previous) is Script
                and previous.kind == "^"
                and not (len(out) > 1 and type(out[-2]) is Script)
                and not (i < len(items) and type(items[i]) is Script)
            ):
                out[-1:] = [script, previous]  # x ^ { a } _ { b } is drawn as x _ { b } ^ { a }
            else:
                out.append(script)
        else:
            out.append(Environment(item.name, item.begin, _equivalent(item.body), item.end))
    return out


def normalize_equivalent(tokens: str) -> str:
    """A canonical form of a tokenised formula for the OPTIONAL normalised metric column.

    Equivalent spellings of the same picture collapse: ``\\left (`` -> ``(`` (``\\left .``
    disappears), ``\\limits``/``\\nolimits`` dropped, ``\\dfrac``/``\\tfrac`` -> ``\\frac``,
    :data:`ALIASES` and ``\\vert``/``\\mid`` -> ``|``, ``\\not =`` -> ``\\neq``,
    ``^ { \\prime }`` -> ``'``, ``x ^ { a } _ { b }`` -> ``x _ { b } ^ { a }``, bare and
    redundant braces removed (any tokenisation). Never used for ExpRate. Text that does not parse
    (a broken prediction) gets only the token-level substitutions, never an error.
    """
    try:
        items = parse_latex(tokens)
    except LatexError:
        out = []
        for token in tokens.split():
            token = EQUIVALENT_SYMBOLS.get(token, EQUIVALENT_COMMANDS.get(token, token))
            if token not in _DROPPED_FOR_EQUIVALENCE and token not in ("\\left", "\\right"):
                out.append(token)
        return " ".join(out)
    return " ".join(format_tokens(_equivalent(items)))


_CJK = re.compile(
    "[\u1100-\u11ff\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
    "\U00020000-\U0002fa1f]"
)


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a Chinese, Japanese or Korean character, including CJK punctuation
    such as ``、`` and full-width forms (HME100K labels that are not pure mathematics)."""
    return _CJK.search(text) is not None
