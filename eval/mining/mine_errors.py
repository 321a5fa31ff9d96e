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
:class:`data_prep.confusions.ConfusionTable`).
"""

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.backends import BACKENDS
from eval.mining.collect import collect
from eval.mining.layout import (  # noqa: F401 (the mining run's files and markers, re-exported)
    FOLDS_FILE,
    MINED_FILE,
    PREDICTIONS_FILE,
    REPORT_FILE,
    RESERVED_OVERRIDES,
    STAGES,
    MiningArgs,
    MiningError,
    check_config,
    fold_dir,
    marker_path,
)
from eval.mining.stages import load_training_set, stage_data, stage_predict, stage_train

logger = logging.getLogger("eval.mining")


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
