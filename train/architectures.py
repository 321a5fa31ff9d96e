"""The real Qwen2.5-VL architectures, built from their published ``config.json`` values (no download).

Export size estimates (``python -m train.export --estimate-sizes``) and the benchmarks
(``benchmarks/bench_train.py``, ``benchmarks/bench_eval.py``) build the 3B / 7B models from here.

    config = qwen2_5_vl_config("3b")               # Qwen2_5_VLConfig, Qwen's token ids
    counts = count_parameters("7b")                # parameters by module, on the meta device
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

#: Qwen's special tokens and their ids in the published tokenizer.
QWEN_SPECIAL_TOKEN_IDS = {
    "<|endoftext|>": 151643,
    "<|im_end|>": 151645,
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
}

_SIZE_FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
    "tie_word_embeddings",
)
#: Language-model values that differ between the Instruct checkpoints, in :data:`_SIZE_FIELDS` order.
_SIZES = {
    "3b": (2048, 11008, 36, 16, 2, 151936, True),
    "7b": (3584, 18944, 28, 28, 4, 152064, False),
}
#: Language-model values both checkpoints share (M-RoPE sections of a 128-wide head).
_TEXT = {
    "max_position_embeddings": 128000,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]},
}
#: The vision tower, the same in both (its merger projects to the language model's width).
_VISION = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "hidden_act": "silu",
    "in_channels": 3,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31],
}
SIZES = tuple(_SIZES)


def qwen2_5_vl_config(
    size: str = "3b",
    special_token_ids: Mapping[str, int] | None = None,
    text: Mapping[str, Any] | None = None,
    vision: Mapping[str, Any] | None = None,
):
    """The ``Qwen2_5_VLConfig`` of Qwen2.5-VL-<size>-Instruct.

    ``special_token_ids`` replaces entries of :data:`QWEN_SPECIAL_TOKEN_IDS` (for a model saved
    with another tokenizer); ``text`` and ``vision`` override values of the two sub-configs (a
    toy-width copy for smoke runs). The merger's output width follows the language model's.
    """
    from transformers import Qwen2_5_VLConfig

    if size not in _SIZES:
        raise ValueError(f"unknown architecture {size!r}; known: {', '.join(_SIZES)}")
    ids = {**QWEN_SPECIAL_TOKEN_IDS, **(special_token_ids or {})}
    text_config = {
        **_TEXT,
        **dict(zip(_SIZE_FIELDS, _SIZES[size])),
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        **(text or {}),
    }
    vision_config = {**_VISION, "out_hidden_size": text_config["hidden_size"], **(vision or {})}
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        tie_word_embeddings=text_config["tie_word_embeddings"],
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )


@dataclasses.dataclass(frozen=True)
class ParameterCounts:
    """Parameters of one architecture, split the way the quantised formats treat them."""

    arch: str
    vision: int  # vision tower + merger (kept in 16 bits by every 4-bit format)
    embeddings: int  # token embeddings (never quantised)
    lm_head: int  # 0 when tied to the embeddings (stored once)
    decoder_linear: int  # weights of the decoder's Linear layers (what 4-bit formats quantise)
    decoder_other: int  # norms and biases of the decoder
    kv_bytes_per_token: int  # bf16 K and V over all layers

    @property
    def total(self) -> int:
        return self.vision + self.embeddings + self.lm_head + self.decoder_linear + self.decoder_other


@functools.cache
def count_parameters(arch: str = "3b") -> ParameterCounts:
    """Count the real architecture's parameters by module, on the meta device (no memory used;
    cached: the size table asks twice)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    config = qwen2_5_vl_config(arch)
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    counts = dict(vision=0, embeddings=0, lm_head=0, decoder_linear=0, decoder_other=0)
    seen: set[int] = set()
    linear_weights = {
        id(m.weight) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".layers." in n
    }
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            continue  # tied lm_head: stored once
        seen.add(id(param))
        if ".visual." in f".{name}":
            counts["vision"] += param.numel()
        elif "embed_tokens" in name:
            counts["embeddings"] += param.numel()
        elif name.startswith("lm_head"):
            counts["lm_head"] += param.numel()
        elif id(param) in linear_weights:
            counts["decoder_linear"] += param.numel()
        else:
            counts["decoder_other"] += param.numel()
    text = config.text_config
    head_dim = text.hidden_size // text.num_attention_heads
    kv = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * 2
    return ParameterCounts(arch=arch, kv_bytes_per_token=kv, **counts)


__all__ = ["QWEN_SPECIAL_TOKEN_IDS", "SIZES", "ParameterCounts", "count_parameters", "qwen2_5_vl_config"]
