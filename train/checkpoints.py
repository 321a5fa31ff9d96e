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


def finish_without_steps_past_max(trainer) -> None:
    """Make a resume from a checkpoint that already reached ``max_steps`` train nothing more.

    The Trainer checkpoints the last step too (``save_strategy: steps``), so a run killed after that
    save and before its final ``save_model`` resumes from ``checkpoint-<max_steps>``. The Trainer then
    places itself at epoch ``max_steps // steps_per_epoch`` and skips ``max_steps % steps_per_epoch``
    batches of it; when ``max_steps`` is not a whole number of epochs that epoch still has batches
    left, and its loop checks ``global_step >= max_steps`` only *after* a step: it trained step
    ``max_steps + 1``. (With whole epochs the epoch loop is already past its end and nothing runs.)
    Here such a resume starts past the last epoch, so the Trainer goes straight to the end of
    training with the checkpoint's weights and state. Wraps the Trainer's private
    ``_init_training_state`` (tests/train/test_train_resume.py checks its signature).
    """
    original = trainer._init_training_state

    def init_training_state(
        max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
    ):
        epochs_trained, steps_in_epoch = original(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
        )
        if resume_from_checkpoint is not None and trainer.state.global_step >= max_steps > 0:
            logger.info(
                "the checkpoint already reached max_steps %d: no step left to train, finishing the run",
                max_steps,
            )
            return num_train_epochs, 0
        return epochs_trained, steps_in_epoch

    trainer._init_training_state = init_training_state


# --------------------------------------------------------------------------- #
# Loading a full model's weights back into the live model
# --------------------------------------------------------------------------- #


class CheckpointLoadError(RuntimeError):
    """A checkpoint's weights do not fit the model being trained."""


def _checkpoint_state_dict(folder: Path) -> dict:
    """Every tensor of a checkpoint's ``model.safetensors`` (or its shards), on the CPU."""
    from safetensors.torch import load_file

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        state: dict = {}
        for shard in shards:
            state.update(load_file(str(folder / shard), device="cpu"))
        return state
    single = folder / "model.safetensors"
    if not single.is_file():
        raise CheckpointLoadError(
            f"{folder} has no model.safetensors (only safetensors checkpoints are loaded)"
        )
    return load_file(str(single), device="cpu")


def _to_model_keys(model, state: dict) -> dict:
    """Checkpoint keys renamed to the live model's parameter names.

    transformers 5 saves weights in the hub layout (Qwen2.5-VL: ``model.layers.*``, ``visual.*``)
    while the model names them ``model.language_model.layers.*``, ``model.visual.*``;
    ``from_pretrained`` renames them on load, but the Trainer's resume does a plain non-strict
    ``load_state_dict``, so every key missed and the run silently restarted from the base weights.
    We apply the model's own renamings (the ones ``from_pretrained`` used).
    """
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

    conversions = getattr(model, "_weight_conversions", None) or get_model_conversion_mapping(model)
    renamings = [c for c in conversions if isinstance(c, WeightRenaming)]
    converters = [c for c in conversions if isinstance(c, WeightConverter)]
    own = model.state_dict()
    renamed = {}
    for key, tensor in state.items():
        if key in own:
            renamed[key] = tensor
            continue
        new_key, converter = rename_source_key(key, renamings, converters)
        if converter is not None:
            raise CheckpointLoadError(
                f"checkpoint key {key} needs a tensor conversion ({converter}); resuming this architecture "
                "is not supported by the portable engine"
            )
        renamed[new_key] = tensor
    return renamed


def load_full_checkpoint(model, folder: str | Path) -> None:
    """Load a full (non-adapter) checkpoint's weights into ``model`` exactly, or raise.

    Only tied weights (``lm_head`` when it shares the embedding) may be absent from the file; any
    other missing or unexpected key is an error, never a silent partial load.
    """
    folder = Path(folder)
    state = _to_model_keys(model, _checkpoint_state_dict(folder))
    result = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "all_tied_weights_keys", {}) or {}) | set(model._tied_weights_keys or {})
    missing = [k for k in result.missing_keys if k not in tied]
    if missing or result.unexpected_keys:
        raise CheckpointLoadError(
            f"{folder} does not match the model: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:3]})"
        )
    if result.missing_keys:
        model.tie_weights()
    logger.info("loaded %d tensors from %s", len(state), folder)
