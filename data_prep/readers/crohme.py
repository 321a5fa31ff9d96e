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

from data_prep.contract import Record, main_record
from data_prep.images import invert as invert_image
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
    if caption_file is not None:
        captions = require_file(option_path(root, caption_file), "crohme caption file")
    elif comer_dir is not None:
        captions = comer_dir / "caption.txt"
    else:
        names = [f"caption_{edition}.txt"] if edition else [f"caption_{e}.txt" for e in EDITIONS]
        names += [f"{split}_caption.txt", "caption.txt"]
        captions = first_existing([root / n for n in names], f"crohme caption file for split {split!r}")
    if edition is None:
        stem = captions.stem.lower()
        edition = (
            "comer" if (comer_dir is not None and captions.parent == comer_dir) or "comer" in stem else "wap"
        )
    if images_dir is not None:
        images = require_dir(option_path(root, images_dir), "crohme images folder")
    else:
        bases = [captions.parent] if captions.parent == root else [captions.parent, root]
        names = ["img", f"off_image_{split}", split, "images"]
        images = first_existing(
            [base / n for base in bases for n in names] + bases, f"crohme images folder for split {split!r}"
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

    Rejected: ``bad_encoding``, ``no_tab``, ``empty_label``, ``duplicate_id``, ``missing_image``,
    ``unreadable_image``, ``path_escapes_root``, ``pickle_refused``.
    """
    root = Path(root).absolute()
    captions, images, edition = locate(root, split, edition, caption_file, images_dir)
    index = index_images(images)
    seen: set[str] = set()
    for line_number, text in iter_text_lines(captions, SOURCE, rejects):
        name, tab, label = text.partition("\t")
        name = name.strip()
        if not tab:
            rejects.add(SOURCE, "no_tab", captions, line_number, f"expected NAME<TAB>tokens: {text[:80]!r}")
            continue
        if not label.strip() or not name:
            rejects.add(SOURCE, "empty_label", captions, line_number, f"name {name!r}")
            continue
        if name in seen:
            rejects.add(SOURCE, "duplicate_id", captions, line_number, name)
            continue
        image_path = index.get(name) or index.get(f"{name}_0")
        if image_path is None:
            rejects.add(
                SOURCE, "missing_image", captions, line_number, f"no {name}.bmp or {name}_0.bmp in {images}"
            )
            continue
        # Confined to the image folder: a symlinked file pointing elsewhere is refused.
        image = load_or_reject(image_path, images, SOURCE, rejects, captions, line_number)
        if image is None:
            continue
        if invert:
            image = invert_image(image)
        seen.add(name)
        yield main_record(
            name,
            SOURCE,
            split,
            image,
            label,
            edition=edition,
            image_file=image_path.name,
            caption_file=captions.name,
        )
