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

import contextlib
import dataclasses
import logging
import shlex
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from data_prep.contract import TASK_MAIN
from eval.backends import BackendOptions, default_max_new_tokens
from eval.cli import parse_command_line
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


def mine(args: MiningArgs, options: BackendOptions | None = None) -> dict[str, Any]:
    """Run (or resume) every stage of every selected fold, then collect; returns the report."""
    options = options or BackendOptions()
    if options.max_new_tokens is None:
        options = dataclasses.replace(options, max_new_tokens=default_max_new_tokens([TASK_MAIN]))
    if args.samples < 0:
        raise MiningError("--samples must be 0 or more")
    if args.samples and args.temperature <= 0:
        raise MiningError("sampled predictions need --temperature > 0 (greedy is always predicted too)")
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
    # One writer at a time: the run folder's shared files (settings, folds, the collected results)
    # under its lock; each fold under its own, so machines mining other folds (--only-folds) of
    # one shared folder go on side by side, while two runs of one fold are refused.
    with _locked(out, "error mining"):
        check_config(args, options, out)
        data = load_training_set(args, out, options.seed)
    for fold in folds:
        logger.info("fold %d of %d: %d held-out records", fold, args.folds, len(data.held_out(fold)))
        with _locked(fold_dir(out, fold), f"error mining (fold {fold})"):
            data_dir = stage_data(args, out, fold, data)
            model_dir = stage_train(args, out, fold, data_dir)
            stage_predict(args, options, out, fold, model_dir, data)
    with _locked(out, "error mining (collecting the folds)"):
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


@contextlib.contextmanager
def _locked(folder: Path, what: str) -> Iterator[None]:
    """``folder``'s output lock (data_prep.output_lock); held elsewhere: a one-line MiningError."""
    from data_prep.output_lock import OutputLocked, output_lock

    try:
        with output_lock(folder, what=what):
            yield
    except OutputLocked as err:
        raise MiningError(str(err)) from None


def parse_args(argv: Sequence[str]) -> tuple[MiningArgs, BackendOptions]:
    """The command line (and ``--config YAML``) as the mining settings and the inference options.
    ``--only-folds 0,2`` and ``--train-overrides="--max_steps 5"`` are one value each; everything
    after a bare ``--`` goes to ``train.sft`` unchanged."""
    argv = list(argv)
    trailing: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, trailing = argv[:cut], argv[cut + 1 :]
    argv = [
        _split_folds(arg) if i and argv[i - 1] in ONLY_FOLDS_FLAGS else [arg] for i, arg in enumerate(argv)
    ]
    args, options = parse_command_line(
        (MiningArgs, BackendOptions),
        [arg for group in argv for arg in group],
        prog="python -m eval.mine_errors",
        description=__doc__.split("\n\n")[0],
        defaults={"max_new_tokens": default_max_new_tokens([TASK_MAIN])},
    )
    overrides = [args.train_overrides] if isinstance(args.train_overrides, str) else args.train_overrides
    return dataclasses.replace(
        args, train_overrides=[token for value in overrides for token in shlex.split(value)] + trailing
    ), options


ONLY_FOLDS_FLAGS = ("--only-folds", "--only_folds")


def _split_folds(value: str) -> list[str]:
    """``0,2`` as ``["0", "2"]`` (the list option takes them as separate values)."""
    return [part.strip() for part in value.split(",") if part.strip()] or [value]


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args, options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        mine(args, options)
    except MiningError as err:
        logger.error("%s", err)
        return 2
    except OSError as err:
        from data_prep.disk_errors import is_storage_error, storage_error_line

        if not is_storage_error(err):
            raise
        logger.error("%s", storage_error_line(err, args.output_dir))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
