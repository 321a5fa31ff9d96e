"""The Unsloth engine (``engine: unsloth``, or ``auto`` on a CUDA GPU with Unsloth installed).

Unsloth's ``FastVisionModel`` loads the base in 4 bits and adds LoRA with its fused kernels, and
its ``UnslothVisionDataCollator`` builds the batches with the loss on the assistant response only
(``train_on_responses_only`` with Qwen's turn headers). Images are brought to the contract's bounds
with ``prepare_image`` before the collator sees them, and the collator is told not to resize again,
so the model trains on exactly the pixels every evaluation backend feeds it.

``import unsloth`` raises NotImplementedError without a GPU and patches transformers globally when
it loads: this module imports it only inside :func:`build_trainer`, after the GPU check.
"""

from __future__ import annotations

import logging
from typing import Any

from data_prep.contract import ImageBounds, build_messages, prepare_image
from train.config import HmerTrainingArguments, ModelArguments, RecipeError, ScriptArguments

logger = logging.getLogger(__name__)

#: Qwen chat-template turn headers: the loss starts after the assistant header.
QWEN_INSTRUCTION_PART = "<|im_start|>user\n"
QWEN_RESPONSE_PART = "<|im_start|>assistant\n"


def to_messages(row: dict[str, Any], bounds: ImageBounds) -> dict[str, Any]:
    """A dataset row as the chat messages Unsloth's collator reads (image inlined, prepared)."""
    image = row.get("image")
    if image is None:
        raise ValueError(f"sample {row.get('id', '?')}: has no image; every training sample must carry one")
    messages = build_messages(row["prompt"], row["answer"])
    messages[0]["content"][0] = {"type": "image", "image": prepare_image(image, bounds)}
    return {"messages": messages}


class _MessagesCollator:
    """Rows -> messages -> Unsloth's vision collator."""

    def __init__(self, inner, bounds: ImageBounds) -> None:
        self.inner = inner
        self.bounds = bounds

    def __call__(self, rows):
        return self.inner([to_messages(row, self.bounds) for row in rows])


def build_trainer(
    model_args: ModelArguments,
    script_args: ScriptArguments,
    training_args: HmerTrainingArguments,
    train_dataset,
    callbacks: list | None = None,
):
    """An Unsloth-patched TRL ``SFTTrainer`` and the processor to save beside the adapter."""
    import torch

    if not torch.cuda.is_available():
        raise RecipeError("engine unsloth needs a CUDA GPU; use engine: trl (or auto) on this machine")
    if not model_args.use_peft:
        raise RecipeError(
            "engine unsloth is wired for LoRA/QLoRA recipes here; use engine: trl for full fine-tuning"
        )
    import unsloth  # noqa: F401  -- must come before trl/transformers patches take effect
    from trl import SFTConfig, SFTTrainer
    from unsloth import FastVisionModel
    from unsloth.trainer import UnslothVisionDataCollator

    model, processor = FastVisionModel.from_pretrained(
        model_args.model_name_or_path,
        load_in_4bit=model_args.load_in_4bit,
        max_seq_length=script_args.max_length,
        use_gradient_checkpointing="unsloth" if training_args.gradient_checkpointing else False,
    )
    model = FastVisionModel.get_peft_model(
        model,
        finetune_vision_layers=False,
        finetune_language_layers=True,
        finetune_attention_modules=True,
        finetune_mlp_modules=True,
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        bias="none",
        random_state=training_args.seed,
    )
    FastVisionModel.for_training(model)
    processor.image_processor.size = {
        "shortest_edge": script_args.min_pixels,
        "longest_edge": script_args.max_pixels,
    }
    collator = UnslothVisionDataCollator(
        model,
        processor,
        max_seq_length=script_args.max_length,
        resize="max",  # images are already prepared by the contract
        train_on_responses_only=True,
        instruction_part=QWEN_INSTRUCTION_PART,
        response_part=QWEN_RESPONSE_PART,
    )
    config_kwargs = training_args.to_dict()
    for key in ("gradient_checkpointing", "gradient_checkpointing_kwargs"):
        config_kwargs.pop(key, None)  # Unsloth's own checkpointing is set on the model above
    sft_config = SFTConfig(
        **{k: v for k, v in config_kwargs.items() if k in SFTConfig.__dataclass_fields__},
        remove_unused_columns=False,
        dataset_text_field="",
        dataset_kwargs={"skip_prepare_dataset": True},
        max_length=script_args.max_length,
    )
    trainer = SFTTrainer(
        model=model,
        args=sft_config,
        train_dataset=train_dataset,
        data_collator=_MessagesCollator(collator, script_args.bounds),
        processing_class=processor.tokenizer,
        callbacks=callbacks,
    )
    return trainer, processor
