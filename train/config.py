"""Training recipes: flat YAML files parsed into three dataclasses, every key overridable.

A recipe (``recipes/<model>/<method>.yaml``) is one flat mapping, as in alignment-handbook: model
keys (:class:`ModelArguments`), data/run keys (:class:`ScriptArguments`) and any
``transformers.TrainingArguments`` key (:class:`HmerTrainingArguments`). TRL's ``TrlParser`` reads
it, so ``--learning_rate 2e-5`` on the command line overrides the file, and an unknown key in either
place is an error that names it.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from transformers import TrainingArguments

from data_prep.contract import MAX_PIXELS, MIN_PIXELS, ImageBounds
from train.recipe_checks import RecipeError, check_ranges, check_trackers, check_types

#: LoRA on the *language model's* attention and MLP projections only. The vision blocks have modules
#: with the same short names (``model.visual.blocks.N.mlp.gate_proj``), so a bare name list would
#: adapt them too; peft full-matches this regex against each module's dotted name.
LANGUAGE_LORA_TARGET = r".*language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"

ENGINES = ("auto", "trl", "unsloth")
DTYPES = ("auto", "bfloat16", "float16", "float32")


@dataclasses.dataclass
class ModelArguments:
    """Which model to load and which of its parameters train."""

    model_name_or_path: str = dataclasses.field(
        default=None, metadata={"help": "Hub id or local model folder (e.g. Qwen/Qwen2.5-VL-3B-Instruct)."}
    )
    dtype: str = dataclasses.field(
        default="bfloat16", metadata={"help": f"Weights dtype: {', '.join(DTYPES)}."}
    )
    attn_implementation: str | None = dataclasses.field(
        default=None, metadata={"help": "sdpa, flash_attention_2, eager; default: transformers' choice."}
    )
    engine: str = dataclasses.field(
        default="auto",
        metadata={
            "help": "auto (Unsloth when importable and a CUDA GPU is present, else trl), trl, unsloth."
        },
    )
    load_in_4bit: bool = dataclasses.field(
        default=False,
        metadata={"help": "QLoRA: NF4 base weights; vision tower and lm_head stay unquantised."},
    )
    use_peft: bool = dataclasses.field(
        default=False, metadata={"help": "Train LoRA adapters, not the full model."}
    )
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str = dataclasses.field(
        default=LANGUAGE_LORA_TARGET,
        metadata={
            "help": "Regex full-matched against module names (default: language model attention + MLP)."
        },
    )
    freeze_vision_tower: bool = dataclasses.field(
        default=False, metadata={"help": "Freeze the vision blocks and patch embedding (not the merger)."}
    )
    freeze_merger: bool = dataclasses.field(
        default=False, metadata={"help": "Freeze the vision-to-language merger (projector)."}
    )
    vision_learning_rate: float | None = dataclasses.field(
        default=None, metadata={"help": "Learning rate of the vision tower (default: learning_rate)."}
    )
    merger_learning_rate: float | None = dataclasses.field(
        default=None, metadata={"help": "Learning rate of the merger (default: learning_rate)."}
    )


@dataclasses.dataclass
class ScriptArguments:
    """What to train on and how the run is launched."""

    dataset_dir: str = dataclasses.field(
        default=None, metadata={"help": "A dataset built by `make data` (data_prep.build)."}
    )
    train_split: str = "train"
    max_train_samples: int | None = dataclasses.field(
        default=None, metadata={"help": "Use only the first N training samples (smoke runs)."}
    )
    train_tasks: list[str] | None = dataclasses.field(
        default=None,
        metadata={
            "help": "Train only on rows of these tasks (names from data_prep.tasks.registry, e.g. "
            "main tree_cot); default: every row of the split. One build then serves several task "
            "mixtures with the same main-task rows (benchmarks.ablation_mini)."
        },
    )
    max_length: int = dataclasses.field(
        default=2048,
        metadata={"help": "Token cutoff; longer samples are skipped and counted, never truncated."},
    )
    min_pixels: int = MIN_PIXELS
    max_pixels: int = dataclasses.field(
        default=MAX_PIXELS,
        metadata={"help": "Image cap (contract: 262,144 px); evaluation must use the same."},
    )
    label_final_newline: bool = dataclasses.field(
        default=True,
        metadata={
            "help": "Train on the newline after <|im_end|>, as LLaMA-Factory's qwen2_vl template (the "
            "reference) and the Unsloth engine do; false stops the labels at <|im_end|> (before 2026-12)."
        },
    )
    accelerate_config: str | None = dataclasses.field(
        default=None,
        metadata={"help": "accelerate config used by train.launch on GPUs (recipes/accelerate_configs)."},
    )
    auto_resume: bool = dataclasses.field(
        default=True, metadata={"help": "Continue from the last complete checkpoint in output_dir."}
    )
    eval_split: str | None = dataclasses.field(
        default=None,
        metadata={"help": "Validation while training: a split of dataset_dir (e.g. a test set: crohme2014)."},
    )
    eval_holdout: float | None = dataclasses.field(
        default=None,
        metadata={
            "help": "Validation on a held-out part of the training split: a fraction (< 1) or a number of "
            "images; all task rows of a held-out image leave training."
        },
    )
    eval_max_items: int = dataclasses.field(
        default=64, metadata={"help": "Main-task items decoded (greedy) for the validation ExpRate."}
    )
    eval_max_new_tokens: int = dataclasses.field(
        default=256, metadata={"help": "Token limit of the validation generations."}
    )

    @property
    def bounds(self) -> ImageBounds:
        return ImageBounds(min_pixels=self.min_pixels, max_pixels=self.max_pixels)


@dataclasses.dataclass
class HmerTrainingArguments(TrainingArguments):
    """``transformers.TrainingArguments`` with this project's defaults."""

    output_dir: str | None = dataclasses.field(default=None, metadata={"help": "Where checkpoints go."})
    # Our collator needs the raw columns (image, prompt, answer).
    remove_unused_columns: bool = False
    report_to: None | str | list[str] = "tensorboard"
    logging_steps: float = 10
    save_steps: float = 500
    save_total_limit: int | None = 3
    include_num_input_tokens_seen: str = "non_padding"
    gradient_checkpointing_kwargs: dict | str | None = dataclasses.field(
        default_factory=lambda: {"use_reentrant": False}
    )


