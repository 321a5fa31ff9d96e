"""What the vLLM backend sends is what the model was trained on, checked against independent
expectations (no vLLM needed: requests are built by pure functions and tokenized the way vLLM
does): Qwen's chat layout written out by hand, the image bounds by arithmetic, the OpenAI-style
client's request for the same image and prompt, and the HF backend's token ids."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from data_prep.contract import (
    COUNTING_PROMPT,
    DEFAULT_BOUNDS,
    IMAGE_FACTOR,
    MAIN_PROMPT,
    TASK_COUNTING,
    TASK_MAIN,
    TASK_TREE_COT,
    TREE_COT_PROMPT,
    ImageBounds,
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
from eval.serve import client
from train.inputs import encode_for_generation

#: Qwen2.5-VL's chat template for one user turn holding one image then the text, with no system
#: turn of our own (the template adds its default one), ending with the assistant header.
QWEN_CHAT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{prompt}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
PROMPTS = [MAIN_PROMPT, TREE_COT_PROMPT, COUNTING_PROMPT, MAIN_PROMPT]
TASKS = [TASK_MAIN, TASK_TREE_COT, TASK_COUNTING, TASK_MAIN]
#: Qwen2.5-VL's vision patches are 14 pixels, merged 2 x 2 into one language token.
PATCH, MERGE = 14, 2


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from train.modeling import load_processor

    return load_processor(str(tiny_model_dir))


@pytest.fixture(scope="module")
def images(crohme_sample_dir) -> list[Image.Image]:
    files = sorted((crohme_sample_dir / "off_image_test").glob("*.bmp"))[:2]
    real = [invert(Image.open(f)) for f in files]
    # A thin line (must be padded to 28 pixels) and a large photo-sized image (must be scaled down).
    thin = Image.new("L", (900, 4), 255)
    large = Image.new("RGB", (1400, 900), (250, 250, 250))
    return [*real, thin, large]


def test_request_text_is_the_contract_prompt_in_qwens_chat_layout(processor, images):
    for image, prompt in zip(images, PROMPTS):
        assert build_request(processor, image, prompt)["prompt"] == QWEN_CHAT.format(prompt=prompt)


@pytest.mark.parametrize("bounds", [DEFAULT_BOUNDS, ImageBounds(min_pixels=3136, max_pixels=50_176)])
def test_sent_image_is_within_the_bounds_and_the_processor_keeps_it(processor, images, bounds):
    for image in images:
        sent = build_request(processor, image, MAIN_PROMPT, bounds)["multi_modal_data"]["image"]
        width, height = sent.size
        assert sent.mode == "RGB" and min(width, height) >= IMAGE_FACTOR, sent.size
        assert width * height <= bounds.max_pixels, sent.size
        if min(image.size) >= IMAGE_FACTOR:  # not padded: the aspect ratio survives the resize
            assert abs(width / height - image.width / image.height) < 0.15 * image.width / image.height
        # vLLM runs the image processor again with the engine's bounds: it only rounds each side to
        # a multiple of 28 (never a second rescale), and the patches it makes stay within the bounds.
        grids = processor.image_processor(images=[sent], return_tensors="pt", **bounds.processor_kwargs())
        t, rows, cols = grids["image_grid_thw"][0].tolist()
        assert (
            t == 1
            and abs(rows * PATCH - height) <= IMAGE_FACTOR
            and abs(cols * PATCH - width) <= IMAGE_FACTOR
        )
        assert bounds.min_pixels <= rows * cols * PATCH * PATCH <= bounds.max_pixels
    assert engine_kwargs("m", bounds=bounds)["mm_processor_kwargs"] == {
        "min_pixels": bounds.min_pixels,
        "max_pixels": bounds.max_pixels,
    }


def test_vllm_request_equals_the_openai_client_request(processor, images):
    """Two code paths to one model: the offline vLLM request and the chat-completions body."""
    for image, prompt, task in zip(images, PROMPTS, TASKS):
        offline = build_request(processor, image, prompt)
        served = client.build_request(image, task)
        (message,) = served["messages"]
        assert message["role"] == "user"
        kinds = [part["type"] for part in message["content"]]
        assert kinds == ["image_url", "text"] and message["content"][1]["text"] == prompt
        url = message["content"][0]["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert np.array_equal(
            np.asarray(sent.convert("RGB")), np.asarray(offline["multi_modal_data"]["image"])
        )
        # The server applies the same chat template to these messages (the image part as an image).
        as_template = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        assert (
            processor.apply_chat_template(as_template, tokenize=False, add_generation_prompt=True)
            == offline["prompt"]
        )
        assert served["temperature"] == 0.0


def test_prompt_token_ids_equal_the_hf_backends(processor, images):
    batch = encode_for_generation(processor, images, PROMPTS)
    pad_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    for row, request in enumerate(build_requests(processor, images, PROMPTS)):
        ids = request_token_ids(processor, request)
        hf_ids = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
        assert ids == hf_ids, f"row {row} differs"
        # One language token per 2 x 2 group of the image's 14-pixel patches.
        t, rows, cols = batch["image_grid_thw"][row].tolist()
        assert ids.count(pad_id) == t * rows * cols // MERGE**2 > 0


def test_engine_and_sampling_settings(processor):
    kwargs = engine_kwargs("some/model", tp=2, max_new_tokens=256, lora_rank=12)
    assert kwargs["limit_mm_per_prompt"]["image"] == 1
    assert kwargs["tensor_parallel_size"] == 2 and kwargs["trust_remote_code"] is False
    assert kwargs["enable_lora"] and kwargs["max_lora_rank"] == 16  # the next rank vLLM accepts
    # The longest request fits: a full-size image's tokens, the chat text and the answer.
    image_tokens = DEFAULT_BOUNDS.max_pixels // (PATCH * PATCH * MERGE**2)
    assert kwargs["max_model_len"] >= image_tokens + 256
    assert default_max_model_len(DEFAULT_BOUNDS, 1024) - default_max_model_len(DEFAULT_BOUNDS, 256) >= 768
    stops = stop_token_ids(processor.tokenizer)
    assert processor.tokenizer.convert_tokens_to_ids("<|im_end|>") in stops
    greedy = sampling_kwargs(256, stops)
    assert greedy["temperature"] == 0.0 and greedy["repetition_penalty"] == 1.0
    assert greedy["stop_token_ids"] == stops and greedy["max_tokens"] == 256
    sampled = sampling_kwargs(64, stops, n=4, temperature=0.2, top_p=0.8, seed=3)
    assert (sampled["n"], sampled["temperature"], sampled["top_p"], sampled["seed"]) == (4, 0.2, 0.8, 3)
