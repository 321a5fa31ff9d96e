"""The answer-format formula as a small tree, for :mod:`data_prep.render.ink_layout`.

Rows of nodes: ``atom`` (one symbol), ``scripts`` (a base with ``_ { }`` and/or ``^ { }``),
``frac``, ``sqrt``, ``group`` (a bracket pair and what it encloses, when the pair matches at one
brace level; a lone bracket is an atom) and ``row`` (a braced group). ``\\limits`` and
``\\nolimits`` draw nothing. A formula that does not parse raises :class:`LayoutError`
``unsupported``.
"""

from __future__ import annotations

import dataclasses

IGNORED = frozenset({r"\limits", r"\nolimits"})
OPENING = {"(": ")", "[": "]", r"\{": r"\}"}


class LayoutError(ValueError):
    """A formula the ink layout cannot compose; ``reason`` is a short fixed render reason."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclasses.dataclass
class Node:
    kind: str  # atom | row | scripts | frac | sqrt | group
    token: str = ""
    parts: list = dataclasses.field(default_factory=list)  # rows (or the base node of scripts)


def parse_formula(latex: str) -> Node:
    """The answer-format tokens as a row of nodes; :class:`LayoutError` ``unsupported`` if malformed."""
    tokens = [t for t in latex.split() if t not in IGNORED]
    row, end = _row(tokens, 0)
    if end != len(tokens):
        raise LayoutError("unsupported", f"unbalanced '}}' at token {end + 1} of {latex!r}")
    return row


def _row(tokens: list[str], i: int) -> tuple[Node, int]:
    items: list[Node] = []
    while i < len(tokens) and tokens[i] != "}":
        token = tokens[i]
        if token in ("^", "_"):
            if not items:
                raise LayoutError("unsupported", f"{token} without a base")
            arg, i = _argument(tokens, i + 1)
            base = (
                items[-1] if items[-1].kind == "scripts" else Node("scripts", parts=[items[-1], None, None])
            )
            slot = 2 if token == "^" else 1
            if base.parts[slot] is not None:
                raise LayoutError("unsupported", f"a second {token} on one base")
            base.parts[slot] = arg
            items[-1] = base
            continue
        if token == r"\frac":
            top, i = _braced(tokens, i + 1)
            bottom, i = _braced(tokens, i)
            items.append(Node("frac", token, [top, bottom]))
        elif token == r"\sqrt":
            body, i = _braced(tokens, i + 1)
            items.append(Node("sqrt", token, [body]))
        elif token == "{":
            body, i = _braced(tokens, i)
            items.append(body)
        elif token in OPENING and OPENING[token] in tokens[i + 1 :]:
            body, end = _row_until(tokens, i + 1, OPENING[token])
            if end is None:
                items.append(Node("atom", token))
                i += 1
            else:
                items.append(Node("group", token, [body, tokens[end]]))
                i = end + 1
        else:
            items.append(Node("atom", token))
            i += 1
    return Node("row", parts=items), i


def _row_until(tokens: list[str], i: int, closing: str) -> tuple[Node, int | None]:
    """The row up to the matching ``closing`` bracket at this brace level (``None``: no match)."""
    opening, depth, level = tokens[i - 1], 0, 0
    for j in range(i, len(tokens)):
        depth += {"{": 1, "}": -1}.get(tokens[j], 0)
        if depth < 0:
            return Node("row"), None
        if depth == 0 and tokens[j] == opening:
            level += 1
        elif depth == 0 and tokens[j] == closing:
            if level:
                level -= 1
                continue
            try:
                body, end = _row(tokens[:j], i)
            except LayoutError:
                return Node("row"), None
            return (body, j) if end == j else (Node("row"), None)
    return Node("row"), None


def _braced(tokens: list[str], i: int) -> tuple[Node, int]:
    if i >= len(tokens) or tokens[i] != "{":
        where = tokens[i] if i < len(tokens) else "the end"
        raise LayoutError("unsupported", f"expected '{{' at {where!r} (optional arguments are not drawn)")
    body, end = _row(tokens, i + 1)
    if end >= len(tokens):
        raise LayoutError("unsupported", "a '{' is never closed")
    return body, end + 1


def _argument(tokens: list[str], i: int) -> tuple[Node, int]:
    if i < len(tokens) and tokens[i] == "{":
        return _braced(tokens, i)
    if i >= len(tokens) or tokens[i] == "}":
        raise LayoutError("unsupported", "a script without an argument")
    return Node("row", parts=[Node("atom", tokens[i])]), i + 1
