"""Greedy generation with the HF model, shared by evaluation (``eval.backends.hf``) and the
validation that runs while training (``train.validation``), so both answer the same question
the same way: the contract's chat text and prepared image (:mod:`train.inputs`), Qwen's stop
tokens, no repetition penalty, and settings built from scratch rather than read from the model's
``generation_config.json`` (Qwen2.5-VL-Instruct ships sampling defaults and a repetition penalty
there, which would make HF decode differently from vLLM).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from data_prep.contract import DEFAULT_BOUNDS, ImageBounds
from train.inputs import encode_for_generation

#: Qwen's end-of-turn and end-of-text tokens: generation stops at either, in every backend.
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Ids of :data:`STOP_TOKENS` the tokenizer knows (the eos token first), for every backend."""
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    ids: list[int] = []
    candidates = [tokenizer.eos_token, *STOP_TOKENS] if tokenizer.eos_token else list(STOP_TOKENS)
    vocab = tokenizer.get_vocab()
    for token in candidates:
        token_id = vocab.get(token)
        if token_id is not None and token_id not in ids:
            ids.append(token_id)
    if not ids:
        raise ValueError("the tokenizer has neither an eos token nor Qwen's <|im_end|>/<|endoftext|>")
    return ids


def generation_config(tokenizer: Any, max_new_tokens: int, ignore_eos: bool = False, **sampling: Any):
    """Greedy (or the given sampling) settings, independent of the model's own defaults."""
    from transformers import GenerationConfig

    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    stop_ids = stop_token_ids(tokenizer)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=bool(sampling),
        eos_token_id=stop_ids,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0],
        repetition_penalty=1.0,
        use_cache=True,
        **sampling,
    )
    if ignore_eos:
        config.min_new_tokens = max_new_tokens
    return config


def generate_texts(
    model: Any,
    processor: Any,
    images: Sequence[Image.Image],
    prompts: Sequence[str],
    config: Any,
    bounds: ImageBounds = DEFAULT_BOUNDS,
    batch_size: int = 8,
    **generate_kwargs: Any,
) -> list[str]:
    """Decoded answers (``config.num_return_sequences`` per pair, in order), one ``generate`` call
    per ``batch_size`` pairs."""
    import torch

    device = next(model.parameters()).device
    texts: list[str] = []
    for start in range(0, len(images), batch_size):
        batch = encode_for_generation(
            processor, images[start : start + batch_size], prompts[start : start + batch_size], bounds
        )
        batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
        with torch.inference_mode():
            out = model.generate(**batch, generation_config=config, **generate_kwargs)
        texts += processor.tokenizer.batch_decode(
            out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
        )
    return texts
