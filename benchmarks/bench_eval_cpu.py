"""``make bench-eval`` on a machine without a GPU: vLLM's CPU build vs the HF backend, side by side.

Both backends load the same tiny Qwen2.5-VL (``python -m train.tiny_model``, float32), read the
bundled CROHME bitmaps cycled to ``--cpu-images``, and generate exactly ``--cpu-max-tokens`` tokens
per image (end of sequence ignored), so the figures compare the engines, not what random weights
say. vLLM's engine start (about a minute) is timed apart from its throughput. Both run in the same
process, so under the same torch: the vLLM environment's (``make install-vllm``), which the
benchmark re-runs itself in when vLLM is not importable here. A CPU figure says nothing of GPUs:
the GPU row stays "not measured".
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path

from data_prep.contract import MAIN_PROMPT


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _time(backend, images, batch: int) -> float:
    warmup = images[:batch]
    backend.generate(warmup, [MAIN_PROMPT] * len(warmup))
    started = time.perf_counter()
    backend.generate(images, [MAIN_PROMPT] * len(images))
    return time.perf_counter() - started


def compare(n_images: int, max_tokens: int, batch_size: int, size: str = "tiny") -> list[dict]:
    """Time HF and vLLM on the tiny model; one row per backend (vLLM missing: its row says why)."""
    import os

    from benchmarks.bench_eval import sample_images
    from eval.backends import get_backend, vllm_importable
    from train.tiny_model import build_tiny_model

    images = sample_images(n_images)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_model(Path(tmp) / "tiny", size=size))
        common = {"max_new_tokens": max_tokens, "dtype": "float32", "ignore_eos": True}
        with get_backend("hf", model, batch_size=batch_size, **common) as hf:
            seconds = _time(hf, images, batch_size)
        rows.append({"backend": "hf", "images": n_images, "seconds": seconds, "start_s": None})
        if not vllm_importable():
            rows.append({"backend": "vllm", "why": "vllm not installed (make install-vllm)"})
            return rows
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the tiny model needs far less
        started = time.perf_counter()
        with get_backend("vllm", model, batch_size=batch_size, detokenize=False, **common) as vllm:
            start_s = time.perf_counter() - started
            seconds = _time(vllm, images, batch_size)
        rows.append({"backend": "vllm", "images": n_images, "seconds": seconds, "start_s": start_s})
    return rows


def table(rows: list[dict], max_tokens: int, size: str) -> str:
    lines = [
        f"CPU: {cpu_name()}, {len(__import__('os').sched_getaffinity(0))} cores; tiny model ({size}), "
        f"float32, {max_tokens} tokens per image",
        "",
        "| device | backend | images | seconds | images/s | engine start s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "why" in r:
            lines.append(f"| CPU | {r['backend']} | - | - | not measured: {r['why']} | - |")
            continue
        start = "-" if r["start_s"] is None else f"{r['start_s']:.0f}"
        lines.append(
            f"| CPU | {r['backend']} | {r['images']} | {r['seconds']:.1f} | "
            f"{r['images'] / r['seconds']:.1f} | {start} |"
        )
    lines.append(
        "| GPU | hf, vllm | - | - | not measured (no CUDA GPU here; run make bench-eval on one) | - |"
    )
    return "\n".join(lines)
