"""Mistakes a user makes get one line that says what to change, before anything is built."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import REPO
from train.config import RecipeError, parse_recipe

LORA = REPO / "recipes" / "tiny" / "lora.yaml"


def _recipe(tmp_path, line: str):
    key = line.split(":")[0]
    kept = [x for x in LORA.read_text().splitlines() if not x.startswith(f"{key}:")]
    path = tmp_path / "recipe.yaml"
    path.write_text("\n".join([*kept, line]) + "\n")
    return path


@pytest.mark.parametrize(
    "line, message",
    [
        ("learning_rate: abc", "--learning_rate: invalid float value: 'abc'"),
        ("per_device_train_batch_size: -2", "per_device_train_batch_size must be greater than 0, not -2"),
        ("lora_r: 8.5", "lora_r must be an integer, not 8.5"),
        ("use_peft: maybe", "--use_peft: Truthy value expected"),
        ("max_steps: 0", "max_steps must be a positive number of steps"),
        ("num_train_epochs: -1", "num_train_epochs must not be negative"),
        ("lora_dropout: 1.5", "lora_dropout must be below 1"),
        ("report_to: wandb", "report_to names wandb, which is not installed: `pip install wandb`"),
        ("eval_strategy: steps", "needs validation data: set eval_split"),
        ("lerning_rate: 0.1", "unknown recipe key(s): lerning_rate"),
    ],
)
def test_bad_recipe_values_are_one_line_errors(tmp_path, line, message):
    with pytest.raises(RecipeError) as err:
        parse_recipe(["--config", str(_recipe(tmp_path, line))])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_value_on_the_command_line_is_one_line(tmp_path):
    with pytest.raises(RecipeError, match="--max_steps: invalid int value: 'ten'"):
        parse_recipe(["--config", str(LORA), "--max_steps", "ten"])


def test_sft_reports_a_recipe_error_in_one_line(tmp_path, caplog):
    from train.sft import main

    assert main(["--config", str(_recipe(tmp_path, "learning_rate: -1.0e-3"))]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["learning_rate must be greater than 0, not -0.001"]


def test_unreachable_hub_fails_at_once_with_the_way_out(monkeypatch):
    import time

    from huggingface_hub import constants

    from train.modeling import ModelLoadError, load_processor

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "https://hub.invalid")
    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as err:
        load_processor("Qwen/Qwen2.5-VL-3B-Instruct")
    assert time.perf_counter() - started < 10
    assert "HF_HUB_OFFLINE=1" in str(err.value) and "local model folder" in str(err.value)


def test_unknown_reader_option_is_refused_at_validation(tmp_path):
    from data_prep.build.recipe import RecipeError as DataRecipeError
    from data_prep.build.recipe import load_recipe

    text = (REPO / "recipes" / "data" / "crohme_sample.yaml").read_text()
    assert "edition: comer" in text
    bad = tmp_path / "data.yaml"
    bad.write_text(text.replace("edition: comer", "editon: comer"))
    with pytest.raises(DataRecipeError) as err:
        load_recipe(bad)
    assert "unknown option(s) editon for reader 'crohme'" in str(err.value) and "edition" in str(err.value)
