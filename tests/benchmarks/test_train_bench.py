"""benchmarks/bench_train.py: its CPU smoke path runs and reports figures; the 3B config it builds
(train.architectures) is the real one."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import bench_train
from train.architectures import qwen2_5_vl_config


def test_3b_architecture_has_the_published_size():
    from transformers import Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(qwen2_5_vl_config("3b"))
    total = sum(p.numel() for p in model.parameters())
    vision = sum(p.numel() for p in model.model.visual.parameters())
    assert 3.7e9 < total < 3.8e9  # Qwen2.5-VL-3B: 3.75 B parameters
    assert 0.6e9 < vision < 0.7e9


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU smoke path runs only without a GPU")
def test_cpu_smoke_run(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench_train.main(["--methods", "lora,full", "--smoke-steps", "1", "--json", str(out)]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert [r["method"] for r in rows] == ["lora", "full"]
    assert all(r["tokens_per_s"] > 0 and r["tokens_per_sample"] > 40 for r in rows)
    assert rows[0]["trainable"] < rows[1]["trainable"]  # LoRA trains a fraction of the weights
