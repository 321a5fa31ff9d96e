"""The three stages of one fold: its training data, its model, its held-out predictions.

Each stage ends by writing its marker (:mod:`eval.mining.layout`); a finished stage is skipped.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_prep.contract import TASK_MAIN, prompt_for
from data_prep.io_utils import write_json_atomic
from eval.backends import Backend, BackendOptions, open_backend
from eval.mining.folds import assign_folds, base_id, write_subset
from eval.mining.layout import (
    FOLDS_FILE,
    GREEDY,
    PREDICTIONS_FILE,
    MiningArgs,
    MiningError,
    fold_dir,
    mark_done,
    stage_done,
)
from eval.predict_sets import generate_safely, sample_safely
from eval.scoring.items import Item, decode_item, items_from_dataset
from eval.scoring.predictions import PredictionWriter, make_row

logger = logging.getLogger("eval.mining")


@dataclasses.dataclass
class TrainingSet:
    """The loaded training split and where its rows go."""

    dataset: Any
    main_index: dict[str, int]  # main id -> row
    sources: dict[str, str]  # main id -> source
    aux: list[tuple[int, str]]  # (row, base main id) of auxiliary rows
    assignment: dict[str, int]  # main id -> fold

    def held_out(self, fold: int) -> list[str]:
        return [record_id for record_id, k in self.assignment.items() if k == fold]

    def train_rows(self, fold: int, include_aux: bool) -> list[int]:
        rows = [self.main_index[i] for i, k in self.assignment.items() if k != fold]
        if include_aux:
            rows += [
                row for row, base in self.aux if base in self.assignment and self.assignment[base] != fold
            ]
        return sorted(rows)


def load_training_set(args: MiningArgs, out: Path, seed: int) -> TrainingSet:
    """The training split's main-task records dealt into folds by ``seed``."""
    from data_prep.dataset import load_split

    try:
        dataset = load_split(args.data_dir, args.train_split)
    except (FileNotFoundError, KeyError, RuntimeError) as err:
        raise MiningError(f"cannot load the training data: {err}") from err
    columns = dataset.select_columns(["id", "task", "source"]).to_dict()
    main_index: dict[str, int] = {}
    sources: dict[str, str] = {}
    aux: list[tuple[int, str]] = []
    for row, (record_id, task, source) in enumerate(zip(columns["id"], columns["task"], columns["source"])):
        if task != TASK_MAIN:
            aux.append((row, base_id(record_id, task)))
        elif args.limit is None or len(main_index) < args.limit:
            if record_id in main_index:
                raise MiningError(
                    f"{args.data_dir}: main-task id {record_id!r} repeats in split {args.train_split!r}"
                )
            main_index[record_id] = row
            sources[record_id] = source
    try:
        assignment = assign_folds(list(main_index), args.folds, seed)
    except ValueError as err:
        raise MiningError(f"{args.data_dir}: {err}") from err
    path = out / FOLDS_FILE
    if path.is_file():
        if json.loads(path.read_text(encoding="utf-8"))["assignment"] != assignment:
            raise MiningError(
                f"the records of {args.data_dir} changed since {path} was written; mine into a new --output-dir"
            )
    else:
        write_json_atomic(path, {"folds": args.folds, "seed": seed, "assignment": assignment}, indent=None)
    sizes = [sum(1 for k in assignment.values() if k == fold) for fold in range(args.folds)]
    logger.info(
        "%d main-task records (%d auxiliary rows) in %d folds of %s",
        len(main_index),
        len(aux),
        args.folds,
        "/".join(map(str, sizes)),
    )
    return TrainingSet(dataset, main_index, sources, aux, assignment)


def stage_data(args: MiningArgs, out: Path, fold: int, data: TrainingSet) -> Path:
    data_dir = fold_dir(out, fold) / "data"
    if stage_done(out, fold, "data"):
        logger.info("fold %d: training data already written (%s), skipping", fold, data_dir)
        return data_dir
    rows = data.train_rows(fold, args.include_aux_tasks)
    logger.info(
        "fold %d: writing its training data (%d rows, the other folds) to %s", fold, len(rows), data_dir
    )
    info = {"mined_from": str(Path(args.data_dir).resolve()), "fold": fold, "folds": args.folds}
    write_subset(data.dataset, rows, data_dir, "train", info)
    mark_done(out, fold, "data", {"train_rows": len(rows), "held_out": len(data.held_out(fold))})
    return data_dir


def training_command(args: MiningArgs, data_dir: Path, model_dir: Path) -> tuple[list[str], bool]:
    """``(command, in_process)`` as ``train.launch`` plans it for this machine's GPUs."""
    from train.launch import parse_args, plan_command, visible_gpus

    sft_args = ["--dataset_dir", str(data_dir), "--output_dir", str(model_dir), *args.train_overrides]
    launch, _ = parse_args(["--config", args.train_recipe])
    try:
        command, in_process = plan_command(args.train_recipe, sft_args, visible_gpus(), launch)
    except SystemExit as err:  # train.launch's way of refusing a plan
        raise MiningError(str(err)) from err
    return command, in_process and not args.train_subprocess


