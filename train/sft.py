"""Supervised fine-tuning from a recipe: the thin training script.

    python -m train.sft --config recipes/qwen2.5-vl-3b/qlora.yaml [--learning_rate 2e-5 ...]

Any recipe key can be overridden on the command line; unknown keys are errors. Running the same
command again after an interruption continues from the last *complete* checkpoint in
``output_dir`` (same global step, same data order). The output folder ends up holding the model
or adapter, the processor files and ``run_summary.json``; it loads with
``train.modeling.load_model_and_processor``. Multi-GPU runs go through ``python -m train.launch``.
"""

from __future__ import annotations

import collections
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from train.engines.preload import import_unsloth_first

if __name__ == "__main__":  # Unsloth's patches apply only if it is imported before transformers/trl/peft
    import_unsloth_first(sys.argv[1:])

from data_prep.output_lock import OutputLocked  # noqa: E402
from train.checkpoints import CheckpointLoadError  # noqa: E402
from train.config import (  # noqa: E402
    HmerTrainingArguments,
    ModelArguments,
    RecipeError,
    ScriptArguments,
    parse_recipe,
)
from train.modeling import ModelLoadError  # noqa: E402
from train.run_folder import RunMismatch  # noqa: E402

logger = logging.getLogger("train.sft")


def load_train_dataset(script_args: ScriptArguments):
    """The training split of the built dataset, optionally cut to ``max_train_samples`` rows."""
    from data_prep.dataset import load_split

    try:
        dataset = load_split(script_args.dataset_dir, script_args.train_split)
    except (FileNotFoundError, KeyError, RuntimeError, ValueError) as err:
        raise RecipeError(f"cannot load the training data: {err}") from err
    if script_args.train_tasks:
        dataset = select_tasks(dataset, script_args.train_tasks, script_args.train_split)
    if script_args.max_train_samples is not None:
        dataset = dataset.select(range(min(script_args.max_train_samples, len(dataset))))
    if len(dataset) == 0:
        raise RecipeError(f"split {script_args.train_split!r} of {script_args.dataset_dir} is empty")
    return dataset


def select_tasks(dataset, tasks: Sequence[str], split: str):
    """The rows of ``dataset`` whose task is in ``tasks``; a task unknown to the task table, or one
    the split has no rows of, is a recipe error (a misspelt name must not train on nothing)."""
    from data_prep.tasks.registry import task_names

    unknown = sorted(set(tasks) - set(task_names()))
    if unknown:
        raise RecipeError(f"train_tasks: unknown task(s) {unknown}; known: {', '.join(task_names())}")
    present = collections.Counter(dataset["task"])
    missing = sorted(t for t in set(tasks) if not present.get(t))
    if missing:
        have = ", ".join(f"{t} ({n})" for t, n in sorted(present.items()))
        raise RecipeError(f"train_tasks: split {split!r} has no rows of {missing}; it has {have}")
    wanted = set(tasks)
    kept = dataset.filter(lambda task: task in wanted, input_columns="task")
    logger.info(
        "training on the %s rows only: %d of %d rows", " + ".join(sorted(wanted)), len(kept), len(dataset)
    )
    return kept


def load_eval_dataset(script_args: ScriptArguments, train_dataset, seed: int):
    """``(train, eval)``: the validation rows the recipe asks for (None without validation keys)."""
    from data_prep.dataset import load_split
    from train.validation import holdout_split

    if script_args.eval_holdout is not None:
        train_dataset, eval_dataset = holdout_split(train_dataset, script_args.eval_holdout, seed)
        logger.info("validation: %d rows held out of the training split", len(eval_dataset))
        return train_dataset, eval_dataset
    if script_args.eval_split is None:
        return train_dataset, None
    try:
        eval_dataset = load_split(script_args.dataset_dir, script_args.eval_split)
    except (FileNotFoundError, KeyError, RuntimeError, ValueError) as err:
        raise RecipeError(f"cannot load the eval_split: {err}") from err
    return train_dataset, eval_dataset


