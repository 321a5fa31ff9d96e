"""LLaMA-Factory ShareGPT export of a built dataset."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from data_prep.build import build_dataset
from data_prep.contract import MAIN_PROMPT
from data_prep.dataset import load_split
from data_prep.recipe import parse_recipe

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "crohme2014_test"


def test_sharegpt_export_shape(tmp_path):
    recipe = parse_recipe(
        {
            "output_dir": str(tmp_path / "out"),
            "sharegpt": True,
            "train": [
                {
                    "reader": "crohme",
                    "root": str(SAMPLE),
                    "split": "2014",
                    "options": {"caption_file": "caption_comer.txt", "images_dir": "off_image_test"},
                    "max_records": 6,
                    "tasks": {"counting": 1.0},
                    "holdout": {"name": "held", "fraction": 0.5},
                }
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
