"""GGUF export for real: a merged tiny export goes through llama.cpp's own ``convert_hf_to_gguf.py``
(unpacked from the llama-cpp-python sdist by ``make fetch-llama-cpp``) and both files are read back
with llama.cpp's ``gguf-py``: tensor names, shapes, types and metadata."""

from __future__ import annotations

import json
import sys

import pytest
from safetensors import safe_open

from tests.train.test_export import adapter_dir, merged_bf16  # noqa: F401
from train import export
from train.export.gguf import MAX_PIXELS_KEY, MIN_PIXELS_KEY, GGUFError, convert, converter_dir, read_bounds

CONVERTER = converter_dir()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.gguf,
    pytest.mark.skipif(
        not (CONVERTER / "convert_hf_to_gguf.py").is_file(),
        reason=f"llama.cpp's converter is not in {CONVERTER}: run `make fetch-llama-cpp`",
    ),
]


@pytest.fixture(scope="module")
def gguf_module():
    sys.path.insert(0, str(CONVERTER / "gguf-py"))
    try:
        import gguf

        yield gguf
    finally:
        sys.path.remove(str(CONVERTER / "gguf-py"))


def _field(reader, key):
    return reader.fields[key].contents()


def test_merged_export_converts_to_model_and_mmproj(merged_bf16, tmp_path, gguf_module):  # noqa: F811
    files = convert(merged_bf16, tmp_path / "gguf", "q8_0")
    assert files["model"].name == "model-q8_0.gguf" and files["mmproj"].name == "mmproj-model-f16.gguf"
    config = json.loads((merged_bf16 / "config.json").read_text())
    text, vision = config["text_config"], config["vision_config"]
    min_pixels, max_pixels = read_bounds(merged_bf16)

    model = gguf_module.GGUFReader(files["model"])
    assert _field(model, "general.architecture") == "qwen2vl"
    assert _field(model, "qwen2vl.block_count") == text["num_hidden_layers"]
    assert _field(model, "tokenizer.ggml.pre") == "gpt-2"  # the tiny BPE, named from tokenizer.json
    assert (_field(model, MIN_PIXELS_KEY), _field(model, MAX_PIXELS_KEY)) == (min_pixels, max_pixels)
    tensors = {t.name: t for t in model.tensors}
    vocab = text.get("vocab_size", config.get("vocab_size"))
    assert tuple(int(n) for n in tensors["token_embd.weight"].shape) == (text["hidden_size"], vocab)
    assert tensors["blk.0.ffn_down.weight"].tensor_type.name == "Q8_0"
    assert {f"blk.{i}.attn_q.weight" for i in range(text["num_hidden_layers"])} <= tensors.keys()
    assert not any(name.startswith("v.") for name in tensors)

    mmproj = gguf_module.GGUFReader(files["mmproj"])
    assert _field(mmproj, "general.architecture") == "clip"
    assert _field(mmproj, "clip.projector_type") == "qwen2.5vl_merger"
    assert _field(mmproj, "clip.vision.block_count") == vision["depth"] == 2  # the depth-2 quirk
    assert (_field(mmproj, MIN_PIXELS_KEY), _field(mmproj, MAX_PIXELS_KEY)) == (min_pixels, max_pixels)
    vtensors = {t.name: t for t in mmproj.tensors}
    # Both merger layers (mlp.0 and mlp.2) and every block's split q/k/v made it.
    assert {"mm.0.weight", "mm.2.weight", "mm.2.bias"} <= vtensors.keys()
    assert {f"v.blk.{i}.attn_{p}.weight" for i in range(2) for p in "qkv"} <= vtensors.keys()
    with safe_open(str(merged_bf16 / "model.safetensors"), "pt") as weights:
        merger = [k for k in weights.keys() if k.endswith("merger.mlp.2.weight")]
        assert merger, "the merged export has no merger weights"
        expected = tuple(reversed(weights.get_slice(merger[0]).get_shape()))  # GGUF lists dims reversed
    assert tuple(int(n) for n in vtensors["mm.2.weight"].shape) == expected


def test_k_quants_need_llama_quantize(merged_bf16, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("LLAMA_QUANTIZE", raising=False)
    with pytest.raises(GGUFError, match="llama-quantize"):
        convert(merged_bf16, tmp_path / "q4", "Q4_K_M")
    assert not (tmp_path / "q4").exists()


def test_make_export_format_gguf_from_an_adapter(adapter_dir, tmp_path):  # noqa: F811
    out = tmp_path / "gguf"
    args = ["--adapter", str(adapter_dir), "--format", "gguf", "--output-dir", str(out)]
    assert export.main(args) == 0
    # The pair, and the provenance record every export carries (what it was made from).
    assert sorted(p.name for p in out.iterdir()) == [
        "export_provenance.json",
        "mmproj-model-f16.gguf",
        "model-f16.gguf",
    ]
    assert json.loads((out / "export_provenance.json").read_text())["export_format"] == "gguf"
    assert not list(tmp_path.glob(".merged-for-gguf.*"))  # the intermediate merge is cleaned up


def test_presize_gives_llama_cpp_the_image_the_hf_processor_sees(merged_bf16, tmp_path):  # noqa: F811
    """``presize`` (bounds read back from the GGUF) leaves sides that are multiples of 28, and the
    HF processor makes the same patch grid from it as from the original image."""
    from PIL import Image

    from data_prep.contract import ImageBounds, prepare_image
    from tests.train.test_export import SAMPLE_IMAGES
    from train.export.gguf import gguf_bounds, presize
    from train.modeling import load_processor

    files = convert(merged_bf16, tmp_path / "gguf", "f16")
    min_pixels, max_pixels = gguf_bounds(files["mmproj"])
    source = sorted(SAMPLE_IMAGES.glob("*.bmp"))[0]
    width, height = presize(source, tmp_path / "pre.png", min_pixels, max_pixels)
    assert width % 28 == 0 and height % 28 == 0 and min_pixels <= width * height <= max_pixels
    bounds = ImageBounds(min_pixels=min_pixels, max_pixels=max_pixels)
    image_processor = load_processor(str(merged_bf16), bounds=bounds).image_processor
    original = image_processor(images=[prepare_image(Image.open(source), bounds)], return_tensors="pt")
    presized = image_processor(images=[Image.open(tmp_path / "pre.png")], return_tensors="pt")
    assert presized["image_grid_thw"].tolist() == original["image_grid_thw"].tolist()
    assert (presized["pixel_values"] == original["pixel_values"]).all()  # the same pixels, lossless
