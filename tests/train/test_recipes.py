"""Every training recipe and accelerate config under recipes/ parses and says what the docs say."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from train.config import LANGUAGE_LORA_TARGET, RecipeError, global_batch_size, parse_recipe
from train.launch import plan_command

RECIPES = REPO / "recipes"
TRAINING_RECIPES = sorted(
    p for p in RECIPES.rglob("*.yaml") if p.parent.name not in ("data", "accelerate_configs")
)
ACCELERATE_CONFIGS = sorted((RECIPES / "accelerate_configs").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    # Recipes name their accelerate configs relative to the repository root, where make runs.
    monkeypatch.chdir(REPO)


def parse(path: Path, *overrides: str):
    # use_cpu: bf16 recipes are otherwise refused by TrainingArguments on a machine without a GPU.
    return parse_recipe(["--config", str(path.relative_to(REPO)), "--use_cpu", "true", *overrides])


def test_recipes_exist():
    names = {str(p.relative_to(RECIPES)) for p in TRAINING_RECIPES}
    for expected in (
        "qwen2.5-vl-3b/qlora.yaml",
        "qwen2.5-vl-3b/lora.yaml",
        "qwen2.5-vl-3b/full.yaml",
        "qwen2.5-vl-3b/full_zero3.yaml",
        "qwen2.5-vl-7b/qlora.yaml",
        "tiny/lora.yaml",
        "tiny/qlora.yaml",
        "tiny/full.yaml",
        "tiny/demo.yaml",
    ):
        assert expected in names
    assert {p.name for p in ACCELERATE_CONFIGS} >= {
        "single_gpu.yaml",
        "multi_gpu.yaml",
        "zero2.yaml",
        "zero3.yaml",
    }


@pytest.mark.parametrize("path", TRAINING_RECIPES, ids=lambda p: str(p.relative_to(RECIPES)))
def test_every_recipe_parses_and_validates(path):
    model_args, script_args, training_args = parse(path)
    assert model_args.model_name_or_path and script_args.dataset_dir and training_args.output_dir
    assert training_args.remove_unused_columns is False
    assert script_args.max_pixels <= 262_144
    if model_args.load_in_4bit:
        assert model_args.use_peft
    if script_args.accelerate_config:
        assert Path(script_args.accelerate_config).is_file()
    # Every model recipe logs somewhere by default; tiny test recipes may switch it off.
    if path.parent.name != "tiny":
        assert training_args.report_to == ["tensorboard"]
        assert training_args.gradient_checkpointing


def test_reference_recipe_matches_the_paper():
    model_args, script_args, training_args = parse(RECIPES / "qwen2.5-vl-3b" / "full.yaml")
    assert model_args.model_name_or_path == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert not model_args.use_peft and not model_args.freeze_vision_tower and not model_args.freeze_merger
    assert training_args.learning_rate == pytest.approx(1e-5)
    assert training_args.lr_scheduler_type.value == "cosine"
    assert training_args.warmup_steps == pytest.approx(0.1)
    assert training_args.num_train_epochs == 1
    assert training_args.bf16
    assert script_args.max_length == 2048 and script_args.max_pixels == 262_144
    assert global_batch_size(training_args, num_processes=8) == 512
    assert script_args.accelerate_config.endswith("zero2.yaml")
    _, _, zero3 = parse(RECIPES / "qwen2.5-vl-3b" / "full_zero3.yaml")
    assert global_batch_size(zero3, 8) == 512
    _, _, seven = parse(RECIPES / "qwen2.5-vl-7b" / "full_zero3.yaml")
    assert global_batch_size(seven, 8) == 512


def test_lora_regex_targets_language_model_only():
    pattern = re.compile(LANGUAGE_LORA_TARGET)
    for name in (
        "model.language_model.layers.0.self_attn.q_proj",
        "model.language_model.layers.35.mlp.down_proj",
    ):
        assert pattern.fullmatch(name)
    for name in (
        "model.visual.blocks.0.mlp.gate_proj",
        "model.visual.blocks.3.attn.qkv",
        "model.visual.merger.mlp.0",
        "lm_head",
        "model.language_model.layers.0.self_attn",
    ):
        assert not pattern.fullmatch(name)


def test_command_line_overrides_the_recipe():
    _, script_args, training_args = parse(
        RECIPES / "qwen2.5-vl-3b" / "qlora.yaml", "--learning_rate", "2e-5", "--max_length", "1024"
    )
    assert training_args.learning_rate == pytest.approx(2e-5)
    assert script_args.max_length == 1024


def test_unknown_key_in_recipe_is_an_error(tmp_path):
    recipe = tmp_path / "bad.yaml"
    text = (RECIPES / "tiny" / "lora.yaml").read_text() + "lerning_rate: 0.1\n"
    recipe.write_text(text)
    with pytest.raises(RecipeError, match="lerning_rate"):
        parse_recipe(["--config", str(recipe)])


def test_unknown_key_on_command_line_is_an_error():
    with pytest.raises((RecipeError, SystemExit)):
        parse(RECIPES / "tiny" / "lora.yaml", "--lerning_rate", "0.1")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["--use_peft", "false"], "load_in_4bit"),
        (["--engine", "fastest"], "engine"),
        (["--max_pixels", "10"], "max_pixels"),
        (["--lora_target_modules", "(unclosed"], "regex"),
    ],
)
def test_impossible_combinations_are_refused(overrides, message):
    with pytest.raises((RecipeError, ValueError), match=message):
        parse(RECIPES / "tiny" / "qlora.yaml", *overrides)


def test_missing_recipe_file():
    with pytest.raises(RecipeError, match="not found"):
        parse_recipe(["--config", "recipes/nope.yaml"])


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=lambda p: p.name)
def test_accelerate_configs(path):
    config = yaml.safe_load(path.read_text())
    assert config["distributed_type"] in ("NO", "MULTI_GPU", "DEEPSPEED")
    assert config["mixed_precision"] == "bf16"
    if path.stem.startswith("zero"):
        assert config["distributed_type"] == "DEEPSPEED"
        assert config["deepspeed_config"]["zero_stage"] == int(path.stem[-1])
    if path.stem == "zero3":
        # Without it the final save under ZeRO-3 writes shards instead of a loadable model.
        assert config["deepspeed_config"]["zero3_save_16bit_model"] is True


def _launch(**kwargs):
    defaults = {
        "num_machines": None,
        "machine_rank": None,
        "main_process_ip": None,
        "main_process_port": 29500,
        "num_processes": None,
    }
    return argparse.Namespace(**{**defaults, **kwargs})


def test_launch_runs_in_process_without_gpu():
    command, in_process = plan_command("recipes/qwen2.5-vl-3b/full.yaml", ["--max_steps", "3"], 0, _launch())
    assert in_process
    assert command[1:] == [
        "-m",
        "train.sft",
        "--config",
        "recipes/qwen2.5-vl-3b/full.yaml",
        "--max_steps",
        "3",
    ]


def test_launch_uses_accelerate_on_gpus():
    command, in_process = plan_command("recipes/qwen2.5-vl-3b/full.yaml", [], 8, _launch())
    assert not in_process
    joined = " ".join(command)
    assert (
        "accelerate.commands.launch --config_file recipes/accelerate_configs/zero2.yaml --num_processes 8"
        in joined
    )
    assert joined.endswith("-m train.sft --config recipes/qwen2.5-vl-3b/full.yaml")
    # QLoRA has no accelerate config: one GPU runs in-process.
    _, in_process = plan_command("recipes/qwen2.5-vl-3b/qlora.yaml", [], 1, _launch())
    assert in_process


def test_launch_multi_node():
    command, _ = plan_command(
        "recipes/qwen2.5-vl-3b/full.yaml",
        [],
        8,
        _launch(num_machines=2, machine_rank=1, main_process_ip="10.0.0.1"),
    )
    joined = " ".join(command)
    assert (
        "--num_processes 16" in joined
        and "--machine_rank 1" in joined
        and "--main_process_ip 10.0.0.1" in joined
    )
    with pytest.raises(SystemExit, match="machine_rank"):
        plan_command("recipes/qwen2.5-vl-3b/full.yaml", [], 8, _launch(num_machines=2))


def test_gpu_recipe_on_a_cpu_names_the_tiny_recipe():
    """`make finetune` (the 3B QLoRA recipe) on a machine without CUDA: one line naming the tiny CPU
    recipe, not transformers' "assign use_cpu"."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the bf16 recipe is valid here")
    with pytest.raises(RecipeError) as err:
        parse_recipe(["--config", "recipes/qwen2.5-vl-3b/qlora.yaml"])
    message = str(err.value)
    assert "\n" not in message and "use_cpu" not in message
    named = re.findall(r"recipes/tiny/\w+\.yaml", message)
    assert named and all((REPO / path).is_file() for path in named)
    parse(RECIPES / named[0].removeprefix("recipes/"))  # the recipe it names parses
