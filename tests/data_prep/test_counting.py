"""Symbol counting as the reference writes it: its published examples byte for byte, parse_counts,
no refusals, every real caption."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from data_prep.contract import TASK_COUNTING, extract_latex, prompt_for
from data_prep.tasks import TaskError, count_symbols
from data_prep.tasks.counting import parse_counts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "unimumer_tree"


def test_published_examples_byte_for_byte():
    records = json.loads((FIXTURES / "sample_can.json").read_text(encoding="utf-8"))
    assert len(records) == 2
    for record in records:
        prompt, answer = (m["value"] for m in record["messages"])
        assert prompt == "<image>" + prompt_for(TASK_COUNTING)
        assert count_symbols(answer.rsplit("\n", 1)[1]) == answer


def test_field_notes_example_exactly():
    latex = "\\frac { a ^ { 2 } + 1 } { b }"
    answer = count_symbols(latex)
    assert answer == "\\frac: 1, a: 1, ^: 1, 2: 1, +: 1, 1: 1, b: 1\n" + latex
    assert parse_counts(answer) == {"\\frac": 1, "a": 1, "^": 1, "2": 1, "+": 1, "1": 1, "b": 1}


def test_order_of_first_appearance_and_repeats():
    answer = count_symbols("x , y : x ^ { 2 } , x")
    assert answer.split("\n")[0] == "x: 3, ,: 2, y: 1, :: 1, ^: 1, 2: 1"
    assert list(parse_counts(answer).items()) == [("x", 3), (",", 2), ("y", 1), (":", 1), ("^", 1), ("2", 1)]


@pytest.mark.parametrize(
    ("latex", "answer"),
    [
        ("x^2", "x^2: 1\nx^2"),  # not tokenised: counted as the reference counts it, one token
        ("{ }", "\n{ }"),
        (
            "\\begin {cases} x \\end {cases}",
            "\\begin: 1, {cases}: 2, x: 1, \\end: 1\n\\begin {cases} x \\end {cases}",
        ),
        ("  x   +\ty ", "x: 1, +: 1, y: 1\n  x   +\ty "),  # the LaTeX line as given, like the reference
    ],
)
def test_never_refused(latex, answer):
    assert count_symbols(latex) == answer


@pytest.mark.parametrize("line", ["", "a 1", "a: 1,", "a: 1, ", "a: 1, a: 2", "a: x", "a:1"])
def test_malformed_counts(line):
    with pytest.raises(TaskError) as info:
        parse_counts(f"{line}\nx")
    assert info.value.reason == "malformed_counts"


def test_every_real_caption(shared_data):
    """Counts agree with the tokens of every CROHME train and HME100K caption; LaTeX is last."""
    for name in ("crohme/crohme_train_caption_wap.txt", "hme100k/train/train_labels.txt"):
        for line in filter(str.strip, (shared_data / name).read_text(encoding="utf-8").split("\n")):
            caption = line.split("\t", 1)[1]
            answer = count_symbols(caption)
            assert extract_latex(answer) == caption
            expected = collections.Counter(t for t in caption.split() if t not in "{}")
            assert parse_counts(answer) == dict(expected)
            assert list(parse_counts(answer)) == list(
                dict.fromkeys(t for t in caption.split() if t not in "{}")
            )


def test_published_ground_truths_get_the_reference_counts():
    published = FIXTURES.parent / "published"
    expected = json.loads((published / "reference_answers.json").read_text(encoding="utf-8"))
    for line in (published / "ground_truths.txt").read_text(encoding="utf-8").splitlines():
        name, latex = line.split("\t", 1)
        assert count_symbols(latex) == expected[name]["counting"]["answer"], name
