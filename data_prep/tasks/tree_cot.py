"""Tree-CoT exactly as Uni-MuMER serialises it (the default Tree-CoT answers).

The reference (BFlameSwift/Uni-MuMER, ``preprocess/unimumer_tree/latex2tree.py``) reads the
caption as whitespace tokens and builds the tree left to right; this module reproduces its output
byte for byte (our own code). The rules, as the reference applies them:

* One node per token, in a sibling chain: the next token is a ``(right)`` sibling at the same
  depth; after a ``\\\\`` token the next one is a ``(nextline)`` child, one level deeper (``\\\\``
  itself never appears in the tree).
* A token takes arguments by its category (:data:`TWO_ARGUMENTS`, :data:`ONE_ARGUMENT`,
  :data:`OPTIONAL_AND_ONE_ARGUMENT`, :data:`BIG_OPERATORS`); every other token, ``)``, ``}``,
  ``\\limits``, ``\\textcircled``, ``\\boxed``, ``\\not`` and ``\\left`` included, is ordinary: it
  takes ``_ { .. }`` (``sub``) and then ``^ { .. }`` (``sup``) right after it, in that order.
  A script anywhere else (after an argument group, a ``_`` after a ``^``) is not attached: the
  ``_``/``^`` and its braces are ordinary tokens of the chain.
* ``\\begin {ENV}`` ... ``\\end {ENV}`` (the environment name is its own token): the ``\\begin``
  node holds the body (``begin_ENV``) and a ``\\end`` node (``end_ENV``); neither ``{ENV}`` token
  is a node.
* A group ``{`` ... ``}`` is found by counting braces; a group that never closes takes everything
  between its ``{`` and the last token, and its ``{`` then stays in the chain (the reference does
  the same; published captions with broken braces go through it).

Where the reference raises (and skips the sample), :func:`build_tree_cot` raises
:class:`~data_prep.tasks.TaskError` with a ``reason``: ``unbraced_script`` (``x ^ 2``),
``unbraced_argument`` (``\\frac 1 { 2 }``, ``\\sqrt x``), ``missing_environment_name`` (a final
``\\begin``) and ``unterminated_environment`` (``\\begin {ENV}`` without ``\\end {ENV}``).
One difference is deliberate: the reference recurses once per token and so fails on formulas of
about a thousand tokens (Python's recursion limit); this module recurses once per group level
only and answers those. It refuses (``too_deep``, a skip instead of a crash) groups nested more
than about 300 levels deep, which the reference still serialises up to about a thousand levels;
no published caption comes near either limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from data_prep.tasks.errors import TaskError

#: Commands with two braced arguments: the first is ``above``, the second ``below``.
TWO_ARGUMENTS = frozenset({"\\frac", "\\cfrac", "\\dfrac", "\\tfrac", "\\binom", "\\dbinom", "\\tbinom"})
#: Commands with one braced argument, ``above`` (``\\underline`` and ``\\choose`` too, as in the
#: reference).
ONE_ARGUMENT = frozenset(
    {
        *("\\dot", "\\ddot", "\\hat", "\\check", "\\grave", "\\acute", "\\tilde", "\\breve"),
        *("\\bar", "\\vec", "\\widehat", "\\widetilde", "\\overbrace", "\\underbrace"),
        *("\\overleftarrow", "\\overrightarrow", "\\overline", "\\underline", "\\choose"),
    }
)
#: Commands with an optional ``[ .. ]`` argument (``below``) and one braced argument (``above``).
OPTIONAL_AND_ONE_ARGUMENT = frozenset({"\\sqrt", "\\xrightarrow", "\\xleftarrow"})
#: Operators whose ``_``/``^`` are limits (``below``/``above``) instead of ``sub``/``sup``.
BIG_OPERATORS = frozenset({"\\sum", "\\lim", "\\iint", "\\int", "\\coprod", "\\prod", "\\oint"})

ROW_BREAK = "\\\\"
BEGIN = "\\begin"
END = "\\end"
#: The reference's end-of-chain marker: a node with this label is never written, nor anything
#: under it (a caption token spelt ``<eol>`` therefore ends the tree there, as in the reference).
EOL = "<eol>"

#: Reasons :func:`build_tree_cot` raises with (the reference's skips).
SKIP_REASONS = (
    "unbraced_script",
    "unbraced_argument",
    "missing_environment_name",
    "unterminated_environment",
    "too_deep",  # groups nested past about 300 levels (see the module docstring)
)


@dataclass(slots=True)
class ChainNode:
    """One token of a sibling chain: its argument groups, then how the next token relates to it."""

    label: str
    groups: list[tuple[str, list[ChainNode]]] = field(default_factory=list)
    link: str = "right"  # "right" or "nextline"


def _closing(tokens: list[str], start: int, stop: int, opening: str, closing: str) -> int:
    """Index of the token closing the group that opens at ``start``, or -1 if it never closes."""
    depth = 0
    for index in range(start, stop):
        token = tokens[index]
        if token == opening:
            depth += 1
        elif token == closing:
            depth -= 1
            if depth == 0:
                return index
    return -1


def _environment_end(tokens: list[str], start: int, stop: int, name_token: str) -> int:
    """Index of the ``\\end`` closing an environment whose body starts at ``start``, or -1."""
    depth = 1
    index = start
    while index < stop:
        token = tokens[index]
        if token in (BEGIN, END) and index + 1 < stop and tokens[index + 1] == name_token:
            depth += 1 if token == BEGIN else -1
            if depth == 0:
                return index
            index += 2
        else:
            index += 1
    return -1


def _chain(tokens: list[str], start: int, stop: int) -> list[ChainNode]:
    """The sibling chain of ``tokens[start:stop]``. Raises :class:`TaskError` like the reference."""
    chain: list[ChainNode] = []
    position = start

    def group(node: ChainNode, relation: str, opening: str = "{", closing: str = "}") -> None:
        # tokens[position] is the opening token. An unclosed group spans up to (not including)
        # the last token and consumes nothing, as the reference's bracket search does.
        nonlocal position
        end = _closing(tokens, position, stop, opening, closing)
        if end == -1:
            node.groups.append((relation, _chain(tokens, position + 1, stop - 1)))
        else:
            node.groups.append((relation, _chain(tokens, position + 1, end)))
            position = end + 1

    def braced(node: ChainNode, relation: str, reason: str) -> None:
        if position >= stop or tokens[position] != "{":
            raise TaskError(reason, f"{node.label} is not followed by {{ (token {position})")
        group(node, relation)

    def script(node: ChainNode, kind: str, relation: str) -> None:
        nonlocal position
        if position < stop and tokens[position] == kind:
            position += 1
            if position >= stop or tokens[position] != "{":
                raise TaskError("unbraced_script", f"{kind} after {node.label} is not followed by {{")
            group(node, relation)

    while position < stop:
        node = ChainNode(tokens[position])
        position += 1
        label = node.label
        if label == BEGIN:
            if position >= stop:
                raise TaskError("missing_environment_name", "\\begin is the last token")
            name_token = tokens[position]
            name = name_token.strip("{}")
            position += 1
            end = _environment_end(tokens, position, stop, f"{{{name}}}")
            if end == -1:
                raise TaskError("unterminated_environment", f"\\begin {name_token} without \\end {{{name}}}")
            node.groups.append((f"begin_{name}", _chain(tokens, position, end)))
            node.groups.append((f"end_{name}", [ChainNode(END)]))
            position = end + 2
        elif label in BIG_OPERATORS:
            script(node, "_", "below")
            script(node, "^", "above")
        elif label in ONE_ARGUMENT:
            braced(node, "above", "unbraced_argument")
        elif label in OPTIONAL_AND_ONE_ARGUMENT:
            if position < stop and tokens[position] == "[":
                group(node, "below", "[", "]")
            braced(node, "above", "unbraced_argument")
        elif label in TWO_ARGUMENTS:
            braced(node, "above", "unbraced_argument")
            braced(node, "below", "unbraced_argument")
        else:
            script(node, "_", "sub")
            script(node, "^", "sup")
        if position < stop and tokens[position] == ROW_BREAK:
            position += 1
            node.link = "nextline"
        chain.append(node)
    return chain


def _write(chain: list[ChainNode], depth: int, relation: str | None, lines: list[str]) -> None:
    for node in chain:
        if node.label == EOL:
            return
        indent = "\t" * depth
        lines.append(f"{indent}{node.label} ({relation})" if relation else f"{indent}{node.label}")
        for group_relation, group in node.groups:
            _write(group, depth + 1, group_relation, lines)
        relation = node.link
        if relation == "nextline":
            depth += 1


def tree_lines(latex: str) -> list[str]:
    """The reference's tree of ``latex`` (whitespace tokens), one line per node, depth first."""
    tokens = latex.split()
    lines: list[str] = []
    try:
        _write(_chain(tokens, 0, len(tokens)), 0, None, lines)
    except RecursionError:
        raise TaskError("too_deep", "groups nested deeper than Python's recursion limit allows") from None
    return lines


def build_tree_cot(latex: str) -> str:
    """The Tree-CoT answer as the reference writes it: the tree lines, a newline, ``latex``.

    ``latex`` is kept as given on the last line. Raises :class:`~data_prep.tasks.TaskError` (its
    ``reason`` one of :data:`SKIP_REASONS`) exactly where the reference skips the sample.
    """
    return "\n".join(tree_lines(latex)) + "\n" + latex
