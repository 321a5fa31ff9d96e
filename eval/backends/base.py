"""What every inference backend is: the :class:`Backend` interface and the options it is built
from (:class:`BackendOptions`, the one declaration of the inference command-line options)."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Sequence
from typing import Any

from PIL import Image

from data_prep.contract import DEFAULT_BOUNDS, TASK_MAIN, ImageBounds
from train.generation import STOP_TOKENS, stop_token_ids  # noqa: F401 -- shared with training

BACKENDS = ("auto", "hf", "vllm")


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """The inference options every command takes (``--backend --batch-size --max-new-tokens --dtype
    --tp --dp --seed --min-pixels --max-pixels``), declared once: the commands parse it with
    :func:`eval.cli.parse_command_line`, and every backend is built from it (:func:`open_backend`)."""

    backend: str = dataclasses.field(
        default="auto",
        metadata={
            "help": "auto: vLLM when it is installed and a CUDA GPU is present, else hf",
            "choices": BACKENDS,
        },
    )
    batch_size: int = dataclasses.field(default=8, metadata={"help": "images per generate call"})
    #: None: the command's default for its prompts (:func:`default_max_new_tokens`).
    max_new_tokens: int | None = dataclasses.field(
        default=None, metadata={"help": "default: 256 for the main prompt, 1024 for tree_cot/counting"}
    )
    dtype: str = dataclasses.field(default="auto", metadata={"help": "auto, bfloat16, float16 or float32"})
    #: vLLM: tensor parallelism; HF: layers spread over the visible GPUs.
    tp: int = dataclasses.field(default=1, metadata={"help": "tensor parallel GPUs per replica (vLLM)"})
    #: vLLM: data-parallel replicas (the HF backend refuses dp > 1).
    dp: int = dataclasses.field(
        default=1, metadata={"help": "data parallel replicas (vLLM, one per GPU group)"}
    )
    seed: int = dataclasses.field(default=0, metadata={"help": "sampling seed"})
    #: None: the bounds the model was fine-tuned with (recorded in its folder), else the contract's.
    min_pixels: int | None = dataclasses.field(
        default=None, metadata={"help": "image pixel bounds; default: the model's training bounds"}
    )
    max_pixels: int | None = dataclasses.field(default=None, metadata={"help": "see --min-pixels"})
    #: Always generate ``max_new_tokens`` tokens (benchmarks).
    ignore_eos: bool = dataclasses.field(default=False, metadata={"help": "benchmarks: never stop early"})

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        numbers = (self.batch_size, self.max_new_tokens or 1, self.tp, self.dp)
        if any(n < 1 for n in numbers):
            raise ValueError("batch_size, max_new_tokens, tp and dp must all be at least 1")
        if (self.min_pixels is None) != (self.max_pixels is None):
            raise ValueError("give both --min-pixels and --max-pixels, or neither")
        if self.min_pixels is not None:
            self.bounds  # noqa: B018 -- validates them (ImageBounds raises a one-line ValueError)

    @property
    def bounds(self) -> ImageBounds:
        if self.min_pixels is None or self.max_pixels is None:
            return DEFAULT_BOUNDS
        return ImageBounds(min_pixels=self.min_pixels, max_pixels=self.max_pixels)


def default_max_new_tokens(tasks: Sequence[str]) -> int:
    """256 when only the main prompt runs; 1024 when a Tree-CoT or counting answer must fit."""
    return 256 if list(tasks) == [TASK_MAIN] else 1024


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