def readable_rows(dataset, name: str = "training"):
    """``(dataset, items, skipped)``: rows whose image decodes, the ``{id, source, image_sha256}``
    record of each, and the number of rows left out because their image is unreadable.

    Every image is decoded once before the first step, so a corrupt one is a counted, reported
    skip instead of a crash at step 43 of 60, and the rows (hence the data order) are the same on
    every resume.
    """
    import datasets
    from tqdm import tqdm

    from data_prep.images import ImageError, decode_image
    from train.run_folder import image_sha256

    raw = dataset.cast_column("image", datasets.Image(decode=False)).select_columns(
        [c for c in ("id", "source", "image") if c in dataset.column_names]
    )
    verdicts: dict[str, bool] = {}
    keep, items, skipped = [], [], []
    for index, row in enumerate(tqdm(raw, desc=f"checking {name} images", unit="row", mininterval=2)):
        image = row["image"] or {}
        data = image.get("bytes")
        if data is None and image.get("path"):
            try:
                data = Path(image["path"]).read_bytes()
            except OSError:
                data = None
        digest = image_sha256(data) if data else None
        if digest is not None and digest not in verdicts:
            try:
                decode_image(data, row["id"])
                verdicts[digest] = True
            except ImageError as err:
                logger.warning("skipping %s row %s: %s", name, row["id"], err)
                verdicts[digest] = False
        if digest is None or not verdicts[digest]:
            if digest is None:
                logger.warning("skipping %s row %s: it has no image", name, row["id"])
            skipped.append(row["id"])
            continue
        keep.append(index)
        items.append({"id": row["id"], "source": row.get("source"), "image_sha256": digest})
    if skipped:
        logger.warning(
            "%d %s row(s) have an unreadable or missing image and are left out (first: %s)",
            len(skipped),
            name,
            ", ".join(map(str, skipped[:5])),
        )
        dataset = dataset.select(keep)
    return dataset, items, len(skipped)


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


def refuse_input_overlap(model_args: ModelArguments, script_args: ScriptArguments, training_args) -> None:
    """A :class:`RecipeError` when ``output_dir`` is, lies inside or contains the base model folder
    or the dataset: the run would overwrite the base weights or write model files among the shards.
    A hub id (no such local folder) cannot overlap."""
    from data_prep.path_guard import OutputOverlapsInput, refuse_overlap

    model = model_args.model_name_or_path
    inputs = {
        "base model": model if model and Path(model).exists() else None,
        "dataset": script_args.dataset_dir,
    }
    try:
        refuse_overlap(training_args.output_dir, inputs)
    except OutputOverlapsInput as err:
        raise RecipeError(str(err)) from None


def finished_summary(output_dir: Path) -> dict[str, Any] | None:
    from train.callbacks import RUN_SUMMARY

    path = output_dir / RUN_SUMMARY
    return json.loads(path.read_text()) if path.is_file() else None


