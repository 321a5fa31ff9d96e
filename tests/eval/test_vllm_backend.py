"""The vLLM backend's behaviour that depends on vLLM 0.33, checked on a CPU.

* Data parallel: the workers must be able to start child processes, as vLLM 0.33's ``LLM`` starts
  its engine core in one. A stand-in ``vllm`` package (its ``LLM`` starts a child process the same
  way) is put on the path; with daemon workers this fails ("daemonic processes are not allowed to
  have children").
* LoRA adapters: tower LoRA served with ``enable_tower_connector_lora``, the patch embedding merged.
* bitsandbytes checkpoints: refused with a one-line error (vLLM 0.33 has no such method).
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from data_prep.contract import MAIN_PROMPT, prepare_image
from eval.backends import BackendOptions
from eval.backends.vllm_lora import AdapterPlan, inspect_adapter, lora_modules

FAKE_VLLM = '''
"""Stand-in for vllm: LLM starts a child process like vLLM 0.33's engine core."""
import multiprocessing
import os

STARTED = []


class SamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class _Completion:
    def __init__(self, text):
        self.text = text


class _Output:
    def __init__(self, text):
        self.outputs = [_Completion(text)]


class LLM:
    def __init__(self, **kwargs):
        # vLLM 0.33 runs EngineCore in a child process: not allowed from a daemon process.
        child = multiprocessing.get_context("fork").Process(target=len, args=((),))
        child.start()
        child.join()
        self.gpus = os.environ.get("CUDA_VISIBLE_DEVICES")

    def generate(self, requests, params, lora_request=None, use_tqdm=False):
        return [
            _Output("%dx%d on %s" % (*r["multi_modal_data"]["image"].size, self.gpus)) for r in requests
        ]
