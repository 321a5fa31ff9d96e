"""The Unsloth engine (``engine: unsloth``, or ``auto`` on a CUDA GPU with Unsloth installed).

Unsloth's ``FastVisionModel`` loads the base (4-bit for QLoRA) and adds LoRA with its fused
kernels, and its ``UnslothVisionDataCollator`` builds the batches with the loss on the assistant
response only (``train_on_responses_only`` with Qwen's turn headers). Images are brought to the
contract's bounds with ``prepare_image`` before the collator sees them, and the collator is told
not to resize again, so the model trains on exactly the pixels every evaluation backend feeds it.

What the recipe says is what Unsloth 2026.10.9 is told (its signatures are recorded in
``tests/fixtures/pinned_signatures.json``):

* the model named is the model loaded: ``use_exact_model_name=True`` (otherwise a 4-bit load of
  ``Qwen/Qwen2.5-VL-3B-Instruct`` is redirected to a pre-quantised ``unsloth/...-bnb-4bit`` hub repo,
  which fails offline and ignores a local folder), and ``local_files_only`` for a local folder or
  ``HF_HUB_OFFLINE=1``;
* ``dtype`` and ``attn_implementation`` from the recipe;
* ``gradient_checkpointing`` to both ``from_pretrained`` and ``get_peft_model`` (the latter
  defaults to ``"unsloth"`` and would switch it back on);
* samples longer than ``max_length`` are dropped, counted and logged, never truncated: Unsloth's
  collator would cut them at ``max_seq_length`` (``train.collator`` has the same rule);
* ``import unsloth`` happens before transformers/trl/peft (``train.engines.preload``, called first
  by ``train.sft`` and ``train.launch``), so its patches apply.

``import unsloth`` raises NotImplementedError without a GPU and patches transformers globally when
it loads: this module imports it only inside :func:`build_trainer`, after the GPU check.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from data_prep.contract import ImageBounds, build_messages, prepare_image
from train.collator import within_max_length
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


def offline(name_or_path: str) -> bool:
    """Load from local files only: a local folder, or the hub switched off (``HF_HUB_OFFLINE``)."""
    return Path(name_or_path).is_dir() or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def from_pretrained_kwargs(
    model_args: ModelArguments, script_args: ScriptArguments, training_args: HmerTrainingArguments
) -> dict[str, Any]:
    """Keyword arguments for ``FastVisionModel.from_pretrained`` that say what the recipe says."""
    from train.modeling import _torch_dtype

    dtype = _torch_dtype(model_args.dtype)
    kwargs: dict[str, Any] = {
        "model_name": model_args.model_name_or_path,
        "load_in_4bit": model_args.load_in_4bit,
        "dtype": None if dtype == "auto" else dtype,
        "max_seq_length": script_args.max_length,
        "use_gradient_checkpointing": "unsloth" if training_args.gradient_checkpointing else False,
        "use_exact_model_name": True,
        "local_files_only": offline(model_args.model_name_or_path),
        "trust_remote_code": False,
    }
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    return kwargs


def get_peft_model_kwargs(model_args: ModelArguments, training_args: HmerTrainingArguments) -> dict[str, Any]:
    """Keyword arguments for ``FastVisionModel.get_peft_model`` (the recipe's LoRA and checkpointing)."""
    return {
        "finetune_vision_layers": "visual" in model_args.lora_target_modules,
        "finetune_language_layers": True,
        "finetune_attention_modules": True,
        "finetune_mlp_modules": True,
        "r": model_args.lora_r,
        "lora_alpha": model_args.lora_alpha,
        "lora_dropout": model_args.lora_dropout,
        "bias": "none",
        "random_state": training_args.seed,
        # get_peft_model's default is "unsloth": without this, gradient_checkpointing: false is lost.
        "use_gradient_checkpointing": "unsloth" if training_args.gradient_checkpointing else False,
    }


def disable_truncation(collator: Any) -> Any:
    """Make Unsloth's collator keep every token: it truncates to ``max_seq_length`` (from the model
    when not given) whenever ``truncation`` is set. Over-long samples are dropped by
    :class:`_MessagesCollator` instead."""
    for attribute in ("max_seq_length", "truncation"):
        if not hasattr(collator, attribute):
            raise RecipeError(
                f"Unsloth's vision collator has no {attribute!r} attribute any more: this Unsloth version "
                "may truncate samples; check tests/fixtures/pinned_signatures.json against it"
            )
    collator.max_seq_length = None
    collator.truncation = False
    return collator


def mask_newline_after_end(batch: dict[str, Any], end_id: int, newline_ids: list[int]) -> dict[str, Any]:
    """Labels of the newline token right after each ``<|im_end|>`` set to -100 (not trained)."""
    if len(newline_ids) != 1:
        raise RecipeError(f"the tokenizer encodes a newline as {len(newline_ids)} tokens; expected one")
    ids, labels = batch["input_ids"], batch["labels"]
    after_end = (ids[:, 1:] == newline_ids[0]) & (ids[:, :-1] == end_id)
    labels[:, 1:][after_end] = -100
    return batch


class _MessagesCollator:
    """Rows -> messages -> Unsloth's vision collator; samples over ``max_length`` tokens are dropped
    and counted (``skipped``, reported in the run summary), never truncated."""

    def __init__(
        self,
        inner,
        bounds: ImageBounds,
        max_length: int | None = None,
        final_newline: bool = True,
        tokenizer: Any = None,
    ) -> None:
        if not final_newline and tokenizer is None:
            raise ValueError("label_final_newline: false needs the tokenizer (to find <|im_end|> \\n)")
        self.inner = inner
        self.tokenizer = tokenizer
        self.bounds = bounds
        self.max_length = max_length
        #: Unsloth trains on the chat template's ``<|im_end|>\\n`` (LLaMA-Factory parity); False
        #: masks that ``\\n`` (recipe ``label_final_newline: false``).
        self.final_newline = final_newline
        self.skipped: Counter[str] = Counter()

    def __call__(self, rows):
        return self._end_of_turn(self._collate(list(rows)))

    def _collate(self, rows):
        batch = self.inner([to_messages(row, self.bounds) for row in rows])
        if self.max_length is None:
            return batch
        keep = within_max_length(rows, batch["attention_mask"], self.max_length, self.skipped)
        if len(keep) == len(rows):
            return batch
        return self.inner([to_messages(rows[i], self.bounds) for i in keep])

    def _end_of_turn(self, batch):
        if self.final_newline:
            return batch
        end_id = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        newline = self.tokenizer.encode("\n", add_special_tokens=False)
        return mask_newline_after_end(batch, end_id, newline)


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
    from train.engines.preload import import_unsloth

    import_unsloth()  # normally already done by train.engines.preload before transformers loaded
    from trl import SFTConfig, SFTTrainer
    from unsloth import FastVisionModel
    from unsloth.trainer import UnslothVisionDataCollator

    load_kwargs = from_pretrained_kwargs(model_args, script_args, training_args)
    logger.info(
        "unsloth: loading %s exactly as named (local files only: %s), dtype %s, 4-bit %s",
        load_kwargs["model_name"],
        load_kwargs["local_files_only"],
        model_args.dtype,
        model_args.load_in_4bit,
    )
    model, processor = FastVisionModel.from_pretrained(**load_kwargs)
    model = FastVisionModel.get_peft_model(model, **get_peft_model_kwargs(model_args, training_args))
    FastVisionModel.for_training(model)
    processor.image_processor.size = {
        "shortest_edge": script_args.min_pixels,
        "longest_edge": script_args.max_pixels,
    }
    collator = UnslothVisionDataCollator(
        model,
        processor,
        resize="max",  # images are already prepared by the contract
        train_on_responses_only=True,
        instruction_part=QWEN_INSTRUCTION_PART,
        response_part=QWEN_RESPONSE_PART,
    )
    disable_truncation(collator)
    config_kwargs = training_args.to_dict()
    for key in ("gradient_checkpointing", "gradient_checkpointing_kwargs"):
        config_kwargs.pop(key, None)  # Unsloth's own checkpointing is set on the model above
    sft_config = SFTConfig(
        **{k: v for k, v in config_kwargs.items() if k in SFTConfig.__dataclass_fields__},
        remove_unused_columns=False,
        dataset_text_field="",
        dataset_kwargs={"skip_prepare_dataset": True},
        max_length=None,  # never truncate: _MessagesCollator drops over-long samples
    )
    trainer = SFTTrainer(
        model=model,
        args=sft_config,
        train_dataset=train_dataset,
        data_collator=_MessagesCollator(
            collator,
            script_args.bounds,
            script_args.max_length,
            script_args.label_final_newline,
            tokenizer=processor.tokenizer,
        ),
        processing_class=processor.tokenizer,
        callbacks=callbacks,
    )
    return trainer, processor
