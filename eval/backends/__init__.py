"""Inference backends: one interface over Hugging Face ``generate`` and vLLM.

    backend = get_backend("auto", "outputs/sft/checkpoint-final", batch_size=16)
    backend = open_backend(BackendOptions(backend="hf", max_new_tokens=64), model)   # from a command's options
    texts = backend.generate(images, prompts)          # greedy, raw decoded text
    samples = backend.sample(images, prompts, n=5, temperature=0.2, top_p=0.8)
    backend.close()

``"auto"`` picks vLLM when it is importable *and* a CUDA GPU is present, else the HF backend.
Both backends build their inputs through ``train.inputs`` and ``data_prep.contract`` (same chat
text, same prepared image, same pixel bounds) and decode greedily with the same stop tokens and no
repetition penalty, so they answer the same question the same way.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from data_prep.contract import DEFAULT_BOUNDS, ImageBounds
from eval.backends.base import (
    BACKENDS,
    STOP_TOKENS,
    Backend,
    BackendOptions,
    cuda_available,
    default_max_new_tokens,
    resolve_backend_name,
    stop_token_ids,
    vllm_importable,
)
from train.modeling import ModelSource

logger = logging.getLogger(__name__)


def open_backend(options: BackendOptions, model: str | ModelSource, **extra: Any) -> Backend:
    """Build the backend ``options`` name for ``model`` (hub id, model folder or LoRA adapter folder).

    ``extra`` goes to the backend's constructor (HF: ``device``, ``load_in_4bit``; vLLM:
    ``gpu_memory_utilization``, ``enforce_eager``, ``max_model_len``, ``detokenize``).
    """
    if not model:
        raise ValueError("a backend needs a model (hub id, model folder or adapter folder)")
    from train.modeling import as_source, saved_bounds

    source = as_source(model)  # resolved once here; everything below takes the source
    if options.min_pixels is None:
        # The bounds the model was fine-tuned with (recorded in its folder), else the contract's.
        bounds = saved_bounds(source) or DEFAULT_BOUNDS
        options = dataclasses.replace(options, min_pixels=bounds.min_pixels, max_pixels=bounds.max_pixels)
    if options.max_new_tokens is None:
        options = dataclasses.replace(options, max_new_tokens=default_max_new_tokens([]))
    logger.info("images scaled into [%d, %d] pixels", options.min_pixels, options.max_pixels)
    name = options.backend
    resolved = resolve_backend_name(name)
    if name == "auto":
        why = (
            "vLLM is importable and a CUDA GPU is present"
            if resolved == "vllm"
            else ("no CUDA GPU" if not cuda_available() else "vLLM is not installed")
        )
        if resolved == "vllm":
            from eval.backends.vllm import unservable_quantization

            method = unservable_quantization(source.base)
            if method:  # vLLM 0.33 cannot load it; transformers can
                resolved, why = "hf", f"a {method} checkpoint, which vLLM 0.33 cannot serve"
        logger.info("backend auto -> %s (%s)", resolved, why)
    if resolved == "vllm":
        from eval.backends.vllm import VLLMBackend

        return VLLMBackend(source, options, **extra)
    from eval.backends.hf import HFBackend

    return HFBackend(source, options, **extra)


def get_backend(
    name: str = "auto",
    model: str | ModelSource = "",
    *,
    bounds: ImageBounds | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 256,
    dtype: str = "auto",
    tp: int = 1,
    dp: int = 1,
    seed: int = 0,
    ignore_eos: bool = False,
    **extra: Any,
) -> Backend:
    """:func:`open_backend` with the options as keyword arguments (scripts, tests, benchmarks)."""
    options = BackendOptions(
        backend=name,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        dtype=dtype,
        tp=tp,
        dp=dp,
        seed=seed,
        min_pixels=bounds.min_pixels if bounds else None,
        max_pixels=bounds.max_pixels if bounds else None,
        ignore_eos=ignore_eos,
    )
    return open_backend(options, model, **extra)


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendOptions",
    "STOP_TOKENS",
    "cuda_available",
    "default_max_new_tokens",
    "get_backend",
    "open_backend",
    "resolve_backend_name",
    "stop_token_ids",
    "vllm_importable",
]
