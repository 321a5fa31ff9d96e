"""``make gpu-check`` on the CPU: the tiny model through the whole script, with only the packages
the lent H200 machine has (trl, datasets, bitsandbytes, deepspeed, vllm ... hidden)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Installed here, absent on the lent machine (KINDS.md's package list; bitsandbytes only as a carried wheel).
NOT_ON_THE_LENT_MACHINE = (
    "trl", "datasets", "bitsandbytes", "deepspeed", "vllm", "unsloth", "llmcompressor",
    "compressed_tensors", "rapidfuzz", "defusedxml", "qwen_vl_utils",
)  # fmt: skip

HIDE_AND_RUN = """
import importlib.machinery, runpy, sys
hidden = set(sys.argv[1].split(","))
find = importlib.machinery.PathFinder.find_spec
def find_spec(cls, name, path=None, target=None):
    return None if name.split(".")[0] in hidden else find(name, path, target)
importlib.machinery.PathFinder.find_spec = classmethod(find_spec)
sys.argv = ["gpu_check", "--smoke", "--output", sys.argv[2]]
runpy.run_module("benchmarks.gpu_check", run_name="__main__", alter_sys=True)
"""


def test_gpu_check_smoke_runs_with_the_lent_machines_packages(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", HIDE_AND_RUN, ",".join(NOT_ON_THE_LENT_MACHINE), str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["smoke"] is True and report["peak_tflops"] == 790.0
    assert report["environment"]["versions"]["torch"]
    assert report["processor"]["bounds_match_contract"] is True
    training = {r["method"]: r for r in report["training"]}
    for method in ("lora", "full"):
        assert training[method]["step_s"] > 0 and training[method]["tokens_per_s"] > 0
    assert training["full"]["trainable"] == training["full"]["params"]
    assert 0 < training["lora"]["trainable"] < training["lora"]["params"]
    assert "GPU only" in training["qlora"]["skipped"]
    generation = {g["batch_size"]: g for g in report["generation"]}
    assert sorted(generation) == [1, 2]
    assert all(g["outputs"] == g["images"] and g["new_tokens_per_s"] > 0 for g in generation.values())
    assert "gpu-check summary" in done.stdout
