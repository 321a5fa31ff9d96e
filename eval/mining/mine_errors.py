"""Mine a model's own mistakes by k-fold cross-prediction (error-driven learning data).

    python -m eval.mine_errors --data-dir outputs/data/crohme --train-recipe recipes/qwen2.5-vl-3b/lora.yaml \
        --output-dir outputs/mining/crohme [--folds 3] [--samples 4] [--temperature 0.7] [--top-p 0.9]
        [--backend auto|hf|vllm] [--batch-size 8] [--max-new-tokens 256] [--seed 0] [--limit N]
        [--include-aux-tasks] [--only-folds 0,2] [--train-overrides="--max_steps 5 ..."] [-- --key value ...]

The main-task records of the built dataset's training split are dealt into k folds
(:mod:`eval.mining.folds`). For each fold, three stages, each finished by an atomically written marker
``OUT/fold-K/<stage>.done.json`` so a re-run skips it:

``data``     the other k-1 folds written as a built dataset ``OUT/fold-K/data`` (main task only
             unless ``--include-aux-tasks``; auxiliary rows follow their main record's fold);
``train``    ``train.sft`` with the training recipe on that dataset into ``OUT/fold-K/model`` (in this
             process on a CPU or one GPU; through ``accelerate launch`` as ``python -m train.launch``
             plans it when the recipe has an accelerate config and several GPUs are visible). An
             interrupted run resumes from the trainer's last complete checkpoint;
``predict``  the held-out fold, greedy and ``--samples`` sampled answers per image, appended row by
             row to ``OUT/fold-K/predictions.jsonl`` (:mod:`eval.scoring.predictions` format, ``set`` =
             ``greedy`` or ``sample-J``); an interrupted run continues with the missing rows.

Then, from every finished fold (recomputed on each run): ``OUT/mined_predictions.jsonl`` (one row
per distinct wrong prediction per id, with its fold and kinds; readable by
:func:`data_prep.tasks.error_driven.read_predictions`, i.e. usable under ``predictions:`` in a data
recipe), ``OUT/mining_report.json`` and ``OUT/confusions.json`` (a learned
:class:`data_prep.tasks.error_driven.confusions.ConfusionTable`).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_prep.contract import TASK_MAIN, prompt_for
from data_prep.io_utils import write_json_atomic, write_text_atomic
from eval.backends import BACKENDS, Backend, get_backend
from eval.evaluate import Item, decode_item, generate_safely, items_from_dataset
from eval.mining.folds import assign_folds, base_id, write_subset
from eval.scoring.metrics import percent
from eval.scoring.predictions import ERROR_GENERATION_FAILED, PredictionWriter, make_row, read_prediction_rows

logger = logging.getLogger("eval.mining.mine_errors")

CONFIG_FILE = "mining_config.json"
FOLDS_FILE = "folds.json"
MINED_FILE = "mined_predictions.jsonl"
REPORT_FILE = "mining_report.json"
CONFUSIONS_FILE = "confusions.json"
PREDICTIONS_FILE = "predictions.jsonl"
STAGES = ("data", "train", "predict")
GREEDY = "greedy"
#: Settings that decide which records land in which fold: a re-run must not change them.
SPLIT_SETTINGS = ("data_dir", "train_split", "folds", "seed", "limit", "include_aux_tasks")
#: Overrides the mining command sets itself for every fold.
RESERVED_OVERRIDES = ("--dataset_dir", "--output_dir", "--train_split", "--config")


class MiningError(RuntimeError):
    """The mining run cannot go on; the message says why and what to do."""


@dataclasses.dataclass
class MiningArgs:
    data_dir: str
    train_recipe: str
    output_dir: str
    folds: int = 3
    samples: int = 4
    temperature: float = 0.7
    top_p: float = 0.9
    backend: str = "auto"
    batch_size: int = 8
    max_new_tokens: int = 256
    dtype: str = "auto"
    tp: int = 1
    dp: int = 1
    seed: int = 0
    limit: int | None = None
    train_split: str = "train"
    include_aux_tasks: bool = False
    #: Extra ``train.sft`` arguments (``--key value`` pairs), applied to every fold.
    train_overrides: list[str] = dataclasses.field(default_factory=list)
    #: Run only these folds (e.g. one per machine); None = all.
    only_folds: list[int] | None = None
    #: Train in a child process even when train.launch would run it in this one (frees GPU memory).
    train_subprocess: bool = False
    progress: bool = True

    def kinds(self) -> list[str]:
        return [GREEDY] + [f"sample-{j}" for j in range(1, self.samples + 1)]


# --------------------------------------------------------------------------- #
# Stage bookkeeping
# --------------------------------------------------------------------------- #


def fold_dir(out: Path, fold: int) -> Path:
    return out / f"fold-{fold}"


def marker_path(out: Path, fold: int, stage: str) -> Path:
    return fold_dir(out, fold) / f"{stage}.done.json"


def stage_done(out: Path, fold: int, stage: str) -> dict[str, Any] | None:
    """The stage's marker contents, or None when the stage has not finished."""
    path = marker_path(out, fold, stage)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def mark_done(out: Path, fold: int, stage: str, info: dict[str, Any]) -> None:
    write_json_atomic(
        marker_path(out, fold, stage), {"stage": stage, "fold": fold, "finished": time.time(), **info}
    )


