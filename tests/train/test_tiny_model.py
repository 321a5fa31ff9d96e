"""The tiny model's size presets: the rotary embedding of ``structure`` tells image tokens apart."""

from __future__ import annotations

import pytest
import torch

from train.tiny_model import SIZES, build_tokenizer, tiny_config


def rotary_of(size: str):
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLRotaryEmbedding

    config = tiny_config(build_tokenizer(), **SIZES[size]).text_config
    return Qwen2_5_VLRotaryEmbedding(config), config


def image_token_angles(size: str) -> torch.Tensor:
    """The rotary sine of the 12 image tokens of a 6 x 2 token page (M-RoPE ids: time 0, row, column)."""
    rotary, config = rotary_of(size)
    rows, cols = torch.meshgrid(torch.arange(2), torch.arange(6), indexing="ij")
    ids = torch.stack([torch.zeros(12, dtype=torch.long), rows.flatten(), cols.flatten()])[:, None, :]
    dummy = torch.zeros(1, 12, config.hidden_size)
    _, sin = rotary(dummy, ids)
    return sin[0]  # (12 tokens, head_dim)


@pytest.mark.parametrize("size", sorted(SIZES))
def test_every_preset_builds_a_valid_config(size):
    config = tiny_config(build_tokenizer(), **SIZES[size])
    text = config.text_config
    assert text.hidden_size // text.num_attention_heads == 32  # vLLM's CPU attention needs >= 32
    assert sum(text.rope_parameters["mrope_section"]) == 16


def test_structure_preset_gives_neighbouring_image_tokens_different_positions():
    structure = image_token_angles("structure")
    reader = image_token_angles("reader")
    # Column 0 vs column 1 of the first row, and row 0 vs row 1 of the first column.
    for a, b in ((0, 1), (0, 6)):
        assert (structure[a] - structure[b]).abs().max() > 0.1
        # With Qwen's base 1e6 at head_dim 32 the same tokens are nearly indistinguishable: the
        # reason the structure preset exists (see train.tiny_model).
        assert (reader[a] - reader[b]).abs().max() < 0.01


def test_reader_preset_keeps_qwens_rotary_base():
    # make demo's model: changing it would change the demo's measured figure.
    _, config = rotary_of("reader")
    assert config.rope_parameters["rope_theta"] == 1_000_000.0
    assert config.rope_parameters["mrope_section"] == [6, 5, 5]


def test_a_rotary_split_that_does_not_fill_the_head_is_refused():
    with pytest.raises(ValueError, match="must add up to head_dim/2 = 16"):
        tiny_config(build_tokenizer(), **{**SIZES["structure"], "mrope_section": [4, 4, 4]})
