"""The run folder's training curves: ``trainer_log.jsonl`` (every log entry the Trainer made, one
JSON object a line, the same entries as ``trainer_state.json``'s ``log_history``) and
``training_loss.png`` (training loss by step, with the validation loss and ExpRate when the run
validated). Both are rewritten from the Trainer's log history, so after a resume they hold exactly
the steps of the run (nothing from the lost steps of the interrupted attempt).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from data_prep.io_utils import atomic_output, write_text_atomic

logger = logging.getLogger(__name__)

TRAINER_LOG = "trainer_log.jsonl"
LOSS_PLOT = "training_loss.png"


def write_trainer_log(log_history: Sequence[dict[str, Any]], out_dir: str | Path) -> Path:
    path = Path(out_dir) / TRAINER_LOG
    write_text_atomic(path, "".join(json.dumps(entry, default=str) + "\n" for entry in log_history))
    return path


def read_trainer_log(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _series(log_history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(e["step"], float(e[key])) for e in log_history if key in e and "step" in e]
    return [p[0] for p in points], [p[1] for p in points]


def plot_training_curves(log_history: Sequence[dict[str, Any]], out_dir: str | Path) -> Path | None:
    """Write ``training_loss.png``; None when nothing was logged yet."""
    steps, loss = _series(log_history, "loss")
    eval_steps, eval_loss = _series(log_history, "eval_loss")
    rate_steps, rate = _series(log_history, "eval_exprate")
    if not steps and not eval_steps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if steps:
        ax.plot(steps, loss, label="training loss", color="tab:blue")
    if eval_steps:
        ax.plot(eval_steps, eval_loss, "o-", label="validation loss", color="tab:orange")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per answer token)")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if rate_steps:
        right = ax.twinx()
        right.plot(rate_steps, rate, "s--", label="validation ExpRate", color="tab:green")
        right.set_ylabel("ExpRate (%)")
        right.set_ylim(0, 100)
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, loc="upper right")
    ax.set_title("Training curves")
    fig.tight_layout()
    path = Path(out_dir) / LOSS_PLOT
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def mean_train_loss(log_history: Sequence[dict[str, Any]]) -> float | None:
    """The step-weighted mean of the logged training losses over the whole run.

    The Trainer's own ``train_loss`` divides this session's loss by *all* steps, which is wrong
    after a resume; the log history (restored from the checkpoint) covers every step.
    """
    total = weight = 0.0
    previous = 0
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            span = entry["step"] - previous
            total += float(entry["loss"]) * span
            weight += span
            previous = entry["step"]
    return total / weight if weight else None


class TrainingCurvesCallback(TrainerCallback):
    """Keeps ``trainer_log.jsonl`` current at every log and draws the plot at evaluations and at the end."""

    def on_train_begin(self, args, state, control, **kwargs):
        # A resumed run's history is the checkpoint's: drop what the lost steps had logged.
        if state.is_world_process_zero:
            write_trainer_log(state.log_history, args.output_dir)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero:
            write_trainer_log(state.log_history, args.output_dir)
        return control

    def on_evaluate(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._plot(state, args.output_dir)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            write_trainer_log(state.log_history, args.output_dir)
            self._plot(state, args.output_dir)
        return control

    @staticmethod
    def _plot(state, out_dir) -> None:
        try:
            plot_training_curves(state.log_history, out_dir)
        except ImportError as err:  # matplotlib is a core requirement; say so rather than crash a run
            logger.warning("no %s: %s", LOSS_PLOT, err)
