"""What a run folder (a recipe's ``output_dir``) remembers about the run that made it.

* ``recipe.yaml``: every resolved recipe key (file + command-line overrides + defaults), written
  before the first step, plus a ``run_info`` mapping (package versions, git commit, when). It is a
  recipe itself: ``--config OUTPUT_DIR/recipe.yaml`` runs the same thing again (``run_info`` is
  ignored on load).
* A rerun into the same folder must resolve to the same keys: it resumes (or, once
  ``run_summary.json`` exists, does nothing and says so); different keys are refused in one line
  that names them, since mixing two settings in one run folder gives weights neither made.
* ``inputs`` in ``recipe.yaml``: the content fingerprint of every dataset split the run reads
  (:mod:`data_prep.fingerprint`); a rerun after the dataset was rebuilt with other content is
  refused in one line naming what changed, never resumed on the new data.
* A folder where nothing was trained yet (no checkpoint, no summary: a start that failed) takes the
  corrected rerun's settings; its ``recipe.yaml`` never blocks it.
* ``training_items.jsonl``: the id, source and SHA-256 of the image bytes of every training row, so
  evaluation can warn when a test item was trained on.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib.metadata
import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from data_prep.io_utils import write_text_atomic

RECIPE_FILE = "recipe.yaml"
RUN_INFO_KEY = "run_info"
#: The fingerprints of what the run read (``{"dataset": {split: fingerprint}}``): a record checked
#: on every rerun, ignored when the file is loaded as a recipe.
INPUTS_KEY = "inputs"
TRAINING_ITEMS = "training_items.jsonl"

#: Keys that may change between a run and its resume: they change how a run is watched or
#: launched, never the weights it ends with.
RESUME_FREE_KEYS = frozenset(
    {
        "report_to",
        "logging_dir",
        "run_name",
        "disable_tqdm",
        "dataloader_num_workers",
        "dataloader_persistent_workers",
        "dataloader_prefetch_factor",
        "save_total_limit",
        "auto_resume",
        "resume_from_checkpoint",
        "accelerate_config",
        "push_to_hub",
        "hub_model_id",
        "hub_strategy",
        "hub_token",
        "hub_private_repo",
        "local_rank",
    }
)

#: Packages whose versions are recorded (those that change what a run computes).
PACKAGES = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "bitsandbytes",
    "deepspeed",
    "safetensors",
    "tokenizers",
    "pillow",
    "numpy",
)


class RunMismatch(ValueError):
    """A rerun into a run folder with settings different from the ones it started with."""


def _plain(value: Any) -> Any:
    """A YAML-safe copy of ``value`` (enums to their value, tuples to lists)."""
    if hasattr(value, "value") and not isinstance(value, (str, int, float, bool)):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def resolved_recipe(model_args: Any, script_args: Any, training_args: Any) -> dict[str, Any]:
    """Every recipe key with the value this run uses, as one flat mapping."""
    keys: dict[str, Any] = {}
    for args in (model_args, script_args):
        keys.update({f.name: _plain(getattr(args, f.name)) for f in dataclasses.fields(args)})
    keys.update({k: _plain(v) for k, v in training_args.to_dict().items()})
    return keys


def git_commit(repo: Path | None = None) -> dict[str, Any]:
    """The checkout's commit and whether it had uncommitted changes (None outside a git checkout)."""
    repo = repo or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(dirty)}


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_info() -> dict[str, Any]:
    return {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git": git_commit(),
        "packages": package_versions(),
    }


def read_recipe_file(path: Path) -> dict[str, Any]:
    from data_prep.recipe_file import RecipeFileError, read_recipe_mapping

    try:
        data = read_recipe_mapping(path, what="the run folder's recipe")
    except RecipeFileError as err:
        raise RunMismatch(f"{err}; move it away to start this run fresh") from None
    data.pop(RUN_INFO_KEY, None)
    data.pop(INPUTS_KEY, None)
    return data


def read_recorded_inputs(output_dir: str | Path) -> dict[str, Any] | None:
    """The ``inputs`` record of a run folder's ``recipe.yaml`` (None when it has none)."""
    from data_prep.recipe_file import RecipeFileError, read_recipe_mapping

    try:
        inputs = read_recipe_mapping(Path(output_dir) / RECIPE_FILE).get(INPUTS_KEY)
    except RecipeFileError:
        return None
    return inputs if isinstance(inputs, dict) else None


def dataset_fingerprints(dataset_dir: str | Path, splits: Iterable[str | None]) -> dict[str, Any]:
    """``{split: fingerprint}`` of the dataset splits a run reads, from the dataset's manifest."""
    from data_prep.fingerprint import read_split_fingerprint

    return {split: read_split_fingerprint(dataset_dir, split) for split in splits if split}


