"""What a mining run yields, from every finished fold: the mined wrong predictions, the report and
the learned confusion table. Recomputed on each run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from data_prep.io_utils import write_json_atomic, write_text_atomic
from eval.mining.layout import (
    CONFUSIONS_FILE,
    GREEDY,
    MINED_FILE,
    PREDICTIONS_FILE,
    REPORT_FILE,
    STAGES,
    MiningArgs,
    fold_dir,
    stage_done,
)
from eval.mining.stages import TrainingSet
from eval.scoring.metrics import percent
from eval.scoring.predictions import read_prediction_rows


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
