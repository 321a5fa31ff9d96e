"""CROHME offline bitmaps with their token captions (the WAP/BTTR/CoMER lineage).

Two layouts are read:

* ``wap`` (WAP, BTTR, the repo's ``samples/crohme2014_test``): one caption file and one image
  folder side by side, e.g. ``caption_wap.txt`` + ``off_image_test/NAME_0.bmp``.
* ``comer`` (CoMER, TAMER, Uni-MuMER): ``data/<split>/caption.txt`` + ``data/<split>/img/NAME.bmp``,
  ``split`` being ``train``, ``2014``, ``2016`` or ``2019``.

Captions are ``NAME<TAB>space separated tokens``, split on ``\\n`` only. Bitmaps are white ink on
black and are inverted. The caption *edition* (``wap`` or ``comer``; 85 of the 986 CROHME 2014 lines
differ, mostly ``\\limits``) is recorded in ``meta`` because published tables score against the
CoMER edition.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from data_prep.contract import Record
from data_prep.images import DatasetRoot
from data_prep.images import invert as invert_image
from data_prep.readers.common import (
    ReadCursor,
    RecordMaker,
    find_path,
    index_images,
    iter_tab_labels,
    start_reading,
)
from data_prep.rejects import Rejects

SOURCE = "crohme"
EDITIONS = ("wap", "comer")


def locate(
    root: Path,
    split: str,
    edition: str | None = None,
    caption_file: str | Path | None = None,
    images_dir: str | Path | None = None,
) -> tuple[Path, Path, str]:
    """``(caption_file, images_dir, edition)`` for a download, with clear errors when absent."""
    if edition is not None and edition not in EDITIONS:
        raise ValueError(f"crohme: unknown edition {edition!r}; expected one of {', '.join(EDITIONS)}")
    comer_dirs = [root / "data" / split, root / split]
    comer_dir = next((d for d in comer_dirs if (d / "caption.txt").is_file()), None)
    if caption_file is None and comer_dir is not None:
        captions = comer_dir / "caption.txt"
    else:
        names = [f"caption_{edition}.txt"] if edition else [f"caption_{e}.txt" for e in EDITIONS]
        names += [f"{split}_caption.txt", "caption.txt"]
        captions = find_path(
            root, caption_file, [root / n for n in names], f"crohme caption file for split {split!r}"
        )
    if edition is None:
        stem = captions.stem.lower()
        edition = (
            "comer" if (comer_dir is not None and captions.parent == comer_dir) or "comer" in stem else "wap"
        )
    bases = [captions.parent] if captions.parent == root else [captions.parent, root]
    names = ["img", f"off_image_{split}", split, "images"]
    images = find_path(
        root,
        images_dir,
        [base / n for base in bases for n in names] + bases,
        f"crohme images folder for split {split!r}",
        folder=True,
    )
    return captions, images, edition


def read(
    root: Path,
    split: str,
    rejects: Rejects,
    *,
    edition: str | None = None,
    caption_file: str | Path | None = None,
    images_dir: str | Path | None = None,
    invert: bool = True,
    cursor: ReadCursor | None = None,
) -> Iterator[Record]:
    """Main-task records of one CROHME split.

    Options:
        edition: ``"wap"`` or ``"comer"``: which caption edition this is (and, in a folder holding
            ``caption_wap.txt`` and ``caption_comer.txt``, which one to read). Default: ``comer``
            for the CoMER layout or a caption file named ``*comer*``, else ``wap``.
        caption_file: caption file (relative to ``root`` or absolute) instead of the search.
        images_dir: image folder (relative to ``root`` or absolute) instead of the search
            (``img/``, ``off_image_<split>/``, ``<split>/``, ``images/`` beside the captions).
        invert: invert the white-on-black bitmaps (default ``True``).
        cursor: a :class:`~data_prep.readers.common.ReadCursor`: the build's resume position
            (its first ``skip`` items are passed over without opening their images).

    Rejected: ``bad_encoding``, ``no_tab``, ``empty_label``, ``duplicate_id``, ``missing_image``,
    ``unreadable_image``, ``path_escapes_root``, ``pickle_refused``. ``meta`` holds ``edition``,
    ``image_file``, ``label_file`` (the caption file's name) and ``line`` (its line number).
    """
    root = Path(root).absolute()
    cursor, rejects = start_reading(cursor, rejects)
    captions, images, edition = locate(root, split, edition, caption_file, images_dir)
    index = index_images(images)
    maker = RecordMaker(
        SOURCE,
        split,
        rejects,
        captions,
        DatasetRoot(images),
        prepare=invert_image if invert else None,
        cursor=cursor,
    )
    for line, name, label in iter_tab_labels(captions, SOURCE, rejects):
        # WAP names its bitmaps NAME_0.bmp, CoMER NAME.bmp.
        image_path = index.get(name) or index.get(f"{name}_0")
        record = maker.make(line, name, label, image_path, edition=edition)
        if record is not None:
            yield record
