"""Inference backends on the CPU: the HF backend with the tiny Qwen2.5-VL, adapters, vLLM's guards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from data_prep.contract import COUNTING_PROMPT, MAIN_PROMPT, TREE_COT_PROMPT
from data_prep.images import invert
from eval.backends import get_backend, resolve_backend_name, stop_token_ids, vllm_importable
from eval.backends.vllm import inspect_adapter, merge_for_vllm


@pytest.fixture(scope="module")
def sample_images(crohme_sample_dir) -> list[Image.Image]:
    files = sorted((crohme_sample_dir / "off_image_test").glob("*.bmp"))[:4]
    return [invert(Image.open(f)) for f in files]


@pytest.fixture(scope="module")
def hf_backend(tiny_model_dir):
    backend = get_backend("hf", str(tiny_model_dir), batch_size=3, max_new_tokens=6)
    yield backend
    backend.close()


def make_adapter(base_dir: Path, out_dir: Path, target_modules: list[str], seed: int = 0) -> Path:
    """A LoRA adapter on the tiny model, saved with its processor files as the trainer saves it;
    lora_B is set non-zero so the adapter changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model

    from train.modeling import load_model, load_processor, save_processor

    torch.manual_seed(seed)
    model = get_peft_model(
        load_model(str(base_dir)), LoraConfig(r=4, lora_alpha=8, target_modules=target_modules)
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    model.save_pretrained(out_dir)
    save_processor(load_processor(str(base_dir)), out_dir)
    return out_dir


@pytest.fixture(scope="module")
def lm_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    return make_adapter(tiny_model_dir, tmp_path_factory.mktemp("lm-adapter"), ["q_proj", "v_proj"])


@pytest.fixture(scope="module")
def vision_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    # down_proj also names the vision tower's MLP (model.visual.blocks.N.mlp.down_proj); the patch
    # embedding (a Conv3d) is a vision-tower layer vLLM 0.33 cannot give LoRA, so this one is merged.
    return make_adapter(
        tiny_model_dir, tmp_path_factory.mktemp("vision-adapter"), ["q_proj", "down_proj", "patch_embed.proj"]
    )


def test_auto_is_hf_without_a_gpu_or_vllm():
    assert resolve_backend_name("hf") == "hf"
    assert resolve_backend_name("vllm") == "vllm"
    import torch

    expected = "vllm" if (vllm_importable() and torch.cuda.is_available()) else "hf"
    assert resolve_backend_name("auto") == expected
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend_name("tgi")


def test_get_backend_refuses_bad_arguments(tiny_model_dir):
    with pytest.raises(ValueError, match="needs a model"):
        get_backend("hf", "")
    with pytest.raises(ValueError, match="at least 1"):
        get_backend("hf", str(tiny_model_dir), batch_size=0)
    with pytest.raises(ValueError, match="data parallel"):
        get_backend("hf", str(tiny_model_dir), dp=2)


@pytest.mark.skipif(vllm_importable(), reason="vllm is installed here")
def test_vllm_backend_without_vllm_says_how_to_install(tiny_model_dir):
    with pytest.raises(ImportError, match="install-gpu"):
        get_backend("vllm", str(tiny_model_dir))


def test_hf_batched_generation_matches_one_by_one(hf_backend, sample_images):
    prompts = [MAIN_PROMPT, TREE_COT_PROMPT, COUNTING_PROMPT, MAIN_PROMPT]
    batched = hf_backend.generate(sample_images, prompts)  # batch size 3: a full and a partial batch
    single = [hf_backend.generate([im], [p])[0] for im, p in zip(sample_images, prompts)]
    assert len(batched) == 4 and all(isinstance(t, str) for t in batched)
    assert batched == single  # left padding does not change what a row generates
    assert hf_backend.generate([], []) == []
    with pytest.raises(ValueError, match="images but"):
        hf_backend.generate(sample_images[:2], [MAIN_PROMPT])


def test_hf_greedy_settings_ignore_the_model_defaults(hf_backend):
    config = hf_backend.generation_config()
    assert config.do_sample is False
    assert config.repetition_penalty == 1.0
    assert config.max_new_tokens == 6
    assert list(config.eos_token_id) == stop_token_ids(hf_backend.tokenizer)


def test_hf_max_new_tokens_bounds_the_output(tiny_model_dir, sample_images):
    import torch

    from train.inputs import encode_for_generation

    backend = get_backend("hf", str(tiny_model_dir), max_new_tokens=5, ignore_eos=True)
    batch = encode_for_generation(backend.processor, sample_images[:2], [MAIN_PROMPT] * 2)
    with torch.inference_mode():
        out = backend.model.generate(**batch, generation_config=backend.generation_config())
    assert out.shape[1] - batch["input_ids"].shape[1] == 5


def test_hf_sampling_shape_and_seeded(hf_backend, sample_images):
    first = hf_backend.sample(sample_images[:2], [MAIN_PROMPT] * 2, n=3, temperature=1.0, top_p=0.9)
    again = hf_backend.sample(sample_images[:2], [MAIN_PROMPT] * 2, n=3, temperature=1.0, top_p=0.9)
    assert [len(s) for s in first] == [3, 3]
    assert first == again
    assert len({t for s in first for t in s}) > 1  # really sampled, not greedy copies
    with pytest.raises(ValueError, match="temperature"):
        hf_backend.sample(sample_images[:1], [MAIN_PROMPT], n=2, temperature=0.0, top_p=0.9)


def test_adapter_folder_is_accepted(lm_adapter, hf_backend, sample_images):
    from peft import PeftModel

    backend = get_backend("hf", str(lm_adapter), max_new_tokens=6)
    assert isinstance(backend.model, PeftModel)
    texts = backend.generate(sample_images[:2], [MAIN_PROMPT] * 2)
    assert len(texts) == 2
    # The adapter is applied: the sampled answers differ from the base model's.
    adapted = backend.sample(sample_images[:1], [MAIN_PROMPT], n=2, temperature=1.0, top_p=1.0)
    base = hf_backend.sample(sample_images[:1], [MAIN_PROMPT], n=2, temperature=1.0, top_p=1.0)
    assert adapted != base


def test_inspect_adapter_serves_language_model_lora(lm_adapter):
    plan = inspect_adapter(lm_adapter)
    assert plan.serve_directly and plan.rank == 4
    assert plan.base


def test_inspect_adapter_merges_vision_tower_lora(vision_adapter):
    plan = inspect_adapter(vision_adapter)
    assert not plan.serve_directly
    assert "vision tower" in plan.merge_reasons[0] and "visual.patch_embed.proj" in plan.merge_reasons[0]


def test_inspect_adapter_merges_modules_to_save(lm_adapter, tmp_path):
    config = json.loads((lm_adapter / "adapter_config.json").read_text())
    config["modules_to_save"] = ["lm_head"]
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    plan = inspect_adapter(tmp_path)
    assert any("modules_to_save" in r for r in plan.merge_reasons)


def test_merged_adapter_matches_the_adapter(vision_adapter, tmp_path, sample_images, caplog):
    import torch

    from train.inputs import encode_for_generation
    from train.modeling import load_model, load_processor

    with caplog.at_level("INFO", logger="eval.backends.vllm"):
        merged = merge_for_vllm(inspect_adapter(vision_adapter), tmp_path / "merged", dtype="float32")
    assert "merging adapter" in caplog.text and "because:" in caplog.text and "vision tower" in caplog.text
    assert (merged / "config.json").is_file() and (merged / "model.safetensors").is_file()
    assert not (merged / "adapter_config.json").exists()
    processor = load_processor(str(merged))
    batch = encode_for_generation(processor, sample_images[:2], [MAIN_PROMPT] * 2)
    with torch.inference_mode():
        merged_logits = load_model(str(merged)).eval()(**batch).logits
        adapter_logits = load_model(str(vision_adapter)).eval()(**batch).logits
    torch.testing.assert_close(merged_logits, adapter_logits, rtol=1e-4, atol=1e-4)
