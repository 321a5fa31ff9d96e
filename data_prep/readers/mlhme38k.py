"""MLHME-38K (multi-line handwritten expressions): ``train_set/all_labels.txt`` + ``train_images/``.

Label lines are ``NAME TOKENS...`` (space separated; ``NAME`` with or without its image suffix).
Multi-line formulas use ``\\begin{array}{l} ... \\\\ ... \\end{array}``; when such a label is broken
over several physical lines (its ``\\begin`` not yet closed by ``\\end``), the following lines are
joined onto it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from data_prep.contract import Record
from data_prep.readers.common import (
    ReadCursor,
    check_invert,
    find_path,
    folder_record_maker,
    iter_text_lines,
    start_reading,
)
from data_prep.rejects import Rejects

SOURCE = "mlhme38k"
_BEGIN = re.compile(r"\\begin(?![A-Za-z])")
_END = re.compile(r"\\end(?![A-Za-z])")


def _open_environments(label: str) -> int:
    return len(_BEGIN.findall(label)) - len(_END.findall(label))


def _labels(path: Path, rejects: Rejects) -> Iterator[tuple[int, str, str]]:
    """``(first_line, name, label)``; continuation lines of an unclosed environment are joined."""
    pending: tuple[int, str, str] | None = None
    for line_number, text in iter_text_lines(path, SOURCE, rejects):
        if pending is not None and _open_environments(pending[2]) > 0:
            pending = (pending[0], pending[1], f"{pending[2]} {text.strip()}")
            continue
        if pending is not None:
            yield pending
        name, _, label = text.strip().partition(" ")
        pending = (line_number, name, label.strip())
    if pending is not None:
        if _open_environments(pending[2]) > 0:
            rejects.add(
                SOURCE, "latex_error", path, pending[0], f"{pending[1]}: \\begin without \\end at end of file"
            )
        else:
            yield pending


def read(
    root: Path,
    split: str,
    rejects: Rejects,
    *,
    labels_file: str | Path | None = None,
    images_dir: str | Path | None = None,
    tokenize_labels: bool = True,
    invert: str | bool = "auto",
    cursor: ReadCursor | None = None,
) -> Iterator[Record]:
    """Main-task records of MLHME-38K (``split`` ``train``; the folder is ``<split>_set/``).

    Options:
        labels_file: labels file instead of ``<split>_set/all_labels.txt`` (or ``all_labels.txt``).
        images_dir: image folder instead of ``<split>_images/`` (or ``images/``) beside the labels.
        tokenize_labels: tokenise raw labels with ``data_prep.latex.tokenize_latex`` so
            environments and braces follow the shared token format (default ``True``); a label
            that is already tokenised is kept exactly as published.
        invert: ink polarity: ``"auto"`` (default) decides per image from its border and
            histogram (:func:`data_prep.ink.ink_is_light`); ``true``/``false`` force it.
            ``meta["inverted"]`` records what was done.
        cursor: a :class:`~data_prep.readers.common.ReadCursor`: the build's resume position
            (its first ``skip`` items are passed over without opening their images).

    Rejects: ``bad_encoding``, ``empty_label``, ``duplicate_id``, ``latex_error`` (also an unclosed
    environment at the end of the file), ``missing_image``, ``unreadable_image``,
    ``path_escapes_root``, ``pickle_refused``. ``meta`` holds ``image_file``, ``label_file`` and
    ``line`` (the labels file's line number; a label's first line when it spans several).
    """
    root = Path(root).absolute()
    cursor, rejects = start_reading(cursor, rejects)
    invert = check_invert(invert, SOURCE)
    bases = [root / f"{split}_set", root / split, root]
    labels = find_path(
        root,
        labels_file,
        [b / n for b in bases for n in ("all_labels.txt", f"{split}_labels.txt")],
        "mlhme38k labels",
    )
    base = labels.parent
    images = find_path(
        root, images_dir, [base / f"{split}_images", base / "images"], "mlhme38k images folder", folder=True
    )
    maker, index = folder_record_maker(
        SOURCE, split, rejects, labels, images, tokenize_labels=tokenize_labels, invert=invert, cursor=cursor
    )
    for line, name, label in _labels(labels, rejects):
        if not name or not label:
            maker.reject("empty_label", line, f"name {name!r}")
            continue
        image_path = index.get(name)
        image_id = image_path.stem if image_path is not None else name
        record = maker.make(line, image_id, label, image_path)
        if record is not None:
            yield record
