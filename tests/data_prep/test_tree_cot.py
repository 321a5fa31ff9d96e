"""Tree-CoT in the reference's serialisation: its published examples byte for byte, its rules,
its skips, and a property over every real caption (the tree's labels are the formula's tokens)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from data_prep.contract import TASK_COUNTING, TASK_MAIN, TASK_TREE_COT, main_record, prompt_for
from data_prep.tasks import AUX_TASK_BUILDERS, TaskError, build_tree_cot
from data_prep.tasks.tree_cot import SKIP_REASONS, tree_lines

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "unimumer_tree"
CAPTION_FILES = (
    "crohme/crohme_train_caption_wap.txt",
    "crohme/crohme2014_test_caption_wap.txt",
    "crohme/crohme2014_test_caption_comer.txt",
    "hme100k/train/train_labels.txt",
)
_LINE = re.compile(r"(\t*)(\S+)(?: \(([a-z_A-Z*]+)\))?")


def _published(name: str) -> list[tuple[str, str, str]]:
    """(prompt, LaTeX, answer) of each record of a published example file."""
    records = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return [
        (r["messages"][0]["value"], r["messages"][1]["value"].rsplit("\n", 1)[1], r["messages"][1]["value"])
        for r in records
    ]


def test_published_examples_byte_for_byte():
    examples = _published("sample_tree.json")
    assert len(examples) == 2
    for prompt, latex, answer in examples:
        assert build_tree_cot(latex) == answer
        assert prompt == "<image>" + prompt_for(TASK_TREE_COT)


@pytest.mark.parametrize(
    ("latex", "tree"),
    [
        # \limits is a plain token: the script goes to it, not to the operator.
        ("\\sum \\limits _ { i } x", ["\\sum", "\\limits (right)", "\ti (sub)", "x (right)"]),
        ("\\sum _ { i } ^ { n } x", ["\\sum", "\ti (below)", "\tn (above)", "x (right)"]),
        # Wrappers the reference does not know are tokens; their braces are siblings.
        ("\\textcircled { 1 }", ["\\textcircled", "{ (right)", "1 (right)", "} (right)"]),
        ("\\boxed { x } ^ { 2 }", ["\\boxed", "{ (right)", "x (right)", "} (right)", "\t2 (sup)"]),
        ("a \\not = b", ["a", "\\not (right)", "= (right)", "b (right)"]),
        # A script after an argument group belongs to nothing: it and its braces are siblings.
        (
            "\\frac { a } { b } ^ { 2 }",
            ["\\frac", "\ta (above)", "\tb (below)", "^ (right)", "{ (right)", "2 (right)", "} (right)"],
        ),
        (
            "\\sqrt { x } _ { 1 }",
            ["\\sqrt", "\tx (above)", "_ (right)", "{ (right)", "1 (right)", "} (right)"],
        ),
        # _ is looked for before ^: a _ after a ^ is not attached.
        ("x _ { 1 } ^ { 2 }", ["x", "\t1 (sub)", "\t2 (sup)"]),
        ("x ^ { 2 } _ { 1 }", ["x", "\t2 (sup)", "_ (right)", "{ (right)", "1 (right)", "} (right)"]),
        # The token right before a script takes it, ")" and "}" included.
        ("( a ) ^ { 2 }", ["(", "a (right)", ") (right)", "\t2 (sup)"]),
        ("\\sqrt [ 3 ] { x }", ["\\sqrt", "\t3 (below)", "\tx (above)"]),
        ("\\left ( x \\right )", ["\\left", "( (right)", "x (right)", "\\right (right)", ") (right)"]),
        # Each row break puts the next token one level deeper; \\ itself is not a node.
        ("a \\\\ b \\\\ c", ["a", "\tb (nextline)", "\t\tc (nextline)"]),
        ("x ^ { }", ["x"]),  # an empty group writes nothing
        # A group that never closes spans up to the last token, and its "{" stays in the chain.
        (
            "x ^ { 2 + y",
            ["x", "\t2 (sup)", "\t+ (right)", "{ (right)", "2 (right)", "+ (right)", "y (right)"],
        ),
        # An environment is written "\begin {ENV}": a one-token "\begin{ENV}" is an ordinary token.
        ("\\begin{cases} x \\end{cases}", ["\\begin{cases}", "x (right)", "\\end{cases} (right)"]),
        ("", []),
    ],
)
def test_reference_rules(latex, tree):
    assert tree_lines(latex) == tree
    assert build_tree_cot(latex) == "\n".join(tree) + "\n" + latex


def test_environment_nesting_and_names():
    latex = "\\begin {matrix} a \\begin {matrix} b \\end {matrix} \\end {matrix} c"
    assert tree_lines(latex) == [
        "\\begin",
        "\ta (begin_matrix)",
        "\t\\begin (right)",
        "\t\tb (begin_matrix)",
        "\t\t\\end (end_matrix)",
        "\t\\end (end_matrix)",
        "c (right)",
    ]


@pytest.mark.parametrize(
    ("latex", "reason"),
    [
        ("x ^ 2", "unbraced_script"),
        ("x _", "unbraced_script"),
        ("\\sum _ i", "unbraced_script"),
        ("\\frac 1 { 2 }", "unbraced_argument"),
        ("\\frac { 1 } 2", "unbraced_argument"),
        ("\\sqrt x", "unbraced_argument"),
        ("\\sqrt [ 3 x", "unbraced_argument"),
        ("\\hat", "unbraced_argument"),
        ("a \\begin", "missing_environment_name"),
        ("\\begin {cases} x", "unterminated_environment"),
        ("\\begin {cases} x \\end {matrix}", "unterminated_environment"),
        ("\\frac { x ^ 2 } { 3 }", "unbraced_script"),  # inside a group too
    ],
)
def test_reference_skips(latex, reason):
    assert reason in SKIP_REASONS
    with pytest.raises(TaskError) as info:
        build_tree_cot(latex)
    assert info.value.reason == reason


def test_long_and_deep_formulas():
    """A long flat formula is answered (the reference, recursing per token, fails past about a
    thousand); groups nested thousands of levels deep are a counted skip, never a RecursionError."""
    flat = " ".join(["x", "+"] * 1000)
    assert build_tree_cot(flat).split("\n")[:3] == ["x", "+ (right)", "x (right)"]
    deep = "x ^ { " * 2000 + "2" + " }" * 2000
    with pytest.raises(TaskError) as info:
        build_tree_cot(deep)
    assert info.value.reason == "too_deep" and info.value.reason in SKIP_REASONS
    nested = "x ^ { " * 100 + "2" + " }" * 100  # deep enough for any published caption
    assert len(tree_lines(nested)) == 101


def _labels_are_the_tokens(latex: str) -> None:
    """The node labels, depth first, are the formula's tokens less only structural ones."""
    tokens = latex.split()
    labels = []
    for line in tree_lines(latex):
        match = _LINE.fullmatch(line)
        assert match, line
        labels.append(match.group(2))
    position = 0
    for label in labels:  # labels are a subsequence of the tokens ...
        while tokens[position] != label:
            # ... and what is skipped is grouping, a script mark, a row break or an environment name
            assert tokens[position] in ("{", "}", "[", "]", "^", "_", "\\\\") or (
                position and tokens[position - 1] in ("\\begin", "\\end")
            ), (latex, tokens[position])
            position += 1
        position += 1


