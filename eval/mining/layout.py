"""The mining output folder: its files, its per-fold stage markers, the run's settings and errors.

``OUT/fold-K/<stage>.done.json`` marks a finished stage (written atomically, so a re-run skips
exactly the stages that finished); ``OUT/mining_config.json`` records the settings, and a re-run
whose fold-deciding settings differ is refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

from data_prep.io_utils import write_json_atomic
from eval.backends.base import BackendOptions

logger = logging.getLogger("eval.mining")

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
#: The training split's content fingerprint (data_prep.fingerprint) in ``mining_config.json``.
DATA_FINGERPRINT = "data_fingerprint"
#: Overrides the mining command sets itself for every fold.
RESERVED_OVERRIDES = ("--dataset_dir", "--output_dir", "--train_split", "--config")


class MiningError(RuntimeError):
    """The mining run cannot go on; the message says why and what to do."""


@dataclasses.dataclass
class MiningArgs:
    """What to mine and how; the inference options (and ``seed``, which also deals the folds) are
    :class:`eval.backends.BackendOptions`."""

    data_dir: str = dataclasses.field(metadata={"help": "a dataset built by data_prep.build"})
    train_recipe: str = dataclasses.field(
        metadata={"help": "training recipe YAML (recipes/<model>/<method>.yaml)"}
    )
    output_dir: str = dataclasses.field(metadata={"help": "where folds, models, predictions and results go"})
    folds: int = 3
    samples: int = dataclasses.field(
        default=4, metadata={"help": "sampled predictions per image (besides greedy)"}
    )
    temperature: float = 0.7
    top_p: float = 0.9
    limit: int | None = dataclasses.field(
        default=None, metadata={"help": "only the first N main-task records (smoke runs)"}
    )
    train_split: str = "train"
    include_aux_tasks: bool = dataclasses.field(
        default=False, metadata={"help": "train folds on the auxiliary rows too (same folds)"}
    )
    #: Extra ``train.sft`` arguments (``--key value`` pairs), applied to every fold.
    train_overrides: list[str] = dataclasses.field(
        default_factory=list,
        metadata={"help": 'extra train.sft arguments, e.g. --train-overrides="--max_steps 5"'},
    )
    #: Run only these folds (e.g. one per machine); None = all.
    only_folds: list[int] | None = dataclasses.field(
        default=None, metadata={"help": "comma-separated folds to run (e.g. one per machine)"}
    )
    #: Train in a child process even when train.launch would run it in this one (frees GPU memory).
    train_subprocess: bool = dataclasses.field(
        default=False, metadata={"help": "always train in a child process"}
    )
    progress: bool = True

    def kinds(self) -> list[str]:
        return [GREEDY] + [f"sample-{j}" for j in range(1, self.samples + 1)]


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


def check_config(args: MiningArgs, options: BackendOptions, out: Path) -> None:
    """Record the run's settings; refuse a re-run whose fold-deciding settings differ."""
    from data_prep.fingerprint import fingerprint_changes, read_split_fingerprint

    config = {**dataclasses.asdict(options), **dataclasses.asdict(args)}
    config["data_dir"] = str(Path(args.data_dir).resolve())
    # The folds, models and predictions are of this build of the training split: a rebuilt one
    # (other answers or images) is refused rather than mixed in.
    config[DATA_FINGERPRINT] = read_split_fingerprint(args.data_dir, args.train_split)
    path = out / CONFIG_FILE
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if DATA_FINGERPRINT in saved:
            change = fingerprint_changes(saved[DATA_FINGERPRINT], config[DATA_FINGERPRINT])
            if change:
                raise MiningError(
                    f"{out} was mined from another build of {args.data_dir} split {args.train_split!r} "
                    f"({change}); use a new --output-dir, or delete {out} to mine the new data"
                )
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
