"""The portable engine (``engine: trl``): transformers ``Trainer`` + PEFT + bitsandbytes + our collator.

Runs everywhere the pinned stack runs: CPU (CI), one GPU, DDP and DeepSpeed ZeRO-2/3 through
``accelerate launch``. The recipe is parsed by TRL's ``TrlParser``; the training loop is the
``transformers.Trainer`` that TRL's ``SFTTrainer`` builds on, fed directly by
:class:`train.collator.VisionSFTCollator` (so none of TRL's dataset preparation runs and the loss
covers the answer tokens only). The only change to the Trainer is optimizer parameter groups, so
the vision tower and the merger can have their own learning rates.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import torch
from transformers import Trainer

from train.checkpoints import load_full_checkpoint
from train.collator import VisionSFTCollator
from train.config import HmerTrainingArguments, ModelArguments, ScriptArguments
from train.modeling import load_model, load_processor

logger = logging.getLogger(__name__)

#: Parameter names (plain or PEFT-wrapped) of the vision tower and of its merger (projector).
#: Qwen3-VL's ``deepstack_merger_list`` is a merger too.
VISION_PARAM = re.compile(r"(^|\.)visual\.")
MERGER_PARAM = re.compile(r"(^|\.)visual\.(merger|deepstack_merger_list)\.")


def parameter_part(name: str) -> str:
    """``"merger"``, ``"vision"`` or ``"language"`` for a parameter name."""
    if MERGER_PARAM.search(name):
        return "merger"
    if VISION_PARAM.search(name):
        return "vision"
    return "language"


def freeze_parts(model: torch.nn.Module, freeze_vision_tower: bool, freeze_merger: bool) -> dict[str, int]:
    """Turn off gradients for the vision tower and/or the merger; returns frozen counts per part."""
    frozen = {"vision": 0, "merger": 0}
    for name, param in model.named_parameters():
        part = parameter_part(name)
        if (part == "vision" and freeze_vision_tower) or (part == "merger" and freeze_merger):
            param.requires_grad_(False)
            frozen[part] += param.numel()
    return frozen


def parameter_groups(
    named_parameters: Iterable[tuple[str, torch.nn.Parameter]],
    learning_rate: float,
    weight_decay: float,
    decay_names: set[str],
    vision_learning_rate: float | None = None,
    merger_learning_rate: float | None = None,
) -> list[dict[str, Any]]:
    """Optimizer groups: (language | vision | merger) x (decay | no decay), trainable params only."""
    rates = {
        "language": learning_rate,
        "vision": learning_rate if vision_learning_rate is None else vision_learning_rate,
        "merger": learning_rate if merger_learning_rate is None else merger_learning_rate,
    }
    groups: dict[tuple[str, bool], list[torch.nn.Parameter]] = {}
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        groups.setdefault((parameter_part(name), name in decay_names), []).append(param)
    return [
        {"params": params, "lr": rates[part], "weight_decay": weight_decay if decay else 0.0, "part": part}
        for (part, decay), params in sorted(groups.items())
    ]


class VisionSFTTrainer(Trainer):
    """``Trainer`` whose optimizer gives the vision tower and merger their own learning rates."""

    def __init__(
        self,
        *args,
        vision_learning_rate: float | None = None,
        merger_learning_rate: float | None = None,
        validator=None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.vision_learning_rate = vision_learning_rate
        self.merger_learning_rate = merger_learning_rate
        #: ``validator(model) -> {"exprate": ...}`` (train.validation.Validator), run at each evaluation.
        self.validator = validator

    def evaluation_loop(self, *args, **kwargs):
        output = super().evaluation_loop(*args, **kwargs)
        if self.validator is not None:
            prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
            scores = self.validator(self.model)
            output.metrics.update({f"{prefix}_{name}": value for name, value in scores.items()})
        return output

    def _plain_full_model(self, folder: str) -> bool:
        """A full model saved by ``save_pretrained`` and reloaded without DeepSpeed/FSDP/PEFT."""
        from pathlib import Path

        from peft import PeftModel

        if self.is_deepspeed_enabled or self.is_fsdp_enabled or isinstance(self.model, PeftModel):
            return False
        folder = Path(folder)
        return (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        # The Trainer's own reload misses every key of a transformers-5 checkpoint (see
        # train.checkpoints.load_full_checkpoint); adapters and DeepSpeed states load fine there.
        if self._plain_full_model(resume_from_checkpoint):
            return load_full_checkpoint(self.model if model is None else model, resume_from_checkpoint)
        return super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self):
        if self._plain_full_model(self.state.best_model_checkpoint):
            logger.info("loading the best model from %s", self.state.best_model_checkpoint)
            return load_full_checkpoint(self.model, self.state.best_model_checkpoint)
        return super()._load_best_model()

    def create_optimizer(self, model=None):
        if self.vision_learning_rate is None and self.merger_learning_rate is None:
            return super().create_optimizer(model)
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            groups = parameter_groups(
                opt_model.named_parameters(),
                self.args.learning_rate,
                self.args.weight_decay,
                set(self.get_decay_parameter_names(opt_model)),
                self.vision_learning_rate,
                self.merger_learning_rate,
            )
            for group in groups:
                logger.info(
                    "optimizer group %s: lr %g, %d tensors", group["part"], group["lr"], len(group["params"])
                )
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            optimizer_kwargs.pop("lr", None)
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer


def apply_lora(model, model_args: ModelArguments):
    """Wrap ``model`` with LoRA adapters on the modules ``lora_target_modules`` (a regex) matches."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=model_args.lora_target_modules,
        task_type="CAUSAL_LM",
        bias="none",
    )
    return get_peft_model(model, config)


