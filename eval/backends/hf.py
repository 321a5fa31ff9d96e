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

from data_prep.contract import DEFAULT_BOUNDS, ImageBounds
from eval.backends import Backend, cuda_available, stop_token_ids

logger = logging.getLogger(__name__)


class HFBackend(Backend):
    name = "hf"

    def __init__(
        self,
        model: str,
        *,
        bounds: ImageBounds = DEFAULT_BOUNDS,
        batch_size: int = 8,
        max_new_tokens: int = 256,
        dtype: str = "auto",
        tp: int = 1,
        dp: int = 1,
        seed: int = 0,
        device: str | None = None,
        ignore_eos: bool = False,
        load_in_4bit: bool = False,
    ) -> None:
        import torch

        from train.modeling import load_model_and_processor

        if dp > 1:
            raise ValueError(
                "the HF backend runs in one process; data parallel (--dp) needs --backend vllm "
                "(or split the test set and run one evaluate per GPU)"
            )
        self.bounds = bounds
        self.batch_size = batch_size
        self.chunk_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.ignore_eos = ignore_eos
        on_gpu = cuda_available() if device is None else device.startswith("cuda")
        self.device = device or ("cuda" if on_gpu else "cpu")
        if dtype == "auto":
            # bf16 on a CPU is emulated and slow; fp32 there, bf16 on a GPU (what training used).
            dtype = "bfloat16" if on_gpu else "float32"
        device_map: Any = None
        if tp > 1:
            # Not true tensor parallelism: accelerate spreads the layers over the visible GPUs.
            device_map = "auto"
            logger.info("HF backend: tp=%d -> layers spread over the visible GPUs (device_map=auto)", tp)
        elif load_in_4bit:
            device_map = {"": self.device}
        self.model, self.processor = load_model_and_processor(
            model, bounds, dtype=dtype, load_in_4bit=load_in_4bit, device_map=device_map
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
            model,
            self.input_device,
            dtype,
            batch_size,
            max_new_tokens,
        )

    def generation_config(self, **sampling: Any):
        """Greedy (or the given sampling) settings, independent of the model's own defaults."""
        from transformers import GenerationConfig

        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=bool(sampling),
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
            repetition_penalty=1.0,
            **sampling,
        )
        if self.ignore_eos:
            config.min_new_tokens = self.max_new_tokens
        return config

    def _run(self, images: list[Image.Image], prompts: list[str], n: int, **sampling: Any) -> list[str]:
        from train.inputs import encode_for_generation

        batch = encode_for_generation(self.processor, images, prompts, self.bounds)
        batch = {k: v.to(self.input_device) if hasattr(v, "to") else v for k, v in batch.items()}
        config = self.generation_config(**sampling)
        config.num_return_sequences = n
        with self._torch.inference_mode():
            out = self.model.generate(**batch, generation_config=config)
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    def _generate(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        texts: list[str] = []
        for start in range(0, len(images), self.batch_size):
            end = start + self.batch_size
            texts += self._run(images[start:end], prompts[start:end], n=1)
        return texts

    def _sample(
        self, images: list[Image.Image], prompts: list[str], n: int, temperature: float, top_p: float
    ) -> list[list[str]]:
        from transformers import set_seed

        # Reseeded per call, so the same call gives the same samples.
        set_seed(self.seed)
        out: list[list[str]] = []
        for start in range(0, len(images), self.batch_size):
            end = start + self.batch_size
            flat = self._run(
                images[start:end], prompts[start:end], n=n, temperature=temperature, top_p=top_p, top_k=0
            )
            out += [flat[i : i + n] for i in range(0, len(flat), n)]
        return out

    def close(self) -> None:
        self.model = None
        if cuda_available():
            self._torch.cuda.empty_cache()
