"""Lexer and parser of LaTeX into items (symbols, commands with arguments, scripts, environments),
and :func:`format_tokens`, which writes items back as caption tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
from data_prep.rejects import ReasonError

_LEXEME = re.compile(r"\\(?:begin|end)\s*\{\s*[A-Za-z]+\*?\s*\}|\\[A-Za-z]+|\\.|%[^\n]*|\s+|.", re.S)
_ENV_LEXEME = re.compile(r"\\(begin|end)\s*\{\s*([A-Za-z]+\*?)\s*\}")
_DIMENSION = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:pt|mm|cm|in|em|ex|mu|bp|pc|dd|cc|sp)$")
_STARRED = frozenset({"\\operatorname", "\\hspace", "\\vspace", "\\tag"})

# --------------------------------------------------------------------------- #
# Errors and the syntax tree
# --------------------------------------------------------------------------- #


class LatexError(ReasonError):
    """LaTeX that cannot be tokenised. ``reason`` is a short fixed slug for counting."""


@dataclass(slots=True)
class Symbol:
    """One visible token: a character or a command without arguments (``x``, ``\\alpha``)."""

    token: str


@dataclass(slots=True)
class Command:
    """A command with arguments: ``\\frac { .. } { .. }``, ``\\sqrt [ .. ] { .. }``."""

    name: str
    optional: list | None
    args: list[list] = field(default_factory=list)


@dataclass(slots=True)
class Script:
    """A subscript (``_``) or superscript (``^``) attached to the item before it."""

    kind: str
    group: list


@dataclass(slots=True)
class Environment:
    """``\\begin{name}`` body ``\\end{name}``; ``begin`` keeps the column spec (``\\begin{array}{l}``)."""

    name: str
    begin: str
    body: list
    end: str


# --------------------------------------------------------------------------- #
# Lexer and parser
# --------------------------------------------------------------------------- #


def _lex(raw: str) -> list[str]:
    lexemes = []
    for lexeme in _LEXEME.findall(raw):
        first = lexeme[0]
        if first.isspace() or first == "%":
            continue
        if lexeme == "\\":
            raise LatexError("dangling_backslash", "the input ends with a lone backslash")
        if first == "\\" and len(lexeme) > 6 and lexeme[1] in "be" and "{" in lexeme:
            match = _ENV_LEXEME.fullmatch(lexeme)
            if match:
                lexeme = f"\\{match.group(1)}{{{match.group(2)}}}"
        lexemes.append(lexeme)
    return lexemes


_END = object()  # closer sentinel: the body of an environment ends at its \end lexeme


class _Parser:
    __slots__ = ("lexemes", "i", "strict")

    def __init__(self, lexemes: list[str], strict: bool) -> None:
        self.lexemes = lexemes
        self.i = 0
        self.strict = strict

    def non_canonical(self, token: str, why: str) -> None:
        if self.strict:
            raise LatexError("non_canonical", f"{token!r} at lexeme {self.i}: {why}")

    def sequence(self, closer) -> list:
        """Items up to ``closer`` ("}", "]", _END or None for the end of input); consumes it."""
        lexemes, out, over = self.lexemes, [], None
        while True:
            if self.i >= len(lexemes):
                if closer is None:
                    break
                if closer is _END:
                    raise LatexError("unterminated_environment", "missing \\end")
                raise LatexError("unbalanced_braces", f"missing {closer!r}")
            token = lexemes[self.i]
            if token == closer:
                self.i += 1
                break
            if closer is _END and token.startswith("\\end{"):
                break  # the environment consumes its own \end
            if token in INFIX_COMMANDS:
                self.non_canonical(token, "infix fraction")
                if over is not None:
                    raise LatexError("ambiguous_over", f"two infix fractions in one group: {token}")
                over = (len(out), INFIX_COMMANDS[token])
                self.i += 1
                continue
            if token in SWITCH_COMMANDS:
                self.non_canonical(token, "font switch")
                self.i += 1
                rest = self.sequence(closer)
                if rest:
                    out.append(Command(SWITCH_COMMANDS[token], None, [rest]))
                break
            self.item(out)
        if over is not None:
            at, name = over
            out = [Command(name, None, [out[:at], out[at:]])]
        return out

    def argument(self, after: str) -> list:
        """One argument: a braced group or (lenient mode only) a single item."""
        lexemes = self.lexemes
        while self.i < len(lexemes) and lexemes[self.i] in DROPPED_TOKENS:
            self.non_canonical(lexemes[self.i], "dropped token")
            self.i += 1
        if self.i >= len(lexemes):
            raise LatexError("missing_argument", f"nothing after {after}")
        token = lexemes[self.i]
        if token == "{":
            self.i += 1
            return self.sequence("}")
        if token in ("}", "^", "_", "&", "\\\\", "\\sp", "\\sb") or token.startswith("\\end{"):
            raise LatexError("missing_argument", f"{token!r} after {after}")
        if token in SWITCH_COMMANDS or token in INFIX_COMMANDS:
            raise LatexError("unsupported_syntax", f"{token} as an argument of {after}")
        if self.strict:
            reason = "unbraced_script" if after in ("^", "_") else "unbraced_argument"
            raise LatexError(reason, f"{token!r} after {after}")
        out: list = []
        self.item(out)
        return out

    def item(self, out: list) -> None:
        """Parse the item at the cursor into ``out`` (possibly nothing, for dropped tokens)."""
        token = self.lexemes[self.i]
        self.i += 1
        if token == "{":
            self.non_canonical(token, "bare group")
            out.extend(self.sequence("}"))
            return
        if token == "}":
            raise LatexError("unbalanced_braces", f"unexpected '}}' at lexeme {self.i - 1}")
        if token[0] != "\\" or len(token) == 1:
            if token in DROPPED_TOKENS:
                self.non_canonical(token, "dropped token")
            elif token in ("^", "_"):
                out.append(Script(token, self.argument(token)))
            elif token == "#":
                raise LatexError("unsupported_syntax", "macro parameter '#'")
            else:
                out.append(Symbol(token))
            return
        alias = ALIASES.get(token)
        if alias is not None:
            self.non_canonical(token, f"alias of {alias}")
            token = alias
            if token in ("^", "_"):
                out.append(Script(token, self.argument(token)))
                return
            if token[0] != "\\" or token in CONTROL_SYMBOLS:
                out.append(Symbol(token))
                return
        if token in DROPPED_TOKENS:
            self.non_canonical(token, "dropped token")
        elif token in ARG_COMMANDS:
            has_optional, count = ARG_COMMANDS[token]
            optional = None
            if has_optional and self.i < len(self.lexemes) and self.lexemes[self.i] == "[":
                optional = self.sequence_after_bracket()
            out.append(Command(token, optional, [self.argument(token) for _ in range(count)]))
        elif token in ("\\left", "\\right"):
            self.delimited(token, out)
        elif token.startswith("\\begin{"):
            out.append(self.environment(token))
        elif token.startswith("\\end{"):
            raise LatexError("unbalanced_environment", f"{token} without \\begin")
        elif token in UNWRAPPED_COMMANDS:
            self.non_canonical(token, "font wrapper")
            self.star(token)
            out.extend(self.argument(token))
        elif token in DROPPED_WITH_ARGUMENT:
            self.non_canonical(token, "dropped command")
            self.star(token)
            if self.i < len(self.lexemes) and self.lexemes[self.i] == "[":
                self.sequence_after_bracket()
            for _ in range(DROPPED_WITH_ARGUMENT[token]):
                self.argument(token)
        elif token in PLAIN_TEX_ENVIRONMENTS:
            self.non_canonical(token, "plain TeX matrix")
            name = PLAIN_TEX_ENVIRONMENTS[token]
            out.append(Environment(name, f"\\begin{{{name}}}", self.argument(token), f"\\end{{{name}}}"))
        elif token in TEXT_ACCENTS:
            raise LatexError("unsupported_syntax", f"text accent {token}")
        elif token in DROPPED_WITH_DIMENSION:
            self.non_canonical(token, "dropped command")
            self.dimension(token)
        elif token == "\\\\":
            out.append(Symbol(token))
            self.skip_row_spacing()
        elif len(token) == 2 and not token[1].isalpha():
            if token not in CONTROL_SYMBOLS:
                raise LatexError("unsupported_syntax", f"control symbol {token!r}")
            out.append(Symbol(token))
        elif token in INFIX_COMMANDS or token in SWITCH_COMMANDS:
            raise LatexError("unsupported_syntax", f"{token} in this position")
        elif token == "\\atop":
            raise LatexError("unsupported_syntax", "\\atop")
        else:
            out.append(Symbol(token))  # any other command: a symbol without arguments

    def sequence_after_bracket(self) -> list:
        self.i += 1
        return self.sequence("]")

    def star(self, token: str) -> None:
        if token in _STARRED and self.i < len(self.lexemes) and self.lexemes[self.i] == "*":
            self.non_canonical("*", "starred command")
            self.i += 1

    def dimension(self, token: str) -> None:
        text = ""
        while self.i < len(self.lexemes) and len(self.lexemes[self.i]) == 1:
            text += self.lexemes[self.i]
            self.i += 1
            if _DIMENSION.match(text):
                return
        raise LatexError("unsupported_syntax", f"no dimension after {token}")

    def skip_row_spacing(self) -> None:
        """``\\\\[2pt]``: the optional spacing after a row break is dropped."""
        lexemes, start = self.lexemes, self.i
        if start < len(lexemes) and lexemes[start] == "[":
            try:
                close = lexemes.index("]", start)
            except ValueError:
                return
            if _DIMENSION.match("".join(lexemes[start + 1 : close])):
                self.non_canonical("[", "row spacing")
                self.i = close + 1

    def delimited(self, token: str, out: list) -> None:
        lexemes = self.lexemes
        while self.i < len(lexemes) and lexemes[self.i] in DROPPED_TOKENS:
            self.i += 1
        if self.i >= len(lexemes):
            raise LatexError("missing_delimiter", f"nothing after {token}")
        delimiter = lexemes[self.i]
        alias = ALIASES.get(delimiter)
        if alias is not None:
            self.non_canonical(delimiter, f"alias of {alias}")
            delimiter = alias
        if delimiter not in DELIMITERS:
            raise LatexError("missing_delimiter", f"{delimiter!r} after {token}")
        self.i += 1
        out.append(Symbol(token))
        out.append(Symbol(delimiter))

    def environment(self, token: str) -> Environment:
        name = token[len("\\begin{") : -1]
        if name not in ENVIRONMENTS:
            raise LatexError("unknown_environment", name)
        begin = token
        if name in SPEC_ENVIRONMENTS:
            begin += self.column_spec(name)
        body = self.sequence(_END)
        end = self.lexemes[self.i]  # sequence() stopped on an \end lexeme
        self.i += 1
        if end != f"\\end{{{name}}}":
            raise LatexError("mismatched_environment", f"\\begin{{{name}}} closed by {end}")
        return Environment(name, begin, body, end)

    def column_spec(self, name: str) -> str:
        lexemes = self.lexemes
        if self.i >= len(lexemes) or lexemes[self.i] != "{":
            raise LatexError("missing_argument", f"\\begin{{{name}}} without its column specification")
        depth, start = 0, self.i
        while self.i < len(lexemes):
            lexeme = lexemes[self.i]
            self.i += 1
            depth += (lexeme == "{") - (lexeme == "}")
            if depth == 0:
                return "".join(lexemes[start : self.i])
        raise LatexError("unbalanced_braces", f"unterminated column specification of {name}")


def parse_latex(text: str, strict: bool = False) -> list:
    """Parse LaTeX into a list of :class:`Symbol`/:class:`Command`/:class:`Script`/:class:`Environment`.

    ``strict=True`` accepts only the tokenised convention (what :func:`tokenize_latex` outputs):
    unbraced arguments, bare groups, aliases and dropped tokens then raise :class:`LatexError`.
    """
    try:
        return _Parser(_lex(text), strict).sequence(None)
    except RecursionError:
        # The parser recurses once per group level; a formula nested some hundreds of levels deep
        # (a degenerate prediction) is refused like any other unreadable LaTeX, not a crash.
        raise LatexError("too_deep", "groups nested deeper than the parser's recursion allows") from None


def format_tokens(items: list, out: list[str] | None = None) -> list[str]:
    """The tokens of parsed items, in the caption convention."""
    out = [] if out is None else out
    for item in items:
        kind = type(item)
        if kind is Symbol:
            out.append(item.token)
        elif kind is Script:
            out.append(item.kind)
            out.append("{")
            format_tokens(item.group, out)
            out.append("}")
        elif kind is Command:
            out.append(item.name)
            if item.optional is not None:
                out.append("[")
                format_tokens(item.optional, out)
                out.append("]")
            for arg in item.args:
                out.append("{")
                format_tokens(arg, out)
                out.append("}")
        else:
            out += environment_tokens(item.begin)
            format_tokens(item.body, out)
            out += environment_tokens(item.end)
    return out


def environment_tokens(marker: str) -> list[str]:
    """``\\begin{array}{l}`` -> ``["\\begin", "{array}", "{l}"]``: the reference writes an
    environment's name as a token of its own (``\\begin {cases}``); a column specification is one
    more token."""
    name_start = marker.index("{")
    name_end = marker.index("}") + 1
    tokens = [marker[:name_start], marker[name_start:name_end]]
    if name_end < len(marker):
        tokens.append(marker[name_end:])
    return tokens