def stage_train(args: MiningArgs, out: Path, fold: int, data_dir: Path) -> Path:
    from train.callbacks import RUN_SUMMARY

    model_dir = fold_dir(out, fold) / "model"
    if stage_done(out, fold, "train"):
        logger.info("fold %d: model already trained (%s), skipping", fold, model_dir)
        return model_dir
    command, in_process = training_command(args, data_dir, model_dir)
    logger.info(
        "fold %d: training (%s): %s",
        fold,
        "in this process" if in_process else "child process",
        shlex.join(command),
    )
    started = time.perf_counter()
    if in_process:
        from train.sft import main as sft_main

        # command = [python, -m, train.sft, --config, RECIPE, ...]
        code = sft_main(command[3:])
        free_memory()
    else:
        code = subprocess.run(command, check=False).returncode
    if code != 0:
        raise MiningError(
            f"fold {fold}: training failed (exit code {code}); rerun to resume from its last checkpoint"
        )
    summary_path = model_dir / RUN_SUMMARY
    if not summary_path.is_file():
        raise MiningError(f"fold {fold}: training ended without {summary_path}; the model is incomplete")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    mark_done(
        out,
        fold,
        "train",
        {
            "seconds": round(time.perf_counter() - started, 1),
            "global_step": summary.get("global_step"),
            "command": command,
        },
    )
    return model_dir


def free_memory() -> None:
    """Release what an in-process training run left behind before the inference model loads."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def predict_items(
    backend: Backend, items: Sequence[Item], writer: PredictionWriter, args: MiningArgs, desc: str
) -> int:
    """Greedy and sampled predictions for the items' missing rows; returns the rows written."""
    from tqdm.auto import tqdm

    kinds = args.kinds()
    done = {kind: writer.done_ids(kind) for kind in kinds}
    pending = [item for item in items if any(item.id not in done[kind] for kind in kinds)]
    prompt = prompt_for(TASK_MAIN)
    written = 0
    bar = tqdm(total=len(pending), desc=desc, unit="img", disable=not args.progress)
    for start in range(0, len(pending), backend.chunk_size):
        chunk = [decode_item(item) for item in pending[start : start + backend.chunk_size]]
        ok = [item for item in chunk if item.image is not None]
        greedy_todo = [item for item in ok if item.id not in done[GREEDY]]
        outputs: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        for item, result in zip(
            greedy_todo, generate_safely(backend, [i.image for i in greedy_todo], [prompt] * len(greedy_todo))
        ):
            outputs[(GREEDY, item.id)] = result
        sample_todo = [item for item in ok if any(item.id not in done[kind] for kind in kinds[1:])]
        if sample_todo and args.samples:
            sampled = sample_safely(
                backend,
                [i.image for i in sample_todo],
                [prompt] * len(sample_todo),
                args.samples,
                args.temperature,
                args.top_p,
            )
            for item, results in zip(sample_todo, sampled):
                for kind, result in zip(kinds[1:], results):
                    outputs[(kind, item.id)] = result
        for item in chunk:
            for kind in kinds:
                if item.id in done[kind]:
                    continue
                raw, error = outputs.get((kind, item.id), (None, item.error))
                writer.write(make_row(item.id, kind, item.gt, raw, image_path=item.image_path, error=error))
                done[kind].add(item.id)
                written += 1
            item.image = None
        bar.update(len(chunk))
    bar.close()
    return written


def stage_predict(
    args: MiningArgs, options: BackendOptions, out: Path, fold: int, model_dir: Path, data: TrainingSet
) -> Path:
    path = fold_dir(out, fold) / PREDICTIONS_FILE
    if stage_done(out, fold, "predict"):
        logger.info("fold %d: held-out fold already predicted (%s), skipping", fold, path)
        return path
    held_out = data.held_out(fold)
    items = items_from_dataset(data.dataset.select(sorted(data.main_index[i] for i in held_out)))
    started = time.perf_counter()
    with PredictionWriter(path) as writer:
        kinds = args.kinds()
        missing = sum(1 for item in items for kind in kinds if item.id not in writer.done_ids(kind))
        if missing:
            logger.info(
                "fold %d: predicting %d held-out images (greedy + %d samples; %d rows to write) with %s",
                fold,
                len(items),
                args.samples,
                missing,
                model_dir,
            )
            backend = open_backend(dataclasses.replace(options, seed=options.seed + fold), str(model_dir))
            try:
                predict_items(backend, items, writer, args, f"fold {fold}")
            finally:
                backend.close()
                free_memory()
    mark_done(
        out, fold, "predict", {"images": len(items), "seconds": round(time.perf_counter() - started, 1)}
    )
    return path
