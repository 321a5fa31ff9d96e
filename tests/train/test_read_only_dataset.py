"""A finished dataset on read-only storage can be trained on: its Arrow cache goes elsewhere."""

from __future__ import annotations

import shutil

import pytest

from tests.build_support import sample_source
from tests.conftest import REPO
from tests.eval.eval_support import copy_sample, read_only
from train.config import parse_recipe


@pytest.mark.slow
def test_training_on_a_read_only_dataset(tmp_path, tiny_model_dir, monkeypatch):
    from data_prep.build import build_dataset
    from data_prep.build.recipe import parse_recipe as parse_data_recipe
    from train.sft import train

    source = copy_sample(tmp_path / "src")
    built = build_dataset(
        parse_data_recipe(
            {"output_dir": str(tmp_path / "built"), "train": [sample_source(source, max_records=8)]}
        ),
        progress=False,
    )
    data = tmp_path / "data"
    shutil.copytree(built, data, ignore=shutil.ignore_patterns(".cache"))
    monkeypatch.setenv("HMER_DATASETS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    with read_only(data):
        args = parse_recipe(
            [
                "--config", str(REPO / "recipes" / "tiny" / "lora.yaml"),
                "--model_name_or_path", str(tiny_model_dir),
                "--dataset_dir", str(data),
                "--output_dir", str(out),
                "--max_steps", "2", "--save_steps", "2", "--per_device_train_batch_size", "2",
            ]
        )  # fmt: skip
        train(*args, recipe="tiny/lora")
    assert (out / "adapter_model.safetensors").is_file()
    assert not (data / ".cache").exists()
