"""llama.cpp's image-token bounds from the project's pixel bounds (no llama.cpp needed)."""

from __future__ import annotations

from train.export.gguf import image_token_bounds


def test_one_token_per_28_by_28_pixels():
    assert image_token_bounds(784, 9408) == (1, 12)  # the tiny reader's bounds
    assert image_token_bounds(3136, 262144) == (4, 334)  # the contract's default cap


def test_never_below_one_token():
    assert image_token_bounds(100, 500) == (1, 1)
