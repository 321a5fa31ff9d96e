"""The tiny model folder loads like a hub model, and model inputs follow the shared contract."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from data_prep.contract import MAIN_PROMPT, MAX_PIXELS, ImageBounds, prepare_image
from train.inputs import IGNORE_INDEX, encode_for_generation, encode_for_training, prompt_text
from train.modeling import ModelLoadError, load_model_and_processor, load_processor, resolve_source


@pytest.fixture(scope="module")
def model_and_processor(tiny_model_dir):
    return load_model_and_processor(str(tiny_model_dir))


def _sample_image(crohme_sample_dir):
    from PIL import ImageOps

    path = sorted((crohme_sample_dir / "off_image_test").glob("*.bmp"))[0]
    return ImageOps.invert(Image.open(path).convert("L"))


def test_tiny_model_folder_is_a_normal_model_folder(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl"
    assert config["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]


def test_processor_uses_contract_bounds_and_qwen_template(tiny_model_dir):
    processor = load_processor(str(tiny_model_dir), bounds=ImageBounds(min_pixels=4096, max_pixels=65536))
    assert processor.image_processor.size["longest_edge"] == 65536
    assert processor.image_processor.size["shortest_edge"] == 4096
    text = prompt_text(processor, MAIN_PROMPT)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert "<|vision_start|><|image_pad|><|vision_end|>" + MAIN_PROMPT in text
    assert text.endswith("<|im_start|>assistant\n")


def test_trained_tokens_are_exactly_the_answer(model_and_processor, crohme_sample_dir):
    model, processor = model_and_processor
    image = _sample_image(crohme_sample_dir)
    answers = ["x ^ { 2 }", "\\frac { a } { b } + 1 2"]
    batch = encode_for_training(processor, [image, image], [MAIN_PROMPT] * 2, answers)
    for row, answer in enumerate(answers):
        trained = batch["input_ids"][row][batch["labels"][row] != IGNORE_INDEX]
        assert len(trained) > 0
        assert processor.tokenizer.decode(trained, skip_special_tokens=True) == answer + "\n"
        # The end of turn is trained too, so the model learns to stop: <|im_end|> and the newline
        # after it, as LLaMA-Factory's qwen2_vl template trains them.
        assert processor.tokenizer.decode(trained[-2:]) == "<|im_end|>\n"
    loss = model(**batch).loss
    assert torch.isfinite(loss) and loss.item() > 0


def test_training_labels_in_a_batch_equal_each_row_encoded_alone(model_and_processor, crohme_sample_dir):
    # The collator measures every prompt in one padded call; a row's labels must not depend on
    # the rows beside it (other image sizes, prompts and answers of other lengths).
    _, processor = model_and_processor
    images = [
        _sample_image(crohme_sample_dir),
        Image.new("RGB", (600, 40), "white"),
        Image.new("L", (60, 90), 0),
    ]
    prompts = [MAIN_PROMPT, "Count the symbols: " + MAIN_PROMPT, MAIN_PROMPT]
    answers = ["x ^ { 2 }", "1", "\\frac { a } { b } + 1 2"]
    batch = encode_for_training(processor, images, prompts, answers)
    for row in range(3):
        alone = encode_for_training(
            processor, images[row : row + 1], prompts[row : row + 1], answers[row : row + 1]
        )
        n = int(alone["attention_mask"].sum())
        assert batch["input_ids"][row, :n].tolist() == alone["input_ids"][0, :n].tolist()
        assert batch["labels"][row, :n].tolist() == alone["labels"][0, :n].tolist()
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
        assert (alone["labels"][0] != IGNORE_INDEX).sum() > 0


def test_generation_batch_is_left_padded_and_generates(model_and_processor, crohme_sample_dir):
    model, processor = model_and_processor
    image = _sample_image(crohme_sample_dir)
    wide = Image.new("RGB", (600, 40), "white")
    batch = encode_for_generation(processor, [image, wide], [MAIN_PROMPT, MAIN_PROMPT])
    assert (batch["attention_mask"][:, -1] == 1).all()  # left padding: every row ends with a real token
    out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert out.shape[0] == 2 and out.shape[1] <= batch["input_ids"].shape[1] + 4


def test_prepare_image_bounds_and_thin_images():
    big = prepare_image(Image.new("L", (2000, 1000), 255))
    assert big.mode == "RGB" and big.width * big.height <= MAX_PIXELS
    # Sides are multiples of 28 (the processor's grid), so the ratio is kept to within a patch group.
    assert big.width % 28 == 0 and big.height % 28 == 0 and abs(big.width / big.height - 2.0) < 0.1
    minus_sign = prepare_image(Image.new("L", (300, 3), 0))
    assert minus_sign.height >= 28 and minus_sign.width / minus_sign.height < 200
    tiny = prepare_image(Image.new("L", (10, 10), 0))
    assert tiny.width >= 28 and tiny.height >= 28


def test_prepared_images_are_left_alone_by_the_processors_resize(tiny_model_dir):
    """prepare_image ends at the size Qwen's processor resizes to (sides multiples of 28), so no
    processor resizes again: HF's (PIL) and vLLM's (torchvision) bicubic kernels differ, and an image
    they both resized reached the two engines with different pixels."""
    import random

    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    from data_prep.contract import patch_grid_size

    rng = random.Random(0)
    for bounds in (ImageBounds(), ImageBounds(min_pixels=3136, max_pixels=12544)):
        for _ in range(300):
            width, height = rng.randint(1, 3000), rng.randint(1, 300)
            if rng.random() < 0.5:
                width, height = height, width
            image = prepare_image(Image.new("L", (width, height), 128), bounds)
            grid_height, grid_width = smart_resize(
                image.height, image.width, 28, bounds.min_pixels, bounds.max_pixels
            )
            assert (grid_width, grid_height) == image.size, (width, height, bounds)
            if min(width, height) >= 28 and max(width, height) / min(width, height) < 150:
                expected = smart_resize(height, width, 28, bounds.min_pixels, bounds.max_pixels)
                assert patch_grid_size(width, height, bounds) == expected[::-1]
    bounds = ImageBounds(min_pixels=3136, max_pixels=12544)
    processor = load_processor(str(tiny_model_dir), bounds=bounds)
    image = prepare_image(Image.effect_noise((173, 61), 60), bounds)
    resized = processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    as_is = processor.image_processor(images=[image], do_resize=False, return_tensors="pt")["pixel_values"]
    assert resized.equal(as_is)


def test_adapter_folder_resolves_to_its_base(tmp_path, tiny_model_dir):
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(tiny_model_dir)})
    )
    source = resolve_source(str(tmp_path))
    assert source.base == str(tiny_model_dir) and source.adapter == str(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="neither a model folder"):
        resolve_source(str(empty))


def test_saved_processor_records_training_bounds(tmp_path, tiny_model_dir):
    from train.modeling import processor_bounds, save_processor, saved_bounds

    trained = ImageBounds(min_pixels=3136, max_pixels=50176)
    processor = load_processor(str(tiny_model_dir), bounds=trained)
    save_processor(processor, tmp_path)
    (tmp_path / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    assert saved_bounds(str(tmp_path)) == trained
    # Reloading without explicit bounds reuses the training bounds; explicit bounds still win.
    assert processor_bounds(load_processor(str(tmp_path))) == trained
    assert processor_bounds(load_processor(str(tmp_path), bounds=ImageBounds())).max_pixels == MAX_PIXELS


def test_missing_local_model_folder_is_named_plainly(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_source(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_source("./outputs/no-such-run")
    # A hub id is left for the hub client to resolve.
    assert resolve_source("Qwen/Qwen2.5-VL-3B-Instruct").base == "Qwen/Qwen2.5-VL-3B-Instruct"


def test_one_trip_resolves_the_model_source_once(tmp_path, tiny_model_dir, monkeypatch):
    """An adapter given to get_backend (or to the export command) is resolved into a ModelSource
    once at the entry; the processor, bounds, weights and LoRA loads below take that source."""
    from peft import LoraConfig, get_peft_model

    import train.export.common
    import train.model_source
    from eval.backends import get_backend
    from train.export import main as export_main
    from train.modeling import load_model, save_processor

    adapter = tmp_path / "adapter"
    peft_model = get_peft_model(
        load_model(str(tiny_model_dir), dtype="float32"), LoraConfig(r=2, target_modules=["q_proj"])
    )
    peft_model.save_pretrained(adapter)
    save_processor(load_processor(str(tiny_model_dir)), adapter)

    calls = []
    real = train.model_source.resolve_source

    def counting(name):
        calls.append(name)
        return real(name)

    monkeypatch.setattr(train.model_source, "resolve_source", counting)
    monkeypatch.setattr(train.export.common, "resolve_source", counting)
    backend = get_backend("hf", str(adapter), dtype="float32")
    assert calls == [str(adapter)]
    backend.close()
    calls.clear()
    assert export_main(["--adapter", str(adapter), "--output-dir", str(tmp_path / "merged")]) == 0
    assert calls == [str(adapter)]
