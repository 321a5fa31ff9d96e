"""Symbol counting: the FIELD_NOTES example, parse_counts, refusals, every real caption."""

from __future__ import annotations

import collections

import pytest

from data_prep.contract import extract_latex
from data_prep.tasks import TaskError
from data_prep.tasks.counting import count_symbols, parse_counts


def test_field_notes_example_exactly():
    latex = "\\frac { a ^ { 2 } + 1 } { b }"
    answer = count_symbols(latex)
    assert answer == "\\frac: 1, a: 1, ^: 1, 2: 1, +: 1, 1: 1, b: 1\n" + latex
    assert parse_counts(answer) == {"\\frac": 1, "a": 1, "^": 1, "2": 1, "+": 1, "1": 1, "b": 1}


def test_order_of_first_appearance_and_repeats():
    answer = count_symbols("x , y : x ^ { 2 } , x")
    assert answer.split("\n")[0] == "x: 3, ,: 2, y: 1, :: 1, ^: 1, 2: 1"
    assert list(parse_counts(answer).items()) == [("x", 3), (",", 2), ("y", 1), (":", 1), ("^", 1), ("2", 1)]


def test_whitespace_is_normalised():
    assert count_symbols("  x   +\ty ") == "x: 1, +: 1, y: 1\nx + y"


@pytest.mark.parametrize(
    ("latex", "reason"), [("x^2", "non_canonical"), ("{ }", "non_canonical"), ("  ", "empty")]
)
def test_refusals(latex, reason):
    with pytest.raises(TaskError) as info:
        count_symbols(latex)
    assert info.value.reason == reason


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