def test_labels_are_the_tokens_on_every_real_caption(shared_data):
    total = 0
    for name in CAPTION_FILES:
        for line in filter(str.strip, (shared_data / name).read_text(encoding="utf-8").split("\n")):
            _labels_are_the_tokens(line.split("\t", 1)[1])
            total += 1
    assert total == 8835 + 986 + 986 + 346


def _balanced(latex: str, opening: str, closing: str) -> bool:
    depth = 0
    for token in latex.split():
        depth += (token == opening) - (token == closing)
        if depth < 0:
            return False
    return depth == 0


def test_labels_are_the_tokens_on_random_token_strings():
    rng = random.Random(7)
    alphabet = ["x", "1", "{", "}", "{", "}", "[", "]", "_", "^", "\\frac", "\\sqrt", "\\sum", "\\hat"]
    alphabet += ["\\begin", "\\end", "{cases}", "\\\\", "&", "(", ")"]
    checked = 0
    for _ in range(20000):
        latex = " ".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        if not (_balanced(latex, "{", "}") and _balanced(latex, "[", "]")):
            continue  # an unclosed group repeats its tokens in the tree (as in the reference)
        try:
            _labels_are_the_tokens(latex)
        except TaskError:
            continue
        checked += 1
    assert checked > 300


def test_registry_derives_records():
    record = main_record("crohme/x", "crohme", "train", b"png-bytes", "x ^ { 2 }", edition="wap")
    assert set(AUX_TASK_BUILDERS) == {TASK_TREE_COT, TASK_COUNTING}
    for task, builder in AUX_TASK_BUILDERS.items():
        derived = builder(record)
        assert derived.id == f"crohme/x#{task}"
        assert derived.task == task
        assert derived.prompt == prompt_for(task)
        assert (derived.image, derived.source, derived.split) == (b"png-bytes", "crohme", "train")
        assert derived.latex == record.latex
        assert derived.meta == {"edition": "wap"} and derived.meta is not record.meta
    assert AUX_TASK_BUILDERS[TASK_TREE_COT](record).answer == "x\n\t2 (sup)\nx ^ { 2 }"
    assert AUX_TASK_BUILDERS[TASK_COUNTING](record).answer == "x: 1, ^: 1, 2: 1\nx ^ { 2 }"


