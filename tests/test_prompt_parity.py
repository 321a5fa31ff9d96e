"""The vLLM request builder gives the model the same prompt token ids as the HF backend (no vLLM
needed: the request is built by a pure function and tokenized the way vLLM does)."""

from __future__ import annotations

import pytest
from PIL import Image

from data_prep.contract import (
    COUNTING_PROMPT,
    DEFAULT_BOUNDS,
    MAIN_PROMPT,
    TREE_COT_PROMPT,
    ImageBounds,
    prepare_image,
)
from data_prep.images import invert
from eval.backends import stop_token_ids
from eval.backends.vllm_requests import (
    IMAGE_PAD,
    build_request,
    build_requests,
    default_max_model_len,
    engine_kwargs,
    request_token_ids,
    sampling_kwargs,
)
from train.inputs import encode_for_generation, prompt_text


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from train.modeling import load_processor

    return load_processor(str(tiny_model_dir))


@pytest.fixture(scope="module")
def images(crohme_sample_dir) -> list[Image.Image]:
    files = sorted((crohme_sample_dir / "off_image_test").glob("*.bmp"))[:2]
    real = [invert(Image.open(f)) for f in files]
    # A thin line (padded by prepare_image) and a large photo-sized image (scaled down).
    thin = Image.new("L", (900, 4), 255)
    large = Image.new("RGB", (1400, 900), (250, 250, 250))
    return [*real, thin, large]


PROMPTS = [MAIN_PROMPT, TREE_COT_PROMPT, COUNTING_PROMPT, MAIN_PROMPT]


def test_request_ids_equal_hf_batch_ids(processor, images):
    batch = encode_for_generation(processor, images, PROMPTS)
    requests = build_requests(processor, images, PROMPTS)
    for row, request in enumerate(requests):
        hf_ids = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
        assert request_token_ids(processor, request) == hf_ids, f"row {row} differs"


def test_request_image_and_text_follow_the_contract(processor, images):
    for image, prompt in zip(images, PROMPTS):
        request = build_request(processor, image, prompt)
        assert request["prompt"] == prompt_text(processor, prompt)
        assert request["prompt"].count(IMAGE_PAD) == 1
        sent = request["multi_modal_data"]["image"]
        assert sent.mode == "RGB" and sent.size == prepare_image(image).size
        assert sent.width * sent.height <= DEFAULT_BOUNDS.max_pixels


def test_image_grid_matches_between_paths(processor, images):
    batch = encode_for_generation(processor, images, PROMPTS)
    for row, image in enumerate(images):
        request = build_request(processor, image, PROMPTS[row])
        grid = processor.image_processor(images=[request["multi_modal_data"]["image"]], return_tensors="pt")
        assert grid["image_grid_thw"][0].tolist() == batch["image_grid_thw"][row].tolist()


def test_smaller_bounds_reach_both_paths(processor, images):
    bounds = ImageBounds(min_pixels=3136, max_pixels=50_176)
    request = build_request(processor, images[3], MAIN_PROMPT, bounds)
    assert request["multi_modal_data"]["image"].width * request["multi_modal_data"]["image"].height <= 50_176
    assert engine_kwargs("m", bounds=bounds)["mm_processor_kwargs"] == {
        "min_pixels": 3136,
        "max_pixels": 50_176,
    }


def test_engine_and_sampling_settings(processor):
    kwargs = engine_kwargs("some/model", tp=2, max_new_tokens=256, lora_rank=12)
    assert kwargs["limit_mm_per_prompt"]["image"] == 1
    assert kwargs["mm_processor_kwargs"] == DEFAULT_BOUNDS.processor_kwargs()
    assert kwargs["tensor_parallel_size"] == 2 and kwargs["trust_remote_code"] is False
    assert kwargs["enable_lora"] and kwargs["max_lora_rank"] == 16
    # Longest request: a full-size image, the chat text and the answer fit.
    assert kwargs["max_model_len"] >= DEFAULT_BOUNDS.max_pixels // 784 + 256
    assert default_max_model_len(DEFAULT_BOUNDS, 1024) > default_max_model_len(DEFAULT_BOUNDS, 256)
    stops = stop_token_ids(processor.tokenizer)
    greedy = sampling_kwargs(256, stops)
    assert greedy["temperature"] == 0.0 and greedy["repetition_penalty"] == 1.0
    assert greedy["stop_token_ids"] == stops and greedy["max_tokens"] == 256
    sampled = sampling_kwargs(64, stops, n=4, temperature=0.2, top_p=0.8, seed=3)
    assert (sampled["n"], sampled["top_p"], sampled["seed"]) == (4, 0.8, 3)