def input_changes(recorded: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """``dataset split 'train': answers changed (...)`` for every recorded input whose content
    changed (nothing when the folder recorded no inputs: older run folders)."""
    from data_prep.fingerprint import fingerprint_changes

    if not recorded:
        return []
    changes = []
    for kind, splits in current.items():
        before = recorded.get(kind)
        if not isinstance(before, dict):
            continue
        for split, fingerprint in splits.items():
            if split not in before:
                continue
            change = fingerprint_changes(before[split], fingerprint)
            if change:
                changes.append(f"{kind} split {split!r}: {change}")
    return changes


def nothing_trained(output_dir: str | Path) -> bool:
    """No checkpoint folder (complete or not) and no run summary: a start that failed before the
    first save; its settings bind nothing."""
    from train.callbacks import RUN_SUMMARY
    from train.checkpoints import checkpoint_dirs

    output_dir = Path(output_dir)
    return not checkpoint_dirs(output_dir) and not (output_dir / RUN_SUMMARY).exists()


def recipe_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key (recorded -> current)`` for every key that differs, ignoring :data:`RESUME_FREE_KEYS`."""
    diffs = []
    for key in sorted(set(recorded) | set(current)):
        if key in RESUME_FREE_KEYS:
            continue
        old, new = recorded.get(key, "<unset>"), current.get(key, "<unset>")
        if old != new:
            diffs.append(f"{key} ({old!r} -> {new!r})")
    return diffs


def check_rerun(output_dir: str | Path, recipe: dict[str, Any], inputs: dict[str, Any] | None = None) -> bool:
    """Whether ``output_dir`` already holds a run with these settings and inputs; a
    :class:`RunMismatch` when it holds one with other settings, or one whose dataset has changed
    since. A folder where nothing was trained yet is taken as new (False)."""
    import logging

    path = Path(output_dir) / RECIPE_FILE
    if not path.is_file():
        return False
    if nothing_trained(output_dir):
        logging.getLogger(__name__).info(
            "%s holds no checkpoint of an earlier start: its recipe is replaced by this run's", path
        )
        return False
    diffs = recipe_differences(read_recipe_file(path), recipe)
    changed = input_changes(read_recorded_inputs(output_dir), inputs or {})
    if changed:
        raise RunMismatch(
            f"{output_dir} holds a run trained on other data: {'; '.join(changed)}. Rebuild the "
            f"data it was trained on to resume it, or give a new --output_dir to train on this data"
        )
    if diffs:
        shown = ", ".join(diffs[:6]) + (f" and {len(diffs) - 6} more" if len(diffs) > 6 else "")
        raise RunMismatch(
            f"{output_dir} holds a run started with other settings: {shown}. Rerun with the settings "
            f"in {path} to resume it, or give a new --output_dir (or delete {output_dir}) to start fresh"
        )
    return True


def write_recipe(
    output_dir: str | Path, recipe: dict[str, Any], inputs: dict[str, Any] | None = None
) -> Path:
    path = Path(output_dir) / RECIPE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# The resolved recipe of this run (file + command-line overrides + defaults), written by\n"
        "# train.sft before the first step. `python -m train.sft --config THIS_FILE` runs it again;\n"
        f"# {RUN_INFO_KEY} (versions, git commit) and {INPUTS_KEY} (dataset fingerprints, checked on\n"
        "# every rerun) are records only and are ignored on load.\n"
    )
    body = yaml.safe_dump(recipe, sort_keys=True, allow_unicode=True)
    info = yaml.safe_dump({RUN_INFO_KEY: run_info()}, sort_keys=False)
    record = yaml.safe_dump({INPUTS_KEY: inputs}, sort_keys=True) if inputs else ""
    write_text_atomic(path, header + body + info + record)
    return path


# --------------------------------------------------------------------------- #
# What the model was trained on
# --------------------------------------------------------------------------- #


def image_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_training_items(output_dir: str | Path, items: Iterable[dict[str, Any]]) -> Path:
    """One JSON line per training row: ``{"id", "source", "image_sha256"}``."""
    path = Path(output_dir) / TRAINING_ITEMS
    lines = [json.dumps(item, ensure_ascii=False) for item in items]
    write_text_atomic(path, "\n".join(lines) + ("\n" if lines else ""))
    return path


def read_training_items(model_dir: str | Path) -> list[dict[str, Any]] | None:
    """The training rows a model folder records (None when it records none)."""
    path = Path(model_dir) / TRAINING_ITEMS
    if not path.is_file():
        return None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