'''


@pytest.fixture
def fake_vllm(tmp_path, monkeypatch):
    root = tmp_path / "fake_vllm"
    (root / "vllm" / "lora").mkdir(parents=True)
    (root / "vllm" / "__init__.py").write_text(textwrap.dedent(FAKE_VLLM))
    (root / "vllm" / "lora" / "__init__.py").write_text("")
    (root / "vllm" / "lora" / "request.py").write_text(
        "class LoRARequest:\n    def __init__(self, *args):\n        self.args = args\n"
    )
    monkeypatch.syspath_prepend(str(root))  # spawned workers inherit sys.path
    yield root
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        del sys.modules[name]


def test_data_parallel_workers_can_start_engine_processes(fake_vllm, tiny_model_dir, monkeypatch):
    from eval.backends.vllm import VLLMBackend

    monkeypatch.setattr("eval.backends.vllm.running_on_cpu", lambda: False)  # as on a 2-GPU machine
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    backend = VLLMBackend(str(tiny_model_dir), BackendOptions(dp=2, max_new_tokens=4))
    try:
        assert [p.daemon for p, _ in backend._workers] == [False, False]
        images = [Image.new("RGB", (40 + 20 * i, 30), "white") for i in range(5)]
        texts = backend.generate(images, [MAIN_PROMPT] * 5)
        sizes = ["{}x{}".format(*prepare_image(im, backend.options.bounds).size) for im in images]
        # In order, contiguous shards: 3 on the first replica's GPU, 2 on the second's.
        assert texts == [f"{s} on {g}" for s, g in zip(sizes, ["0", "0", "0", "1", "1"])]
    finally:
        processes = [p for p, _ in backend._workers]
        backend.close()
    assert backend._workers == [] and not any(p.is_alive() for p in processes)


def test_tower_lora_is_served_with_enable_tower_connector_lora(tiny_model_dir, tmp_path):
    from tests.eval.test_backends import make_adapter

    # down_proj names the language MLP and the vision blocks' MLP (model.visual.blocks.N.mlp.down_proj).
    adapter = make_adapter(tiny_model_dir, tmp_path / "a", ["q_proj", "down_proj", "qkv"])
    plan = inspect_adapter(adapter)
    assert plan.serve_directly and plan.tower_lora
    assert plan.engine_options() == {"enable_tower_connector_lora": True}


def test_patch_embedding_lora_is_merged(tiny_model_dir, tmp_path):
    from tests.eval.test_backends import make_adapter

    adapter = make_adapter(tiny_model_dir, tmp_path / "a", ["q_proj", "patch_embed.proj"])
    plan = inspect_adapter(adapter)
    assert not plan.serve_directly and plan.engine_options() == {}
    assert "patch_embed.proj" in plan.merge_reasons[0]


def test_language_only_lora_needs_no_tower_flag():
    plan = AdapterPlan(adapter="a", base="b", rank=8)
    assert plan.serve_directly and plan.engine_options() == {}


def test_tower_lora_on_a_model_vllm_has_no_tower_lora_for_is_merged(tmp_path):
    import torch
    from safetensors.torch import save_file

    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text(json.dumps({"model_type": "some_vl"}))
    key = "base_model.model.model.visual.blocks.0.attn.qkv.lora_A.weight"
    save_file({key: torch.zeros(2, 2)}, str(tmp_path / "adapter_model.safetensors"))
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"r": 2, "base_model_name_or_path": str(tmp_path / "base"), "target_modules": ["qkv"]})
    )
    plan = inspect_adapter(tmp_path)
    assert not plan.serve_directly and "some_vl" in plan.merge_reasons[0]


def test_lora_module_names_from_peft_keys():
    keys = [
        "base_model.model.model.visual.blocks.0.attn.qkv.lora_A.weight",
        "base_model.model.model.visual.blocks.0.attn.qkv.lora_B.weight",
        "base_model.model.model.language_model.layers.1.self_attn.q_proj.lora_A.weight",
    ]
    assert lora_modules(keys) == [
        "model.language_model.layers.1.self_attn.q_proj",
        "model.visual.blocks.0.attn.qkv",
    ]


def test_bitsandbytes_checkpoints_are_refused_in_one_line(tmp_path):
    from eval.backends.vllm import refuse_unservable_quantization

    (tmp_path / "config.json").write_text(
        json.dumps({"quantization_config": {"quant_method": "bitsandbytes"}})
    )
    with pytest.raises(ValueError, match="cannot serve .*w4a16"):
        refuse_unservable_quantization(str(tmp_path))
    (tmp_path / "config.json").write_text(
        json.dumps({"quantization_config": {"quant_method": "compressed-tensors"}})
    )
    refuse_unservable_quantization(str(tmp_path))  # w4a16 exports are served
    refuse_unservable_quantization(str(Path(tmp_path) / "hub-id"))  # not a folder: nothing to read


def test_auto_backend_runs_bitsandbytes_checkpoints_on_hf(tmp_path, monkeypatch, caplog):
    import eval.backends as backends
    import eval.backends.hf as hf
    from train.modeling import ModelSource

    (tmp_path / "config.json").write_text(
        json.dumps({"quantization_config": {"quant_method": "bitsandbytes"}})
    )
    monkeypatch.setattr(backends, "resolve_backend_name", lambda name: "vllm")  # as on a GPU with vLLM
    monkeypatch.setattr(hf, "HFBackend", lambda model, options, **kw: ("hf", model))
    with caplog.at_level("INFO", logger="eval.backends"):
        # get_backend resolves the path once and hands the backend that ModelSource.
        assert backends.get_backend("auto", str(tmp_path)) == ("hf", ModelSource(base=str(tmp_path)))
    assert "auto -> hf (a bitsandbytes checkpoint" in caplog.text


def test_cpu_data_parallel_replicas_get_their_own_cores(fake_vllm, tiny_model_dir, monkeypatch):
    from eval.backends import vllm_cpu
    from eval.backends.vllm import VLLMBackend

    monkeypatch.setattr("eval.backends.vllm.running_on_cpu", lambda: True)
    monkeypatch.setattr("eval.backends.vllm.core_shares", lambda dp: vllm_cpu.core_shares(dp, [0, 1, 2, 3]))
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    captured = []
    monkeypatch.setattr(
        "eval.backends.vllm.VLLMBackend._start_workers",
        lambda self, kwargs, lora, tp, dp, on_cpu: captured.append(kwargs),
    )
    VLLMBackend(str(tiny_model_dir), BackendOptions(dp=2, max_new_tokens=4)).close()
    (kwargs,) = captured
    assert kwargs["dtype"] == "float32"  # dtype auto is float32 on a CPU, as on the HF backend
    # Eager, and a fixed KV cache: without one the CPU worker reserves 92% of the RAM or refuses.
    assert kwargs["enforce_eager"] is True and kwargs["kv_cache_memory_bytes"] == 4 * 1024**3
    assert vllm_cpu.core_shares(2, [0, 1, 2, 3]) == ["0,1", "2,3"]
    assert vllm_cpu.core_shares(3, [0, 1]) == ["0", "1", "0"]


def test_cpu_refuses_what_its_kernels_cannot_run_in_one_line(tmp_path, monkeypatch):
    from eval.backends import vllm_cpu

    (tmp_path / "config.json").write_text(
        json.dumps({"text_config": {"hidden_size": 64, "num_attention_heads": 4}})
    )
    assert "head_dim 16" in vllm_cpu.cpu_refusal(str(tmp_path))
    w4a16 = {
        "text_config": {"hidden_size": 64, "num_attention_heads": 2},
        "quantization_config": {
            "quant_method": "compressed-tensors",
            "config_groups": {"group_0": {"weights": {"num_bits": 4}, "input_activations": None}},
        },
    }
    (tmp_path / "config.json").write_text(json.dumps(w4a16))
    monkeypatch.setattr(vllm_cpu, "has_wna16_kernel", lambda: False)  # the AVX2 build
    assert "cpu_gemm_wna16" in vllm_cpu.cpu_refusal(str(tmp_path))
    monkeypatch.setattr(vllm_cpu, "has_wna16_kernel", lambda: True)
    assert vllm_cpu.cpu_refusal(str(tmp_path)) is None


def test_tiny_model_fits_vllm_cpu_attention(tiny_model_dir):
    from eval.backends.vllm_cpu import MIN_CPU_HEAD_DIM, text_head_dim

    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert text_head_dim(config) >= MIN_CPU_HEAD_DIM


def test_backend_vllm_without_a_vllm_environment_says_what_to_install(tmp_path, tiny_model_dir):
    import subprocess

    from eval.backends import vllm_importable
    from tests.conftest import REPO, SAMPLES

    if vllm_importable():
        pytest.skip("vllm is importable here: nothing is re-run")
    image = next((SAMPLES / "crohme2014_test" / "off_image_test").glob("*.bmp"))
    env = {**__import__("os").environ, "HMER_VLLM_PYTHON": str(tmp_path / "no-such-python")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "eval.predict",
            "--backend",
            "vllm",
            "--model",
            str(tiny_model_dir),
            str(image),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: vllm is not installed")
    assert "make install-vllm" in done.stderr


def test_cpu_server_gets_the_backends_cpu_settings_and_the_models_bounds(tiny_model_dir):
    from eval.backends.vllm_serve import server_argv

    argv = server_argv(str(tiny_model_dir), port=8123, on_cpu=True)
    flags = dict(zip(argv, argv[1:]))
    assert "--enforce-eager" in argv and flags["--kv-cache-memory-bytes"] == str(4 * 1024**3)
    assert flags["--dtype"] == "float32" and flags["--port"] == "8123"
    assert json.loads(flags["--mm-processor-kwargs"]) == {"min_pixels": 3136, "max_pixels": 262144}
    assert "--kv-cache-memory-bytes" not in server_argv(str(tiny_model_dir), on_cpu=False)
