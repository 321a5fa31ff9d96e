"""The LaTeX tokeniser: the caption convention, idempotency on real captions, raw im2latex."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.latex import (
    ARG_COMMANDS,
    LatexError,
    format_tokens,
    has_cjk,
    is_canonical,
    is_tokenised,
    main,
    normalize_equivalent,
    parse_latex,
    tokenize_latex,
)

CAPTION_FILES = (
    "crohme/crohme_train_caption_wap.txt",
    "crohme/crohme2014_test_caption_wap.txt",
    "crohme/crohme2014_test_caption_comer.txt",
    "hme100k/train/train_labels.txt",
)


def read_captions(path: Path) -> dict[str, str]:
    """``NAME<TAB>tokens`` lines (CROHME and HME100K caption files) as {name: caption}."""
    lines = path.read_text(encoding="utf-8").split("\n")
    return dict(line.split("\t", 1) for line in lines if line.strip())


@pytest.fixture(scope="module")
def captions(shared_data) -> dict[str, list[str]]:
    return {name: list(read_captions(shared_data / name).values()) for name in CAPTION_FILES}


@pytest.mark.parametrize(
    ("raw", "tokens"),
    [
        ("x^2", "x ^ { 2 }"),
        ("\\frac12", "\\frac { 1 } { 2 }"),
        ("\\sqrt[3]x", "\\sqrt [ 3 ] { x }"),
        ("123xy", "1 2 3 x y"),
        ("\\alpha\\beta+\\sin x", "\\alpha \\beta + \\sin x"),
        ("x_1^2", "x _ { 1 } ^ { 2 }"),
        ("x^12", "x ^ { 1 } 2"),  # TeX takes one character as an unbraced script
        ("\\left(x\\right)", "\\left ( x \\right )"),
        ("\\left\\lbrace x\\right.", "\\left \\{ x \\right ."),
        ("$a\\,b\\;c\\quad d\\!e~f\\ g$", "a b c d e f g"),
        ("\\displaystyle\\int_a^b f", "\\int _ { a } ^ { b } f"),
        ("\\mathrm{d}x", "d x"),
        ("\\text{if } x>0", "i f x > 0"),
        ("\\operatorname*{arg\\,max}_x", "a r g m a x _ { x }"),
        ("\\mathbb{R}^n", "\\mathbb { R } ^ { n }"),
        ("{\\cal L}_a", "\\mathcal { L } _ { a }"),
        ("{a\\over b+c}", "\\frac { a } { b + c }"),
        ("{n\\choose k}", "\\binom { n } { k }"),
        ("\\le\\ge\\ne\\to", "\\leq \\geq \\neq \\rightarrow"),
        ("\\hat N_3\\sp2", "\\hat { N } _ { 3 } ^ { 2 }"),
        ("\\sum\\limits_{i=1}^n", "\\sum \\limits _ { i = 1 } ^ { n }"),
        ("x \\label{eq:1}\\nonumber", "x"),
        ("\\kern3pt x\\hspace{1cm}y", "x y"),
        ("\\big( x \\Bigr]", "( x ]"),
        ("f'(x)", "f ' ( x )"),
        ("\\xrightarrow[a]{b}", "\\xrightarrow [ a ] { b }"),
        ("\\textcircled{1}", "\\textcircled { 1 }"),
        ("x % a comment\n+1", "x + 1"),
        ("{}^{14}C", "^ { 1 4 } C"),
        ("\\begin{array}{l}x=1\\\\y=2\\end{array}", "\\begin {array} {l} x = 1 \\\\ y = 2 \\end {array}"),
        (
            "\\begin { array } { c|c } a&b\\\\[2pt]c&d \\end {array}",
            "\\begin {array} {c|c} a & b \\\\ c & d \\end {array}",
        ),
        ("\\begin{cases}x&1\\\\y&2\\end{cases}", "\\begin {cases} x & 1 \\\\ y & 2 \\end {cases}"),
        ("\\pmatrix{a&b\\cr c&d}", "\\begin {pmatrix} a & b \\\\ c & d \\end {pmatrix}"),
        ("5、\\frac{3}{7}", "5 、 \\frac { 3 } { 7 }"),
    ],
)
def test_tokenize_examples(raw, tokens):
    assert tokenize_latex(raw) == tokens
    assert tokenize_latex(tokens) == tokens  # idempotent
    assert is_canonical(tokens)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("x^", "missing_argument"),
        ("\\frac{1}", "missing_argument"),
        ("x^}", "missing_argument"),
        ("{x", "unbalanced_braces"),
        ("x}", "unbalanced_braces"),
        ("\\sqrt[3 x", "unbalanced_braces"),
        ("a\\", "dangling_backslash"),
        ("\\begin{foo}x\\end{foo}", "unknown_environment"),
        ("\\begin{array}{l}x", "unterminated_environment"),
        ("\\begin{array}x\\end{array}", "missing_argument"),
        ("\\begin{matrix}x\\end{cases}", "mismatched_environment"),
        ("x\\end{array}", "unbalanced_environment"),
        ("a\\over b\\over c", "ambiguous_over"),
        ("\\'e", "unsupported_syntax"),
        ("\\d{x}", "unsupported_syntax"),
        ("{a\\atop b}", "unsupported_syntax"),
        ("#1", "unsupported_syntax"),
        ("\\left x^2", "missing_delimiter"),
        ("x\\right", "missing_delimiter"),
    ],
)
def test_tokenize_errors_have_reasons(raw, reason):
    with pytest.raises(LatexError) as info:
        tokenize_latex(raw)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("x ^ 2", "unbraced_script"),
        ("\\frac 1 { 2 }", "unbraced_argument"),
        ("{ x }", "non_canonical"),
        ("x \\le y", "non_canonical"),
        ("\\mathrm { d } x", "non_canonical"),
        ("a \\, b", "non_canonical"),
    ],
)
def test_strict_parse_accepts_only_the_convention(text, reason):
    with pytest.raises(LatexError) as info:
        parse_latex(text, strict=True)
    assert info.value.reason == reason
    assert tokenize_latex(text) == text  # already tokenised: kept as written all the same


def test_every_command_with_arguments_is_braced():
    for name, (has_optional, count) in ARG_COMMANDS.items():
        raw = name + ("[n]" if has_optional else "") + " " + "x" * count + "2"  # "xx2": raw, not tokens
        expected = [name] + (["[", "n", "]"] if has_optional else []) + ["{", "x", "}"] * count + ["2"]
        assert tokenize_latex(raw).split() == expected


def test_every_real_caption_is_unchanged(captions):
    """Every CROHME (train, both 2014 test editions) and HME100K caption comes back byte for byte."""
    for name, caps in captions.items():
        changed = [c for c in caps if tokenize_latex(c) != c]
        assert not changed, f"{name}: {len(changed)} of {len(caps)} changed, e.g. {changed[:3]}"
        strict = [c for c in caps if " ".join(format_tokens(parse_latex(c, strict=True))) != c]
        assert not strict, f"{name}: strict parse differs for {strict[:3]}"
    assert sum(len(c) for c in captions.values()) == 8835 + 986 + 986 + 346


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPO = Path(__file__).resolve().parents[2]


def _bundled_ground_truths() -> dict[str, list[str]]:
    """Every published answer bundled in the repository (samples/ and tests/fixtures)."""
    found: dict[str, list[str]] = {}
    for path in [
        *sorted((REPO / "samples").rglob("caption*.txt")),
        FIXTURES / "published" / "ground_truths.txt",
    ]:
        found[str(path.relative_to(REPO))] = list(read_captions(path).values())
    for path in sorted((FIXTURES / "scoring").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data if isinstance(data, list) else list(data.values())
        found[str(path.relative_to(REPO))] = [item["gt"] for item in items]
    for path in sorted((FIXTURES / "unimumer_tree").glob("*.json")):
        answers = [r["messages"][1]["value"] for r in json.loads(path.read_text(encoding="utf-8"))]
        # the LaTeX is the last line (the whole answer of sample_input.json's main-task records)
        found[str(path.relative_to(REPO))] = [a.rsplit("\n", 1)[-1] for a in answers]
    return found


def test_every_bundled_ground_truth_is_unchanged():
    found = _bundled_ground_truths()
    assert sum(map(len, found.values())) >= 48 + 48 + 16 + 9 + 6 + 4
    for name, truths in found.items():
        for truth in truths:
            assert is_tokenised(truth), (name, truth)
            assert tokenize_latex(truth) == truth, (name, truth)


@pytest.mark.parametrize(
    "caption",
    [
        "x \\le y \\ge z \\ne 0",  # no aliasing (\\le stays \\le, ...)
        "1 , 2 , \\dots , n",
        "( { a } ) ^ { 2 }",  # bare groups stay
        "[ x ] { + } [ y ]",
        "y = \\begin {cases} 1 & x < 0 \\\\ 2 & x \\geq 0 \\end {cases}",  # no environment rewrite
        "\\begin{array}{l} x \\\\ y \\end{array}",
        "x ^ 2",  # unbraced script, as published
        "- \\frac 1 { 1 9 2 }",
        "x ^ { 2 = y",  # broken braces, as published
        "\\mathrm { a d v } \\displaystyle",
        "\\sum \\limits _ { i } \\textcircled { 1 } \\not =",
        "x = \\frac { 9 9 } { 1 9 } \u3002",
        "\\\\ x",  # a row break token
    ],
)
def test_tokenised_captions_pass_through(caption):
    assert is_tokenised(caption)
    assert tokenize_latex(caption) == caption
    spaced = "  " + caption.replace(" ", "   ") + " "
    assert tokenize_latex(spaced) == spaced  # verbatim, whitespace included: the published string


@pytest.mark.parametrize(
    ("raw", "tokens"),
    [
        ("x^2", "x ^ { 2 }"),
        ("12", "1 2"),
        ("x \\le 12", "x \\leq 1 2"),  # one piece is not a token: the whole formula is raw
        ("\\frac{a}{b} + c", "\\frac { a } { b } + c"),
        ("\\begin{cases}x\\end{cases}", "\\begin {cases} x \\end {cases}"),
        ("{cases} x", "c a s e s x"),  # a name token only after \\begin / \\end
    ],
)
def test_raw_latex_is_still_tokenised(raw, tokens):
    assert not is_tokenised(raw)
    assert tokenize_latex(raw) == tokens


def test_is_tokenised_edge_cases():
    assert not is_tokenised("")
    assert not is_tokenised("   ")
    assert not is_tokenised("a \\")  # a lone backslash is not a token
    assert is_tokenised("\\begin {array} {c|c} a \\end {array}")


def test_command_line_prints_a_tokenised_line_unchanged():
    line = "y = \\begin {cases} 1 & x \\le 0 \\\\ { 2 } & x \\dots \\end {cases} ^ 2"
    done = subprocess.run(
        [sys.executable, "-m", "data_prep.latex"],
        input=line + "\nx^2\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert done.stdout == line + "\nx ^ { 2 }\n"


def test_fast_path_agrees_with_the_parser(captions):
    for caps in captions.values():
        for caption in caps:
            assert " ".join(format_tokens(parse_latex(caption))) == tokenize_latex(caption)


def test_raw_im2latex_formulas(shared_data):
    """Raw formulas (split on "\\n" only) tokenise, idempotently, or fail with a counted reason."""
    path = shared_data / "im2latex/im2markup_sample/formulas.lst"
    formulas = path.read_bytes().decode("utf-8").split("\n")
    failures: collections.Counter[str] = collections.Counter()
    tokenised = 0
    for formula in filter(str.strip, formulas):
        try:
            tokens = tokenize_latex(formula)
        except LatexError as err:
            failures[err.reason] += 1
            continue
        tokenised += 1
        assert tokenize_latex(tokens) == tokens
        assert "$" not in tokens.split() and "\\label" not in tokens and "\\," not in tokens
        # digits and letters are single tokens
        pieces = tokens.split()
        assert all(
            len(t) == 1 or t.startswith("\\") or (k and pieces[k - 1] in ("\\begin", "\\end", "{array}"))
            for k, t in enumerate(pieces)
        ), tokens
    # 1,197 non-empty lines: 4 use \atop or author macros (\d, \c, \b); 2 end in a lone "\".
    assert tokenised == 1191
    assert failures == {"unsupported_syntax": 4, "dangling_backslash": 2}


@pytest.mark.parametrize(
    ("tokens", "normalised"),
    [
        ("\\left ( x \\right )", "( x )"),
        ("\\left \\{ x \\right .", "\\{ x"),
        ("\\sum \\limits _ { i } \\lim \\nolimits _ { n }", "\\sum _ { i } \\lim _ { n }"),
        ("\\dfrac { a } { b }", "\\frac { a } { b }"),
        ("x ^ { 2 } _ { 1 }", "x _ { 1 } ^ { 2 }"),
        ("f ^ { \\prime \\prime } ( x )", "f ' ' ( x )"),
        ("a \\not = b \\not \\in C", "a \\neq b \\notin C"),
        ("\\vert x \\vert \\le y", "| x | \\leq y"),
        ("{ x } ^ { { 2 } }", "x ^ { 2 }"),
        ("x ^ { 2 } _ { 1 } ^ { 3 }", "x ^ { 2 } _ { 1 } ^ { 3 }"),  # a double script is left alone
        ("x ^ { \\left (", "x ^ { ("),  # broken: token-level substitutions only, never an error
    ],
)
def test_normalize_equivalent(tokens, normalised):
    assert normalize_equivalent(tokens) == normalised
    assert normalize_equivalent(normalised) == normalised


def test_normalize_equivalent_reconciles_caption_editions(shared_data):
    """The 2014 WAP and CoMER editions differ on 85 lines, mostly \\limits; normalised, on 6 that
    are real label corrections (e.g. ``\\pi`` vs ``\\Pi``, a misplaced brace)."""
    wap = read_captions(shared_data / "crohme/crohme2014_test_caption_wap.txt")
    comer = read_captions(shared_data / "crohme/crohme2014_test_caption_comer.txt")
    assert wap.keys() == comer.keys()
    assert sum(wap[k] != comer[k] for k in wap) == 85
    differ = [k for k in wap if normalize_equivalent(wap[k]) != normalize_equivalent(comer[k])]
    assert len(differ) == 6


def test_has_cjk(shared_data):
    assert has_cjk("5 、 \\frac { 3 } { 7 }")
    assert has_cjk("解 : x = 1")
    assert has_cjk("ｘ")  # full-width form
    assert not has_cjk("\\alpha + x ^ { 2 } = é")
    labels = read_captions(shared_data / "hme100k/train/train_labels.txt")
    assert sum(has_cjk(label) for label in labels.values()) == 2


def test_command_line_reports_failures(capsys):
    assert main(["\\frac12", "x^", "\\left(x\\right)"]) == 1
    out, err = capsys.readouterr()
    assert out.split("\n") == ["\\frac { 1 } { 2 }", "\\left ( x \\right )", ""]
    assert "line 2: missing_argument" in err and "1 formula(s)" in err
    assert main(["--normalize", "\\left(x\\right)"]) == 0
    assert capsys.readouterr().out == "( x )\n"


def test_deeply_nested_latex_is_an_error_not_a_crash():
    """Groups nested thousands of levels deep (a degenerate prediction) raise LatexError
    (``too_deep``), which readers count as a reject; the normalised form never raises."""
    with pytest.raises(LatexError) as info:
        tokenize_latex("x^{" * 2000 + "2" + "}" * 2000)
    assert info.value.reason == "too_deep"
    deep = "x ^ { " * 2000 + "2" + " }" * 2000
    assert normalize_equivalent(deep).split() == deep.split()
