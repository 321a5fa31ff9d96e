"""Saved model folders carry what AutoProcessor needs to build Qwen's whole processor.

With torchvision (the GPU stack, and vLLM's processor loading) AutoProcessor also builds the video
processor; it reads ``video_preprocessor_config.json`` and, without it, falls back to the *image*
processor's config. The folder therefore records the video processor's own config. Without
torchvision (this CPU stack) the image-only processor is assembled instead. ``make gpu-check``
loads such a folder with AutoProcessor on a machine that has torchvision.
"""

from __future__ import annotations

import json


def test_saved_folder_has_a_video_processor_config(tiny_model_dir):
    video = json.loads((tiny_model_dir / "video_preprocessor_config.json").read_text())
    image = json.loads((tiny_model_dir / "preprocessor_config.json").read_text())
    assert video["video_processor_type"] == "Qwen2VLVideoProcessor"
    for key in ("patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std"):
        assert video[key] == image[key], key
    # Video frames keep the video processor's own bounds, not the image bounds of training.
    assert video["size"] == {"shortest_edge": 100352, "longest_edge": 602112}
    assert video["size"] != image["size"]


def test_image_only_processor_still_loads_without_torchvision(tiny_model_dir):
    import importlib.util

    from train.modeling import load_processor

    processor = load_processor(str(tiny_model_dir))
    assert processor.image_processor is not None and processor.tokenizer is not None
    if importlib.util.find_spec("torchvision") is None:
        assert getattr(processor, "video_processor", None) is None
    else:
        assert processor.video_processor is not None
