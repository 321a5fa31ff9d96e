"""Inference backends: one interface over Hugging Face ``generate`` and vLLM.

    backend = get_backend("auto", "outputs/sft/checkpoint-final", batch_size=16)
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
import importlib.util
import logging
from collections.abc import Sequence
from typing import Any

from PIL import Image

from data_prep.contract import DEFAULT_BOUNDS, ImageBounds
from train.generation import STOP_TOKENS, stop_token_ids  # noqa: F401 -- shared with training
from train.modeling import ModelSource

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "hf", "vllm")


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """The settings every backend takes (:func:`get_backend` builds them from its arguments)."""

    bounds: ImageBounds = DEFAULT_BOUNDS
    batch_size: int = 8
    max_new_tokens: int = 256
    dtype: str = "auto"
    #: vLLM: tensor parallelism; HF: layers spread over the visible GPUs.
    tp: int = 1
    #: vLLM: data-parallel replicas (the HF backend refuses dp > 1).
    dp: int = 1
    seed: int = 0
    #: Always generate ``max_new_tokens`` tokens (benchmarks).
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_new_tokens < 1 or self.tp < 1 or self.dp < 1:
            raise ValueError("batch_size, max_new_tokens, tp and dp must all be at least 1")


class Backend:
    """What every backend offers. Subclasses implement :meth:`_generate` and :meth:`_sample`."""

    #: ``"hf"`` or ``"vllm"``.
    name: str = ""
    #: How many items the evaluate loop hands over at once (HF: one batch; vLLM: many, it schedules
    #: them itself). Rows are written after each chunk, so this is also the resume granularity.
    chunk_size: int = 8

    def __init__(self, options: BackendOptions) -> None:
        self.options = options

    def generate(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> list[str]:
        """Greedy answers, one raw decoded text per (image, prompt) pair."""
        _check_lengths(images, prompts)
        if not images:
            return []
        return self._generate(list(images), list(prompts))

    def sample(
        self,
        images: Sequence[Image.Image],
        prompts: Sequence[str],
        n: int,
        temperature: float,
        top_p: float,
    ) -> list[list[str]]:
        """``n`` sampled answers per pair (seeded by the backend's ``seed``)."""
        _check_lengths(images, prompts)
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if temperature <= 0:
            raise ValueError("sampling needs temperature > 0; use generate() for greedy answers")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if not images:
            return []
        return self._sample(list(images), list(prompts), n, temperature, top_p)

    def close(self) -> None:
        """Release the model (GPU memory, worker processes, temporary merged weights)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _generate(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        raise NotImplementedError

    def _sample(
        self, images: list[Image.Image], prompts: list[str], n: int, temperature: float, top_p: float
    ) -> list[list[str]]:
        raise NotImplementedError


def _check_lengths(images: Sequence[Any], prompts: Sequence[str]) -> None:
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")


def vllm_importable() -> bool:
    return importlib.util.find_spec("vllm") is not None


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def resolve_backend_name(name: str = "auto") -> str:
    """``"hf"`` or ``"vllm"`` for ``name``; ``"auto"`` = vllm when importable and a GPU is present."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name != "auto":
        return name
    if vllm_importable() and cuda_available():
        return "vllm"
    return "hf"


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
    **options: Any,
) -> Backend:
    """Build a backend for ``model`` (hub id, model folder or LoRA adapter folder).

    ``ignore_eos=True`` (benchmarks) goes into :class:`BackendOptions`; other ``options`` go to the
    backend's constructor (HF: ``device``, ``load_in_4bit``; vLLM: ``gpu_memory_utilization``,
    ``enforce_eager``, ``max_model_len``, ``detokenize``).
    """
    if not model:
        raise ValueError("get_backend needs a model (hub id, model folder or adapter folder)")
    from train.modeling import as_source, saved_bounds

    source = as_source(model)  # resolved once here; everything below takes the source
    if bounds is None:
        # The bounds the model was fine-tuned with (recorded in its folder), else the contract's.
        bounds = saved_bounds(source) or DEFAULT_BOUNDS
    common = BackendOptions(
        bounds=bounds,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        dtype=dtype,
        tp=tp,
        dp=dp,
        seed=seed,
        ignore_eos=options.pop("ignore_eos", False),
    )
    logger.info("images scaled into [%d, %d] pixels", bounds.min_pixels, bounds.max_pixels)
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

        return VLLMBackend(source, common, **options)
    from eval.backends.hf import HFBackend

    return HFBackend(source, common, **options)


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendOptions",
    "STOP_TOKENS",
    "cuda_available",
    "get_backend",
    "resolve_backend_name",
    "stop_token_ids",
    "vllm_importable",
]
