"""LLaMA-Factory ShareGPT export of a built dataset."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from data_prep.build import build_dataset
from data_prep.build.recipe import parse_recipe
from data_prep.contract import MAIN_PROMPT
from data_prep.dataset import load_split
from tests.build_support import sample_source

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "crohme2014_test"


def test_sharegpt_export_shape(tmp_path):
    recipe = parse_recipe(
        {
            "output_dir": str(tmp_path / "out"),
            "sharegpt": True,
            "train": [
                sample_source(
                    name="crohme",
                    max_records=6,
                    tasks={"counting": 1.0},
                    holdout={"name": "held", "fraction": 0.5},
                )
            ],
        }
    )
    out = build_dataset(recipe, progress=False)
    export = out / "sharegpt"
    info = json.loads((export / "dataset_info.json").read_text())
    assert set(info) == {"hmer_train", "hmer_held"}
    entry = info["hmer_train"]
    assert entry["formatting"] == "sharegpt" and entry["columns"] == {
        "messages": "messages",
        "images": "images",
    }
    samples = json.loads((export / entry["file_name"]).read_text())
    rows = load_split(out, "train")
    assert len(samples) == len(rows) == 12  # 6 main + 6 counting
    for sample, row in zip(samples, rows):
        human, gpt = sample["messages"]
        assert (human["from"], gpt["from"]) == ("human", "gpt")
        assert human["value"].startswith("<image>") and human["value"].count("<image>") == 1
        assert human["value"].removeprefix("<image>") == row["prompt"]
        assert gpt["value"] == row["answer"]
        assert len(sample["images"]) == 1
        with Image.open(export / sample["images"][0]) as image:
            assert image.size == row["image"].size
    assert samples[0]["messages"][0]["value"] == "<image>" + MAIN_PROMPT
    # The main and counting rows of a formula share one image file.
    assert len({s["images"][0] for s in samples}) == 6


def test_export_reproduces_the_reference_published_examples(tmp_path):
    """The reference's published ShareGPT examples (``sample_input``/``sample_tree``/``sample_can``,
    the output of its ``make_unimumer_tree_data.py``): building their two captions with the
    Tree-CoT and counting tasks and exporting gives the same human and gpt turns, byte for byte."""
    published = {
        name: json.loads((REPO / "tests" / "fixtures" / "unimumer_tree" / f"{name}.json").read_text("utf-8"))
        for name in ("sample_input", "sample_tree", "sample_can")
    }
    captions = [record["messages"][1]["value"] for record in published["sample_input"]]
    root = tmp_path / "crohme"
    (root / "img").mkdir(parents=True)
    bitmaps = sorted((SAMPLE / "off_image_test").glob("*.bmp"))[: len(captions)]
    for index, bitmap in enumerate(bitmaps):
        (root / "img" / f"example{index}_0.bmp").write_bytes(bitmap.read_bytes())
    lines = [f"example{index}\t{caption}" for index, caption in enumerate(captions)]
    (root / "caption.txt").write_text("\n".join(lines), encoding="utf-8")
    recipe = parse_recipe(
        {
            "output_dir": str(tmp_path / "out"),
            "sharegpt": True,
            "train": [
                {
                    "reader": "crohme",
                    "root": str(root),
                    "split": "2014",
                    "options": {"caption_file": "caption.txt", "images_dir": "img"},
                    "tasks": {"tree_cot": 1.0, "counting": 1.0},
                }
            ],
        }
    )
    out = build_dataset(recipe, progress=False)
    samples = json.loads((out / "sharegpt" / "train.json").read_text(encoding="utf-8"))
    exported = sorted(tuple(turn["value"] for turn in sample["messages"]) for sample in samples)
    expected = sorted(
        tuple(turn["value"] for turn in record["messages"])
        for records in published.values()
        for record in records
    )
    assert exported == expected
