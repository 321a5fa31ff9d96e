"""Model inputs built from the sample contract, the same for training and every inference backend.

Training (the collator), the HF generation backend, the vLLM backend and the OpenAI-style client all
turn a (prompt, image) pair into the model's text through :func:`prompt_text`, and images through
``data_prep.contract.prepare_image``; so the token ids a model is trained on are the ids it is later
asked with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from data_prep.contract import DEFAULT_BOUNDS, ImageBounds, build_messages, prepare_image

#: Ignored positions in the labels (the prompt, the image tokens, padding).
IGNORE_INDEX = -100


def prompt_text(processor_or_tokenizer: Any, prompt: str) -> str:
    """The chat-formatted text of a user turn (one image + prompt) and the assistant header."""
    return processor_or_tokenizer.apply_chat_template(
        build_messages(prompt), tokenize=False, add_generation_prompt=True
    )


def answer_suffix(processor_or_tokenizer: Any, final_newline: bool = True) -> str:
    """What follows the answer in a training sample, trained with it: the end-of-turn token and,
    by default, the newline after it, exactly as LLaMA-Factory's ``qwen2_vl`` template (the
    reference's trainer: ``{{content}}<|im_end|>\\n``) and Qwen's chat template write it.
    ``final_newline=False`` (recipe ``label_final_newline: false``) stops at ``<|im_end|>``."""
    tokenizer = getattr(processor_or_tokenizer, "tokenizer", processor_or_tokenizer)
    return (tokenizer.eos_token or "<|im_end|>") + ("\n" if final_newline else "")


def encode_for_generation(
    processor: Any,
    images: Sequence[Image.Image],
    prompts: Sequence[str],
    bounds: ImageBounds = DEFAULT_BOUNDS,
    return_tensors: str = "pt",
) -> dict[str, Any]:
    """A left-padded batch for ``model.generate``: one prepared image and one prompt per row."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    processor.tokenizer.padding_side = "left"
    return processor(
        text=[prompt_text(processor, p) for p in prompts],
        images=[prepare_image(im, bounds) for im in images],
        padding=True,
        return_tensors=return_tensors,
    )


def encode_for_training(
    processor: Any,
    images: Sequence[Image.Image | None],
    prompts: Sequence[str],
    answers: Sequence[str],
    bounds: ImageBounds = DEFAULT_BOUNDS,
    max_length: int | None = None,
    final_newline: bool = True,
) -> dict[str, Any]:
    """A right-padded training batch whose labels cover only the answer and its end of turn
    (``<|im_end|>`` and, by default, the ``\\n`` after it: see :func:`answer_suffix`).

    The prompt (system turn, image placeholder tokens, user text, assistant header) and padding are
    set to :data:`IGNORE_INDEX`. The prompt length is measured by encoding the prompt on its own
    with the same image, so the image token expansion is identical.
    """
    if not (len(images) == len(prompts) == len(answers)):
        raise ValueError("images, prompts and answers must have the same length")
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "right"
    prepared = [prepare_image(im, bounds) if im is not None else None for im in images]
    prompt_texts = [prompt_text(processor, p) for p in prompts]
    suffix = answer_suffix(processor, final_newline)
    full_texts = [pt + a + suffix for pt, a in zip(prompt_texts, answers)]
    with_images = [im for im in prepared if im is not None]
    if with_images and len(with_images) != len(prepared):
        raise ValueError("a batch must be all image samples or all text-only samples")
    kwargs: dict[str, Any] = {"padding": True, "return_tensors": "pt"}
    if with_images:
        kwargs["images"] = with_images
    batch = processor(text=full_texts, **kwargs)
    # The prompts alone, in one right-padded call (one call a row costs the collator half a
    # training step on a CPU): each row's prompt length is its count of real tokens.
    prompts_only = processor(text=prompt_texts, **kwargs)
    prompt_lengths = [int(n) for n in prompts_only["attention_mask"].sum(dim=1)]
    labels = batch["input_ids"].clone()
    for row, n in enumerate(prompt_lengths):
        labels[row, :n] = IGNORE_INDEX
    labels[batch["attention_mask"] == 0] = IGNORE_INDEX
    if max_length is not None and labels.shape[1] > max_length:
        # Truncating would cut image tokens apart from their pixel values: refuse clearly instead.
        longest = int(batch["attention_mask"].sum(dim=1).max())
        if longest > max_length:
            raise ValueError(f"a sample has {longest} tokens, more than max_length={max_length}")
    batch["labels"] = labels
    if (labels != IGNORE_INDEX).sum() == 0:
        raise ValueError("no answer tokens to train on in this batch")
    return dict(batch)
