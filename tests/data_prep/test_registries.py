"""The reader and task tables: a format or an auxiliary task added by one module and one registry
entry is usable by a data recipe, built, checked and described like the built-in ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from data_prep.build import build_dataset
from data_prep.build.recipe import RecipeError, parse_recipe
from data_prep.contract import PROMPT_PREFIX, TASK_MAIN, Record, extract_latex, main_record, prompt_for
from data_prep.dataset import load_split
from data_prep.readers import READERS, get_reader, reader_terms, register_reader, unregister_reader
from data_prep.readers.common import ReadCursor, start_reading
from data_prep.readers.registry import UNKNOWN_TERMS
from data_prep.rejects import Rejects
from data_prep.tasks import AUX_TASK_BUILDERS, TaskError
from data_prep.tasks.registry import Task, derived_tasks, register_task, scored_tasks, unregister_task

FORMULAS = ("x ^ { 2 }", "a + b", "\\frac { 1 } { 2 }", "y _ { 1 }")


def _image(text: str) -> Image.Image:
    image = Image.new("L", (96, 40), 255)
    ImageDraw.Draw(image).text((6, 12), text, fill=0)
    return image


def read_toy(
    root: Path, split: str, rejects: Rejects, *, count: int = 4, cursor: ReadCursor | None = None
) -> Iterator[Record]:
    """A throwaway format: ``count`` formulas drawn in memory (``root`` is not read)."""
    cursor, rejects = start_reading(cursor, rejects)
    for k, latex in enumerate(FORMULAS[:count]):
        cursor.passed += 1
        if cursor.passed <= cursor.skip:
            continue
        yield main_record(f"{split}-{k}", "toy", split, _image(latex), latex)


def reversed_answer(latex: str) -> str:
    """A throwaway auxiliary task: the tokens backwards, then the LaTeX."""
    tokens = latex.split()
    if len(tokens) < 2:
        raise TaskError("too_short", latex)
    return " ".join(reversed(tokens)) + "\n" + latex


@pytest.fixture
def toy_reader():
    register_reader("toy", read_toy, "toy data: made up by the test")
    yield
    unregister_reader("toy")


@pytest.fixture
def reversed_task():
    prompt = f"{PROMPT_PREFIX} Please write the formula's tokens backwards, then its LaTeX."
    register_task(Task("reversed", prompt, label="Reversed tokens", answer_builder=reversed_answer))
    yield prompt
    unregister_task("reversed")


def _recipe(tmp_path: Path, **source) -> dict:
    (tmp_path / "toy").mkdir(exist_ok=True)
    return {
        "output_dir": str(tmp_path / "out"),
        "train": [
            {"name": "toy", "reader": "toy", "root": str(tmp_path / "toy"), "split": "train", **source}
        ],
    }


def test_a_registered_reader_builds_and_its_terms_reach_the_card(tmp_path, toy_reader):
    assert get_reader("toy") is read_toy and "toy" in READERS
    out = build_dataset(parse_recipe(_recipe(tmp_path, options={"count": 3})), progress=False)
    rows = load_split(out, "train")
    assert sorted(rows["answer"]) == sorted(FORMULAS[:3])
    assert set(rows["task"]) == {TASK_MAIN}
    assert "toy data: made up by the test" in (out / "README.md").read_text()
    with pytest.raises(RecipeError, match="unknown option"):
        parse_recipe(_recipe(tmp_path, options={"colour": "red"}))


def test_an_unregistered_reader_is_refused_by_the_recipe(tmp_path):
    with pytest.raises(RecipeError, match="unknown reader 'toy'"):
        parse_recipe(_recipe(tmp_path))
    # Every built-in format states its terms for the dataset card (synthetic included).
    assert reader_terms("toy") == UNKNOWN_TERMS
    assert all(reader_terms(name) != UNKNOWN_TERMS for name in READERS)


def test_a_registered_task_is_built_checked_and_scored(tmp_path, toy_reader, reversed_task):
    assert "reversed" in derived_tasks() and "reversed" in scored_tasks()
    assert prompt_for("reversed") == reversed_task
    out = build_dataset(parse_recipe(_recipe(tmp_path, tasks={"reversed": 1.0})), progress=False)
    rows = [r for r in load_split(out, "train") if r["task"] == "reversed"]
    # "x ^ { 2 }" and the others have two or more tokens: all four give a record.
    assert len(rows) == 4 and {r["prompt"] for r in rows} == {reversed_task}
    assert sorted(extract_latex(r["answer"]) for r in rows) == sorted(FORMULAS)
    assert "reversed" in AUX_TASK_BUILDERS
    record = main_record("r", "toy", "train", None, "a")
    with pytest.raises(TaskError):
        AUX_TASK_BUILDERS["reversed"](record)


def test_an_unknown_task_is_refused_until_registered(tmp_path, toy_reader):
    with pytest.raises(RecipeError, match="unknown task"):
        parse_recipe(_recipe(tmp_path, tasks={"reversed": 1.0}))
