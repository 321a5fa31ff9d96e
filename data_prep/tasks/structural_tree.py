"""The structural Tree-CoT style (opt-in, recipe ``tree_cot: {style: structural}``): a syntax tree
that alone gives back the formula, then its LaTeX on the last line.

Not the reference's serialisation (that is :mod:`data_prep.tasks.tree_cot`, the default): this
style parses the caption with the tokeniser's grammar, so wrappers, scripts after argument groups
and environments become real subtrees, and :func:`tree_to_latex` rebuilds the LaTeX from the tree
lines alone.

One node per line, ``"\\t" * depth + "SYMBOL (RELATION)"``, the root without a relation. Siblings
in one group share a depth and relate to the one before them by ``right`` (``nextline`` after a
``\\\\`` row break); every other relation opens a group one level deeper under its parent:

* ``above``/``below``: the two arguments of ``\\frac``-like commands; the limits (``^``/``_``) of
  :data:`BIG_OPERATORS`; ``\\sqrt``: the index ``[..]`` is ``below``, the radicand ``above``
  (also ``\\xrightarrow``); over-accents (``\\hat`` ...) ``above``, under-accents ``below``.
* ``sub``/``sup``: ``_``/``^`` on every other node.
* ``inside``: the argument of a wrapper (``\\textcircled``, ``\\boxed``, ``\\mathbb`` ...) and the
  base of ``\\overset``/``\\underset``/``\\stackrel``.
* ``begin_ENV``/``end_ENV``: the body of an environment and its ``\\end`` node, both children of
  the ``\\begin`` node, labelled with the environment written whole (``\\begin{array}{l}``
  for the caption tokens ``\\begin {array} {l}``).

Choices of this style: a node's label may carry a modifier token so that the tree
alone gives back every token: ``\\left (``, ``\\right )``, ``\\not =`` (prefix plus symbol) and
``\\sum \\limits`` (operator plus ``\\limits``/``\\nolimits``); ``\\\\`` and ``&`` are nodes; the
children of a node are listed in source order. :func:`tree_to_latex` rebuilds the LaTeX from the
tree lines alone, and :func:`build_structural_tree_cot` refuses (``TreeError``) any caption whose tree would
not rebuild it exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from data_prep.contract import normalize_answer
from data_prep.latex import (
    ARG_COMMANDS,
    Command,
    LatexError,
    Script,
    Symbol,
    environment_tokens,
    format_tokens,
    parse_latex,
)
from data_prep.tasks.errors import TaskError

#: Operators whose ``_``/``^`` are limits (``below``/``above``), as FIELD_NOTES lists them.
BIG_OPERATORS = frozenset({"\\sum", "\\int", "\\lim", "\\prod", "\\oint", "\\iint", "\\coprod"})
#: Tokens merged with the symbol after them into one node label.
PREFIX_TOKENS = frozenset({"\\left", "\\right", "\\not"})
#: Tokens merged with the symbol before them into one node label.
SUFFIX_TOKENS = frozenset({"\\limits", "\\nolimits"})
ROW_BREAK = "\\\\"

_FRACTION_LIKE = ("\\frac", "\\dfrac", "\\tfrac", "\\cfrac", "\\binom", "\\dbinom", "\\tbinom")
_UNDER_ACCENTS = ("\\underline", "\\underbrace")
_WRAPPERS = ("\\boxed", "\\textcircled", "\\mathbb", "\\mathcal", "\\mathfrak", "\\mathscr", "\\cancel")


def _argument_relations() -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """Per command: the relation of its optional argument and of each required argument."""
    relations: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    for name, (has_optional, count) in ARG_COMMANDS.items():
        if name in _FRACTION_LIKE:
            relations[name] = (None, ("above", "below"))
        elif name in ("\\overset", "\\stackrel"):
            relations[name] = (None, ("above", "inside"))
        elif name == "\\underset":
            relations[name] = (None, ("below", "inside"))
        elif has_optional:  # \sqrt, \xrightarrow, \xleftarrow
            relations[name] = ("below", ("above",))
        elif name in _UNDER_ACCENTS:
            relations[name] = (None, ("below",))
        elif name in _WRAPPERS:
            relations[name] = (None, ("inside",))
        else:  # over-accents
            relations[name] = (None, ("above",))
        if len(relations[name][1]) != count:
            raise AssertionError(f"relation table out of step with ARG_COMMANDS for {name}")
    return relations


#: Command name -> (optional argument relation, required argument relations).
ARGUMENT_RELATIONS = _argument_relations()
SIBLING_RELATIONS = frozenset({"right", "nextline"})
SCRIPT_RELATIONS = {False: {"_": "sub", "^": "sup"}, True: {"_": "below", "^": "above"}}
_SCRIPT_OF = {(big, rel): kind for big, table in SCRIPT_RELATIONS.items() for kind, rel in table.items()}

_LINE = re.compile(
    r"(\t*)([^\t ][^\t]*?)(?: \(((?:right|nextline|above|below|sup|sub|inside)|(?:begin|end)_[A-Za-z]+\*?)\))?"
)


class TreeError(TaskError):
    """A caption without a faithful tree, or tree text that does not parse. ``reason`` slugs:
    the tokeniser's (``unbalanced_braces``, ``unbraced_script``, ``unknown_environment`` ...) and
    ``script_without_base``, ``empty_group``, ``bad_line``, ``bad_depth``, ``bad_relation``,
    ``missing_relation``, ``bad_label``, ``bad_arguments``, ``bad_environment``, ``empty_tree``."""


@dataclass(slots=True)
class TreeNode:
    label: str
    children: list[tuple[str, list[TreeNode]]] = field(default_factory=list)


# --------------------------------------------------------------------------- #
# LaTeX -> tree
# --------------------------------------------------------------------------- #


def _head(label: str) -> str:
    return label.split(" ", 1)[0]


def _nodes(items: list) -> list[TreeNode]:
    """The nodes of one group, in source order; scripts become children of the node before."""
    nodes: list[TreeNode] = []
    plain: list[bool] = []  # whether nodes[k] is a symbol node (may take a \limits suffix)
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        kind = type(item)
        if kind is Script:
            if not nodes:
                raise TreeError("script_without_base", f"{item.kind} at the start of a group")
            base = nodes[-1]
            relation = SCRIPT_RELATIONS[_head(base.label) in BIG_OPERATORS][item.kind]
            base.children.append((relation, _required(item.group, item.kind)))
        elif kind is Symbol:
            label = item.token
            if label in SUFFIX_TOKENS and nodes and plain[-1] and not nodes[-1].children:
                if " " not in nodes[-1].label:
                    nodes[-1].label += " " + label
                    continue
            if label in PREFIX_TOKENS and i < len(items) and type(items[i]) is Symbol:
                label += " " + items[i].token
                i += 1
            nodes.append(TreeNode(label))
            plain.append(True)
        elif kind is Command:
            optional_relation, relations = ARGUMENT_RELATIONS[item.name]
            node = TreeNode(item.name)
            if item.optional is not None:
                node.children.append((optional_relation, _required(item.optional, item.name)))
            for relation, arg in zip(relations, item.args):
                node.children.append((relation, _required(arg, item.name)))
            nodes.append(node)
            plain.append(False)
        else:
            node = TreeNode(item.begin)
            if item.body:
                node.children.append((f"begin_{item.name}", _nodes(item.body)))
            node.children.append((f"end_{item.name}", [TreeNode(item.end)]))
            nodes.append(node)
            plain.append(False)
    return nodes


def _required(items: list, owner: str) -> list[TreeNode]:
    if not items:
        raise TreeError("empty_group", f"empty argument of {owner}")
    return _nodes(items)


def _emit(nodes: list[TreeNode], depth: int, relation: str | None, lines: list[str]) -> None:
    indent = "\t" * depth
    for k, node in enumerate(nodes):
        if k:
            relation = "nextline" if nodes[k - 1].label == ROW_BREAK else "right"
        lines.append(f"{indent}{node.label}" if relation is None else f"{indent}{node.label} ({relation})")
        for child_relation, children in node.children:
            _emit(children, depth + 1, child_relation, lines)


def build_tree(latex: str) -> list[str]:
    """The tree lines of a tokenised caption (no LaTeX line). Raises :class:`TreeError`."""
    latex = normalize_answer(latex)
    if not latex:
        raise TreeError("empty_tree", "empty LaTeX")
    try:
        items = parse_latex(latex, strict=True)
    except LatexError as err:
        raise TreeError(err.reason, err.detail) from err
    if " ".join(format_tokens(items)) != latex:
        raise TreeError("non_canonical", f"not in the tokenised convention: {latex[:80]!r}")
    lines: list[str] = []
    _emit(_nodes(items), 0, None, lines)
    return lines


def build_structural_tree_cot(latex: str) -> str:
    """The full structural Tree-CoT answer: the tree lines, then the LaTeX as the last line.

    Raises :class:`TreeError` (with a ``reason``) for a caption that does not parse in the
    tokenised convention or whose tree would not rebuild it exactly: never a broken tree.
    """
    latex = normalize_answer(latex)
    lines = build_tree(latex)
    rebuilt = _latex_of_lines(lines)
    if rebuilt != latex:  # a guard: the tree must carry the whole formula
        raise TreeError("round_trip_mismatch", f"{latex[:80]!r} rebuilt as {rebuilt[:80]!r}")
    lines.append(latex)
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# tree -> LaTeX
# --------------------------------------------------------------------------- #


def parse_tree(lines: list[str]) -> list[TreeNode]:
    """The top-level nodes of tree lines. Raises :class:`TreeError` naming the bad line."""
    roots: list[TreeNode] = []
    path: list[tuple[TreeNode, list[TreeNode]]] = []  # path[d]: the open node at depth d, its group
    for number, line in enumerate(lines, 1):
        match = _LINE.fullmatch(line)
        if match is None:
            raise TreeError("bad_line", f"line {number}: {line!r}")
        depth, label, relation = len(match.group(1)), match.group(2), match.group(3)
        node = TreeNode(label)
        if not path:
            if depth or relation is not None:
                raise TreeError("bad_root", f"line {number}: the root has no indent and no relation")
            roots.append(node)
            path.append((node, roots))
            continue
        if relation is None:
            raise TreeError("missing_relation", f"line {number}: {line!r}")
        if relation in SIBLING_RELATIONS:
            if depth >= len(path):
                raise TreeError("bad_depth", f"line {number}: no earlier sibling at depth {depth}")
            group = path[depth][1]
            expected = "nextline" if group[-1].label == ROW_BREAK else "right"
            if relation != expected:
                raise TreeError("bad_relation", f"line {number}: {relation!r} where {expected!r} belongs")
            group.append(node)
        else:
            if depth == 0 or depth > len(path):
                raise TreeError("bad_depth", f"line {number}: depth {depth} has no parent")
            group = [node]
            path[depth - 1][0].children.append((relation, group))
        del path[depth:]
        path.append((node, group))
    return roots


def _label_tokens(label: str) -> list[str]:
    words = label.split(" ")
    if len(words) == 1 or (
        len(words) == 2 and (words[0] in PREFIX_TOKENS or words[1] in SUFFIX_TOKENS) and all(words)
    ):
        return words
    raise TreeError("bad_label", f"{label!r} is not one symbol")


def _tokens(nodes: list[TreeNode], out: list[str]) -> None:
    for node in nodes:
        words = _label_tokens(node.label)
        head, children, k = words[0], node.children, 0
        out.extend(environment_tokens(head) if head.startswith("\\begin{") else words)
        if head in ARGUMENT_RELATIONS:
            optional_relation, relations = ARGUMENT_RELATIONS[head]
            if optional_relation and children and children[0][0] == optional_relation:
                out.append("[")
                _tokens(children[0][1], out)
                out.append("]")
                k = 1
            for relation in relations:
                if k >= len(children) or children[k][0] != relation:
                    raise TreeError("bad_arguments", f"{head} needs an argument {relation!r}")
                out.append("{")
                _tokens(children[k][1], out)
                out.append("}")
                k += 1
        elif head.startswith("\\begin{"):
            name = head[len("\\begin{") : head.index("}")]
            if k < len(children) and children[k][0] == f"begin_{name}":
                _tokens(children[k][1], out)
                k += 1
            end = f"\\end{{{name}}}"
            if (
                k >= len(children)
                or children[k][0] != f"end_{name}"
                or [(n.label, n.children) for n in children[k][1]] != [(end, [])]
            ):
                raise TreeError("bad_environment", f"{head} without its {end} node ({f'end_{name}'})")
            out += environment_tokens(end)
            k += 1
        big = head in BIG_OPERATORS
        for relation, group in children[k:]:
            kind = _SCRIPT_OF.get((big, relation))
            if kind is None:
                raise TreeError("bad_relation", f"{relation!r} under {node.label!r}")
            out.append(kind)
            out.append("{")
            _tokens(group, out)
            out.append("}")


def _latex_of_lines(lines: list[str]) -> str:
    out: list[str] = []
    _tokens(parse_tree(lines), out)
    latex = " ".join(out)
    try:
        parse_latex(latex, strict=True)
    except LatexError as err:
        raise TreeError("bad_tree", f"the tree gives invalid LaTeX ({err})") from err
    return latex


def tree_to_latex(answer: str, with_latex_line: bool = True) -> str:
    """The space-separated LaTeX rebuilt from the tree lines of ``answer`` alone.

    With ``with_latex_line`` (a full Tree-CoT answer), the last non-empty line is the answer's
    LaTeX and is ignored; the result comes from the tree. Raises :class:`TreeError`.
    """
    lines = [line.rstrip("\r") for line in answer.split("\n") if line.strip()]
    if with_latex_line:
        lines = lines[:-1]
    if not lines:
        raise TreeError("empty_tree", "no tree lines")
    return _latex_of_lines(lines)