RECIPE_DATACLASSES = (ModelArguments, ScriptArguments, HmerTrainingArguments)


class _RecipeParser:
    """TRL's parser whose errors are :class:`RecipeError` (one line) instead of argparse's usage
    dump and exit."""

    @staticmethod
    def build():
        from trl import TrlParser

        class Parser(TrlParser):
            def error(self, message):  # argparse calls this for a bad value or a bad flag
                raise RecipeError(_one_line(message))

        return Parser(RECIPE_DATACLASSES)


def _one_line(message: str) -> str:
    """argparse's ``argument --max_steps/--max-steps: invalid int value: 'ten'`` as
    ``--max_steps: invalid int value: 'ten'``; other messages as they are."""
    if message.startswith("argument ") and ": " in message:
        flags, reason = message[len("argument ") :].split(": ", 1)
        return f"{flags.split('/')[0]}: {reason}"
    return message


#: A bf16/fp16 recipe without a CUDA GPU, instead of transformers' "You need to assign use_cpu".
NO_GPU_MESSAGE = (
    "this recipe trains in bf16/fp16 on a CUDA GPU and this machine has none; on a CPU use a tiny "
    "recipe: make tiny-model && make data DATA_RECIPE=recipes/data/crohme_sample.yaml && "
    "make finetune RECIPE=recipes/tiny/qlora.yaml (or recipes/tiny/lora.yaml, recipes/tiny/full.yaml)"
)


def load_recipe_file(path: str | Path) -> dict:
    """A recipe file as a mapping, without the ``run_info`` record a run folder's copy carries."""
    from data_prep.recipe_file import RecipeFileError, read_recipe_mapping
    from train.run_folder import INPUTS_KEY, RUN_INFO_KEY

    try:
        data = read_recipe_mapping(path)
    except RecipeFileError as err:
        raise RecipeError(str(err)) from None
    if not data:
        raise RecipeError(f"recipe {path} is empty: it must be a YAML mapping of keys to values")
    data.pop(RUN_INFO_KEY, None)
    data.pop(INPUTS_KEY, None)
    return data


