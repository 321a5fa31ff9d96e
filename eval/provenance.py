"""What an evaluation's results are keyed to: the model that made them and what it was trained on.

* :func:`default_output_dir`: one folder per model (``outputs/eval/<model-name>``), so evaluating a
  second model never finds the first one's rows;
* :func:`provenance_of`: the record each predictions file's ``.meta.json`` carries (model path and
  weights hash, backend, pixel bounds, max new tokens, decoding); a resume must match it;
* :func:`dataset_provenance`: the test split's part of that record (its content fingerprint); rows of
  another build of the split are predicted again, never resumed into;
* :func:`training_overlap`: test items whose image the model's run folder lists among its
  training rows (``training_items.jsonl``, written by ``train.sft``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from train.modeling import ModelLoadError, ModelSource

if TYPE_CHECKING:
    from eval.backends import Backend
    from eval.scoring.items import Item

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_ROOT = Path("outputs") / "eval"


def model_label(model: str) -> str:
    """A folder name for a model: the folder's name (``run-checkpoint-500`` for a checkpoint), or
    the last part of a hub id."""
    path = Path(model.rstrip("/"))
    name = path.name or model
    if re.fullmatch(r"checkpoint-\d+", name) and path.parent.name:
        name = f"{path.parent.name}-{name}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def default_output_dir(model: str, root: str | Path = DEFAULT_OUTPUT_ROOT) -> Path:
    """``outputs/eval/<model-name>``: one folder per model, so two models never share files."""
    return Path(root) / model_label(model)


def provenance_of(model: str, backend: Backend, max_new_tokens: int | None, dtype: str) -> dict[str, Any]:
    """What makes this run's rows; a file is only continued by a run with the same record.
    ``max_new_tokens`` and ``dtype`` are the asked ones, recorded when the backend does not say."""
    from train.modeling import weights_sha256

    options = getattr(backend, "options", None)
    bounds = getattr(options, "bounds", None)
    try:
        digest = weights_sha256(model)
    except ModelLoadError:
        digest = None
    return {
        "model": str(Path(model).resolve()) if Path(model).exists() else model,
        "model_sha256": digest,
        "backend": backend.name,
        "min_pixels": getattr(bounds, "min_pixels", None),
        "max_pixels": getattr(bounds, "max_pixels", None),
        "max_new_tokens": getattr(options, "max_new_tokens", max_new_tokens),
        "decoding": "greedy (no sampling, repetition_penalty 1.0)",
        "dtype": getattr(options, "dtype", dtype),
    }


def dataset_provenance(
    data_dir: str | Path, split: str, fingerprint: dict[str, Any] | None
) -> dict[str, Any]:
    """The test split's part of a predictions file's record: where it was read and its content
    fingerprint (``data_prep.fingerprint``, from the dataset's manifest). A rerun whose split has
    another fingerprint predicts the set again (:func:`eval.scoring.predictions.stale_reason`)."""
    from eval.scoring.predictions import DATASET_FINGERPRINT

    return {"data_dir": str(Path(data_dir).resolve()), "split": split, DATASET_FINGERPRINT: fingerprint}


def training_overlap(model: str | ModelSource, items: dict[str, list[Item]]) -> dict[str, dict[str, Any]]:
    """Test items whose image bytes the model's run folder records among its training rows
    (``training_items.jsonl``, written by ``train.sft``), per set."""
    from train.modeling import as_source
    from train.run_folder import image_sha256, read_training_items

    try:
        source = as_source(model)
    except ModelLoadError:
        return {}
    trained = None
    for folder in (source.adapter, source.base):
        if folder and Path(folder).is_dir():
            trained = read_training_items(folder)
            if trained is not None:
                break
    if not trained:
        return {}
    hashes = {row["image_sha256"]: row["id"] for row in trained if row.get("image_sha256")}
    overlap: dict[str, dict[str, Any]] = {}
    for name, set_items in items.items():
        found = []
        for item in set_items:
            data = item.image_bytes
            if data is None and item.image_path and Path(item.image_path).is_file():
                data = Path(item.image_path).read_bytes()
            if data is not None and image_sha256(data) in hashes:
                found.append({"id": item.id, "training_id": hashes[image_sha256(data)]})
        if found:
            overlap[name] = {"items": len(found), "of": len(set_items), "examples": found[:10]}
            logger.warning(
                "%s: %d of %d test items were in %s's training data (same image), e.g. %s; their "
                "score measures memory, not reading",
                name,
                len(found),
                len(set_items),
                model,
                ", ".join(f["id"] for f in found[:5]),
            )
    return overlap
