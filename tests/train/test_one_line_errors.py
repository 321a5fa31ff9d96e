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


BROKEN_RECIPES = {
    "malformed": (b"model_name_or_path: [a\n  b: c:\n", "is not valid YAML: expected ',' or ']'"),
    "unterminated": (b'learning_rate: "1e-5\n', "is not valid YAML: found unexpected end of stream"),
    "not_utf8": (b"model_name_or_path: \xff\xfe\n", "is not UTF-8 text (byte 0xff at offset 20)"),
    "list": (b"- learning_rate: 1.0e-5\n- lora_r: 8\n", "must be a YAML mapping of keys to values"),
    "string": (b"just words\n", "must be a YAML mapping of keys to values"),
}


@pytest.mark.parametrize("entry", ["train.sft", "train.launch"])
@pytest.mark.parametrize("kind", list(BROKEN_RECIPES))
def test_broken_recipe_file_is_one_line_in_every_entry_point(tmp_path, caplog, entry, kind):
    """Issue 19: malformed YAML printed 57-63 lines of traceback; non-UTF-8 or list-shaped crashed."""
    import importlib

    from train.engines.preload import unsloth_wanted

    data, message = BROKEN_RECIPES[kind]
    path = tmp_path / "recipe.yaml"
    path.write_bytes(data)
    assert unsloth_wanted(["--config", str(path)]) is False  # runs before train.sft's imports
    main = importlib.import_module(entry).main
    assert main(["--config", str(path), "--output_dir", str(tmp_path / "out")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0] and message in errors[0], errors
    assert str(path) in errors[0]
    assert not (tmp_path / "out").exists()  # a failed start leaves nothing behind


@pytest.mark.parametrize("which", ["model", "adapter"])
def test_truncated_weights_are_one_line(tmp_path, tiny_model_dir, which):
    import shutil

    from train.modeling import ModelLoadError, load_model

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    target = model
    if which == "adapter":
        import json

        from peft import LoraConfig, get_peft_model

        adapter = tmp_path / "adapter"
        base = load_model(str(model), dtype="float32")
        get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(adapter)
        config = json.loads((adapter / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = str(model)
        (adapter / "adapter_config.json").write_text(json.dumps(config))
        target = adapter
    weights = target / f"{'adapter_' if which == 'adapter' else ''}model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # a copy cut short
    with pytest.raises(ModelLoadError) as err:
        load_model(str(target))
    message = str(err.value)
    assert "\n" not in message and "damaged or truncated" in message and str(target) in message
