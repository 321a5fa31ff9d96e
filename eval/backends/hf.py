"""Hugging Face ``generate`` backend: batched, left-padded, greedy by default; CPU or GPU.

Inputs come from :func:`train.inputs.encode_for_generation` (the chat text and prepared images the
model was trained on). The generation settings are built here from scratch rather than taken from
the model's ``generation_config.json``: Qwen2.5-VL-Instruct ships ``repetition_penalty=1.05`` and
sampling defaults there, which would make HF decode differently from vLLM (which we call with
plain greedy settings).
"""

from __future__ import annotations

import logging
from typing import Any

from PIL import Image

from eval.backends.base import Backend, BackendOptions, cuda_available, stop_token_ids
from train.modeling import ModelSource

logger = logging.getLogger(__name__)


class HFBackend(Backend):
    name = "hf"

    def __init__(
        self,
        model: str | ModelSource,
        options: BackendOptions = BackendOptions(),
        *,
        device: str | None = None,
        load_in_4bit: bool = False,
    ) -> None:
        import torch

        from train.modeling import load_model_and_processor

        if options.dp > 1:
            raise ValueError(
                "the HF backend runs in one process; data parallel (--dp) needs --backend vllm "
                "(or split the test set and run one evaluate per GPU)"
            )
        super().__init__(options)
        self.chunk_size = options.batch_size
        on_gpu = cuda_available() if device is None else device.startswith("cuda")
        self.device = device or ("cuda" if on_gpu else "cpu")
        dtype = options.dtype
        if dtype == "auto":
            # bf16 on a CPU is emulated and slow; fp32 there, bf16 on a GPU (what training used).
            dtype = "bfloat16" if on_gpu else "float32"
        device_map: Any = None
        if options.tp > 1:
            # Not true tensor parallelism: accelerate spreads the layers over the visible GPUs.
            device_map = "auto"
            logger.info(
                "HF backend: tp=%d -> layers spread over the visible GPUs (device_map=auto)", options.tp
            )
        elif load_in_4bit:
            device_map = {"": self.device}
        self.model, self.processor = load_model_and_processor(
            model, options.bounds, dtype=dtype, load_in_4bit=load_in_4bit, device_map=device_map
        )
        if device_map is None:
            self.model.to(self.device)
        self.model.eval()
        self.input_device = next(self.model.parameters()).device
        self.tokenizer = self.processor.tokenizer
        self.stop_ids = stop_token_ids(self.tokenizer)
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_ids[0]
        )
        self._torch = torch
        logger.info(
            "HF backend: %s on %s (%s), batch size %d, at most %d new tokens",
            getattr(model, "name", model),
            self.input_device,
            dtype,
            options.batch_size,
            options.max_new_tokens,
        )

    def generation_config(self, **sampling: Any):
        """Greedy (or the given sampling) settings, independent of the model's own defaults."""
        from train.generation import generation_config

        return generation_config(
            self.tokenizer, self.options.max_new_tokens, self.options.ignore_eos, **sampling
        )

    def _run(self, images: list[Image.Image], prompts: list[str], n: int, **sampling: Any) -> list[str]:
        """``n`` decoded answers per pair, in order, one ``generate`` call per ``batch_size`` pairs."""
        from train.generation import generate_texts

        config = self.generation_config(**sampling)
        config.num_return_sequences = n
        return generate_texts(
            self.model, self.processor, images, prompts, config, self.options.bounds, self.options.batch_size
        )

    def _generate(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        return self._run(images, prompts, n=1)

    def _sample(
        self, images: list[Image.Image], prompts: list[str], n: int, temperature: float, top_p: float
    ) -> list[list[str]]:
        from transformers import set_seed

        # Reseeded per call, so the same call gives the same samples.
        set_seed(self.options.seed)
        flat = self._run(images, prompts, n=n, temperature=temperature, top_p=top_p, top_k=0)
        return [flat[i : i + n] for i in range(0, len(flat), n)]

    def close(self) -> None:
        self.model = None
        if cuda_available():
            self._torch.cuda.empty_cache()
