"""Exports of a LoRA adapter on the tiny Qwen2.5-VL: merged, NF4, W4A16 (when llm-compressor is
installed), GGUF instructions, model cards, errors and the size table of the real architecture."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from data_prep.contract import MAIN_PROMPT
from data_prep.images import invert
from train import export
from train.export import ExportError, check_source, export_bnb_4bit, export_merged
from train.inputs import encode_for_generation
from train.model_card import APACHE_2, QWEN_RESEARCH, UNKNOWN, base_licence, eval_table
from train.modeling import load_model, load_model_and_processor, load_processor, save_processor

SAMPLE_IMAGES = Path(__file__).resolve().parents[2] / "samples" / "crohme2014_test" / "off_image_test"
LORA_TARGETS = r"model\.language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
PROCESSOR_FILES = {
    "tokenizer.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "chat_template.jinja",
}


def make_lora_adapter(base_dir: Path, out_dir: Path, seed: int = 1) -> Path:
    """What the trainer writes: a LoRA on the language model's projections (with non-zero updates,
    so merging changes the outputs) plus the processor files."""
    from peft import LoraConfig, get_peft_model

    model, processor = load_model_and_processor(str(base_dir), dtype="float32")
    torch.manual_seed(seed)  # lora_A's initialisation draws from the global generator
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=LORA_TARGETS))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    peft_model.save_pretrained(out_dir)
    save_processor(processor, out_dir)
    return out_dir


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    return make_lora_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter"))


@pytest.fixture(scope="module")
def merged_bf16(adapter_dir, tmp_path_factory) -> Path:
    return export_merged(adapter_dir, tmp_path_factory.mktemp("exports") / "merged")


@pytest.fixture(scope="module")
def sample_images() -> list[Image.Image]:
    paths = sorted(SAMPLE_IMAGES.glob("*.bmp"))[:4]
    assert paths, f"no sample images in {SAMPLE_IMAGES}"
    return [invert(Image.open(p)) for p in paths]


def _logits_and_greedy(model, processor, images, max_new_tokens=12):
    batch = encode_for_generation(processor, images, [MAIN_PROMPT] * len(images))
    with torch.no_grad():
        logits = model(**batch).logits.float()
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
    return logits, out[:, batch["input_ids"].shape[1] :]


def _weight_names(folder: Path) -> dict[str, str]:
    from safetensors import safe_open

    names = {}
    for file in folder.glob("*.safetensors"):
        with safe_open(str(file), "pt") as handle:
            for key in handle.keys():
                names[key] = str(handle.get_slice(key).get_dtype())
    return names


def _weight(weights: dict[str, str], suffix: str) -> str:
    """The dtype of the one weight whose name ends with ``suffix`` (checkpoints are saved in the
    hub layout, ``model.layers`` / ``visual``, not transformers 5's in-memory names)."""
    (key,) = [k for k in weights if k.endswith(suffix)]
    return weights[key]


def test_merged_float32_reproduces_the_adapter_exactly(adapter_dir, tiny_model_dir, sample_images, tmp_path):
    merged = export_merged(adapter_dir, tmp_path / "merged32", dtype="float32")
    processor = load_processor(str(merged))
    with_adapter = load_model(str(adapter_dir), dtype="float32").eval()
    assert hasattr(with_adapter, "peft_config"), "the reference must run the unmerged adapter"
    merged_model = load_model(str(merged), dtype="float32").eval()
    base = load_model(str(tiny_model_dir), dtype="float32").eval()

    ref_logits, ref_tokens = _logits_and_greedy(with_adapter, processor, sample_images)
    logits, tokens = _logits_and_greedy(merged_model, processor, sample_images)
    base_logits, _ = _logits_and_greedy(base, processor, sample_images, max_new_tokens=1)

    assert torch.equal(tokens, ref_tokens)
    assert torch.allclose(logits, ref_logits, atol=1e-4, rtol=1e-4)
    # The fine-tune is in the merged weights: the base alone answers differently.
    assert (base_logits - ref_logits).abs().max() > 100 * (logits - ref_logits).abs().max()


def test_merged_export_is_a_plain_bf16_model_folder(merged_bf16, adapter_dir, sample_images):
    files = {p.name for p in merged_bf16.iterdir()}
    assert PROCESSOR_FILES <= files
    assert {"config.json", "generation_config.json", "README.md"} <= files
    assert not any(name.startswith("adapter_") for name in files), files
    # (the output folder's lock file, ``.merged.lock`` beside it, stays: data_prep.output_lock)
    leftovers = [p.name for p in merged_bf16.parent.iterdir() if p.name.startswith(".") and p.is_dir()]
    assert not leftovers, f"staging folder left behind: {leftovers}"
    config = json.loads((merged_bf16 / "config.json").read_text())
    assert config["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    assert config["dtype"] == "bfloat16" and config["text_config"]["dtype"] == "bfloat16"
    weights = _weight_names(merged_bf16)
    assert set(weights.values()) == {"BF16"}
    assert not any("lora" in key for key in weights)
    assert "chat_template" in json.loads((merged_bf16 / "tokenizer_config.json").read_text())

    # The bf16 export is exactly the float32 merge, rounded once to bf16 (nothing lost or doubled).
    exported = load_model(str(merged_bf16), dtype="bfloat16").state_dict()
    reference = load_model(str(adapter_dir), dtype="float32", merge_adapter=True).state_dict()
    assert exported.keys() == reference.keys()
    for name, tensor in exported.items():
        assert torch.equal(tensor, reference[name].to(torch.bfloat16)), name
    # And it runs like the adapter model, up to that rounding (the exact float32 comparison of
    # outputs is test_merged_float32_reproduces_the_adapter_exactly; greedy tokens of a random
    # model sit on near-ties, so they are compared there, not here).
    model, processor = load_model_and_processor(str(merged_bf16), dtype="float32")
    adapter_model = load_model(str(adapter_dir), dtype="float32").eval()
    logits, _ = _logits_and_greedy(model.eval(), processor, sample_images)
    ref_logits, _ = _logits_and_greedy(adapter_model, processor, sample_images)
    assert (logits - ref_logits).abs().max() < 0.1 * ref_logits.abs().max()


def test_bnb_4bit_from_merged_loads_and_generates(merged_bf16, tiny_model_dir, sample_images, tmp_path):
    import bitsandbytes as bnb

    out = export_bnb_4bit(merged_bf16, tmp_path / "nf4")
    files = {p.name for p in out.iterdir()}
    assert PROCESSOR_FILES <= files and "README.md" in files
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["bnb_4bit_quant_type"] == "nf4"
    weights = _weight_names(out)
    assert _weight(weights, "layers.0.mlp.down_proj.weight") == "U8"  # packed 4-bit
    assert _weight(weights, "visual.blocks.0.attn.qkv.weight") == "BF16"  # vision tower unquantised
    card = (out / "README.md").read_text()
    # The card names the original base model (read from the merged export's card), not the export.
    assert "bnb-4bit" in card and f"base_model: {tiny_model_dir}\n" in card
    # vLLM 0.33 has no bitsandbytes method: the card says so and serves it with transformers only.
    assert "vllm serve" not in card and "--quantization bitsandbytes" not in card
    assert "cannot serve bitsandbytes" in card and "--format w4a16" in card

    model, processor = load_model_and_processor(str(out))
    assert isinstance(model.model.language_model.layers[0].mlp.down_proj, bnb.nn.Linear4bit)
    assert not isinstance(model.model.visual.blocks[0].attn.qkv, bnb.nn.Linear4bit)
    batch = encode_for_generation(processor, sample_images[:2], [MAIN_PROMPT] * 2)
    with torch.no_grad():
        generated = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert generated.shape[0] == 2 and generated.shape[1] > batch["input_ids"].shape[1]


def test_bnb_4bit_straight_from_the_adapter(adapter_dir, tmp_path):
    out = export_bnb_4bit(adapter_dir, tmp_path / "nf4")
    model, _ = load_model_and_processor(str(out))
    assert type(model.model.language_model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    assert not any(p.name.startswith(".merged-") for p in tmp_path.iterdir())


def test_w4a16_without_llmcompressor_says_so(adapter_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "llmcompressor", None)  # makes the import fail
    with pytest.raises(ExportError, match="llm-compressor"):
        export.export_w4a16(
            adapter_dir, tmp_path / "w4a16", calibration_images=str(SAMPLE_IMAGES), group_size=32
        )
    assert not (tmp_path / "w4a16").exists()


def test_w4a16_group_size_must_divide_the_width(adapter_dir, tmp_path, capsys):
    """The default group of 128 cannot split the tiny model's 64-wide layers: one line, at once."""
    argv = ["--adapter", str(adapter_dir), "--format", "w4a16", "--output-dir", str(tmp_path / "w")]
    assert export.main([*argv, "--calibration-images", str(SAMPLE_IMAGES)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "--group-size 128 does not divide" in error
    assert "hidden_size 64" in error and "use --group-size 64" in error
    assert not (tmp_path / "w").exists()


def test_w4a16_export_with_llmcompressor(adapter_dir, tmp_path):
    pytest.importorskip(
        "llmcompressor", reason="llm-compressor is in the CPU and quant sets (requirements/quant.txt)"
    )
    images = tmp_path / "calib"
    images.mkdir()
    for path in sorted(SAMPLE_IMAGES.glob("*.bmp"))[:6]:
        invert(Image.open(path)).save(images / f"{path.stem}.png")
    # The tiny model's layers are 64 wide: group size 32 stands in for the real 128.
    out = export.export_w4a16(
        adapter_dir,
        tmp_path / "w4a16",
        calibration_images=str(images),
        num_calibration_samples=6,
        group_size=32,
        dtype="float32",
    )
    config = json.loads((out / "config.json").read_text())
    quant = config["quantization_config"]
    assert quant["quant_method"] == "compressed-tensors"
    assert quant["config_groups"]["group_0"]["weights"]["num_bits"] == 4
    assert "lm_head" in quant["ignore"] and any("visual" in name for name in quant["ignore"])
    weights = _weight_names(out)
    assert any(key.endswith("q_proj.weight_packed") for key in weights)
    assert not any(key.endswith("qkv.weight_packed") for key in weights)
    assert PROCESSOR_FILES <= {p.name for p in out.iterdir()}
    model, processor = load_model_and_processor(str(out), dtype="float32")
    batch = encode_for_generation(
        processor, [invert(Image.open(sorted(SAMPLE_IMAGES.glob("*.bmp"))[0]))], [MAIN_PROMPT]
    )
    with torch.no_grad():
        assert torch.isfinite(model(**batch).logits).all()


def test_gguf_without_the_converter_says_how_to_fetch_it(adapter_dir, tmp_path, capsys, monkeypatch):
    # The real conversion is tests/train/test_export_gguf.py; here: a one-line error, nothing written.
    monkeypatch.setenv("HMER_LLAMA_CPP_DIR", str(tmp_path / "no-cache"))
    args = ["--adapter", str(adapter_dir), "--format", "gguf", "--output-dir", str(tmp_path / "g")]
    assert export.main(args) == 2
    assert "make fetch-llama-cpp" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_model_card_with_evaluation_table(adapter_dir, tmp_path):
    summary = {
        "sets": {
            "crohme2014": {"n": 986, "exprate": 80.5, "within_1": 88.0, "within_2": 92.25, "within_3": 94.0},
            "crohme2016": {"n": 1147, "exprate": 77.0, "within_1": 87.0, "within_2": 91.0, "within_3": 93.0},
        }
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_name_or_path: Qwen/Qwen2.5-VL-3B-Instruct\nlearning_rate: 1.0e-5\n")
    out = tmp_path / "merged"
    rc = export.main(
        [
            "--adapter",
            str(adapter_dir),
            "--format",
            "merged",
            "--output-dir",
            str(out),
            "--eval-summary",
            str(tmp_path / "summary.json"),
            "--recipe",
            str(recipe),
            "--data",
            "CROHME 2014 train",
        ]
    )
    assert rc == 0
    card = (out / "README.md").read_text()
    assert "| crohme2014 | 986 | 80.50 | 88.00 | 92.25 | 94.00 |" in card
    assert "learning_rate: 1.0e-5" in card and "CROHME 2014 train" in card
    assert card.startswith("---\n") and "pipeline_tag: image-text-to-text" in card


def test_model_card_reads_the_recipe_the_run_folder_recorded(adapter_dir, tmp_path):
    """train.sft writes recipe.yaml into the run folder: the card shows it and its data, unasked."""
    import shutil

    from train.run_folder import read_training_items, write_recipe, write_training_items

    run = tmp_path / "run"
    shutil.copytree(adapter_dir, run)
    write_recipe(run, {"dataset_dir": "outputs/data/crohme", "train_split": "train", "lora_r": 8})
    write_training_items(run, [{"id": "18_em_5", "source": "crohme", "image_sha256": "ab" * 32}])
    out = export_merged(run, tmp_path / "merged")
    card = (out / "README.md").read_text()
    assert "not recorded" not in card and "lora_r: 8" in card
    assert "`outputs/data/crohme` (split `train`)" in card
    # The export still knows what it was trained on (evaluation warns about overlaps).
    assert read_training_items(out) == read_training_items(run)


def test_licences_follow_the_base_model():
    assert base_licence("Qwen/Qwen2.5-VL-3B-Instruct") is QWEN_RESEARCH
    assert base_licence("/models/Qwen2.5-VL-7B-Instruct") is APACHE_2
    assert base_licence("/tmp/tiny-qwen2.5-vl") is UNKNOWN
    with pytest.raises(ValueError, match="sets"):
        eval_table({"scores": {}})


def test_bad_inputs_fail_clearly(adapter_dir, merged_bf16, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        check_source(tmp_path / "nowhere", "merged")
    with pytest.raises(ExportError, match="nothing to merge"):
        check_source(merged_bf16, "merged")
    assert check_source(merged_bf16, "bnb-4bit").adapter is None

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text((adapter_dir / "adapter_config.json").read_text())
    (broken / "adapter_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(ExportError, match="no adapter_model.safetensors.*never loaded"):
        check_source(broken, "merged")
    (broken / "adapter_config.json").write_text("{not json")
    with pytest.raises(ExportError, match="not valid JSON"):
        check_source(broken, "merged")

    orphan = tmp_path / "orphan"
    orphan.mkdir()
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "missing-base")
    (orphan / "adapter_config.json").write_text(json.dumps(config))
    (orphan / "adapter_model.safetensors").write_bytes(
        (adapter_dir / "adapter_model.safetensors").read_bytes()
    )
    with pytest.raises(ExportError, match="base model"):
        check_source(orphan, "merged")

    # An existing export is never overwritten by accident, and a failure leaves nothing behind.
    assert export.main(["--adapter", str(adapter_dir), "--output-dir", str(merged_bf16)]) == 2
    assert (merged_bf16 / "config.json").is_file()
    assert export.main(["--adapter", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_size_table_of_the_real_architectures():
    counts = export.count_parameters("3b")
    # Qwen2.5-VL-3B-Instruct is published as 3.75 B parameters, lm_head tied to the embeddings.
    assert 3.70e9 < counts.total < 3.80e9 and counts.lm_head == 0
    assert 0.6e9 < counts.vision < 0.7e9
    sizes = {name.split()[0]: size for name, size, _ in export.estimate_sizes("3b")}
    assert sizes["merged"] == 2 * counts.total
    assert sizes["bnb-4bit"] < 0.5 * sizes["merged"]
    assert sizes["w4a16"] < 0.5 * sizes["merged"]
    # Everything kept in 16 bits bounds the 4-bit formats from below.
    assert sizes["w4a16"] > 2 * (counts.vision + counts.embeddings)


def test_options_come_from_a_config_file_and_flags_win(adapter_dir, tmp_path, capsys):
    config = tmp_path / "export.yaml"
    config.write_text(f"adapter: {adapter_dir}\nformat: merged\noutput-dir: {tmp_path / 'from-file'}\n")
    assert export.main(["--config", str(config)]) == 0
    assert (tmp_path / "from-file" / "config.json").is_file()
    assert export.main(["--config", str(config), "--output_dir", str(tmp_path / "flag")]) == 0
    assert (tmp_path / "flag" / "config.json").is_file()
    config.write_text("adapter: x\ngroup_sise: 64\n")
    assert export.main(["--config", str(config)]) == 2
    assert "group_sise" in capsys.readouterr().err
    assert export.main(["--adapter", str(adapter_dir), "--format", "onnx"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "--format" in error and "onnx" in error


def test_every_format_is_one_registry_entry():
    from train.export.options import ExportOptions
    from train.export.registry import EXPORT_FORMATS

    assert export.FORMATS == tuple(EXPORT_FORMATS) == ("merged", "bnb-4bit", "w4a16", "gguf")
    choices = next(f.metadata["choices"] for f in dataclasses.fields(ExportOptions) if f.name == "format")
    assert tuple(choices) == export.FORMATS
    for name, spec in EXPORT_FORMATS.items():
        assert spec.name == name and callable(spec.run) and spec.run.__name__ == "run"
    # Only merging needs an adapter; the quantised formats also take a merged model folder.
    assert [n for n, s in EXPORT_FORMATS.items() if not s.accepts_model_folder] == ["merged"]