def check_config(args: MiningArgs, out: Path) -> None:
    """Record the run's settings; refuse a re-run whose fold-deciding settings differ."""
    config = dataclasses.asdict(args)
    config["data_dir"] = str(Path(args.data_dir).resolve())
    path = out / CONFIG_FILE
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        changed = [key for key in SPLIT_SETTINGS if saved.get(key) != config[key]]
        if changed:
            detail = ", ".join(f"{key}: {saved.get(key)!r} -> {config[key]!r}" for key in changed)
            raise MiningError(
                f"{out} was mined with other fold settings ({detail}); use a new --output-dir or the same settings"
            )
        later = [
            k
            for k in ("train_recipe", "train_overrides", "samples", "temperature", "top_p")
            if saved.get(k) != config[k]
        ]
        if later:
            logger.warning(
                "settings changed since the first run (%s): finished stages are kept as they are",
                ", ".join(later),
            )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, config)


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #


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


def load_training_set(args: MiningArgs, out: Path) -> TrainingSet:
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
        assignment = assign_folds(list(main_index), args.folds, args.seed)
    except ValueError as err:
        raise MiningError(f"{args.data_dir}: {err}") from err
    path = out / FOLDS_FILE
    if path.is_file():
        if json.loads(path.read_text(encoding="utf-8"))["assignment"] != assignment:
            raise MiningError(
                f"the records of {args.data_dir} changed since {path} was written; mine into a new --output-dir"
            )
    else:
        write_json_atomic(
            path, {"folds": args.folds, "seed": args.seed, "assignment": assignment}, indent=None
        )
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


# --------------------------------------------------------------------------- #
# Training
# --------------------------------------------------------------------------- #


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


# --------------------------------------------------------------------------- #
# Prediction
# --------------------------------------------------------------------------- #


def sample_safely(
    backend: Backend, images: list, prompts: list[str], n: int, temperature: float, top_p: float
) -> list[list[tuple[str | None, str | None]]]:
    """``n`` ``(raw_output, error)`` per item; a failing batch is retried item by item."""
    try:
        return [
            [(text, None) for text in texts]
            for texts in backend.sample(images, prompts, n, temperature, top_p)
        ]
    except Exception as err:
        if len(images) == 1:
            logger.warning("sampling failed: %s: %s", type(err).__name__, err)
            return [[(None, ERROR_GENERATION_FAILED)] * n]
        logger.warning("sampling a batch of %d failed (%s); retrying item by item", len(images), err)
    return [sample_safely(backend, [im], [p], n, temperature, top_p)[0] for im, p in zip(images, prompts)]


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


