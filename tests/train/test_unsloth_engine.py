"""The Unsloth engine says what the recipe says, on a CPU (Unsloth itself needs a GPU).

Checked against Unsloth 2026.10.9's signatures (tests/fixtures/pinned_signatures.json): the model
named is loaded as named (no redirect to a pre-quantised hub repo), offline for a local folder;
dtype, attention and gradient checkpointing reach Unsloth; over-long samples are dropped and
counted, never truncated; ``python -m train.sft`` imports unsloth before transformers/trl/peft.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from train.collator import CollatorError
from train.config import HmerTrainingArguments, ModelArguments, RecipeError, ScriptArguments
from train.engines import preload
from train.engines.unsloth_engine import (
    _MessagesCollator,
    disable_truncation,
    from_pretrained_kwargs,
    get_peft_model_kwargs,
)

ROOT = Path(__file__).resolve().parents[2]
QLORA = ROOT / "recipes" / "qwen2.5-vl-3b" / "qlora.yaml"


def _args(tmp_path, model: str, **overrides):
    model_args = ModelArguments(
        model_name_or_path=model,
        dtype=overrides.pop("dtype", "bfloat16"),
        attn_implementation=overrides.pop("attn", "sdpa"),
        load_in_4bit=True,
        use_peft=True,
    )
    training_args = HmerTrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], **overrides)
    return model_args, ScriptArguments(max_length=1024), training_args


def test_local_base_is_loaded_as_named_and_offline(tmp_path, tiny_model_dir):
    model_args, script_args, training_args = _args(tmp_path, str(tiny_model_dir), gradient_checkpointing=True)
    kwargs = from_pretrained_kwargs(model_args, script_args, training_args)
    assert kwargs["model_name"] == str(tiny_model_dir)
    assert kwargs["use_exact_model_name"] is True  # no -bnb-4bit hub redirect
    assert kwargs["local_files_only"] is True
    assert kwargs["dtype"] is torch.bfloat16 and kwargs["attn_implementation"] == "sdpa"
    assert kwargs["load_in_4bit"] is True and kwargs["max_seq_length"] == 1024
    assert kwargs["use_gradient_checkpointing"] == "unsloth"


def test_hub_id_is_offline_only_when_the_hub_is_off(tmp_path, monkeypatch):
    model_args, script_args, training_args = _args(tmp_path, "Qwen/Qwen2.5-VL-3B-Instruct", dtype="float32")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    kwargs = from_pretrained_kwargs(model_args, script_args, training_args)
    assert kwargs["local_files_only"] is False and kwargs["use_exact_model_name"] is True
    assert kwargs["dtype"] is torch.float32
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert from_pretrained_kwargs(model_args, script_args, training_args)["local_files_only"] is True


def test_gradient_checkpointing_off_reaches_both_calls(tmp_path):
    model_args, script_args, training_args = _args(tmp_path, "m", gradient_checkpointing=False, attn=None)
    assert (
        from_pretrained_kwargs(model_args, script_args, training_args)["use_gradient_checkpointing"] is False
    )
    assert "attn_implementation" not in from_pretrained_kwargs(model_args, script_args, training_args)
    peft = get_peft_model_kwargs(model_args, training_args)
    # get_peft_model's own default is "unsloth", which would switch checkpointing back on.
    assert peft["use_gradient_checkpointing"] is False
    assert peft["r"] == model_args.lora_r and peft["finetune_vision_layers"] is False


class _FakeUnslothCollator:
    """Stands in for UnslothVisionDataCollator: one token per answer character plus 10."""

    __slots__ = ("max_seq_length", "truncation", "calls")

    def __init__(self):
        self.max_seq_length, self.truncation, self.calls = 1024, True, []

    def __call__(self, examples):
        self.calls.append(len(examples))
        lengths = [10 + len(e["messages"][1]["content"][0]["text"]) for e in examples]
        width = max(lengths)
        mask = torch.tensor([[1] * n + [0] * (width - n) for n in lengths])
        return {"input_ids": mask.clone(), "attention_mask": mask}


def _rows(answers):
    from PIL import Image

    return [
        {"id": f"s{i}", "image": Image.new("RGB", (64, 32), "white"), "prompt": "p", "answer": a}
        for i, a in enumerate(answers)
    ]


def test_over_long_samples_are_dropped_and_counted_not_truncated():
    inner = disable_truncation(_FakeUnslothCollator())
    assert inner.max_seq_length is None and inner.truncation is False
    collator = _MessagesCollator(inner, bounds=ScriptArguments().bounds, max_length=20)
    batch = collator(_rows(["x" * 5, "y" * 30, "z" * 8]))
    assert batch["attention_mask"].sum(dim=1).tolist() == [15, 18]  # the 40-token sample is gone, whole
    assert collator.skipped == {"longer_than_max_length": 1}
    with pytest.raises(CollatorError, match="every sample of a batch is longer"):
        collator(_rows(["y" * 30]))


def test_a_collator_without_the_truncation_switch_is_refused():
    class Other:
        max_seq_length = 5

    with pytest.raises(RecipeError, match="truncation"):
        disable_truncation(Other())


def test_preload_follows_the_engine_rules(monkeypatch, tmp_path):
    monkeypatch.setattr(
        preload.importlib.util, "find_spec", lambda name: object() if name == "unsloth" else None
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert preload.unsloth_wanted(["--config", str(QLORA)])
    assert not preload.unsloth_wanted(["--config", str(QLORA), "--engine", "trl"])
    assert not preload.unsloth_wanted(["--config", str(QLORA), "--use_peft", "false"])
    assert not preload.unsloth_wanted(["--config", str(QLORA), "--deepspeed", "ds.json"])
    assert preload.unsloth_wanted(
        ["--config", str(ROOT / "recipes/qwen2.5-vl-3b/full.yaml"), "--engine=unsloth"]
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not preload.unsloth_wanted(["--config", str(QLORA)])


def test_train_sft_imports_unsloth_before_transformers(tmp_path):
    """``python -m train.sft`` with a stand-in unsloth that reports what was imported before it."""
    fake = tmp_path / "fake" / "unsloth"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import json, sys\n"
        "print('UNSLOTH', json.dumps({m: m in sys.modules for m in ('transformers', 'trl', 'peft')}))\n"
        "sys.exit(0)\n"
    )
    code = (
        "import runpy, sys, torch\n"
        "torch.cuda.is_available = lambda: True\n"
        f"sys.argv = ['train.sft', '--config', {str(QLORA)!r}]\n"
        "runpy.run_module('train.sft', run_name='__main__', alter_sys=True)\n"
    )
    env = dict(os.environ, PYTHONPATH=f"{tmp_path / 'fake'}{os.pathsep}{ROOT}", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("UNSLOTH ")), None)
    assert line is not None, done.stderr[-2000:]
    assert json.loads(line.split(" ", 1)[1]) == {"transformers": False, "trl": False, "peft": False}
