"""Evaluate a model on test sets: predictions, scores, reports.

    python -m eval.evaluate --model M --sets crohme2014,crohme2016,crohme2019 [--output-dir D]
        [--data-dir outputs/data/crohme] [--backend auto|hf|vllm] [--batch-size 8]
        [--max-new-tokens 256|1024] [--limit N] [--task main|tree_cot|counting] [--vote]
        [--tp 1] [--dp 1] [--dtype auto] [--seed 0]

For every set (a split of a built dataset, see :mod:`eval.test_sets`) it writes
``D/<set>.<task>.jsonl`` (the :mod:`eval.predictions` format), one flushed row per item as items
finish: a re-run skips the ids already there, so an interrupted run resumes. ``D`` defaults to
``outputs/eval/<model-name>`` (one folder per model). Beside each file, ``<set>.<task>.meta.json``
records what made the rows (:mod:`eval.provenance`) and whether the file is complete; a run with a
different model or settings is refused rather than mixed in. A corrupt image, a
failed generation or an empty answer becomes a failure row (scored as wrong), never a crash.
Then ``D/summary.md`` + ``D/summary.json`` (with the published comparison for CROHME sets) and
``D/report.html`` (worst items, with their images under ``D/images/``). With ``--vote`` the main,
Tree-CoT and counting prompts all run and their majority vote is scored too, in
``D/<set>.vote.jsonl`` and ``D/vote/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from data_prep.contract import (
    TASK_COUNTING,
    TASK_MAIN,
    TASK_TREE_COT,
    prompt_for,
)
from data_prep.io_utils import atomic_output
from eval.backends import BACKENDS, Backend, get_backend
from eval.items import Item, decode_item, items_from_dataset
from eval.metrics import Scores
from eval.predictions import (
    ERROR_GENERATION_FAILED,
    PredictionRow,
    PredictionWriter,
    check_provenance,
    make_row,
    read_prediction_rows,
    write_meta,
)
from eval.provenance import DEFAULT_OUTPUT_ROOT, default_output_dir, provenance_of, training_overlap
from eval.report import model_label, write_html_report, write_summary
from eval.score import score_rows
from eval.test_sets import DEFAULT_DATA_ROOT, TestSet, TestSetNotFound, resolve_test_sets
from eval.vote import VOTE_TASK_NAME, VOTE_TASKS, vote_row
from train.modeling import ModelLoadError

logger = logging.getLogger(__name__)

SCORABLE_TASKS = (TASK_MAIN, TASK_TREE_COT, TASK_COUNTING)
IMAGES_DIR = "images"
THUMBNAIL = (640, 320)


# --------------------------------------------------------------------------- #
# Generation
# --------------------------------------------------------------------------- #


def generate_safely(
    backend: Backend, images: list[Image.Image], prompts: list[str]
) -> list[tuple[str | None, str | None]]:
    """``(raw_output, error)`` per item. A failing batch is retried item by item, so one bad item
    becomes one ``generation_failed`` row instead of stopping the run."""
    try:
        return [(text, None) for text in backend.generate(images, prompts)]
    except Exception as err:
        if len(images) == 1:
            logger.warning("generation failed: %s: %s", type(err).__name__, err)
            return [(None, ERROR_GENERATION_FAILED)]
        logger.warning("a batch of %d failed (%s); retrying item by item", len(images), err)
    return [generate_safely(backend, [im], [p])[0] for im, p in zip(images, prompts)]


def _safe_name(item_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", item_id)[:120]


def save_thumbnail(image: Image.Image, out_dir: Path, set_name: str, item_id: str) -> str:
    """Save a small PNG of a wrong item's image for the HTML report; returns its path under out_dir."""
    relative = Path(IMAGES_DIR) / _safe_name(set_name) / f"{_safe_name(item_id)}.png"
    target = out_dir / relative
    if not target.exists():
        thumb = image.convert("RGB")
        thumb.thumbnail(THUMBNAIL)
        with atomic_output(target) as tmp:
            thumb.save(tmp, format="PNG")
    return relative.as_posix()


def predictions_path(out_dir: Path, set_name: str, task: str) -> Path:
    return out_dir / f"{set_name}.{task}.jsonl"