def test_registry_skips_name_the_record():
    bad = main_record("hme/7", "hme100k", "train", None, "x ^ 2")
    with pytest.raises(TaskError, match="hme/7") as info:
        AUX_TASK_BUILDERS[TASK_TREE_COT](bad)
    assert info.value.reason == "unbraced_script"
    derived = AUX_TASK_BUILDERS[TASK_COUNTING](main_record("a", "s", "train", None, "x"))
    assert derived.task == TASK_COUNTING != TASK_MAIN
    with pytest.raises(TaskError) as info:
        AUX_TASK_BUILDERS[TASK_TREE_COT](derived)
    assert info.value.reason == "not_main_task"


def test_cli_prints_one_json_object_a_line(tmp_path, capsys):
    from data_prep.tasks.__main__ import main

    captions = tmp_path / "caption.txt"
    captions.write_text("a\t\\frac { a } { b }\nb\tx ^ 2\n\nno tab here\n", encoding="utf-8")
    assert main(["tree_cot", str(captions)]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line) for line in out.splitlines()] == [
        {"id": "a", "answer": "\\frac\n\ta (above)\n\tb (below)\n\\frac { a } { b }"},
        {"id": "b", "skipped": "unbraced_script"},
        {"id": "line 4", "skipped": "malformed_line"},
    ]
    assert "1 answered, 2 skipped" in err
    assert main(["counting", str(captions)]) == 0
    assert json.loads(capsys.readouterr()[0].splitlines()[1]) == {
        "id": "b",
        "answer": "x: 1, ^: 1, 2: 1\nx ^ 2",
    }
    assert main(["counting", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read" in capsys.readouterr()[1]


def test_published_ground_truths_get_the_reference_answers():
    """Quirky published captions (unbraced arguments, broken braces, bare groups): the same answer
    or the same skip as the reference's code."""
    expected = json.loads(
        (FIXTURES.parent / "published" / "reference_answers.json").read_text(encoding="utf-8")
    )
    lines = (FIXTURES.parent / "published" / "ground_truths.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(expected) == 31
    for name, latex in (line.split("\t", 1) for line in lines):
        want = expected[name]["tree_cot"]
        if "skipped" in want:
            with pytest.raises(TaskError) as info:
                build_tree_cot(latex)
            assert info.value.reason == want["skipped"], name
        else:
            assert build_tree_cot(latex) == want["answer"], name
