"""The opt-in structural Tree-CoT style: round trips from the tree lines alone, refusals, recipe key."""

from __future__ import annotations

import collections

import pytest

from data_prep.contract import TASK_TREE_COT, extract_latex, main_record
from data_prep.tasks import TaskError, TreeError, aux_task_builder
from data_prep.tasks.structural_tree import build_structural_tree_cot as build_tree_cot
from data_prep.tasks.structural_tree import build_tree, parse_tree, tree_to_latex

CAPTION_FILES = (
    "crohme/crohme_train_caption_wap.txt",
    "crohme/crohme2014_test_caption_wap.txt",
    "crohme/crohme2014_test_caption_comer.txt",
    "hme100k/train/train_labels.txt",
)


def test_field_notes_example_exactly():
    latex = "\\frac { a ^ { 2 } + 1 } { b }"
    expected = "\\frac\n\ta (above)\n\t\t2 (sup)\n\t+ (right)\n\t1 (right)\n\tb (below)\n" + latex
    assert build_tree_cot(latex) == expected
    assert tree_to_latex(expected) == latex


@pytest.mark.parametrize(
    ("latex", "tree"),
    [
        ("a + b", ["a", "+ (right)", "b (right)"]),
        ("x _ { 1 } ^ { 2 }", ["x", "\t1 (sub)", "\t2 (sup)"]),
        (
            "\\sum _ { i = 1 } ^ { n } x",
            ["\\sum", "\ti (below)", "\t= (right)", "\t1 (right)", "\tn (above)", "x (right)"],
        ),
        ("\\lim \\limits _ { n }", ["\\lim \\limits", "\tn (below)"]),
        ("\\max _ { n }", ["\\max", "\tn (sub)"]),  # not one of the FIELD_NOTES limit operators
        ("\\sqrt [ 3 ] { x } ^ { 2 }", ["\\sqrt", "\t3 (below)", "\tx (above)", "\t2 (sup)"]),
        ("\\left ( x \\right ) ^ { 2 }", ["\\left (", "x (right)", "\\right ) (right)", "\t2 (sup)"]),
        ("a \\not = b", ["a", "\\not = (right)", "b (right)"]),
        ("\\hat { a } \\underline { b }", ["\\hat", "\ta (above)", "\\underline (right)", "\tb (below)"]),
        ("\\textcircled { 1 }", ["\\textcircled", "\t1 (inside)"]),
        ("\\overset { a } { = }", ["\\overset", "\ta (above)", "\t= (inside)"]),
        (
            "\\begin {array} {l} x \\\\ y & z \\end {array}",
            [
                "\\begin{array}{l}",
                "\tx (begin_array)",
                "\t\\\\ (right)",
                "\ty (nextline)",
                "\t& (right)",
                "\tz (right)",
                "\t\\end{array} (end_array)",
            ],
        ),
        ("\\begin {matrix} \\end {matrix}", ["\\begin{matrix}", "\t\\end{matrix} (end_matrix)"]),
        ("( x", ["(", "x (right)"]),
    ],
)
def test_documented_choices(latex, tree):
    assert build_tree(latex) == tree
    answer = build_tree_cot(latex)
    assert answer.split("\n") == [*tree, latex]
    assert tree_to_latex("\n".join(tree), with_latex_line=False) == latex


def test_tree_lines_alone_rebuild_the_latex():
    """The LaTeX line is ignored: corrupting it changes nothing, corrupting a node does."""
    answer = build_tree_cot("\\int _ { 0 } ^ { 1 } x d x")
    lines = answer.split("\n")
    assert tree_to_latex("\n".join([*lines[:-1], "garbage"])) == lines[-1]
    changed = "\n".join([*lines[:-1], ""]).replace("\t1 (above)", "\t2 (above)")
    assert tree_to_latex(changed, with_latex_line=False) == "\\int _ { 0 } ^ { 2 } x d x"


