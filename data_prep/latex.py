"""The LaTeX tokeniser: raw LaTeX in, the space-separated CROHME caption convention out.

The convention (CROHME offline captions, HME100K, the Uni-MuMER answers): one token per symbol,
single spaces between tokens, every digit and letter a token of its own (``1 2``, ``x y``), command
names whole (``\\alpha``), every argument and every sub/superscript braced (``x ^ { 2 }``,
``\\frac { 1 } { 2 }``, ``\\sqrt [ 3 ] { x }``), ``\\left (`` as two tokens, environments as one
opening token carrying their column specification (``\\begin{array}{l}`` ... ``\\\\`` ... ``&`` ...
``\\end{array}``). :func:`tokenize_latex` is idempotent on that convention.

What the tokeniser drops (invisible in handwriting): ``$``, math-mode delimiters, comments, spacing
(:data:`DROPPED_TOKENS`), ``\\label``-like commands with their argument, font and style wrappers
(``\\mathrm{d}`` becomes ``d``; ``\\mathbb``/``\\mathcal``/``\\mathfrak``/``\\mathscr`` are kept:
those letters are drawn differently), bare ``{ }`` groups, ``\\big``-like size commands. It
rewrites a few pure TeX aliases to the caption vocabulary (:data:`ALIASES`, e.g. ``\\le`` to
``\\leq``) and ``a \\over b`` to ``\\frac { a } { b }``. It keeps ``\\limits`` (the CoMER caption
edition that published scores use has it) and ``\\left``/``\\right``.

:func:`normalize_equivalent` is a separate, stronger canonical form for an optional
"normalised" metric column only; ExpRate itself compares raw token sequences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# --------------------------------------------------------------------------- #
# Vocabulary tables
# --------------------------------------------------------------------------- #

#: Pure TeX aliases: both spellings are the same glyph, the caption vocabulary uses the value.
ALIASES: dict[str, str] = {
    "\\le": "\\leq",
    "\\ge": "\\geq",
    "\\ne": "\\neq",
    "\\to": "\\rightarrow",
    "\\gets": "\\leftarrow",
    "\\lbrace": "\\{",
    "\\rbrace": "\\}",
    "\\lbrack": "[",
    "\\rbrack": "]",
    "\\lt": "<",
    "\\gt": ">",
    "\\lvert": "|",
    "\\rvert": "|",
    "\\lVert": "\\|",
    "\\rVert": "\\|",
    "\\dots": "\\ldots",
    "\\lnot": "\\neg",
    "\\land": "\\wedge",
    "\\lor": "\\vee",
    "\\owns": "\\ni",
    "\\cr": "\\\\",
    "\\slash": "/",
    "\\dag": "\\dagger",
    "\\ddag": "\\ddagger",
    "\\fbox": "\\boxed",
    "\\sp": "^",
    "\\sb": "_",
}

#: Tokens dropped outright: spacing, style switches without a visible effect, size commands.
DROPPED_TOKENS: frozenset[str] = frozenset(
    {
        "$",
        "~",
        "\\(",
        "\\)",
        "\\[",
        "\\]",
        "\\,",
        "\\;",
        "\\:",
        "\\!",
        "\\>",
        "\\ ",
        "\\\t",
        "\\\n",
        "\\/",
        "\\-",
        "\\quad",
        "\\qquad",
        "\\enspace",
        "\\enskip",
        "\\thinspace",
        "\\medspace",
        "\\thickspace",
        "\\negthinspace",
        "\\negmedspace",
        "\\negthickspace",
        "\\hfill",
        "\\hfil",
        "\\nonumber",
        "\\notag",
        "\\displaystyle",
        "\\textstyle",
        "\\scriptstyle",
        "\\scriptscriptstyle",
        "\\rm",
        "\\bf",
        "\\it",
        "\\sf",
        "\\tt",
        "\\sl",
        "\\mit",
        "\\em",
        "\\boldmath",
        "\\unboldmath",
        "\\normalsize",
        "\\small",
        "\\footnotesize",
        "\\scriptsize",
        "\\tiny",
        "\\large",
        "\\Large",
        "\\LARGE",
        "\\huge",
        "\\Huge",
        "\\big",
        "\\Big",
        "\\bigg",
        "\\Bigg",
        "\\bigl",
        "\\bigr",
        "\\Bigl",
        "\\Bigr",
        "\\biggl",
        "\\biggr",
        "\\Biggl",
        "\\Biggr",
        "\\bigm",
        "\\Bigm",
        "\\biggm",
        "\\Biggm",
        "\\protect",
        "\\relax",
        "\\strut",
        "\\mathstrut",
        "\\allowbreak",
        "\\hline",
        "\\vline",
        "\\null",
        "\\smallskip",
        "\\medskip",
        "\\bigskip",
    }
)

#: Commands dropped together with their arguments: name -> number of arguments.
DROPPED_WITH_ARGUMENT: dict[str, int] = {
    **{
        name: 1
        for name in (
            "\\label",
            "\\hspace",
            "\\vspace",
            "\\phantom",
            "\\hphantom",
            "\\vphantom",
            "\\tag",
            "\\color",
            "\\cline",
        )
    },
    "\\rule": 2,
}

#: Plain-TeX matrix macros taking one braced body: rewritten as the environment.
PLAIN_TEX_ENVIRONMENTS: dict[str, str] = {"\\matrix": "matrix", "\\pmatrix": "pmatrix", "\\cases": "cases"}

#: Text-mode accents (``\\d x``, ``\\c c``): not mathematics, rejected.
TEXT_ACCENTS: frozenset[str] = frozenset({"\\d", "\\c", "\\b", "\\H", "\\t", "\\u", "\\v", "\\r", "\\k"})

#: Commands followed by a TeX dimension (``\\kern 3pt``), dropped with it.
DROPPED_WITH_DIMENSION: frozenset[str] = frozenset({"\\kern", "\\mkern", "\\hskip", "\\mskip", "\\vskip"})

#: Font/text wrappers whose argument is kept and the wrapper dropped (``\\mathrm { d }`` -> ``d``).
UNWRAPPED_COMMANDS: frozenset[str] = frozenset(
    {
        "\\mathrm",
        "\\mathit",
        "\\mathbf",
        "\\mathsf",
        "\\mathtt",
        "\\mathnormal",
        "\\boldsymbol",
        "\\bm",
        "\\pmb",
        "\\textrm",
        "\\textit",
        "\\textbf",
        "\\textsf",
        "\\texttt",
        "\\textnormal",
        "\\textup",
        "\\text",
        "\\vbox",
        "\\mbox",
        "\\hbox",
        "\\operatorname",
        "\\emph",
        "\\mathop",
        "\\mathbin",
        "\\mathrel",
        "\\mathord",
        "\\mathpunct",
        "\\mathopen",
        "\\mathclose",
    }
)

#: Old-style switches that apply to the rest of their group; rewritten as the wrapper command.
SWITCH_COMMANDS: dict[str, str] = {"\\cal": "\\mathcal", "\\Bbb": "\\mathbb", "\\frak": "\\mathfrak"}

#: Infix fraction-like commands: ``{ a \\over b }`` -> ``\\frac { a } { b }``.
INFIX_COMMANDS: dict[str, str] = {"\\over": "\\frac", "\\choose": "\\binom"}

#: Commands that take arguments: name -> (takes an optional ``[..]`` argument, required count).
ARG_COMMANDS: dict[str, tuple[bool, int]] = {
    **{
        name: (False, 2)
        for name in (
            "\\frac",
            "\\dfrac",
            "\\tfrac",
            "\\cfrac",
            "\\binom",
            "\\dbinom",
            "\\tbinom",
            "\\overset",
            "\\underset",
            "\\stackrel",
        )
    },
    "\\sqrt": (True, 1),
    "\\xrightarrow": (True, 1),
    "\\xleftarrow": (True, 1),
    **{
        name: (False, 1)
        for name in (
            "\\hat",
            "\\widehat",
            "\\bar",
            "\\overline",
            "\\vec",
            "\\overrightarrow",
            "\\overleftarrow",
            "\\overleftrightarrow",
            "\\dot",
            "\\ddot",
            "\\dddot",
            "\\tilde",
            "\\widetilde",
            "\\check",
            "\\breve",
            "\\acute",
            "\\grave",
            "\\mathring",
            "\\overbrace",
            "\\underline",
            "\\underbrace",
            "\\boxed",
            "\\textcircled",
            "\\mathbb",
            "\\mathcal",
            "\\mathfrak",
            "\\mathscr",
            "\\cancel",
        )
    },
}

#: Environments the tokeniser (and Tree-CoT) know.
ENVIRONMENTS: frozenset[str] = frozenset(
    {
        "array",
        "subarray",
        "matrix",
        "pmatrix",
        "bmatrix",
        "Bmatrix",
        "vmatrix",
        "Vmatrix",
        "smallmatrix",
        "cases",
        "dcases",
        "rcases",
        "aligned",
        "gathered",
        "split",
        "align",
        "align*",
        "gather",
        "gather*",
        "eqnarray",
        "eqnarray*",
        "multline",
        "equation",
        "equation*",
        "tabular",
    }
)
#: Environments whose ``\\begin`` takes a column specification, kept inside the opening token.
SPEC_ENVIRONMENTS: frozenset[str] = frozenset({"array", "subarray", "tabular"})

#: Delimiters allowed after ``\\left`` / ``\\right``.
DELIMITERS: frozenset[str] = frozenset(
    {
        "(",
        ")",
        "[",
        "]",
        "|",
        "/",
        ".",
        "<",
        ">",
        "\\{",
        "\\}",
        "\\|",
        "\\langle",
        "\\rangle",
        "\\lfloor",
        "\\rfloor",
        "\\lceil",
        "\\rceil",
        "\\vert",
        "\\Vert",
        "\\uparrow",
        "\\downarrow",
        "\\updownarrow",
        "\\Uparrow",
        "\\Downarrow",
        "\\Updownarrow",
        "\\backslash",
        "\\lgroup",
        "\\rgroup",
    }
)

#: Control symbols (backslash + one non-letter) that are visible symbols and kept.
CONTROL_SYMBOLS: frozenset[str] = frozenset({"\\{", "\\}", "\\|", "\\%", "\\&", "\\#", "\\_", "\\$", "\\\\"})

_LEXEME = re.compile(r"\\(?:begin|end)\s*\{\s*[A-Za-z]+\*?\s*\}|\\[A-Za-z]+|\\.|%[^\n]*|\s+|.", re.S)
_ENV_LEXEME = re.compile(r"\\(begin|end)\s*\{\s*([A-Za-z]+\*?)\s*\}")
_DIMENSION = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:pt|mm|cm|in|em|ex|mu|bp|pc|dd|cc|sp)$")
_STARRED = frozenset({"\\operatorname", "\\hspace", "\\vspace", "\\tag"})


# --------------------------------------------------------------------------- #
# Errors and the syntax tree
# --------------------------------------------------------------------------- #


class LatexError(ValueError):
    """LaTeX that cannot be tokenised. ``reason`` is a short fixed slug for counting."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


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
    return _Parser(_lex(text), strict).sequence(None)


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
            out.append(item.begin)
            format_tokens(item.body, out)
            out.append(item.end)
    return out


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #

