"""The real vLLM engine (vLLM's CPU build, ``make install-vllm``) against the HF backend, float32,
greedy, on the bundled CROHME images:

* ``eval.evaluate --backend vllm`` run from this (vLLM-less) environment on the tiny model: it
  re-runs itself in the vLLM environment and names the vllm backend in the predictions' meta;
* a tiny reader trained by ``train.sft`` with LoRA on the language model, vision tower and
  connector, served as a LoRA (``LoRARequest`` + the tower/connector flag);
* its merged export, with two data-parallel engines (``--dp 2``) on the CPU;
* the OpenAI-compatible server (``eval.backends.vllm_serve``, on 127.0.0.1, a free port, stopped
  by PID) queried by ``eval.client`` with the model's pixel bounds (``--model-dir``);
* checkpoints vLLM cannot run here (bnb-4bit; w4a16 without the AVX2-missing kernel) are refused
  in one line before any engine starts.

The reader's answers must depend on the image, or agreement shows little: 30 training steps leave
the tiny reader giving one answer to all 48 images, so its ``lora_B`` matrices then get seeded
noise (std 0.5), which makes the 48 answers distinct (checked). Its margins are thin (HF's top-2
logit gap down to 1e-5), so it is a sharp check: before ``prepare_image`` ended on the processor's
28-px grid, each engine's processor resized the image with its own bicubic kernel and vLLM agreed
with HF on 23/48; now the pixels, the prompt ids and the greedy token ids are identical (48/48).
Answers compare after dropping a trailing U+FFFD: cut off mid-character at ``MAX_NEW_TOKENS``, the
random bytes this model emits decode to a replacement character in HF, while vLLM's incremental
detokenizer holds the incomplete bytes back (same token ids; LaTeX answers are ASCII).

Skipped, with the reason, where the vLLM environment is absent; under CI=true that is a failure.
Engine starts (~tens of seconds each on a CPU) are shared: the LoRA and dp=2 engines run in one
process (``tests/eval/vllm_engine_support.py``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLES

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(1800)]

MAX_NEW_TOKENS = 24
#: Share of identical greedy answers required (float32 on both; kernels differ, so a near-tie may flip).
AGREEMENT = 0.95
IMAGES = sorted((SAMPLES / "crohme2014_test" / "off_image_test").glob("*.bmp"))
#: LoRA on the language model, the vision blocks and the merger (the connector): every layer vLLM can
#: give LoRA to, so serving it exercises enable_tower_connector_lora.
TOWER_AND_LANGUAGE = (
    r".*(language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
    r"|visual\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(gate|up|down)_proj)|visual\.merger\.mlp\.(0|2))"
)


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    from eval.backends.vllm_env import vllm_python, where_looked

    python = vllm_python()
    if python is None:
        message = f"no vLLM environment at {where_looked()} (make install-vllm)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI runs the real vLLM engine: {message}")
        pytest.skip(message)
    return python


def vllm_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), VLLM_CPU_KVCACHE_SPACE="1", **extra)
    env.pop("HMER_VLLM_REEXEC", None)
    return env


#: The reader's HF answers must differ from image to image this often (48 distinct of 48 measured).
MIN_DISTINCT = 40


def complete_text(text: str) -> str:
    """``text`` without a trailing replacement character (an answer cut mid-character: see above)."""
    return text.rstrip("\ufffd")


def agreement(ours: list[str], theirs: list[str], what: str, min_distinct: int = 1) -> int:
    assert len(ours) == len(theirs)
    same = sum(complete_text(a) == complete_text(b) for a, b in zip(ours, theirs))
    raw = sum(a == b for a, b in zip(ours, theirs))
    distinct = len(set(theirs))
    print(
        f"{what}: {same}/{len(ours)} identical greedy predictions ({raw} byte for byte; "
        f"{distinct} distinct answers)"
    )
    assert distinct >= min_distinct, (
        f"{what}: the HF answers barely depend on the image ({distinct} distinct)"
    )
    assert same >= AGREEMENT * len(ours), f"{what}: only {same}/{len(ours)} identical"
    return same


@pytest.fixture(scope="module")
def images():
    from tests.eval.vllm_engine_support import read_images

    return read_images([str(p) for p in IMAGES])


def hf_texts(model: str, images) -> list[str]:
    from data_prep.contract import MAIN_PROMPT
    from eval.backends import get_backend

    # One image per generate call: no left padding, as each vLLM request (padding moves HF's floats,
    # and this reader's margins are thin).
    with get_backend("hf", model, dtype="float32", max_new_tokens=MAX_NEW_TOKENS, batch_size=1) as hf:
        return hf.generate(images, [MAIN_PROMPT] * len(images))


@pytest.fixture(scope="module")
def trained_reader(vllm_python, tiny_model_dir, crohme_sample_data, tmp_path_factory):
    """A LoRA (language + tower + connector) trained by train.sft on the sample, and its merged export."""
    from eval.backends.vllm_lora import inspect_adapter
    from train.export import export_merged

    root = tmp_path_factory.mktemp("vllm-reader")
    adapter = root / "lora"
    argv = [
        "--config", str(REPO / "recipes/tiny/lora.yaml"),
        "--model_name_or_path", str(tiny_model_dir),
        "--dataset_dir", str(crohme_sample_data),
        "--output_dir", str(adapter),
        "--lora_target_modules", TOWER_AND_LANGUAGE,
        "--max_steps", "30",
        "--save_steps", "1000",
    ]  # fmt: skip
    # In its own process (the documented command): training in this process left state behind that
    # changed the HF backend's later answers here.
    done = subprocess.run(
        [sys.executable, "-m", "train.sft", *argv], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    plan = inspect_adapter(str(adapter))
    assert plan.serve_directly and plan.tower_lora
    import torch
    from safetensors.torch import load_file, save_file

    # Seeded noise on lora_B: answers that follow the image (see the module doc).
    weights_file = adapter / "adapter_model.safetensors"
    weights = load_file(weights_file)
    noise = torch.Generator().manual_seed(0)
    for key, value in weights.items():
        if "lora_B" in key:
            weights[key] = value + 0.5 * torch.randn(value.shape, generator=noise)
    save_file(weights, str(weights_file))
    merged = export_merged(adapter, root / "merged", dtype="float32")
    return adapter, merged


@pytest.fixture(scope="module")
def vllm_runs(vllm_python, trained_reader, tmp_path_factory):
    """The LoRA and the merged export (dp=2) through VLLMBackend, in one vLLM-environment process."""
    adapter, merged = trained_reader
    root = tmp_path_factory.mktemp("vllm-runs")
    spec = {
        "images": [str(p) for p in IMAGES],
        "max_new_tokens": MAX_NEW_TOKENS,
        "jobs": {"lora": {"model": str(adapter)}, "merged_dp2": {"model": str(merged), "dp": 2}},
    }
    (root / "jobs.json").write_text(json.dumps(spec))
    command = [
        str(vllm_python),
        "-m",
        "tests.eval.vllm_engine_support",
        str(root / "jobs.json"),
        str(root / "out.json"),
    ]
    done = subprocess.run(command, cwd=REPO, env=vllm_env(), capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((root / "out.json").read_text())


def test_evaluate_cli_runs_vllm_from_its_own_environment(
    vllm_python, tiny_model_dir, crohme_sample_data, tmp_path
):
    from eval import evaluate

    common = [
        "--model", str(tiny_model_dir), "--sets", "crohme2014_sample", "--data-dir", str(crohme_sample_data),
        "--max-new-tokens", str(MAX_NEW_TOKENS), "--no-progress",
    ]  # fmt: skip
    # From this environment (no vllm): eval.evaluate re-runs itself under the vLLM environment.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "eval.evaluate",
            *common,
            "--backend",
            "vllm",
            "--output-dir",
            str(tmp_path / "v"),
        ],
        cwd=REPO,
        env=vllm_env(HMER_VLLM_PYTHON=str(vllm_python)),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert evaluate.main([*common, "--backend", "hf", "--output-dir", str(tmp_path / "h")]) == 0
    meta = json.loads((tmp_path / "v" / "crohme2014_sample.main.meta.json").read_text())
    assert meta["backend"] == "vllm" and meta["complete"]

    def rows(folder: str) -> dict[str, str]:
        lines = (tmp_path / folder / "crohme2014_sample.main.jsonl").read_text().splitlines()
        return {r["id"]: r["raw_output"] for r in map(json.loads, lines)}

    ours, theirs = rows("v"), rows("h")
    assert sorted(ours) == sorted(theirs) and ours
    agreement([ours[k] for k in sorted(ours)], [theirs[k] for k in sorted(ours)], "tiny model, eval.evaluate")


def test_lora_with_tower_and_connector_matches_hf(vllm_runs, trained_reader, images):
    adapter, _ = trained_reader
    hf = hf_texts(str(adapter), images)
    agreement(vllm_runs["lora"]["texts"], hf, "trained reader, LoRA", min_distinct=MIN_DISTINCT)


def test_merged_export_on_two_data_parallel_engines_matches_hf(vllm_runs, trained_reader, images):
    _, merged = trained_reader
    hf = hf_texts(str(merged), images)
    agreement(vllm_runs["merged_dp2"]["texts"], hf, "merged export, dp=2", min_distinct=MIN_DISTINCT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, server: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(2)
    raise AssertionError(f"the server did not answer within {timeout:.0f} s")


def test_openai_server_with_client_and_model_bounds_matches_hf(
    vllm_python, trained_reader, images, tmp_path, capsys
):
    from data_prep.contract import extract_latex
    from eval import client

    adapter, _ = trained_reader
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "eval.backends.vllm_serve", "--model", str(adapter), "--port", str(port)],
        cwd=REPO,
        env=vllm_env(HMER_VLLM_PYTHON=str(vllm_python)),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the engine core child goes with it
    )
    try:
        wait_ready(url, server)
        capsys.readouterr()
        argv = [*map(str, IMAGES), "--url", url, "--model", "hmer", "--model-dir", str(adapter)]
        assert client.main([*argv, "--max-tokens", str(MAX_NEW_TOKENS)]) == 0
        answers = dict(line.split("\t", 1) for line in capsys.readouterr().out.splitlines())
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # stopped by its PID (its group: the engine core too)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        log.close()
    assert server.returncode is not None
    hf = [extract_latex(t) for t in hf_texts(str(adapter), images)]
    served = [answers[p.stem] for p in IMAGES]
    agreement(served, hf, "trained reader, OpenAI server + eval.client", min_distinct=MIN_DISTINCT)


def _fake_checkpoint(tiny_model_dir: Path, out: Path, quantization: dict) -> Path:
    import shutil

    shutil.copytree(tiny_model_dir, out)
    config = json.loads((out / "config.json").read_text())
    config["quantization_config"] = quantization
    (out / "config.json").write_text(json.dumps(config))
    return out


W4A16 = {
    "quant_method": "compressed-tensors",
    "format": "pack-quantized",
    "config_groups": {
        "group_0": {"targets": ["Linear"], "weights": {"num_bits": 4}, "input_activations": None}
    },
}


@pytest.mark.parametrize(
    ("quantization", "expected"),
    [({"quant_method": "bitsandbytes", "load_in_4bit": True}, "bitsandbytes"), (W4A16, "cpu_gemm_wna16")],
    ids=["bnb-4bit", "w4a16"],
)
def test_formats_the_cpu_build_cannot_run_are_refused_in_one_line(
    vllm_python, tiny_model_dir, tmp_path, quantization, expected
):
    if expected == "cpu_gemm_wna16":
        probe = subprocess.run(
            [str(vllm_python), "-c", "from eval.backends.vllm_cpu import has_wna16_kernel as h; print(h())"],
            cwd=REPO, env=vllm_env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr[-2000:]
        if probe.stdout.strip() == "True":
            pytest.skip("this CPU's vLLM build has the w4a16 kernel (AVX-512): nothing to refuse")
    model = _fake_checkpoint(tiny_model_dir, tmp_path / "model", quantization)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "eval.predict", "--backend", "vllm", "--model", str(model), str(IMAGES[0])],
        cwd=REPO, env=vllm_env(HMER_VLLM_PYTHON=str(vllm_python)), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("predict failed:")]
    assert done.returncode == 2 and len(errors) == 1 and expected in errors[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    print(f"{expected} refused in {time.monotonic() - started:.0f} s (no engine started)")
