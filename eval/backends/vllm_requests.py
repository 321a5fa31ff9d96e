"""What the vLLM backend hands to vLLM, built without vLLM (so a CPU test checks it): the request
dicts (chat text + prepared image), the engine's keyword arguments (the contract's pixel bounds as
``mm_processor_kwargs``, a context that fits the image) and the sampling parameters (greedy unless
asked: ``temperature=0``, no repetition penalty, Qwen's stop tokens)."""

from __future__ import annotations

from typing import Any

from PIL import Image

from data_prep.contract import DEFAULT_BOUNDS, IMAGE_FACTOR, ImageBounds, prepare_image

IMAGE_PAD = "<|image_pad|>"
#: LoRA ranks vLLM accepts for ``max_lora_rank``.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
#: Room for the chat text around the image (system turn, prompt, error-driven predictions).
PROMPT_TEXT_TOKENS = 512


def build_request(
    processor_or_tokenizer: Any, image: Image.Image, prompt: str, bounds: ImageBounds = DEFAULT_BOUNDS
) -> dict[str, Any]:
    """The vLLM prompt dict for one (image, prompt) pair: the chat text of ``train.inputs`` and
    the image prepared exactly as for training."""
    from train.inputs import prompt_text

    return {
        "prompt": prompt_text(processor_or_tokenizer, prompt),
        "multi_modal_data": {"image": prepare_image(image, bounds)},
    }


def build_requests(
    processor_or_tokenizer: Any,
    images: list[Image.Image],
    prompts: list[str],
    bounds: ImageBounds = DEFAULT_BOUNDS,
) -> list[dict[str, Any]]:
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    return [build_request(processor_or_tokenizer, im, p, bounds) for im, p in zip(images, prompts)]


def request_token_ids(processor: Any, request: dict[str, Any]) -> list[int]:
    """The prompt token ids vLLM feeds the model for ``request``.

    vLLM tokenizes the prompt text with the model's tokenizer, runs the HF image processor (with
    the engine's ``mm_processor_kwargs``) and expands the single ``<|image_pad|>`` into one token
    per merged patch group: ``t * h * w / merge_size**2``. Reproduced here with the same tokenizer
    and image processor so a test can compare it with the HF backend's ids.
    """
    tokenizer = processor.tokenizer
    image_processor = processor.image_processor
    text_ids = tokenizer(request["prompt"], add_special_tokens=False)["input_ids"]
    pad_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    if text_ids.count(pad_id) != 1:
        raise ValueError(
            f"expected exactly one {IMAGE_PAD} in the request text, found {text_ids.count(pad_id)}"
        )
    grid = image_processor(images=[request["multi_modal_data"]["image"]], return_tensors="pt")[
        "image_grid_thw"
    ][0]
    merge = getattr(image_processor, "merge_size", 2)
    n_image_tokens = int(grid.prod()) // (merge * merge)
    at = text_ids.index(pad_id)
    return text_ids[:at] + [pad_id] * n_image_tokens + text_ids[at + 1 :]


def default_max_model_len(bounds: ImageBounds, max_new_tokens: int) -> int:
    """Longest sequence a request can need: image tokens + chat text + answer, rounded up to 256."""
    image_tokens = bounds.max_pixels // (IMAGE_FACTOR * IMAGE_FACTOR) + 2
    needed = image_tokens + PROMPT_TEXT_TOKENS + max_new_tokens
    return -(-needed // 256) * 256


def engine_kwargs(
    model: str,
    *,
    bounds: ImageBounds = DEFAULT_BOUNDS,
    tp: int = 1,
    max_new_tokens: int = 256,
    max_model_len: int | None = None,
    dtype: str = "auto",
    seed: int = 0,
    lora_rank: int | None = None,
    tokenizer: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM``: one image per prompt, no video, the contract's bounds."""
    kwargs: dict[str, Any] = {
        "model": model,
        "tokenizer": tokenizer or model,
        "dtype": "bfloat16" if dtype == "auto" else dtype,
        "tensor_parallel_size": tp,
        "seed": seed,
        "max_model_len": max_model_len or default_max_model_len(bounds, max_new_tokens),
        "limit_mm_per_prompt": {"image": 1, "video": 0},
        "mm_processor_kwargs": bounds.processor_kwargs(),
        "trust_remote_code": False,
    }
    if lora_rank is not None:
        kwargs["enable_lora"] = True
        kwargs["max_loras"] = 1
        kwargs["max_lora_rank"] = next((r for r in VLLM_LORA_RANKS if r >= lora_rank), lora_rank)
    kwargs.update(extra)
    return kwargs


def sampling_kwargs(
    max_new_tokens: int,
    stop_ids: list[int],
    *,
    n: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    ignore_eos: bool = False,
    detokenize: bool = True,
) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` (greedy unless ``temperature`` > 0)."""
    kwargs: dict[str, Any] = {
        "n": n,
        "temperature": temperature,
        "top_p": top_p if temperature > 0 else 1.0,
        "max_tokens": max_new_tokens,
        "repetition_penalty": 1.0,
        "stop_token_ids": list(stop_ids),
        "ignore_eos": ignore_eos,
        "detokenize": detokenize,
        "skip_special_tokens": True,
    }
    if seed is not None:
        kwargs["seed"] = seed
    return kwargs


# --------------------------------------------------------------------------- #
