"""Supervised fine-tuning from a recipe: the thin training script.

    python -m train.sft --config recipes/qwen2.5-vl-3b/qlora.yaml [--learning_rate 2e-5 ...]

Any recipe key can be overridden on the command line; unknown keys are errors. Running the same
command again after an interruption continues from the last *complete* checkpoint in
``output_dir`` (same global step, same data order). The output folder ends up holding the model
or adapter, the processor files and ``run_summary.json``; it loads with
``train.modeling.load_model_and_processor``. Multi-GPU runs go through ``python -m train.launch``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from train.engines.preload import import_unsloth_first

if __name__ == "__main__":  # Unsloth's patches apply only if it is imported before transformers/trl/peft
    import_unsloth_first(sys.argv[1:])

from train.config import (  # noqa: E402
    HmerTrainingArguments,
    ModelArguments,
    RecipeError,
    ScriptArguments,
    parse_recipe,
)
from train.modeling import ModelLoadError  # noqa: E402

logger = logging.getLogger("train.sft")


def load_train_dataset(script_args: ScriptArguments):
    """The training split of the built dataset, optionally cut to ``max_train_samples`` rows."""
    from data_prep.dataset import load_split

    try:
        dataset = load_split(script_args.dataset_dir, script_args.train_split)
    except (FileNotFoundError, KeyError, RuntimeError) as err:
        raise RecipeError(f"cannot load the training data: {err}") from err
    if script_args.max_train_samples is not None:
        dataset = dataset.select(range(min(script_args.max_train_samples, len(dataset))))
    if len(dataset) == 0:
        raise RecipeError(f"split {script_args.train_split!r} of {script_args.dataset_dir} is empty")
    return dataset


def resume_checkpoint(script_args: ScriptArguments, training_args: HmerTrainingArguments) -> str | None:
    """The checkpoint to resume from: the one named by ``resume_from_checkpoint``, else the newest
    complete one in ``output_dir`` (with ``auto_resume``), else None."""
    from train.checkpoints import is_complete, last_complete_checkpoint

    if training_args.resume_from_checkpoint:
        path = Path(training_args.resume_from_checkpoint)
        if not is_complete(path):
            raise RecipeError(f"resume_from_checkpoint {path} is not a complete checkpoint")
        return str(path)
    if not script_args.auto_resume:
        return None
    # The main process sets incomplete folders aside first; the others then see a clean folder.
    with training_args.main_process_first(local=False, desc="finding the last complete checkpoint"):
        found = last_complete_checkpoint(
            training_args.output_dir, set_aside_incomplete=training_args.process_index == 0
        )
    return str(found) if found else None


def train(
    model_args: ModelArguments,
    script_args: ScriptArguments,
    training_args: HmerTrainingArguments,
    train_dataset=None,
    callbacks: Sequence[Any] = (),
    recipe: str | None = None,
) -> dict[str, Any]:
    """Fine-tune as the recipe says; returns the run summary (also written to the output folder)."""
    from transformers import set_seed

    from data_prep.io_utils import write_text_atomic
    from train.callbacks import RUN_SUMMARY, RunSummaryCallback, SaveProcessorCallback
    from train.checkpoints import CheckpointCompleteCallback
    from train.engines import get_build_trainer, select_engine
    from train.modeling import save_processor

    set_seed(training_args.seed)
    engine, reason = select_engine(model_args, training_args)
    logger.info("engine: %s (%s)", engine, reason)
    if train_dataset is None:
        train_dataset = load_train_dataset(script_args)
    logger.info("training samples: %d from %s", len(train_dataset), script_args.dataset_dir)
    checkpoint = resume_checkpoint(script_args, training_args)
    if checkpoint:
        logger.info("resuming from %s", checkpoint)

    build_trainer = get_build_trainer(engine)
    trainer, processor = build_trainer(model_args, script_args, training_args, train_dataset, list(callbacks))
    summary_callback = RunSummaryCallback(engine, recipe)
    # Order matters: the completeness marker is written after the processor files.
    trainer.add_callback(SaveProcessorCallback(processor))
    trainer.add_callback(CheckpointCompleteCallback())
    trainer.add_callback(summary_callback)
    world = training_args.world_size
    logger.info(
        "global batch: %d = %d per device x %d processes x %d accumulation steps",
        training_args.per_device_train_batch_size * world * training_args.gradient_accumulation_steps,
        training_args.per_device_train_batch_size,
        world,
        training_args.gradient_accumulation_steps,
    )
    trainer.train(resume_from_checkpoint=checkpoint)

    output_dir = Path(training_args.output_dir)
    trainer.save_model(str(output_dir))
    summary = dict(summary_callback.summary or {})
    summary["resumed_from"] = checkpoint
    summary["skipped_samples"] = dict(getattr(trainer.data_collator, "skipped", {}) or {})
    if trainer.is_world_process_zero():
        save_processor(processor, output_dir)
        # Written last: its presence says the final model and processor are complete.
        write_text_atomic(output_dir / RUN_SUMMARY, json.dumps(summary, indent=2) + "\n")
        logger.info("model and processor saved to %s; summary in %s", output_dir, output_dir / RUN_SUMMARY)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        model_args, script_args, training_args = parse_recipe(argv)
    except (RecipeError, ValueError) as err:
        logger.error("%s", err)
        return 2
    recipe = argv[argv.index("--config") + 1] if "--config" in argv else None
    try:
        summary = train(model_args, script_args, training_args, recipe=recipe)
    except RecipeError as err:
        logger.error("%s", err)
        return 2
    except ModelLoadError as err:
        logger.error("%s", err)
        return 2
    except KeyboardInterrupt:
        from train.checkpoints import last_complete_checkpoint

        last = last_complete_checkpoint(training_args.output_dir, set_aside_incomplete=False)
        where = f"the last complete checkpoint is {last}" if last else "no checkpoint was complete yet"
        logger.error("interrupted: %s; run the same command again to resume", where)
        return 130
    logger.info(
        "done: %s steps, final loss %s, %.2f samples/s",
        summary.get("global_step"),
        summary.get("final_loss"),
        summary.get("train_samples_per_second") or 0.0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
