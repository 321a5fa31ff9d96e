"""Checkpoints that are safe to resume from.

``transformers.Trainer`` writes ``checkpoint-N/`` file by file; a run killed in the middle leaves a
folder that looks like a checkpoint but is not one. We write a marker file *last*, after the model,
optimizer, scheduler, RNG states and trainer state are on disk (``on_save`` runs after all of
that), and resume only from the newest folder that has it. Incomplete folders are renamed aside
(``incomplete-checkpoint-N``, outside the Trainer's ``checkpoint-*`` glob) with a warning, so the
rerun cannot pick them up or rotate a good checkpoint away in their favour.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

from transformers import TrainerCallback

from data_prep.io_utils import write_text_atomic

logger = logging.getLogger(__name__)

#: Written into a checkpoint folder once everything else in it is on disk.
COMPLETE_MARKER = "checkpoint_complete.json"
_CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")


def mark_complete(checkpoint_dir: str | Path, global_step: int) -> None:
    write_text_atomic(
        Path(checkpoint_dir) / COMPLETE_MARKER,
        json.dumps({"global_step": global_step, "time": time.time()}) + "\n",
    )


def is_complete(checkpoint_dir: str | Path) -> bool:
    checkpoint_dir = Path(checkpoint_dir)
    return (checkpoint_dir / COMPLETE_MARKER).is_file() and (checkpoint_dir / "trainer_state.json").is_file()


def checkpoint_dirs(output_dir: str | Path) -> list[Path]:
    """``checkpoint-N`` folders in ``output_dir``, oldest step first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in output_dir.iterdir()
        if p.is_dir() and (m := _CHECKPOINT_DIR.match(p.name))
    ]
    return [p for _, p in sorted(found)]


def last_complete_checkpoint(output_dir: str | Path, set_aside_incomplete: bool = True) -> Path | None:
    """The newest complete checkpoint in ``output_dir`` (None when there is none).

    With ``set_aside_incomplete`` (call it on the main process only), incomplete folders are renamed
    to ``incomplete-checkpoint-N`` with a warning.
    """
    latest = None
    for path in checkpoint_dirs(output_dir):
        if is_complete(path):
            latest = path
            continue
        logger.warning(
            "checkpoint %s is incomplete (no %s): a save was interrupted; skipping it", path, COMPLETE_MARKER
        )
        if set_aside_incomplete:
            target = path.with_name(f"incomplete-{path.name}")
            if target.exists():
                target = path.with_name(f"incomplete-{path.name}-{int(time.time())}")
            os.replace(path, target)
            logger.warning("moved it to %s", target)
    return latest


class CheckpointCompleteCallback(TrainerCallback):
    """Writes :data:`COMPLETE_MARKER` into each checkpoint once the Trainer has finished saving it."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                mark_complete(folder, state.global_step)
        return control
