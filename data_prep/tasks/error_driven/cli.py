"""``python -m data_prep.tasks.error_driven``: text-only error-driven samples from eval predictions or ID<TAB>LaTeX truths."""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path

from data_prep.contract import (
    TASK_MAIN,
    Record,
    normalize_answer,
)
from data_prep.io_utils import write_text_atomic
from data_prep.rejects import Rejects
from data_prep.tasks.error_driven.confusions import ConfusionTable
from data_prep.tasks.error_driven.marking import SOURCE
from data_prep.tasks.error_driven.samples import prediction_rows, read_predictions, samples_from_predictions
from data_prep.tasks.error_driven.synthetic import synthetic_errors

# --------------------------------------------------------------------------- #
# Entry point: text-only preview / export
# --------------------------------------------------------------------------- #


def _truth_records(args: argparse.Namespace, rejects: Rejects) -> list[tuple[Record, list[str], str]]:
    """(main record without image, wrong predictions, origin) for each input id."""
    jobs: list[tuple[Record, list[str], str]] = []
    if args.predictions:
        truths: dict[str, str] = {}
        for path in args.predictions:
            # First pass for the truths only; read_predictions below counts the rejects.
            for row in prediction_rows(path, Rejects(log=False)):
                truths.setdefault(row.id, row.gt)
            for base_id, wrong in read_predictions(path, rejects).items():
                record = Record(base_id, "predictions", "train", TASK_MAIN, None, "", truths[base_id])
                jobs.append((record, wrong, "model"))
    if args.truths:
        rng = random.Random(args.seed)
        table = ConfusionTable.from_json(args.confusions) if args.confusions else None
        with open(args.truths, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                base_id, _, latex = line.rstrip("\n").partition("\t")
                if not base_id.strip() or not latex.strip():
                    rejects.add(SOURCE, "malformed_truth_line", args.truths, number)
                    continue
                try:
                    wrong = synthetic_errors(latex, rng, args.per_record, table)
                except ValueError as error:
                    rejects.add(SOURCE, "unusable_truth", args.truths, number, str(error))
                    continue
                record = Record(base_id, "truths", "train", TASK_MAIN, None, "", normalize_answer(latex))
                jobs.append((record, wrong, "synthetic"))
    return jobs


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 with samples written, 1 when none could be made (nothing written), 2 when an
    input cannot be read (one line)."""
    parser = argparse.ArgumentParser(
        description="Write error-driven detection/correction samples (text only; meta.base_id names "
        "the image's record) from eval predictions or, synthetically, from ID<TAB>LaTeX truths."
    )
    parser.add_argument(
        "--predictions",
        nargs="*",
        default=[],
        help="eval predictions JSONL files, or the reference's *_pred.json (one JSON array)",
    )
    parser.add_argument("--truths", help="ID<TAB>LaTeX lines (e.g. a CROHME caption file): synthetic mode")
    parser.add_argument("--confusions", help="confusion table JSON for synthetic mode (default built-in)")
    parser.add_argument("--per-record", type=int, default=2, help="wrong predictions used per record")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, help="output JSONL")
    args = parser.parse_args(argv)
    if not args.predictions and not args.truths:
        parser.error("give --predictions and/or --truths")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    rejects = Rejects()
    rows = []
    try:
        for record, wrong, origin in _truth_records(args, rejects):
            for sample in samples_from_predictions(record, wrong, args.per_record, origin, rejects):
                row = sample.to_row()
                del row["image"]
                rows.append(json.dumps(row, ensure_ascii=False))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not rows:
        print(
            f"error: no error-driven sample could be made, nothing written to {args.output}; "
            f"{rejects.summary().splitlines()[0]} (see the warnings above)",
            file=sys.stderr,
        )
        return 1
    write_text_atomic(Path(args.output), "".join(f"{row}\n" for row in rows))
    print(f"wrote {len(rows)} error-driven samples to {args.output}; {rejects.summary()}")
    return 0
