"""Training engines: ``trl`` (portable: Trainer + PEFT + bitsandbytes) and ``unsloth`` (CUDA only).

``engine: auto`` picks Unsloth when it is installed, a CUDA GPU is present, the recipe trains LoRA
adapters and the run is a single process without DeepSpeed (Unsloth's supported case); otherwise
the portable engine. Unsloth is only *looked up* here (``importlib.util.find_spec``), never imported:
``import unsloth`` raises without a GPU and patches transformers globally; :mod:`train.engines.preload`
imports it before transformers when the run will use it. This package imports nothing heavy at
module level, so ``train.engines.preload`` can run before transformers is imported.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from train.config import HmerTrainingArguments, ModelArguments

logger = logging.getLogger(__name__)


def unsloth_installed() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def select_engine(model_args: ModelArguments, training_args: HmerTrainingArguments) -> tuple[str, str]:
    """``(engine, reason)`` for the recipe's ``engine`` key on this machine."""
    from train.config import RecipeError

    requested = model_args.engine
    single_process = int(os.environ.get("WORLD_SIZE", "1")) == 1 and not training_args.deepspeed
    if requested == "trl":
        return "trl", "requested by the recipe"
    if requested == "unsloth":
        if not unsloth_installed():
            raise RecipeError("engine unsloth requested but unsloth is not installed (make install-gpu)")
        if not cuda_available():
            raise RecipeError("engine unsloth requested but no CUDA GPU is visible")
        return "unsloth", "requested by the recipe"
    if requested != "auto":
        raise RecipeError(f"unknown engine {requested!r}")
    if not unsloth_installed():
        return "trl", "auto: unsloth is not installed"
    if not cuda_available():
        return "trl", "auto: no CUDA GPU"
    if not model_args.use_peft:
        return "trl", "auto: full fine-tuning runs on the portable engine"
    if not single_process:
        return "trl", "auto: multi-process/DeepSpeed runs use the portable engine"
    return "unsloth", "auto: unsloth installed, CUDA GPU present, LoRA recipe, single process"


def get_build_trainer(engine: str) -> Callable:
    """The ``build_trainer(model_args, script_args, training_args, train_dataset, callbacks)`` of ``engine``."""
    from train.config import RecipeError

    if engine == "unsloth":
        from train.engines.unsloth_engine import build_trainer
    elif engine == "trl":
        from train.engines.trl_engine import build_trainer
    else:
        raise RecipeError(f"unknown engine {engine!r}")
    return build_trainer
