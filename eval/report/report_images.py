"""The images an HTML report embeds: thumbnails as ``data:`` URIs, read only from inside the
folders the report owns (the dataset and predictions folders), so a predictions file whose
``image_path`` is absolute or escapes with ``../`` cannot pull another file into a report."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from eval.report.html_page import data_uri

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = (480, 160)

#: Shown instead of an image whose path leads outside the folders the report may read.
OUTSIDE = "image not embedded: outside the report's folders"


def inside_roots(path: Path, roots: Sequence[str | Path]) -> bool:
    """Whether ``path`` (symlinks resolved) lies inside one of ``roots``."""
    real = Path(os.path.realpath(path))
    for root in roots:
        root_real = Path(os.path.realpath(root))
        if real == root_real or root_real in real.parents:
            return True
    return False


def thumbnaildata_uri(
    image_path: str | None, images_root: str | Path | None, roots: Sequence[str | Path] | None = None
) -> str | None:
    """A ``data:`` URI of a small PNG of the image, or None. A relative path is read from
    ``images_root``; with ``roots`` (None: ``images_root`` alone, when given), an image outside every
    root is never opened (:func:`image_outside`)."""
    if not image_path:
        return None
    path = _image_file(image_path, images_root)
    if image_outside(image_path, images_root, roots):
        return None
    try:
        with Image.open(path) as image:
            image.load()
            thumb = image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        logger.debug("no thumbnail for %s: %s", path, exc)
        return None
    thumb.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG")
    return data_uri(buffer.getvalue())


def _image_file(image_path: str, images_root: str | Path | None) -> Path:
    path = Path(image_path)
    if not path.is_absolute() and images_root is not None:
        path = Path(images_root) / path
    return path


def image_outside(
    image_path: str | None, images_root: str | Path | None, roots: Sequence[str | Path] | None = None
) -> bool:
    """Whether a row's image lies outside the folders the report may embed from (the dataset and
    predictions folders: ``roots``, or ``images_root``): an absolute path elsewhere or a ``../``
    that escapes is never read, so a predictions file cannot pull other files into a report."""
    if not image_path:
        return False
    if roots is None:
        roots = [images_root] if images_root is not None else []
    return not inside_roots(_image_file(image_path, images_root), roots)