def load_for_training(
    model_args: ModelArguments, script_args: ScriptArguments, training_args: HmerTrainingArguments
):
    """The model (quantised / LoRA-wrapped / partly frozen as the recipe says) and its processor."""
    processor = load_processor(model_args.model_name_or_path, bounds=script_args.bounds)
    model = load_model(
        model_args.model_name_or_path,
        dtype=model_args.dtype,
        load_in_4bit=model_args.load_in_4bit,
        attn_implementation=model_args.attn_implementation,
    )
    model.config.use_cache = False  # the KV cache is useless in training and conflicts with checkpointing
    if model_args.use_peft:
        if model_args.load_in_4bit and training_args.gradient_checkpointing:
            # Frozen 4-bit inputs carry no grad; checkpointed blocks need one to backpropagate.
            model.enable_input_require_grads()
        model = apply_lora(model, model_args)
    else:
        frozen = freeze_parts(model, model_args.freeze_vision_tower, model_args.freeze_merger)
        if any(frozen.values()):
            logger.info("frozen parameters: vision tower %d, merger %d", frozen["vision"], frozen["merger"])
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("trainable parameters: %d of %d (%.2f%%)", trainable, total, 100 * trainable / max(total, 1))
    return model, processor


def build_trainer(
    model_args: ModelArguments,
    script_args: ScriptArguments,
    training_args: HmerTrainingArguments,
    train_dataset,
    callbacks: list | None = None,
    eval_dataset=None,
) -> tuple[Trainer, Any]:
    """A ready-to-train :class:`VisionSFTTrainer` and the processor to save beside the weights.

    With ``eval_dataset``, evaluations report its loss and the greedy ExpRate of its first
    ``eval_max_items`` main-task images (:mod:`train.validation`).
    """
    from train.validation import Validator, cap_loss_rows, exprate_items

    model, processor = load_for_training(model_args, script_args, training_args)
    collator = VisionSFTCollator(
        processor,
        bounds=script_args.bounds,
        max_length=script_args.max_length,
        final_newline=script_args.label_final_newline,
    )
    validator = None
    if eval_dataset is not None:
        items = exprate_items(eval_dataset, script_args.eval_max_items)
        validator = Validator(
            processor,
            items,
            script_args.bounds,
            max_new_tokens=script_args.eval_max_new_tokens,
            batch_size=training_args.per_device_eval_batch_size,
        )
        eval_dataset = cap_loss_rows(eval_dataset, items)
        logger.info("validation: loss on %d rows, ExpRate on %d images", len(eval_dataset), len(items))
    trainer = VisionSFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        validator=validator,
        data_collator=collator,
        processing_class=processor.tokenizer,
        callbacks=callbacks,
        vision_learning_rate=model_args.vision_learning_rate,
        merger_learning_rate=model_args.merger_learning_rate,
    )
    return trainer, processor
