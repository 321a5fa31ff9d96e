"""Issue 19, item 5: the shipped released-data test recipe builds each published test set once,
from the one file the reference scored, with its answers byte-equal to the file (unbalanced ones
included, counted in the report); a pattern matching two editions of one set is refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from data_prep.build import build_dataset
from data_prep.build.recipe import RecipeError, load_recipe, parse_recipe
from data_prep.contract import MAIN_PROMPT
from data_prep.dataset import load_split
from data_prep.readers import get_reader
from data_prep.rejects import Rejects

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "data" / "unimumer_released_test.yaml"

#: split name -> (data.zip folder, prompt file stem, image folder) as the recipe names them.
SETS = {
    "crohme2014": ("CROHME", "crohme_2014", "2014/images"),
    "crohme2016": ("CROHME", "crohme_2016", "2016/images"),
    "crohme2019": ("CROHME", "crohme_2019", "2019/images"),
    "crohme2023": ("CROHME2023", "crohme2023_test", "CROHME2023_test/images"),
    "hme100k": ("HME100K", "hme100k_test", "test/images"),
    "mathwriting": ("MathWriting", "mathwriting_test", "test/images"),
    "im2latexv2": ("Im2LaTeXv2", "im2latexv2_test", "test/images"),
    "mne_n1": ("MNE", "N1", "N1/images"),
    "mne_n2": ("MNE", "N2", "N2/images"),
    "mne_n3": ("MNE", "N3", "N3/images"),
}
#: CROHME2023-shaped: this many items, every third answer with unbalanced braces (609 of 2,300 in
#: the real file); ids as the reference names them.
CROHME2023_ITEMS = 12


def _image(path: Path, seed: int) -> None:
    """A small black-on-white "formula": strokes at places fixed by ``seed`` (no two alike)."""
    rng = np.random.default_rng(seed)
    image = Image.new("L", (96, 40), 255)
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = int(rng.integers(4, 60)), int(rng.integers(4, 20))
        draw.line(
            [(x0, y0), (x0 + int(rng.integers(10, 30)), y0 + int(rng.integers(5, 15)))], fill=0, width=3
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _answers(split: str, count: int) -> list[str]:
    if split == "crohme2023":
        # Published answers as the file has them: some with unbalanced braces, odd spacing kept.
        return [f"\\frac {{ {i} }} {{ x" if i % 3 == 0 else f"x ^ {{ {i} }}  +  y" for i in range(count)]
    return [f"{split[:3]} _ {{ {i} }}" for i in range(count)]


def _prompt_file(root: Path, split: str, stem: str, answers: list[str], seed: int) -> Path:
    folder, _, images = SETS[split]
    samples = []
    for i, answer in enumerate(answers):
        name = f"{stem}_{i}.jpg" if split != "crohme2023" else f"form_{i}_E{1200 + i}.jpg"
        _image(root / "data" / folder / images / name, seed * 1000 + i)
        samples.append(
            {
                "messages": [
                    {"role": "user", "content": f"<image>{MAIN_PROMPT}"},
                    {"role": "assistant", "content": answer},
                ],
                "images": [f"./data/{folder}/{images}/{name}"],
            }
        )
    path = root / "data" / folder / "prompts" / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(samples, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


@pytest.fixture()
def datazip(tmp_path: Path) -> tuple[Path, dict[str, list[str]]]:
    """A data.zip-layout folder holding every published set, plus the `_normalized` editions of
    HME100K and CROHME2023 beside the originals (as data.zip has them)."""
    root = tmp_path / "unimumer"
    published: dict[str, list[str]] = {}
    for seed, (split, (_, stem, _)) in enumerate(SETS.items(), start=1):
        count = CROHME2023_ITEMS if split == "crohme2023" else 3
        published[split] = _answers(split, count)
        _prompt_file(root, split, stem, published[split], seed)
    # The second editions: other answers, fewer items (must never be read for the plain sets).
    _prompt_file(root, "hme100k", "hme100k_test_normalized", ["z"] * 2, 90)
    _prompt_file(root, "crohme2023", "crohme2023_test_normalized", ["w"] * 5, 91)
    return root, published


def test_shipped_recipe_builds_each_published_set_once_with_its_answers_verbatim(datazip, tmp_path):
    root, published = datazip
    recipe = load_recipe(RECIPE)
    assert [s.name for s in recipe.test_sets] == list(SETS)
    assert all(s.answers == "published" for s in recipe.test_sets)
    recipe = dataclasses.replace(
        recipe, test_sets=tuple(dataclasses.replace(s, root=str(root)) for s in recipe.test_sets)
    )
    out = build_dataset(recipe, tmp_path / "out", progress=False)

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    rows_per_set = {}
    for split, answers in published.items():
        rows = load_split(out, split)
        rows_per_set[split] = len(rows)
        # Each set once, in file order, every answer byte-equal to the file's.
        assert rows["answer"] == answers, split
        assert len(set(rows["id"])) == len(answers)
        assert report["splits"][split]["rejected_input"]["total"] == 0
    assert rows_per_set == {s: (CROHME2023_ITEMS if s == "crohme2023" else 3) for s in SETS}
    kept = report["splits"]["crohme2023"]["published_answers_with_problems"]
    unbalanced = sum(1 for a in published["crohme2023"] if a.count("{") != a.count("}"))
    assert unbalanced == 4 and kept["total"] == unbalanced
    assert kept["by_reason"] == {"unbalanced_braces": unbalanced}
    assert "kept verbatim despite a problem" in (out / "report.md").read_text(encoding="utf-8")


def test_checked_answers_still_reject_what_published_ones_keep(datazip, tmp_path):
    root, published = datazip
    source = {
        "name": "crohme2023",
        "reader": "sharegpt",
        "root": str(root),
        "split": "crohme2023_test",
        "options": {"file": "data/CROHME2023/prompts/crohme2023_test.json"},
    }
    recipe = parse_recipe(
        {"output_dir": str(tmp_path / "o"), "max_reject_fraction": 0.5, "test_sets": [source]}
    )
    out = build_dataset(recipe, progress=False)
    rows = load_split(out, "crohme2023")
    assert len(rows) == CROHME2023_ITEMS - 4
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["splits"]["crohme2023"]["rejected_input"]["total"] == 4


def test_answers_published_is_refused_on_a_training_source(tmp_path):
    source = {"reader": "sharegpt", "root": str(tmp_path), "split": "train", "answers": "published"}
    with pytest.raises(RecipeError, match="test sets only") as err:
        parse_recipe({"output_dir": str(tmp_path / "o"), "train": [source]})
    assert "\n" not in str(err.value)
    with pytest.raises(RecipeError, match="expected one of checked, published"):
        parse_recipe({"output_dir": "o", "test_sets": [{**source, "answers": "verbatim"}]})


@pytest.mark.parametrize(
    "pattern", ["data/HME100K/prompts/*test*.json", "data/HME100K/prompts/*.json", "data/HME100K/prompts"]
)
def test_a_pattern_matching_two_editions_of_one_set_is_refused_naming_both(datazip, pattern):
    root, _ = datazip
    reader = get_reader("sharegpt")
    with pytest.raises(ValueError) as err:
        list(reader(root, "test", Rejects(log=False), file=pattern))
    message = str(err.value)
    assert "\n" not in message
    assert "hme100k_test.json" in message and "hme100k_test_normalized.json" in message


def test_the_build_refuses_a_two_edition_glob_in_one_line(datazip, tmp_path):
    root, _ = datazip
    source = {
        "name": "hme100k",
        "reader": "sharegpt",
        "root": str(root),
        "split": "test",
        "options": {"file": "data/HME100K/prompts/*test*.json"},
    }
    recipe = parse_recipe({"output_dir": str(tmp_path / "o"), "test_sets": [source]})
    with pytest.raises(RecipeError, match="matches two files of one test set"):
        build_dataset(recipe, progress=False)
