"""The tokeniser's vocabulary: which commands take arguments, which are dropped, unwrapped,
aliased, and which environments and delimiters exist (tables only, no code)."""

from __future__ import annotations

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
