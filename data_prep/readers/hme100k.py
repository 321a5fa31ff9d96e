"""HME100K (TAL, photos of handwritten formulas): ``<split>_labels.txt`` + ``<split>_images/``.

Label lines are ``NAME.jpg<TAB>space separated tokens`` (UTF-8). Some labels contain CJK
characters (Chinese words, ``、``); they are kept and flagged (``meta["has_cjk"]``) or, with
``drop_cjk=True``, rejected as ``cjk_label``. That does not rebuild the 24,016-image test subset
one paper reports on (it keeps 24,498 of the 24,607 test labels; see docs/datasets.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from data_prep.contract import Record
from data_prep.latex import has_cjk
from data_prep.readers.common import (
    ReadCursor,
    check_invert,
    find_path,
    folder_record_maker,
    iter_tab_labels,
    start_reading,
)
from data_prep.rejects import Rejects

SOURCE = "hme100k"


def locate(
    root: Path, split: str, labels_file: str | Path | None, images_dir: str | Path | None
) -> tuple[Path, Path]:
    bases = [root / split, root]
    labels = find_path(
        root,
        labels_file,
        [b / f"{split}_labels.txt" for b in bases]
        + [b / "labels.txt" for b in bases]
        + [root / split / "caption.txt"],
        f"hme100k labels for split {split!r}",
    )
    base = labels.parent
    images = find_path(
        root,
        images_dir,
        [base / f"{split}_images", base / "images", base / split],
        f"hme100k images for split {split!r}",
        folder=True,
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
    invert: str | bool = "auto",
    cursor: ReadCursor | None = None,
) -> Iterator[Record]:
    """Main-task records of one HME100K split (``train`` or ``test``).

    Options:
        labels_file: labels file instead of the search (``<split>_labels.txt`` or
            ``labels.txt`` in ``root/<split>`` or ``root``, then ``<split>/caption.txt`` as in
            Uni-MuMER's ``data.zip``); names with or without ``.jpg``.
        images_dir: image folder instead of ``<split>_images/`` beside the labels.
        drop_cjk: reject labels containing CJK characters (reason ``cjk_label``).
        invert: ink polarity: ``"auto"`` (default) decides per image from its border and
            histogram (:func:`data_prep.ink.ink_is_light`); ``true``/``false`` force it.
            ``meta["inverted"]`` records what was done.
        cursor: a :class:`~data_prep.readers.common.ReadCursor`: the build's resume position
            (its first ``skip`` items are passed over without opening their images).

    Rejects: ``bad_encoding``, ``no_tab``, ``empty_label``, ``cjk_label``, ``duplicate_id``,
    ``missing_image``, ``unreadable_image``, ``path_escapes_root``, ``pickle_refused``. ``meta``
    holds ``has_cjk``, ``image_file``, ``label_file`` and ``line`` (the labels file's line number).
    """
    root = Path(root).absolute()
    cursor, rejects = start_reading(cursor, rejects)
    invert = check_invert(invert, SOURCE)
    labels, images = locate(root, split, labels_file, images_dir)
    maker, index = folder_record_maker(SOURCE, split, rejects, labels, images, invert=invert, cursor=cursor)
    for line, name, label in iter_tab_labels(labels, SOURCE, rejects):
        cjk = has_cjk(label)
        if cjk and drop_cjk:
            maker.reject("cjk_label", line, f"{name}: {label[:80]}")
            continue
        record = maker.make(line, name.rsplit(".", 1)[0], label, index.get(name), has_cjk=cjk)
        if record is not None:
            yield record
