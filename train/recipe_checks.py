"""Checks on a parsed training recipe's values, each failure one :class:`RecipeError` line that
names the key: plain types (YAML values skip argparse's conversion), ranges, and installed trackers.
:func:`train.config.validate` runs them."""

from __future__ import annotations

import dataclasses
import types
import typing


class RecipeError(ValueError):
    """A recipe that cannot be trained, with the key at fault."""


_SIMPLE_TYPES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _expected_types(annotation) -> tuple[type, ...] | None:
    """The plain types a field accepts (None: not a plain field, e.g. a dict or an enum)."""
    members = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    plain = tuple(m for m in members if m is not type(None))
    return plain if plain and all(m in _SIMPLE_TYPES for m in plain) else None


def check_types(*dataclass_objects) -> None:
    """Every plain-typed key holds a value of its type: YAML values skip argparse's conversion, so
    ``lora_r: 8.5`` or ``use_peft: "no"`` would otherwise reach training as they are."""
    for obj in dataclass_objects:
        hints = typing.get_type_hints(type(obj))
        for field in dataclasses.fields(obj):
            expected = _expected_types(hints.get(field.name))
            value = getattr(obj, field.name)
            if expected is None or value is None:
                continue
            ok = any(
                (isinstance(value, t) and not (t is not bool and isinstance(value, bool)))
                or (t is float and isinstance(value, int) and not isinstance(value, bool))
                for t in expected
            )
            if not ok:
                what = " or ".join(_SIMPLE_TYPES[t] for t in expected)
                hint = (
                    " (YAML reads 1e-5 as a string: write 1.0e-5)"
                    if isinstance(value, str) and float in expected
                    else ""
                )
                raise RecipeError(f"{field.name} must be {what}, not {value!r}{hint}")


#: Keys that must be positive (> 0) and keys that must not be negative.
POSITIVE_KEYS = (
    "learning_rate", "per_device_train_batch_size", "per_device_eval_batch_size",
    "gradient_accumulation_steps", "lora_r", "lora_alpha", "max_length", "min_pixels", "max_pixels",
    "logging_steps", "save_steps", "eval_max_items", "eval_max_new_tokens",
)  # fmt: skip
NON_NEGATIVE_KEYS = (
    "num_train_epochs", "warmup_steps", "weight_decay", "max_grad_norm", "lora_dropout", "seed",
    "dataloader_num_workers", "save_total_limit", "vision_learning_rate", "merger_learning_rate",
    "eval_holdout", "max_train_samples", "eval_steps",
)  # fmt: skip


def check_ranges(*dataclass_objects) -> None:
    for obj in dataclass_objects:
        for name in POSITIVE_KEYS + NON_NEGATIVE_KEYS:
            value = getattr(obj, name, None)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if name in POSITIVE_KEYS and value <= 0:
                raise RecipeError(f"{name} must be greater than 0, not {value!r}")
            if value < 0:
                raise RecipeError(f"{name} must not be negative, not {value!r}")
    training_args = dataclass_objects[-1]
    if getattr(training_args, "max_steps", -1) not in (-1,) and training_args.max_steps <= 0:
        raise RecipeError(
            f"max_steps must be a positive number of steps (or -1 for epochs), not {training_args.max_steps}"
        )
    model_args = dataclass_objects[0]
    if getattr(model_args, "lora_dropout", 0) and model_args.lora_dropout >= 1:
        raise RecipeError(f"lora_dropout must be below 1, not {model_args.lora_dropout}")


#: report_to names -> the module that must be importable for it.
TRACKER_MODULES = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "trackio": ("trackio",),
    "mlflow": ("mlflow",),
    "comet_ml": ("comet_ml",),
    "clearml": ("clearml",),
    "swanlab": ("swanlab",),
    "neptune": ("neptune",),
    "codecarbon": ("codecarbon",),
    "dvclive": ("dvclive",),
}


def check_trackers(report_to) -> None:
    """A tracker named in ``report_to`` that is not installed is a one-line error at parse time
    (transformers would raise deep in ``Trainer.__init__``)."""
    import importlib.util

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    for name in names:
        if name in ("none", "all", None):
            continue
        modules = TRACKER_MODULES.get(name)
        if modules is None:
            raise RecipeError(
                f"report_to names an unknown tracker {name!r}; known: none, {', '.join(TRACKER_MODULES)}"
            )
        if not any(importlib.util.find_spec(m) is not None for m in modules):
            raise RecipeError(
                f"report_to names {name}, which is not installed: `pip install {modules[0]}` or set report_to: none"
            )
