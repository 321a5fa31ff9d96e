"""The training collator: dataset rows (image, prompt, answer) -> a batch with answer-only labels.

Contract, enforced here because breaking it hangs multi-GPU runs rather than failing them:
every sample carries exactly one image. Each rank then runs the vision tower on every step, so
ZeRO-3 parameter gathers and DDP gradient reductions stay in step across ranks (a rank whose batch
had no image would skip the vision tower's collectives and the others would wait forever). All
of this project's tasks are image tasks; a text-only row is a data bug and stops the run clearly.

Samples longer than ``max_length`` tokens are never truncated (that would cut image tokens apart
from their pixels): they are dropped from the batch, counted and logged with their id.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from PIL import Image

from data_prep.contract import DEFAULT_BOUNDS, ImageBounds
from train.inputs import encode_for_training

logger = logging.getLogger(__name__)

#: Columns the collator reads from each row.
REQUIRED_COLUMNS = ("image", "prompt", "answer")


class CollatorError(ValueError):
    """A row the collator cannot turn into a training sample."""


def _as_image(value: Any, row_id: str) -> Image.Image:
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        import io

        return Image.open(io.BytesIO(value["bytes"])) if value.get("bytes") else Image.open(value["path"])
    raise CollatorError(
        f"sample {row_id}: has no image. Every training sample must carry one image so that every "
        "rank runs the vision tower on every step (text-only rows would hang multi-GPU runs)."
    )


def within_max_length(
    rows: Sequence[dict[str, Any]], attention_mask: Any, max_length: int, skipped: Counter[str]
) -> list[int]:
    """Indices of the samples of a collated batch that fit ``max_length`` tokens; the others are
    counted in ``skipped`` and logged with their id (never truncated). Raises when none fits."""
    lengths = [int(n) for n in attention_mask.sum(dim=1).tolist()]
    keep = [i for i, n in enumerate(lengths) if n <= max_length]
    for i, n in enumerate(lengths):
        if n > max_length:
            skipped["longer_than_max_length"] += 1
            logger.warning(
                "skipped sample %s: %d tokens > max_length %d", rows[i].get("id", "?"), n, max_length
            )
    if not keep:
        raise CollatorError(
            f"every sample of a batch is longer than max_length={max_length} "
            f"(lengths {lengths}); raise max_length or lower max_pixels"
        )
    return keep


class VisionSFTCollator:
    """Callable collator for ``transformers.Trainer`` built on :func:`train.inputs.encode_for_training`."""

    def __init__(
        self,
        processor: Any,
        bounds: ImageBounds = DEFAULT_BOUNDS,
        max_length: int | None = 2048,
        final_newline: bool = True,
    ) -> None:
        self.processor = processor
        self.bounds = bounds
        self.max_length = max_length
        #: Train on the ``\\n`` after ``<|im_end|>`` (LLaMA-Factory's qwen2_vl template does).
        self.final_newline = final_newline
        #: Reason -> number of samples skipped so far (reported in the run summary).
        self.skipped: Counter[str] = Counter()

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if not rows:
            raise CollatorError("empty batch")
        for row in rows:
            missing = [c for c in REQUIRED_COLUMNS if c not in row]
            if missing:
                raise CollatorError(
                    f"sample {row.get('id', '?')}: missing column(s) {', '.join(missing)}; training rows need "
                    f"{', '.join(REQUIRED_COLUMNS)} (set remove_unused_columns: false)"
                )
        images = [_as_image(row["image"], row.get("id", "?")) for row in rows]
        prompts = [row["prompt"] for row in rows]
        answers = [row["answer"] for row in rows]
        batch = encode_for_training(
            self.processor, images, prompts, answers, bounds=self.bounds, final_newline=self.final_newline
        )
        if self.max_length is None:
            return batch
        keep = within_max_length(rows, batch["attention_mask"], self.max_length, self.skipped)
        if len(keep) == len(rows):
            return batch
        return encode_for_training(
            self.processor,
            [images[i] for i in keep],
            [prompts[i] for i in keep],
            [answers[i] for i in keep],
            bounds=self.bounds,
            max_length=self.max_length,
            final_newline=self.final_newline,
        )