# The fast path: input already in the convention whose tokens need no rewriting. A token is
# "plain" when it is one character that is not structural, or a command that is a symbol.
_STRUCTURAL_CHARS = frozenset("{}^_$~%#\\")
_NON_PLAIN_COMMANDS = (
    set(ALIASES)
    | DROPPED_TOKENS
    | set(DROPPED_WITH_ARGUMENT)
    | set(PLAIN_TEX_ENVIRONMENTS)
    | TEXT_ACCENTS
    | DROPPED_WITH_DIMENSION
    | UNWRAPPED_COMMANDS
    | set(SWITCH_COMMANDS)
    | set(INFIX_COMMANDS)
    | set(ARG_COMMANDS)
    | {"\\left", "\\right", "\\atop", "\\\\"}
)
_PLAIN_COMMAND = re.compile(r"\\[A-Za-z]+")
_plain_cache: dict[str, bool] = {}


def _is_plain(token: str) -> bool:
    known = _plain_cache.get(token)
    if known is None:
        if len(token) == 1:
            known = token not in _STRUCTURAL_CHARS and not token.isspace()
        else:
            known = (token in CONTROL_SYMBOLS and token != "\\\\") or (
                _PLAIN_COMMAND.fullmatch(token) is not None and token not in _NON_PLAIN_COMMANDS
            )
        if len(_plain_cache) < 100_000:
            _plain_cache[token] = known
    return known


