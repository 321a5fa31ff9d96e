"""``make gpu-check`` on the CPU: the tiny model through the whole script, with only the packages
the lent H200 machine has (trl, datasets, bitsandbytes, deepspeed, vllm ... hidden)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
sys.argv = ["gpu_check", "--smoke", "--output", sys.argv[2], *sys.argv[3:]]
runpy.run_module("benchmarks.gpu_check", run_name="__main__", alter_sys=True)
"""


def _plan(*argv: str):
    from benchmarks.gpu_check import make_plan, parse_args

    return make_plan(parse_args(list(argv)))


def test_the_plan_follows_the_machine_and_the_flags():
    from benchmarks.gpu_check import LEASE, SMOKE

    smoke, lease = _plan("--smoke"), _plan()
    assert smoke == SMOKE and lease == LEASE
    # The CPU smoke run is smaller than the lease's in every size it times.
    assert smoke.steps < lease.steps and max(smoke.gen_batches) < max(lease.gen_batches)
    assert smoke.gen_tokens < lease.gen_tokens and smoke.warmup < lease.warmup
    # A flag replaces only its own size, in either plan.
    given = _plan("--smoke", "--gen-batches", "1,3", "--steps", "2", "--peak-tflops", "100")
    assert (given.gen_batches, given.steps, given.peak_tflops) == ((1, 3), 2, 100.0)
    assert (given.batch_size, given.gen_tokens, given.warmup) == (
        smoke.batch_size,
        smoke.gen_tokens,
        smoke.warmup,
    )
    assert _plan("--gen-tokens", "8").gen_tokens == 8 and _plan("--gen-tokens", "8").steps == lease.steps


def test_a_size_below_one_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit):
        _plan("--smoke", "--gen-batches", "1,0")
    assert "every size must be at least 1" in capsys.readouterr().err


@pytest.mark.slow  # the whole script in a subprocess
def test_gpu_check_smoke_runs_with_the_lent_machines_packages(tmp_path):
    """The whole script on the tiny model, with the sizes asked for (not the defaults)."""
    out = tmp_path / "gpu_check.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    sizes = ["--gen-batches", "1,3", "--gen-tokens", "3", "--steps", "2", "--batch-size", "1"]
    done = subprocess.run(
        [sys.executable, "-c", HIDE_AND_RUN, ",".join(NOT_ON_THE_LENT_MACHINE), str(out), *sizes],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["smoke"] is True and report["plan"]["gen_batches"] == [1, 3]
    assert report["environment"]["versions"]["torch"]
    assert report["processor"]["bounds_match_contract"] is True
    training = {r["method"]: r for r in report["training"]}
    for method in ("lora", "full"):
        assert training[method]["steps"] == 2 and training[method]["batch_size"] == 1
        assert training[method]["step_s"] > 0 and training[method]["tokens_per_s"] > 0
    assert training["full"]["trainable"] == training["full"]["params"]
    assert 0 < training["lora"]["trainable"] < training["lora"]["params"]
    assert "GPU only" in training["qlora"]["skipped"]
    generation = {g["batch_size"]: g for g in report["generation"]}
    assert sorted(generation) == [1, 3]
    for batch, g in generation.items():
        assert g["images"] == g["outputs"] == batch and g["new_tokens_per_image"] == 3
        assert g["new_tokens_per_s"] > 0
    assert "gpu-check summary" in done.stdout
