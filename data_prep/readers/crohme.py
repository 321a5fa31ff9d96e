"""CROHME offline bitmaps with their token captions (the WAP/BTTR/CoMER lineage).

Two layouts are read:

* ``wap`` (WAP, BTTR, the repo's ``samples/crohme2014_test``): one caption file and one image
  folder side by side, e.g. ``caption_wap.txt`` + ``off_image_test/NAME_0.bmp``.
* ``comer`` (CoMER, TAMER): ``data/<split>/caption.txt`` + ``data/<split>/img/NAME.bmp``,
  ``split`` being ``train``, ``2014``, ``2016`` or ``2019``; Uni-MuMER's ``data.zip`` has the same
  captions as ``data/CROHME/<split>/caption.txt`` + ``<split>/images/NAME.jpg`` (``root`` is then
  ``data/CROHME``).

Captions are ``NAME<TAB>space separated tokens``, split on ``\\n`` only. Bitmaps are white ink on
black; ``data.zip``'s JPGs black on white: the ink polarity is decided per image
(``invert: auto``) so both end as dark ink on a light page. The caption *edition* (``wap`` or ``comer``; 85 of the 986 CROHME 2014 lines
differ, mostly ``\\limits``) is recorded in ``meta`` because published tables score against the
CoMER edition.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from data_prep.contract import Record
from data_prep.readers.common import (
    ReadCursor,
    check_invert,
    find_path,
    first_existing,
    folder_record_maker,
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
    """``(caption_file, images_dir, edition)`` of one split, with an error listing every place
    looked at when absent.

    The search only accepts files that name the split: ``data/<split>/caption.txt``,
    ``<split>/caption.txt`` or ``CROHME/<split>/caption.txt`` (CoMER, Uni-MuMER's ``data.zip``
    with ``root`` its ``data/CROHME`` or ``data`` folder), ``<split>_caption.txt`` or
    ``caption_<split>.txt``, and a split-less WAP caption (``caption_wap.txt``,
    ``caption_comer.txt``, ``caption.txt``) only beside an ``off_image_<split>/`` folder. It never
    falls back to another split's captions, nor to the caption folder itself for images: a folder
    holding one caption file is read with ``caption_file`` (and ``images_dir``) named.
    """
    if edition is not None and edition not in EDITIONS:
        raise ValueError(f"crohme: unknown edition {edition!r}; expected one of {', '.join(EDITIONS)}")
    # CoMER's data/<split>/, data.zip's <split>/ (root data/CROHME) or CROHME/<split>/ (root data/).
    split_dirs = [root / "data" / split, root / split, root / "CROHME" / split]
    if caption_file is not None:
        captions = find_path(root, caption_file, [], f"crohme caption file for split {split!r}")
    else:
        candidates = [d / "caption.txt" for d in split_dirs]
        candidates += [root / f"{split}_caption.txt", root / f"caption_{split}.txt"]
        if (root / f"off_image_{split}").is_dir():
            names = [f"caption_{edition}.txt"] if edition else [f"caption_{e}.txt" for e in EDITIONS]
            candidates += [root / n for n in [*names, "caption.txt"]]
        candidates = [c for c in candidates if c.is_file()] or candidates
        captions = first_existing(candidates, f"crohme caption file for split {split!r}")
    in_split_dir = captions.parent in split_dirs or captions.parent.name == split
    if edition is None:
        edition = "comer" if in_split_dir or "comer" in captions.stem.lower() else "wap"
    base = captions.parent
    names = [f"off_image_{split}", f"{split}_images"]
    if in_split_dir or caption_file is not None:
        names = ["img", "images", *names]
    candidates = [base / n for n in names]
    if images_dir is None and not any(c.is_dir() for c in candidates) and (base / "images.pkl").exists():
        raise FileNotFoundError(
            f"crohme images folder for split {split!r} not found: {base} holds images.pkl, a pickle, "
            "which is never loaded (it could run code); use a copy with image files (docs/datasets.md)"
        )
    images = find_path(root, images_dir, candidates, f"crohme images folder for split {split!r}", folder=True)
    return captions, images, edition


def read(
    root: Path,
    split: str,
    rejects: Rejects,
    *,
    edition: str | None = None,
    caption_file: str | Path | None = None,
    images_dir: str | Path | None = None,
    invert: str | bool = "auto",
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
        invert: ink polarity: ``"auto"`` (default) decides per image from its border and
            histogram (:func:`data_prep.ink.ink_is_light`), so the white-on-black bitmaps of
            WAP/CoMER are inverted and the black-on-white JPGs of Uni-MuMER's ``data.zip`` are
            not; ``true``/``false`` force it. ``meta["inverted"]`` records what was done.
        cursor: a :class:`~data_prep.readers.common.ReadCursor`: the build's resume position
            (its first ``skip`` items are passed over without opening their images).

    Rejected: ``bad_encoding``, ``no_tab``, ``empty_label``, ``duplicate_id``, ``missing_image``,
    ``unreadable_image``, ``path_escapes_root``, ``pickle_refused``. ``meta`` holds ``edition``,
    ``image_file``, ``label_file`` (the caption file's name) and ``line`` (its line number).
    """
    root = Path(root).absolute()
    cursor, rejects = start_reading(cursor, rejects)
    captions, images, edition = locate(root, split, edition, caption_file, images_dir)
    maker, index = folder_record_maker(
        SOURCE, split, rejects, captions, images, invert=check_invert(invert, SOURCE), cursor=cursor
    )
    for line, name, label in iter_tab_labels(captions, SOURCE, rejects):
        # WAP names its bitmaps NAME_0.bmp, CoMER NAME.bmp.
        image_path = index.get(name) or index.get(f"{name}_0")
        record = maker.make(line, name, label, image_path, edition=edition)
        if record is not None:
            yield record