def _fast_path(tokens: list[str]) -> bool:
    """True when the token list is already canonical: plain tokens, braced scripts, balanced."""
    depth = 0
    expect_brace = False
    for token in tokens:
        if expect_brace:
            if token != "{":
                return False
            expect_brace = False
            depth += 1
        elif token == "^" or token == "_":
            expect_brace = True
        elif token == "}":
            depth -= 1
            if depth < 0:
                return False
        elif token == "{" or not _is_plain(token):
            return False  # bare groups and anything structural go through the parser
    return depth == 0 and not expect_brace


def tokenize_latex(raw: str) -> str:
    """Raw LaTeX in, the space-separated caption convention out (see the module docstring).

    Raises :class:`LatexError` (with a ``reason`` slug) for input that cannot be tokenised:
    unbalanced braces or environments, a script or command without its argument, unknown
    environments, unsupported control sequences.
    """
    tokens = raw.split()
    if _fast_path(tokens):
        return " ".join(tokens)
    return " ".join(format_tokens(parse_latex(raw)))


def is_canonical(text: str) -> bool:
    """Whether ``text`` is exactly in the tokenised convention (tokenising it changes nothing)."""
    try:
        return tokenize_latex(text) == text
    except LatexError:
        return False


# --------------------------------------------------------------------------- #
# The optional normalised form
# --------------------------------------------------------------------------- #

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


def main(argv: list[str] | None = None) -> int:
    """``python -m data_prep.latex [FORMULA ...]``: tokenise formulas (or stdin, one per line)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("formulas", nargs="*", help="raw LaTeX formulas (default: read stdin lines)")
    parser.add_argument("--normalize", action="store_true", help="print normalize_equivalent() instead")
    args = parser.parse_args(argv)
    lines = args.formulas or sys.stdin.read().split("\n")
    failures = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            tokens = tokenize_latex(line)
        except LatexError as err:
            failures += 1
            print(f"line {number}: {err}", file=sys.stderr)
            continue
        print(normalize_equivalent(tokens) if args.normalize else tokens)
    if failures:
        print(f"{failures} formula(s) could not be tokenised", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
