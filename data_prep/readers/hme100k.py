"""HME100K (TAL, photos of handwritten formulas): ``<split>_labels.txt`` + ``<split>_images/``.

Label lines are ``NAME.jpg<TAB>space separated tokens`` (UTF-8). Some labels contain CJK
characters (Chinese words, ``、``); they are kept and flagged (``meta["has_cjk"]``) or, with
``drop_cjk=True``, rejected as ``cjk_label`` (one published test subset of 24,016 drops them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from data_prep.contract import Record, main_record
from data_prep.latex import has_cjk
from data_prep.readers.common import (
    first_existing,
    index_images,
    iter_text_lines,
    load_or_reject,
    option_path,
    require_dir,
    require_file,
)
from data_prep.rejects import Rejects

SOURCE = "hme100k"


def locate(
    root: Path, split: str, labels_file: str | Path | None, images_dir: str | Path | None
) -> tuple[Path, Path]:
    bases = [root / split, root]
    if labels_file is not None:
        labels = require_file(option_path(root, labels_file), "hme100k labels file")
    else:
        labels = first_existing(
            [b / f"{split}_labels.txt" for b in bases] + [b / "labels.txt" for b in bases],
            f"hme100k labels for split {split!r}",
        )
    if images_dir is not None:
        images = require_dir(option_path(root, images_dir), "hme100k images folder")
    else:
        base = labels.parent
        images = first_existing(
            [base / f"{split}_images", base / "images", base / split], f"hme100k images for split {split!r}"
        )
    return labels, images


def read(
    root: Path,
    split: str,
    rejects: Rejects,
    *,
    labels_file: str | Path | None = None,
    images_dir: str | Path | None = None,
    drop_cjk: bool = False,
) -> Iterator[Record]:
    """Main-task records of one HME100K split (``train`` or ``test``).

    Options:
        labels_file: labels file instead of the search (``<split>_labels.txt`` in ``root/<split>``
            or ``root``).
        images_dir: image folder instead of ``<split>_images/`` beside the labels.
        drop_cjk: reject labels containing CJK characters (reason ``cjk_label``).

    Rejects: ``bad_encoding``, ``no_tab``, ``empty_label``, ``duplicate_id``, ``cjk_label``,
    ``missing_image``, ``unreadable_image``, ``path_escapes_root``, ``pickle_refused``.
    """
    root = Path(root).absolute()
    labels, images = locate(root, split, labels_file, images_dir)
    index = index_images(images)
    seen: set[str] = set()
    for line_number, text in iter_text_lines(labels, SOURCE, rejects):
        name, tab, label = text.partition("\t")
        name = name.strip()
        if not tab:
            rejects.add(SOURCE, "no_tab", labels, line_number, f"expected NAME<TAB>tokens: {text[:80]!r}")
            continue
        if not label.strip() or not name:
            rejects.add(SOURCE, "empty_label", labels, line_number, f"name {name!r}")
            continue
        if name in seen:
            rejects.add(SOURCE, "duplicate_id", labels, line_number, name)
            continue
        cjk = has_cjk(label)
        if cjk and drop_cjk:
            rejects.add(SOURCE, "cjk_label", labels, line_number, f"{name}: {label[:80]}")
            continue
        image_path = index.get(name)
        if image_path is None:
            rejects.add(SOURCE, "missing_image", labels, line_number, f"no {name} in {images}")
            continue
        image = load_or_reject(image_path, images, SOURCE, rejects, labels, line_number)
        if image is None:
            continue
        seen.add(name)
        image_id = name.rsplit(".", 1)[0]
        yield main_record(image_id, SOURCE, split, image, label, has_cjk=cjk, image_file=name)