@pytest.mark.parametrize(
    ("latex", "reason"),
    [
        ("\\frac { a } { b", "unbalanced_braces"),
        ("x ^ 2", "unbraced_script"),
        ("\\frac 1 { 2 }", "unbraced_argument"),
        ("\\begin {foo} x \\end {foo}", "unknown_environment"),
        ("\\begin{cases} x \\end{cases}", "non_canonical"),  # the environment name is a token
        ("x ^ { }", "empty_group"),
        ("\\sqrt [ ] { x }", "empty_group"),
        ("^ { 2 } x", "script_without_base"),
        ("x \\le y", "non_canonical"),
        ("", "empty_tree"),
    ],
)
def test_captions_without_a_faithful_tree_are_refused(latex, reason):
    with pytest.raises(TreeError) as info:
        build_tree_cot(latex)
    assert info.value.reason == reason
    assert isinstance(info.value, TaskError)


@pytest.mark.parametrize(
    ("tree", "reason"),
    [
        ("a\nb", "missing_relation"),
        ("\ta", "bad_root"),
        ("a\n\t\tb (sup)", "bad_depth"),
        ("a\n\tb (right)", "bad_depth"),
        ("a\nb (nextline)", "bad_relation"),
        ("\\\\\nb (right)", "bad_relation"),
        ("a\n\tb (wobble)", "missing_relation"),  # an unknown relation reads as part of the label
        ("a\n\tb\tc (sup)", "bad_line"),
        ("a\n\t b (sup)", "bad_line"),
        ("\\frac\n\ta (above)", "bad_arguments"),
        ("\\frac\n\ta (below)\n\tb (above)", "bad_arguments"),
        ("x\n\t2 (above)", "bad_relation"),
        ("x y", "bad_label"),
        ("\\begin{array}{l}\n\tx (begin_array)", "bad_environment"),
        ("{", "bad_tree"),
    ],
)
def test_bad_tree_text_is_refused(tree, reason):
    with pytest.raises(TreeError) as info:
        tree_to_latex(tree, with_latex_line=False)
    assert info.value.reason == reason


def test_parse_tree_structure():
    roots = parse_tree(build_tree("\\frac { a ^ { 2 } + 1 } { b } = c"))
    assert [node.label for node in roots] == ["\\frac", "=", "c"]
    assert [(relation, [n.label for n in group]) for relation, group in roots[0].children] == [
        ("above", ["a", "+", "1"]),
        ("below", ["b"]),
    ]


def test_round_trip_on_every_real_caption(shared_data):
    """Every CROHME and HME100K caption parses and its tree alone rebuilds it token for token."""
    failures: collections.Counter[str] = collections.Counter()
    total = 0
    for name in CAPTION_FILES:
        lines = (shared_data / name).read_text(encoding="utf-8").split("\n")
        for line in filter(str.strip, lines):
            caption = line.split("\t", 1)[1]
            total += 1
            try:
                answer = build_tree_cot(caption)
            except TreeError as err:
                failures[err.reason] += 1
                continue
            assert extract_latex(answer) == caption
            assert tree_to_latex(answer) == caption
            assert all(line.strip() for line in answer.split("\n"))
    assert total == 8835 + 986 + 986 + 346
    assert not failures, failures


def test_structural_style_is_opt_in_per_recipe_key():
    record = main_record("crohme/x", "crohme", "train", None, "\\textcircled { 1 } ^ { 2 }")
    structural = aux_task_builder(TASK_TREE_COT, "structural")(record)
    assert structural.answer == "\\textcircled\n\t1 (inside)\n\t2 (sup)\n\\textcircled { 1 } ^ { 2 }"
    assert tree_to_latex(structural.answer) == record.latex
    reference = aux_task_builder(TASK_TREE_COT)(record)  # the default: the reference's tokens chain
    assert reference.answer.split("\n")[:3] == ["\\textcircled", "{ (right)", "1 (right)"]
    bad = main_record("hme/7", "hme100k", "train", None, "x ^ { }")
    with pytest.raises(TreeError, match="hme/7") as info:
        aux_task_builder(TASK_TREE_COT, "structural")(bad)
    assert info.value.reason == "empty_group"
    with pytest.raises(ValueError, match="unknown tree_cot style"):
        aux_task_builder(TASK_TREE_COT, "fancy")


def test_deeply_nested_caption_is_refused_not_a_crash():
    with pytest.raises(TreeError) as info:
        build_tree_cot("x ^ { " * 2000 + "2" + " }" * 2000)
    assert info.value.reason == "too_deep"
