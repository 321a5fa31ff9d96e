"""Trainer callbacks: the run summary written at the end of training.

``run_summary.json`` in the output folder says what ran and how fast: engine, recipe, steps,
samples/s, tokens/s, peak memory (CUDA max allocated, else the process's peak RSS), final loss.
"""

from __future__ import annotations

import logging
import resource
import sys
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from train.curves import mean_train_loss

logger = logging.getLogger(__name__)

RUN_SUMMARY = "run_summary.json"


def peak_memory() -> dict[str, Any]:
    """Peak memory of this process: CUDA max allocated when a GPU is in use, else peak RSS."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return {"kind": "cuda_max_allocated", "bytes": int(torch.cuda.max_memory_allocated())}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return {"kind": "cpu_peak_rss", "bytes": int(rss if sys.platform == "darwin" else rss * 1024)}


def final_loss(log_history: list[dict[str, Any]]) -> float | None:
    """The last training loss the Trainer logged."""
    for entry in reversed(log_history):
        if "loss" in entry:
            return float(entry["loss"])
    return None


class RunSummaryCallback(TrainerCallback):
    """Collects the run summary when training ends (``train.sft`` writes it after the final save)."""

    def __init__(self, engine: str, recipe: str | None, extra: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self.recipe = recipe
        self.extra = extra or {}
        self.summary: dict[str, Any] | None = None
        self._tokens_at_start = 0

    def on_train_begin(self, args, state, control, **kwargs):
        # A resumed run's state already counts the tokens of the steps before the interruption.
        self._tokens_at_start = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        metrics: dict[str, Any] = {}
        for entry in state.log_history:
            if "train_runtime" in entry:
                metrics = entry
        runtime = metrics.get("train_runtime")
        tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0) - self._tokens_at_start
        self.summary = {
            "engine": self.engine,
            "recipe": self.recipe,
            "output_dir": args.output_dir,
            "global_step": state.global_step,
            "max_steps": state.max_steps,
            "epoch": state.epoch,
            "world_size": args.world_size,
            "train_runtime_s": runtime,
            "train_samples_per_second": metrics.get("train_samples_per_second"),
            "train_steps_per_second": metrics.get("train_steps_per_second"),
            # This session only, like train_runtime.
            "input_tokens_seen": tokens,
            # Every step of the run, resumed or not.
            "total_input_tokens_seen": int(getattr(state, "num_input_tokens_seen", 0) or 0),
            "tokens_per_second": (tokens / runtime) if runtime and tokens else None,
            "final_loss": final_loss(state.log_history),
            # Over every step of the run, resumed or not (the Trainer's counts this session only).
            "train_loss": mean_train_loss(state.log_history),
            "peak_memory": peak_memory(),
            **self.extra,
        }
        return control


class SaveProcessorCallback(TrainerCallback):
    """Saves the processor into every checkpoint, so a checkpoint folder loads on its own.

    Register it before :class:`train.checkpoints.CheckpointCompleteCallback`: the completeness marker
    must be the last file written.
    """

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from train.modeling import save_processor

            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                save_processor(self.processor, folder)
        return control