def train(
    model_args: ModelArguments,
    script_args: ScriptArguments,
    training_args: HmerTrainingArguments,
    train_dataset=None,
    callbacks: Sequence[Any] = (),
    recipe: str | None = None,
) -> dict[str, Any]:
    """Fine-tune as the recipe says; returns the run summary (also written to the output folder).

    The run folder is checked first: other settings than the ones it started with are refused
    (:class:`train.run_folder.RunMismatch`); a finished run is not trained again.
    """
    from transformers import set_seed

    from data_prep.io_utils import write_text_atomic
    from train.callbacks import RUN_SUMMARY, RunSummaryCallback, SaveProcessorCallback
    from train.checkpoints import CheckpointCompleteCallback, finish_without_steps_past_max
    from train.curves import TrainingCurvesCallback
    from train.engines import get_build_trainer, select_engine
    from train.modeling import save_processor
    from train.run_folder import (
        check_rerun,
        dataset_fingerprints,
        resolved_recipe,
        write_recipe,
        write_training_items,
    )

    output_dir = Path(training_args.output_dir)
    main_process = training_args.process_index == 0
    refuse_input_overlap(model_args, script_args, training_args)
    settings = resolved_recipe(model_args, script_args, training_args)
    inputs = {
        "dataset": dataset_fingerprints(
            script_args.dataset_dir, (script_args.train_split, script_args.eval_split)
        )
    }
    known = check_rerun(output_dir, settings, inputs)
    done = finished_summary(output_dir) if known else None
    if done is not None:
        logger.info(
            "%s already holds a finished run (step %s, %s); nothing to do. Give a new --output_dir "
            "to train again",
            output_dir,
            done.get("global_step"),
            RUN_SUMMARY,
        )
        return {**done, "already_finished": True}
    if main_process and not known:
        logger.info("resolved recipe written to %s", write_recipe(output_dir, settings, inputs))

    set_seed(training_args.seed)
    engine, reason = select_engine(model_args, training_args)
    logger.info("engine: %s (%s)", engine, reason)
    if train_dataset is None:
        train_dataset = load_train_dataset(script_args)
    train_dataset, eval_dataset = load_eval_dataset(script_args, train_dataset, training_args.seed)
    train_dataset, items, unreadable = readable_rows(train_dataset)
    if len(train_dataset) == 0:
        raise RecipeError(f"no training row of {script_args.dataset_dir} has a readable image")
    if eval_dataset is not None:
        eval_dataset, _, eval_unreadable = readable_rows(eval_dataset, "validation")
    if main_process:
        write_training_items(output_dir, items)
    logger.info("training samples: %d from %s", len(train_dataset), script_args.dataset_dir)
    checkpoint = resume_checkpoint(script_args, training_args)
    if checkpoint:
        logger.info("resuming from %s", checkpoint)

    if eval_dataset is not None and engine != "trl":
        raise RecipeError(
            f"validation while training (eval_split/eval_holdout) runs on engine trl, not {engine}"
        )
    build_trainer = get_build_trainer(engine)
    extra = {"eval_dataset": eval_dataset} if eval_dataset is not None else {}
    trainer, processor = build_trainer(
        model_args, script_args, training_args, train_dataset, list(callbacks), **extra
    )
    finish_without_steps_past_max(trainer)  # a resume at max_steps trains no step max_steps + 1
    summary_callback = RunSummaryCallback(engine, recipe)
    # Order matters: the completeness marker is written after the processor files.
    trainer.add_callback(SaveProcessorCallback(processor))
    trainer.add_callback(CheckpointCompleteCallback())
    trainer.add_callback(TrainingCurvesCallback())
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

    trainer.save_model(str(output_dir))
    summary = dict(summary_callback.summary or {})
    summary["resumed_from"] = checkpoint
    skipped = dict(getattr(trainer.data_collator, "skipped", {}) or {})
    if unreadable:
        skipped["unreadable_image"] = skipped.get("unreadable_image", 0) + unreadable
    summary["skipped_samples"] = skipped
    summary["training_rows"] = len(train_dataset)
    if eval_dataset is not None:
        summary["validation"] = {
            "rows": len(trainer.eval_dataset),
            "unreadable_images": eval_unreadable,
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "best_metric": trainer.state.best_metric,
        }
    if trainer.is_world_process_zero():
        save_processor(processor, output_dir)
        # Written last: its presence says the final model and processor are complete.
        write_text_atomic(output_dir / RUN_SUMMARY, json.dumps(summary, indent=2) + "\n")
        logger.info("model and processor saved to %s; summary in %s", output_dir, output_dir / RUN_SUMMARY)
    return summary


def training_lock(training_args: HmerTrainingArguments):
    """The output folder's exclusive lock (:mod:`data_prep.output_lock`), on the main process only:
    the other ranks of a multi-process run write nothing on their own."""
    import contextlib

    from data_prep.output_lock import output_lock

    if training_args.process_index != 0:
        return contextlib.nullcontext()
    return output_lock(training_args.output_dir, what="training")


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
        refuse_input_overlap(model_args, script_args, training_args)  # before the lock writes beside it
        with training_lock(training_args):
            summary = train(model_args, script_args, training_args, recipe=recipe)
    except (RecipeError, RunMismatch, CheckpointLoadError, OutputLocked) as err:
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
    if summary.get("already_finished"):
        return 0
    logger.info(
        "done: %s steps, final loss %s, %.2f samples/s",
        summary.get("global_step"),
        summary.get("final_loss"),
        summary.get("train_samples_per_second") or 0.0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
