"""Test items: the main-task rows of a test split, images left encoded until they are needed.

Decoding happens item by item (:func:`decode_item`), so one corrupt image is one failure row of
the predictions file, never a crash of the evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from PIL import Image

from data_prep.contract import TASK_MAIN, extract_latex
from data_prep.images import ImageError, decode_image
from eval.scoring.predictions import ERROR_CORRUPT_IMAGE

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Item:
    """One test item, image not yet decoded (decoding may fail; that is a failure row)."""

    id: str
    gt: str
    image_bytes: bytes | None
    image_path: str | None
    image: Image.Image | None = None
    error: str | None = None


# --------------------------------------------------------------------------- #
# Items
# --------------------------------------------------------------------------- #


def _image_name(image: dict[str, Any], meta: str | None) -> str | None:
    if image.get("path"):
        return image["path"]
    try:
        return (json.loads(meta) if meta else {}).get("image_file")
    except json.JSONDecodeError:
        return None


def items_from_dataset(dataset, limit: int | None = None) -> list[Item]:
    """Main-task rows of a test split as :class:`Item`\\ s (images left encoded), first ``limit``."""
    import datasets

    if "image" in dataset.column_names:
        # Decode ourselves, item by item, so one corrupt image is one failure row.
        dataset = dataset.cast_column("image", datasets.Image(decode=False))
    items: list[Item] = []
    skipped = 0
    for row in dataset:
        if row.get("task", TASK_MAIN) != TASK_MAIN:
            skipped += 1
            continue
        image = row.get("image") or {}
        items.append(
            Item(
                id=str(row["id"]),
                gt=extract_latex(row["answer"]),
                image_bytes=image.get("bytes"),
                image_path=_image_name(image, row.get("meta")),
            )
        )
        if limit is not None and len(items) >= limit:
            break
    if skipped:
        logger.info("left out %d auxiliary-task rows (a test set is scored on its main-task rows)", skipped)
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("the test split has repeated ids; predictions are keyed by id")
    return items


def decode_item(item: Item) -> Item:
    """Decode the item's image (fully, verified); a failure is recorded on the item."""
    try:
        if item.image_bytes is not None:
            item.image = decode_image(item.image_bytes, item.image_path or item.id)
        elif item.image_path and Path(item.image_path).is_file():
            item.image = decode_image(Path(item.image_path).read_bytes(), item.image_path)
        else:
            raise ImageError("missing_image", item.image_path or item.id)
    except ImageError as err:
        item.error = ERROR_CORRUPT_IMAGE
        logger.warning("item %s: %s", item.id, err)
    return item
