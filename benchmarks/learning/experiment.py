"""One learning experiment: fine-tune through ``train.sft`` and score through ``eval.evaluate`` on a
held-out split and on its swapped-image control (:mod:`eval.control`).

Every step is the entry point a user would call; nothing here trains or decodes by itself. An arm's
folder holds ``model/`` (the run), ``eval/heldout`` and ``eval/control`` (predictions, summaries) and
``figures.json``, written last: an arm with ``figures.json`` is done and is not run again (so a
benchmark resumes arm by arm), unless the inputs it recorded changed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.learning.structure import exprate_by_structure

FIGURES = "figures.json"


class ExperimentError(RuntimeError):
    """A stage of an experiment failed (its own messages say why)."""


def check(code: int | None, stage: str) -> None:
    if code not in (0, None):
        raise ExperimentError(f"{stage} failed with exit status {code} (see the messages above)")


@dataclass
class Arm:
    """One training run and its scores: ``train_overrides`` are ``train.sft`` flags on top of the
    recipe (``--seed 2``, ``--train_tasks main tree_cot``)."""

    name: str
    data_dir: Path
    train_recipe: Path
    model: Path
    out_dir: Path
    heldout: str
    train_overrides: list[str] = field(default_factory=list)
    #: Further held-out splits of ``data_dir``, each scored on its own (no control of their own).
    extra_sets: list[str] = field(default_factory=list)

    @property
    def model_dir(self) -> Path:
        return self.out_dir / "model"

    def inputs(self) -> dict[str, Any]:
        """What the figures depend on: the recipe's text, the overrides, the model and the data
        (the built splits' content fingerprints)."""
        from data_prep.fingerprint import read_split_fingerprint

        return {
            "train_recipe": str(self.train_recipe),
            "train_recipe_text": Path(self.train_recipe).read_text(encoding="utf-8"),
            "train_overrides": list(self.train_overrides),
            "model": str(self.model),
            "data": {
                split: read_split_fingerprint(self.data_dir, split)
                for split in ("train", self.heldout, *self.extra_sets)
            },
        }


def prediction_rows(eval_dir: Path, split: str) -> list:
    from data_prep.predictions import read_prediction_rows

    return read_prediction_rows(eval_dir / f"{split}.main.jsonl")


def scores(rows: Sequence[Any]) -> dict[str, Any]:
    """``{"n", "exprate", "le1"}`` of prediction rows (exact match; token distance <= 1)."""
    from eval.scoring.metrics import percent

    n = len(rows)
    exact = sum(r.within(0) for r in rows)
    near = sum(r.within(1) for r in rows)
    return {"n": n, "exprate": percent(exact, n), "le1": percent(near, n)}


def evaluate(
    model_dir: Path, data_dir: Path, split: str, out: Path, max_new_tokens: int, progress: bool
) -> list:
    """Greedy predictions of ``model_dir`` on ``split`` of ``data_dir`` (HF backend), as rows."""
    from eval import evaluate as evaluate_cli

    shutil.rmtree(out, ignore_errors=True)  # a control's images change with every build
    args = [
        "--model", str(model_dir), "--data-dir", str(data_dir), "--sets", split, "--backend", "hf",
        "--batch-size", "32", "--max-new-tokens", str(max_new_tokens), "--output-dir", str(out),
    ]  # fmt: skip
    if not progress:
        args.append("--no-progress")
    check(evaluate_cli.main(args), f"evaluating {split}")
    return prediction_rows(out, split)


def run_arm(
    arm: Arm, max_new_tokens: int = 48, progress: bool = False, fresh: bool = False
) -> dict[str, Any]:
    """Train ``arm`` (resuming its run folder), score it on the held-out split and its control, write
    and return its figures: ``heldout``/``control`` scores, ``by_structure``, the training log, and
    ``extra`` (scores and ``by_structure`` of each of ``arm.extra_sets``) when it has any."""
    from data_prep.io_utils import write_json_atomic
    from eval.control import write_control_split
    from train import sft

    done = arm.out_dir / FIGURES
    inputs = arm.inputs()
    if done.is_file() and not fresh:
        figures = json.loads(done.read_text(encoding="utf-8"))
        if figures.get("inputs") == inputs:
            return figures
        print(f"{arm.name}: its inputs changed since it ran; training it again from scratch")
        fresh = True
    if fresh:
        shutil.rmtree(arm.out_dir, ignore_errors=True)
    arm.out_dir.mkdir(parents=True, exist_ok=True)
    train_args = [
        "--config", str(arm.train_recipe), "--model_name_or_path", str(arm.model),
        "--dataset_dir", str(arm.data_dir), "--output_dir", str(arm.model_dir),
        "--disable_tqdm", str(not progress).lower(), *arm.train_overrides,
    ]  # fmt: skip
    check(sft.main(train_args), f"{arm.name}: fine-tuning")
    heldout = evaluate(
        arm.model_dir, arm.data_dir, arm.heldout, arm.out_dir / "eval" / "heldout", max_new_tokens, progress
    )
    control_split = f"{arm.heldout}_control"
    write_control_split(arm.data_dir, arm.heldout, arm.out_dir / "control_data", control_split)
    control = evaluate(
        arm.model_dir,
        arm.out_dir / "control_data",
        control_split,
        arm.out_dir / "eval" / "control",
        max_new_tokens,
        progress,
    )
    extra = {}
    for split in arm.extra_sets:
        rows = evaluate(
            arm.model_dir, arm.data_dir, split, arm.out_dir / "eval" / split, max_new_tokens, progress
        )
        extra[split] = {**scores(rows), "by_structure": exprate_by_structure(rows)}
    figures = {
        "arm": arm.name,
        "heldout": scores(heldout),
        "control": scores(control),
        "by_structure": exprate_by_structure(heldout),
        **({"extra": extra} if extra else {}),
        "learning_curve": learning_curve(arm.model_dir),
        "inputs": inputs,
    }
    write_json_atomic(done, figures)
    return figures


def learning_curve(run_dir: Path) -> list[dict[str, Any]]:
    """``[{"step", "exprate"}]``: the validation ExpRate the run logged while training (the
    recipe's ``eval_split``), from ``trainer_log.jsonl``; empty when it did not validate."""
    from train.curves import TRAINER_LOG

    path = Path(run_dir) / TRAINER_LOG
    if not path.is_file():
        return []
    curve = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if "eval_exprate" in entry:
            curve.append({"step": int(entry["step"]), "exprate": float(entry["eval_exprate"])})
    return curve