def stage_predict(args: MiningArgs, out: Path, fold: int, model_dir: Path, data: TrainingSet) -> Path:
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
            backend = get_backend(
                args.backend,
                str(model_dir),
                batch_size=args.batch_size,
                max_new_tokens=args.max_new_tokens,
                dtype=args.dtype,
                tp=args.tp,
                dp=args.dp,
                seed=args.seed + fold,
            )
            try:
                predict_items(backend, items, writer, args, f"fold {fold}")
            finally:
                backend.close()
                free_memory()
    mark_done(
        out, fold, "predict", {"images": len(items), "seconds": round(time.perf_counter() - started, 1)}
    )
    return path


# --------------------------------------------------------------------------- #
# Mined errors, report, confusions
# --------------------------------------------------------------------------- #


def collect(args: MiningArgs, out: Path, data: TrainingSet) -> dict[str, Any]:
    """Write the mined file, the report and the confusion table from every finished fold."""
    from data_prep.rejects import Rejects
    from data_prep.tasks.error_driven.confusions import ConfusionTable

    mined: list[dict[str, Any]] = []
    folds_report: dict[str, Any] = {}
    finished = []
    for fold in range(args.folds):
        done = {stage: stage_done(out, fold, stage) for stage in STAGES}
        if not done["predict"]:
            folds_report[str(fold)] = {"finished": False, "stages_done": [s for s in STAGES if done[s]]}
            continue
        path = fold_dir(out, fold) / PREDICTIONS_FILE
        finished.append(path)
        rows = read_prediction_rows(path)
        held_out = data.held_out(fold)
        greedy = [row for row in rows if row.set == GREEDY]
        by_id: dict[str, dict[str, dict[str, Any]]] = {}
        failed = wrong_rows = 0
        for row in rows:
            if row.error:
                failed += 1  # no usable prediction: not a misreading to learn from
                continue
            if row.distance == 0:
                continue
            wrong_rows += 1
            entry = by_id.setdefault(row.id, {}).get(row.pred)
            if entry is None:
                entry = {
                    "id": row.id,
                    "source": data.sources.get(row.id, ""),
                    "gt": row.gt,
                    "pred": row.pred,
                    "distance": row.distance,
                    "fold": fold,
                    "kind": row.set,
                    "kinds": [],
                }
                by_id[row.id][row.pred] = entry
                mined.append(entry)
            entry["kinds"].append(row.set)
        distinct = sum(len(preds) for preds in by_id.values())
        folds_report[str(fold)] = {
            "finished": True,
            "train_rows": (done["data"] or {}).get("train_rows"),
            "train_main_records": len(data.assignment) - len(held_out),
            "held_out": len(held_out),
            "prediction_rows": len(rows),
            "greedy_exprate": percent(
                sum(1 for row in greedy if row.distance == 0 and not row.error), len(greedy)
            ),
            "wrong_share": percent(wrong_rows + failed, len(rows)),
            "failed_rows": failed,
            "images_with_wrong": len(by_id),
            "distinct_wrong": distinct,
            "distinct_wrong_per_image": round(distinct / len(held_out), 3) if held_out else 0.0,
            "train_global_step": done["train"].get("global_step"),
        }
    mined_path = out / MINED_FILE
    write_text_atomic(mined_path, "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in mined))
    rejects = Rejects(log=False)
    table = ConfusionTable.from_prediction_files(finished, rejects)
    table.to_json(out / CONFUSIONS_FILE)
    report = {
        "data_dir": str(Path(args.data_dir).resolve()),
        "train_recipe": args.train_recipe,
        "train_overrides": args.train_overrides,
        "folds": args.folds,
        "finished_folds": len(finished),
        "samples": args.samples,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "main_records": len(data.assignment),
        "mined_predictions": len(mined),
        "mined_ids": len({entry["id"] for entry in mined}),
        "confusion_pairs": len(table),
        "per_fold": folds_report,
        "files": {"mined": MINED_FILE, "confusions": CONFUSIONS_FILE},
    }
    write_json_atomic(out / REPORT_FILE, report, indent=2)
    return report


# --------------------------------------------------------------------------- #
# Entry points
# --------------------------------------------------------------------------- #


def mine(args: MiningArgs) -> dict[str, Any]:
    """Run (or resume) every stage of every selected fold, then collect; returns the report."""
    if args.samples < 0:
        raise MiningError("--samples must be 0 or more")
    if args.samples and args.temperature <= 0:
        raise MiningError("sampled predictions need --temperature > 0 (greedy is always predicted too)")
    if args.backend not in BACKENDS:
        raise MiningError(f"unknown backend {args.backend!r}; choose one of {', '.join(BACKENDS)}")
    if not Path(args.train_recipe).is_file():
        raise MiningError(f"training recipe {args.train_recipe} not found")
    clash = [
        flag for flag in RESERVED_OVERRIDES if any(a.split("=")[0] == flag for a in args.train_overrides)
    ]
    if clash:
        raise MiningError(
            f"the mining command sets {', '.join(clash)} itself for each fold; leave it out of the overrides"
        )
    folds = range(args.folds) if args.only_folds is None else args.only_folds
    bad = [k for k in folds if not 0 <= k < args.folds]
    if bad:
        raise MiningError(f"--only-folds {bad} outside 0..{args.folds - 1}")
    out = Path(args.output_dir)
    check_config(args, out)
    data = load_training_set(args, out)
    for fold in folds:
        logger.info("fold %d of %d: %d held-out records", fold, args.folds, len(data.held_out(fold)))
        data_dir = stage_data(args, out, fold, data)
        model_dir = stage_train(args, out, fold, data_dir)
        stage_predict(args, out, fold, model_dir, data)
    report = collect(args, out, data)
    logger.info(
        "mined %d wrong predictions of %d records from %d/%d finished folds -> %s (report: %s)",
        report["mined_predictions"],
        report["mined_ids"],
        report["finished_folds"],
        args.folds,
        out / MINED_FILE,
        out / REPORT_FILE,
    )
    return report


def parse_args(argv: Sequence[str]) -> MiningArgs:
    argv = list(argv)
    # Everything after a bare "--" goes to train.sft unchanged.
    trailing: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, trailing = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="python -m eval.mine_errors", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="a dataset built by data_prep.build")
    parser.add_argument(
        "--train-recipe", required=True, help="training recipe YAML (recipes/<model>/<method>.yaml)"
    )
    parser.add_argument("--output-dir", required=True, help="where folds, models, predictions and results go")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument(
        "--samples", type=int, default=4, help="sampled predictions per image (besides greedy)"
    )
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--tp", type=int, default=1)
    parser.add_argument("--dp", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="fold assignment and sampling seed")
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N main-task records (smoke runs)"
    )
    parser.add_argument("--train-split", default="train")
    parser.add_argument(
        "--include-aux-tasks", action="store_true", help="train folds on the auxiliary rows too (same folds)"
    )
    parser.add_argument(
        "--train-overrides",
        default="",
        help='extra train.sft arguments, e.g. --train-overrides="--max_steps 5"',
    )
    parser.add_argument(
        "--only-folds", default=None, help="comma-separated folds to run (e.g. one per machine)"
    )
    parser.add_argument("--train-subprocess", action="store_true", help="always train in a child process")
    parser.add_argument("--no-progress", action="store_true")
    ns = parser.parse_args(argv)
    try:
        only = None if ns.only_folds is None else [int(k) for k in ns.only_folds.split(",") if k.strip()]
    except ValueError:
        parser.error(f"--only-folds expects comma-separated integers, got {ns.only_folds!r}")
    return MiningArgs(
        data_dir=ns.data_dir,
        train_recipe=ns.train_recipe,
        output_dir=ns.output_dir,
        folds=ns.folds,
        samples=ns.samples,
        temperature=ns.temperature,
        top_p=ns.top_p,
        backend=ns.backend,
        batch_size=ns.batch_size,
        max_new_tokens=ns.max_new_tokens,
        dtype=ns.dtype,
        tp=ns.tp,
        dp=ns.dp,
        seed=ns.seed,
        limit=ns.limit,
        train_split=ns.train_split,
        include_aux_tasks=ns.include_aux_tasks,
        train_overrides=shlex.split(ns.train_overrides) + trailing,
        only_folds=only,
        train_subprocess=ns.train_subprocess,
        progress=not ns.no_progress,
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        mine(args)
    except MiningError as err:
        logger.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