def _chunks(items: Sequence[Item], size: int) -> Iterator[list[Item]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def predict_set(
    backend: Backend,
    items: Sequence[Item],
    set_name: str,
    tasks: Sequence[str],
    out_dir: Path,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write (resumably) one predictions file per task for ``items``; returns counts and timing.

    With ``provenance`` (what makes the rows: model, weights hash, backend, bounds, decoding), a
    file another model or other settings started is refused, and each file's ``.meta.json``
    records it with ``complete`` false until every item is written.
    """
    from tqdm import tqdm

    metas = {}
    for task in tasks:
        path = predictions_path(out_dir, set_name, task)
        if provenance is not None:
            metas[task] = {**provenance, "set": set_name, "task": task}
            check_provenance(path, metas[task])
            write_meta(path, {**metas[task], "n_items": len(items), "complete": False})
    writers = {task: PredictionWriter(predictions_path(out_dir, set_name, task)) for task in tasks}
    try:
        done = {task: writers[task].done_ids(set_name) for task in tasks}
        pending = [item for item in items if any(item.id not in done[task] for task in tasks)]
        if len(pending) < len(items):
            logger.info(
                "%s: %d of %d items already predicted; %d to go",
                set_name,
                len(items) - len(pending),
                len(items),
                len(pending),
            )
        started = time.perf_counter()
        generated = 0
        bar = tqdm(total=len(pending), desc=f"{set_name}", unit="img", disable=not progress)
        for chunk in _chunks(pending, backend.chunk_size):
            for item in chunk:
                decode_item(item)
            for task in tasks:
                todo = [item for item in chunk if item.id not in done[task]]
                ok = [item for item in todo if item.image is not None]
                outputs = dict(
                    zip(
                        (item.id for item in ok),
                        generate_safely(backend, [item.image for item in ok], [prompt_for(task)] * len(ok)),
                    )
                )
                generated += len(ok)
                for item in todo:
                    raw, error = outputs.get(item.id, (None, item.error))
                    row = make_row(
                        item.id, set_name, item.gt, raw, task=task, image_path=item.image_path, error=error
                    )
                    if row.distance and item.image is not None:
                        row.image_path = save_thumbnail(item.image, out_dir, set_name, item.id)
                    writers[task].write(row)
            for item in chunk:
                item.image = None  # free memory: the chunk is written
            bar.update(len(chunk))
        bar.close()
        seconds = time.perf_counter() - started
    finally:
        for writer in writers.values():
            writer.close()
    for task, meta in metas.items():
        # Reached only when every item has its row: the completeness marker.
        write_meta(
            predictions_path(out_dir, set_name, task), {**meta, "n_items": len(items), "complete": True}
        )
    return {
        "items": len(items),
        "predicted_now": len(pending),
        "generated": generated,
        "seconds": round(seconds, 3),
    }


def write_votes(items: Sequence[Item], set_name: str, out_dir: Path) -> Path:
    """Add the vote row of every item whose three prompt rows exist and that has none yet."""
    rows = {
        task: {r.id: r for r in read_prediction_rows(predictions_path(out_dir, set_name, task))}
        for task in VOTE_TASKS
    }
    path = predictions_path(out_dir, set_name, VOTE_TASK_NAME)
    with PredictionWriter(path) as writer:
        done = writer.done_ids(set_name)
        for item in items:
            if item.id in done or not all(item.id in rows[task] for task in VOTE_TASKS):
                continue
            writer.write(vote_row({task: rows[task][item.id] for task in VOTE_TASKS}))
    return path


# --------------------------------------------------------------------------- #
# Scoring and reports
# --------------------------------------------------------------------------- #


def load_rows(
    out_dir: Path, set_names: Sequence[str], task: str, ids: dict[str, set[str]]
) -> list[PredictionRow]:
    """This run's rows of ``task`` (files may hold more items, from an earlier larger run)."""
    rows: list[PredictionRow] = []
    for name in set_names:
        path = predictions_path(out_dir, name, task)
        if path.exists():
            rows += [r for r in read_prediction_rows(path) if r.id in ids[name]]
    return rows


def write_reports(
    rows: Sequence[PredictionRow],
    report_dir: Path,
    images_root: Path,
    title: str,
    extra: dict[str, Any],
    notes: Sequence[str] = (),
) -> dict[str, Scores]:
    """Summary (Markdown + JSON, with the published comparison) and HTML error report."""
    scores = score_rows(rows)
    write_summary(scores, report_dir, extra=extra, notes=notes)
    settings = {k: extra[k] for k in ("model", "backend", "task", "max_new_tokens", "limit") if k in extra}
    write_html_report(
        rows,
        report_dir / "report.html",
        images_root=images_root,
        title=title,
        settings={**settings, "decoding": "greedy", "sets": ", ".join(extra.get("test_sets", {}))},
        model_dir=extra.get("model"),
    )
    return scores


@dataclasses.dataclass
class EvalArgs:
    model: str
    sets: str
    #: None: ``<output_root>/<model-name>`` (see :func:`default_output_dir`).
    output_dir: str | None = None
    output_root: str = str(DEFAULT_OUTPUT_ROOT)
    data_dir: str | None = None
    data_root: str = str(DEFAULT_DATA_ROOT)
    backend: str = "auto"
    batch_size: int = 8
    #: None: 256 for the main prompt, 1024 when an auxiliary prompt runs (trees and counts are long).
    max_new_tokens: int | None = None
    limit: int | None = None
    task: str = TASK_MAIN
    vote: bool = False
    tp: int = 1
    dp: int = 1
    dtype: str = "auto"
    seed: int = 0
    progress: bool = True


def evaluate(args: EvalArgs, backend: Backend | None = None) -> dict[str, Any]:
    """Run the whole evaluation; returns the summary dict (also in ``summary.json``).

    ``backend`` may be given (tests, notebooks); otherwise one is built from ``args`` and closed.
    """
    if args.task not in SCORABLE_TASKS:
        raise ValueError(f"--task must be one of {', '.join(SCORABLE_TASKS)}, got {args.task!r}")
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    out_dir = Path(args.output_dir) if args.output_dir else default_output_dir(args.model, args.output_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    test_sets: list[TestSet] = resolve_test_sets(args.sets, args.data_dir, args.data_root)
    items = {ts.name: items_from_dataset(ts.load(), args.limit) for ts in test_sets}
    overlap = training_overlap(args.model, items)
    tasks = list(VOTE_TASKS) if args.vote else [args.task]
    if args.vote and args.task not in tasks:
        tasks.insert(0, args.task)
    if args.max_new_tokens is None:
        args.max_new_tokens = 256 if tasks == [TASK_MAIN] else 1024
    own_backend = backend is None
    if backend is None:
        backend = get_backend(
            args.backend,
            args.model,
            bounds=None,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            dtype=args.dtype,
            tp=args.tp,
            dp=args.dp,
            seed=args.seed,
        )
    logger.info(
        "evaluating %s with the %s backend on %s; prompts: %s; outputs in %s",
        args.model,
        backend.name,
        ", ".join(f"{ts.name} ({len(items[ts.name])} images, {ts.data_dir}/{ts.split})" for ts in test_sets),
        ", ".join(tasks),
        out_dir,
    )
    timings: dict[str, Any] = {}
    try:
        provenance = provenance_of(args, backend)
        for ts in test_sets:
            timings[ts.name] = predict_set(
                backend,
                items[ts.name],
                ts.name,
                tasks,
                out_dir,
                progress=args.progress,
                provenance=provenance,
            )
            stats = timings[ts.name]
            if stats["generated"] and stats["seconds"]:
                stats["generations_per_second"] = round(stats["generated"] / stats["seconds"], 3)
            if args.vote:
                write_votes(items[ts.name], ts.name, out_dir)
    finally:
        if own_backend:
            backend.close()

    names = [ts.name for ts in test_sets]
    ids = {name: {item.id for item in items[name]} for name in names}
    extra: dict[str, Any] = {
        "model": args.model,
        "backend": backend.name,
        "task": args.task,
        "max_new_tokens": args.max_new_tokens,
        "limit": args.limit,
        "test_sets": {
            ts.name: {"data_dir": str(ts.data_dir), "split": ts.split, "n": len(items[ts.name])}
            for ts in test_sets
        },
        "predictions": {name: {t: str(predictions_path(out_dir, name, t)) for t in tasks} for name in names},
        "timing": timings,
        "model_sha256": provenance.get("model_sha256"),
        "in_training_data": overlap,
    }
    notes = [f"model {args.model}, {backend.name} backend, greedy decoding, prompt: {args.task}"]
    notes += [
        f"WARNING: {o['items']} of {o['of']} {name} items were in the model's training data (same image)"
        for name, o in overlap.items()
    ]
    if args.task != TASK_MAIN:
        notes.append(f"scored on the last LaTeX line of the {args.task} answers")
    if args.vote:
        vote_rows = load_rows(out_dir, names, VOTE_TASK_NAME, ids)
        vote_scores = write_reports(
            vote_rows,
            out_dir / "vote",
            out_dir,
            f"Error report: {model_label(args.model)}, majority vote of {', '.join(VOTE_TASKS)}",
            {**extra, "task": VOTE_TASK_NAME},
            [
                f"majority vote of the last LaTeX lines of the {', '.join(VOTE_TASKS)} answers; ties go to main"
            ],
        )
        extra["vote"] = {name: s.as_dict() for name, s in vote_scores.items()}
        for task in tasks:
            if task == args.task:
                continue
            task_scores = score_rows(load_rows(out_dir, names, task, ids))
            extra.setdefault("other_prompts", {})[task] = {
                name: s.as_dict() for name, s in task_scores.items()
            }
            notes += [f"{task} prompt ExpRate on {name}: {s.exprate:.2f}" for name, s in task_scores.items()]
        notes += [
            f"majority vote ExpRate on {name}: {s.exprate:.2f} (see vote/summary.md)"
            for name, s in vote_scores.items()
        ]
    rows = load_rows(out_dir, names, args.task, ids)
    scores = write_reports(
        rows, out_dir, out_dir, f"Error report: {model_label(args.model)} ({args.task} prompt)", extra, notes
    )
    summary = {"sets": {name: s.as_dict() for name, s in scores.items()}, **extra}
    for name, s in scores.items():
        logger.info("%s: ExpRate %.2f (n=%d, failed %d)", name, s.exprate, s.n, s.n_failed)
    logger.info("summary: %s; error report: %s", out_dir / "summary.md", out_dir / "report.html")
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eval.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="hub id, model folder or LoRA adapter folder")
    parser.add_argument(
        "--sets", required=True, help="comma-separated test sets, e.g. crohme2014,crohme2016,crohme2019"
    )
    parser.add_argument(
        "--output-dir", default=None, help="default: OUTPUT_ROOT/<model-name> (one folder per model)"
    )
    parser.add_argument("--output-root", default=str(DEFAULT_OUTPUT_ROOT), help="see --output-dir")
    parser.add_argument("--data-dir", default=None, help="built dataset folder to take every set from")
    parser.add_argument(
        "--data-root", default=str(DEFAULT_DATA_ROOT), help="where built datasets are searched"
    )
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="default 256 (main prompt), 1024 with tree_cot/counting/vote",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N items of each set")
    parser.add_argument("--task", choices=SCORABLE_TASKS, default=TASK_MAIN, help="which prompt to score")
    parser.add_argument(
        "--vote", action="store_true", help="also run main+tree_cot+counting and score their vote"
    )
    parser.add_argument("--tp", type=int, default=1, help="tensor parallel GPUs per replica (vLLM)")
    parser.add_argument("--dp", type=int, default=1, help="data parallel replicas (vLLM, one per GPU group)")
    parser.add_argument("--dtype", default="auto", help="auto, bfloat16, float16 or float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = EvalArgs(**vars(build_parser().parse_args(argv)))
    if argv is None and args.backend == "vllm":  # vLLM may live in its own environment (make install-vllm)
        from eval.backends.vllm_env import run_under_vllm_env

        run_under_vllm_env("eval.evaluate", sys.argv[1:])
    try:
        evaluate(args)
    except (TestSetNotFound, ModelLoadError, FileNotFoundError, ValueError) as err:
        # User mistakes (a set that was not built, a wrong model path, a bad option) say what to do
        # in their message: print that, not a traceback.
        logger.error("%s", err)
        return 2
    except KeyboardInterrupt:
        logger.warning("interrupted: the predictions written so far are kept; run the same command to resume")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
