"""Evaluate a model on test sets: predictions, scores, reports.

    python -m eval.evaluate --model M --sets crohme2014,crohme2016,crohme2019 [--output-dir D]
        [--data-dir outputs/data/crohme] [--backend auto|hf|vllm] [--batch-size 8]
        [--max-new-tokens 256|1024] [--limit N] [--task main|tree_cot|counting] [--vote]
        [--tp 1] [--dp 1] [--dtype auto] [--seed 0] [--config options.yaml]

For every set (a split of a built dataset, see :mod:`eval.scoring.test_sets`) it writes
``D/<set>.<task>.jsonl`` (the :mod:`eval.scoring.predictions` format), one flushed row per item as items
finish: a re-run skips the ids already there, so an interrupted run resumes. ``D`` defaults to
``outputs/eval/<model-name>`` (one folder per model). Beside each file, ``<set>.<task>.meta.json``
records what made the rows (:mod:`eval.provenance`: model, weights hash, settings, and the test
split's content fingerprint) and whether the file is complete; a run with a different model or
settings is refused rather than mixed in, and a set whose split was rebuilt with other content (or
whose model folder now holds other weights) is predicted again from scratch. One evaluation at a time
per output folder (``data_prep.output_lock``); a full disk or read-only folder is one line. A corrupt image, a
failed generation or an empty answer becomes a failure row (scored as wrong), never a crash.
Then ``D/summary.md`` + ``D/summary.json`` (with the published comparison for CROHME sets) and
``D/report.html`` (worst items, with their images under ``D/images/``). With ``--vote`` the main,
Tree-CoT and counting prompts all run and their majority vote is scored too, in
``D/<set>.vote.jsonl`` and ``D/vote/``.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_prep.contract import TASK_MAIN
from data_prep.disk_errors import is_storage_error, storage_error_line
from data_prep.fingerprint import read_split_fingerprint
from data_prep.output_lock import OutputLocked, output_lock
from data_prep.tasks.registry import scored_tasks
from eval.backends import Backend, BackendOptions, default_max_new_tokens, open_backend
from eval.cli import parse_command_line
from eval.predict_sets import load_rows, predict_set, predictions_path, write_votes
from eval.provenance import (
    DEFAULT_OUTPUT_ROOT,
    dataset_provenance,
    default_output_dir,
    provenance_of,
    training_overlap,
)
from eval.report.html_report import model_label, write_html_report
from eval.report.summary import write_summary
from eval.scoring.items import items_from_dataset
from eval.scoring.metrics import Scores
from eval.scoring.predictions import (
    PredictionRow,
)
from eval.scoring.score import score_rows
from eval.scoring.test_sets import DEFAULT_DATA_ROOT, TestSet, TestSetNotFound, resolve_test_sets
from eval.scoring.vote import VOTE_TASK_NAME, VOTE_TASKS
from train.modeling import ModelLoadError

logger = logging.getLogger(__name__)

SCORABLE_TASKS = scored_tasks()


def write_reports(
    rows: Sequence[PredictionRow],
    report_dir: Path,
    images_root: Path,
    title: str,
    extra: dict[str, Any],
    notes: Sequence[str] = (),
    image_roots: Sequence[Path] | None = None,
) -> dict[str, Scores]:
    """Summary (Markdown + JSON, with the published comparison) and HTML error report, which embeds
    images only from ``image_roots`` (the predictions and dataset folders; None: ``images_root``)."""
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
        image_roots=image_roots,
    )
    return scores


@dataclasses.dataclass
class EvalArgs:
    """What to evaluate and where the results go; the inference options are
    :class:`eval.backends.BackendOptions`."""

    model: str = dataclasses.field(metadata={"help": "hub id, model folder or LoRA adapter folder"})
    sets: str = dataclasses.field(
        metadata={"help": "comma-separated test sets, e.g. crohme2014,crohme2016,crohme2019"}
    )
    #: None: ``<output_root>/<model-name>`` (see :func:`default_output_dir`).
    output_dir: str | None = dataclasses.field(
        default=None, metadata={"help": "default: OUTPUT_ROOT/<model-name> (one folder per model)"}
    )
    output_root: str = dataclasses.field(
        default=str(DEFAULT_OUTPUT_ROOT), metadata={"help": "see --output-dir"}
    )
    data_dir: str | None = dataclasses.field(
        default=None, metadata={"help": "built dataset folder to take every set from"}
    )
    data_root: str = dataclasses.field(
        default=str(DEFAULT_DATA_ROOT), metadata={"help": "where built datasets are searched"}
    )
    limit: int | None = dataclasses.field(
        default=None, metadata={"help": "only the first N items of each set"}
    )
    task: str = dataclasses.field(
        default=TASK_MAIN, metadata={"help": "which prompt to score", "choices": SCORABLE_TASKS}
    )
    vote: bool = dataclasses.field(
        default=False, metadata={"help": "also run main+tree_cot+counting and score their vote"}
    )
    progress: bool = dataclasses.field(default=True, metadata={"help": "show a progress bar"})


def evaluate(
    args: EvalArgs, options: BackendOptions | None = None, backend: Backend | None = None
) -> dict[str, Any]:
    """Run the whole evaluation; returns the summary dict (also in ``summary.json``).

    ``backend`` may be given (tests, notebooks); otherwise one is built from ``options`` and closed.
    """
    options = options or BackendOptions()
    if args.task not in SCORABLE_TASKS:
        raise ValueError(f"--task must be one of {', '.join(SCORABLE_TASKS)}, got {args.task!r}")
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    out_dir = Path(args.output_dir) if args.output_dir else default_output_dir(args.model, args.output_root)
    # One evaluation per output folder: two would append the same items twice to one file.
    with output_lock(out_dir, what="evaluation"):
        return _evaluate(args, options, backend, out_dir)


def _evaluate(
    args: EvalArgs, options: BackendOptions, backend: Backend | None, out_dir: Path
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    test_sets: list[TestSet] = resolve_test_sets(args.sets, args.data_dir, args.data_root)
    items = {ts.name: items_from_dataset(ts.load(), args.limit) for ts in test_sets}
    # Read once, before predicting: the rows are bound to this build of each split.
    fingerprints = {ts.name: read_split_fingerprint(ts.data_dir, ts.split) for ts in test_sets}
    overlap = training_overlap(args.model, items)
    tasks = list(VOTE_TASKS) if args.vote else [args.task]
    if args.vote and args.task not in tasks:
        tasks.insert(0, args.task)
    if options.max_new_tokens is None:
        options = dataclasses.replace(options, max_new_tokens=default_max_new_tokens(tasks))
    own_backend = backend is None
    if backend is None:
        backend = open_backend(options, args.model)
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
        provenance = provenance_of(args.model, backend, options.max_new_tokens, options.dtype)
        for ts in test_sets:
            timings[ts.name] = predict_set(
                backend,
                items[ts.name],
                ts.name,
                tasks,
                out_dir,
                progress=args.progress,
                provenance={**provenance, **dataset_provenance(ts.data_dir, ts.split, fingerprints[ts.name])},
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
    # The report embeds images from the predictions folder (thumbnails) and the dataset folders only.
    image_roots = [out_dir, *dict.fromkeys(ts.data_dir for ts in test_sets)]
    ids = {name: {item.id for item in items[name]} for name in names}
    extra: dict[str, Any] = {
        "model": args.model,
        "backend": backend.name,
        "task": args.task,
        "max_new_tokens": options.max_new_tokens,
        "limit": args.limit,
        "test_sets": {
            ts.name: {
                "data_dir": str(ts.data_dir),
                "split": ts.split,
                "n": len(items[ts.name]),
                "fingerprint": fingerprints[ts.name],
            }
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
            image_roots,
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
        rows,
        out_dir,
        out_dir,
        f"Error report: {model_label(args.model)} ({args.task} prompt)",
        extra,
        notes,
        image_roots,
    )
    summary = {"sets": {name: s.as_dict() for name, s in scores.items()}, **extra}
    for name, s in scores.items():
        logger.info("%s: ExpRate %.2f (n=%d, failed %d)", name, s.exprate, s.n, s.n_failed)
    logger.info("summary: %s; error report: %s", out_dir / "summary.md", out_dir / "report.html")
    return summary


def parse_args(argv: list[str] | None = None) -> tuple[EvalArgs, BackendOptions]:
    """The command line (and ``--config YAML``) as what to evaluate and the inference options."""
    return parse_command_line(
        (EvalArgs, BackendOptions), argv, prog="python -m eval.evaluate", description=__doc__
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, options = parse_args(argv)
    if argv is None and options.backend == "vllm":  # vLLM may live in its own environment (make install-vllm)
        from eval.backends.vllm_env import run_under_vllm_env

        run_under_vllm_env("eval.evaluate", sys.argv[1:])
    try:
        evaluate(args, options)
    except (TestSetNotFound, ModelLoadError, OutputLocked, FileNotFoundError, ValueError) as err:
        # User mistakes (a set that was not built, a wrong model path, a bad option, a folder
        # another evaluation is writing) say what to do in their message: print that, not a traceback.
        logger.error("%s", err)
        return 2
    except OSError as err:
        if not is_storage_error(err):
            raise
        logger.error("%s", storage_error_line(err, args.output_dir))
        return 2
    except KeyboardInterrupt:
        logger.warning("interrupted: the predictions written so far are kept; run the same command to resume")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