def parse_recipe(
    argv: Sequence[str] | None = None,
) -> tuple[ModelArguments, ScriptArguments, HmerTrainingArguments]:
    """Parse ``--config RECIPE [--key value ...]`` into the three dataclasses and validate them."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _RecipeParser.build()
    if "--config" in args:
        i = args.index("--config")
        if i + 1 >= len(args):
            raise RecipeError("--config needs a recipe file")
        config = load_recipe_file(args[i + 1])
        del args[i : i + 2]
        unknown = parser.set_defaults_with_config(**config)
        if unknown:
            names = ", ".join(sorted({u[2:] for u in unknown[::2]}))
            raise RecipeError(f"unknown recipe key(s): {names}")
    try:
        model_args, script_args, training_args = parser.parse_args_into_dataclasses(args=args)
    except ValueError as err:
        if "use_cpu" in str(err):  # transformers: bf16/fp16 asked for on a machine without a GPU
            raise RecipeError(NO_GPU_MESSAGE) from err
        raise RecipeError(str(err).splitlines()[0]) from err
    validate(model_args, script_args, training_args)
    return model_args, script_args, training_args


def validate(
    model_args: ModelArguments, script_args: ScriptArguments, training_args: TrainingArguments
) -> None:
    """Refuse combinations that cannot train, naming the key."""
    check_types(model_args, script_args, training_args)
    check_ranges(model_args, script_args, training_args)
    check_trackers(training_args.report_to)
    if not model_args.model_name_or_path:
        raise RecipeError("model_name_or_path is required")
    if not script_args.dataset_dir:
        raise RecipeError("dataset_dir is required (a dataset folder built by `make data`)")
    if not training_args.output_dir:
        raise RecipeError("output_dir is required")
    if model_args.engine not in ENGINES:
        raise RecipeError(f"engine must be one of {', '.join(ENGINES)}, not {model_args.engine!r}")
    if model_args.dtype not in DTYPES:
        raise RecipeError(f"dtype must be one of {', '.join(DTYPES)}, not {model_args.dtype!r}")
    if model_args.load_in_4bit and not model_args.use_peft:
        raise RecipeError(
            "load_in_4bit (QLoRA) needs use_peft: true: 4-bit weights cannot be trained directly"
        )
    if model_args.use_peft:
        try:
            re.compile(model_args.lora_target_modules)
        except re.error as err:
            raise RecipeError(f"lora_target_modules is not a valid regex: {err}") from err
        if model_args.vision_learning_rate is not None and model_args.freeze_vision_tower is False:
            # LoRA targets the language model only; a vision rate would silently do nothing.
            if "visual" not in model_args.lora_target_modules:
                raise RecipeError(
                    "vision_learning_rate with use_peft needs lora_target_modules covering 'visual'"
                )
    if model_args.freeze_vision_tower and model_args.vision_learning_rate is not None:
        raise RecipeError("vision_learning_rate is set but freeze_vision_tower is true")
    if model_args.freeze_merger and model_args.merger_learning_rate is not None:
        raise RecipeError("merger_learning_rate is set but freeze_merger is true")
    validate_eval(script_args, training_args)
    if script_args.max_length < 64:
        raise RecipeError(f"max_length {script_args.max_length} is too small for an image prompt")
    script_args.bounds  # noqa: B018 -- raises ValueError on impossible pixel bounds
    if script_args.accelerate_config and not Path(script_args.accelerate_config).is_file():
        raise RecipeError(f"accelerate_config {script_args.accelerate_config} not found")


def validate_eval(script_args: ScriptArguments, training_args: TrainingArguments) -> None:
    """Validation keys agree: an eval split and an eval schedule come together."""
    strategy = str(getattr(training_args.eval_strategy, "value", training_args.eval_strategy))
    has_eval = script_args.eval_split is not None or script_args.eval_holdout is not None
    if script_args.eval_split is not None and script_args.eval_holdout is not None:
        raise RecipeError("set eval_split (a named split) or eval_holdout (part of train), not both")
    if strategy != "no" and not has_eval:
        raise RecipeError(
            f"eval_strategy {strategy} needs validation data: set eval_split (e.g. crohme2014) or eval_holdout (e.g. 0.05)"
        )
    if has_eval and strategy == "no":
        raise RecipeError(
            "eval_split/eval_holdout is set but eval_strategy is no: set eval_strategy: steps and eval_steps: N"
        )
    best = training_args.metric_for_best_model
    if (
        training_args.load_best_model_at_end
        and best
        and best.removeprefix("eval_") not in ("loss", "exprate")
    ):
        raise RecipeError(f"metric_for_best_model must be loss or exprate, not {best!r}")


def global_batch_size(training_args: TrainingArguments, num_processes: int) -> int:
    """per_device_train_batch_size x processes x gradient_accumulation_steps."""
    return (
        training_args.per_device_train_batch_size * num_processes * training_args.gradient_accumulation_steps
    )
