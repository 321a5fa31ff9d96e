"""Any image folder with a labels file: the layout most home-made and exported datasets have.

The labels file (option ``labels``; default the first of ``<split>/caption.txt``,
``<split>/labels.{tsv,csv,jsonl,txt}``, ``<split>.{tsv,csv,jsonl,txt}`` and
``labels.{tsv,csv,jsonl,txt}`` under ``root``) is one of:

* TSV, ``NAME<TAB>LaTeX`` per line (``.tsv``, ``.txt`` and anything else); an optional header line
  such as ``image<TAB>latex`` is skipped;
* CSV with a header (``.csv``): a name column (``image``, ``file``, ``name``, ``filename``,
  ``path``) and a LaTeX column (``latex``, ``label``, ``text``, ``tex``, ``formula``);
* JSON lines (``.jsonl``): objects with one of those name keys and one of those LaTeX keys.

TSV and CSV fields may be quoted (``"..."``, quotes doubled inside) and then hold newlines; line
ends may be CRLF; a UTF-8 byte-order mark is dropped. Names are paths inside the image folder
(option ``images``; default ``images/``, ``imgs/``, ``img/`` beside the labels file, or its folder), sub-folders
allowed, with or without the file extension. A label already in the answer format (every
space-separated piece one LaTeX token: ``\\frac { a } { b }``) is kept verbatim; raw LaTeX
(``\\frac{a}{b}``) is tokenised with the project's tokeniser, and one it cannot read is rejected
(``latex_error``, with the tokeniser's reason).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from data_prep.contract import Record
from data_prep.readers.common import (
    IMAGE_SUFFIXES,
    ReadCursor,
    check_invert,
    find_path,
    folder_record_maker,
    start_reading,
    tokenize,
)
from data_prep.rejects import Rejects

SOURCE = "labels"
NAME_KEYS = ("image", "file", "name", "filename", "file_name", "image_file", "path")
LATEX_KEYS = ("latex", "label", "text", "tex", "formula", "caption")
#: One LaTeX token: a command, an escaped character or one character.
_TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|.", re.DOTALL)


def is_tokenised(label: str) -> bool:
    """True when every whitespace-separated piece of ``label`` is a single LaTeX token."""
    pieces = label.split()
    return bool(pieces) and all(_TOKEN.fullmatch(piece) for piece in pieces)


def _text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"labels: {path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def _rows(path: Path, rejects: Rejects) -> Iterator[tuple[int, str, str]]:
    """``(line, name, label)``: the line a row starts on, its image name and raw label."""
    text = _text(path)
    if path.suffix.lower() == ".jsonl":
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                rejects.add(SOURCE, "bad_json", path, number, str(err))
                continue
            name = next(
                (item[k] for k in NAME_KEYS if isinstance(item, dict) and isinstance(item.get(k), str)), None
            )
            label = next(
                (item[k] for k in LATEX_KEYS if isinstance(item, dict) and isinstance(item.get(k), str)), None
            )
            if name is None or label is None:
                rejects.add(
                    SOURCE,
                    "bad_json",
                    path,
                    number,
                    f"expected a name key ({', '.join(NAME_KEYS)}) and a LaTeX key ({', '.join(LATEX_KEYS)})",
                )
                continue
            yield number, name, label
        return
    is_csv = path.suffix.lower() == ".csv"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="," if is_csv else "\t")
    name_col, label_col = 0, 1
    start = 1
    first = True
    for row in _csv_rows(reader, path, rejects):
        line, start = start, reader.line_num + 1
        if not row or not any(cell.strip() for cell in row):
            continue
        if first:
            first = False
            lowered = [cell.strip().lower() for cell in row]
            name_cols = [i for i, c in enumerate(lowered) if c in NAME_KEYS]
            label_cols = [i for i, c in enumerate(lowered) if c in LATEX_KEYS]
            if name_cols and label_cols:
                name_col, label_col = name_cols[0], label_cols[0]
                continue
            if is_csv:
                raise ValueError(
                    f"labels: {path}: the first line must be a header naming the image column "
                    f"({', '.join(NAME_KEYS)}) and the LaTeX column ({', '.join(LATEX_KEYS)}); got {row}"
                )
        if len(row) <= max(name_col, label_col):
            expected = "NAME,LaTeX columns" if is_csv else "NAME<TAB>LaTeX"
            rejects.add(
                SOURCE, "no_tab" if not is_csv else "bad_row", path, line, f"expected {expected}: {row!r:.80}"
            )
            continue
        yield line, row[name_col].strip(), row[label_col]


def _csv_rows(reader, path: Path, rejects: Rejects) -> Iterator[list[str]]:
    """The rows of ``reader``; a row the ``csv`` module cannot read (a field past its 131,072
    character limit: a 100 MB caption) is rejected and the reading goes on with the next line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            too_long = "field larger than field limit" in str(err)
            reason = "answer_too_long" if too_long else "bad_row"
            rejects.add(SOURCE, reason, path, reader.line_num, f"csv: {err}")
            continue
        yield row


def _locate(root: Path, split: str, labels: str | None, images: str | None) -> tuple[Path, Path]:
    suffixes = (".tsv", ".csv", ".jsonl", ".txt")
    names = [root / split / "caption.txt"] + [root / split / f"labels{s}" for s in suffixes]
    names += [root / f"{split}{s}" for s in suffixes] + [root / f"labels{s}" for s in suffixes]
    labels_path = find_path(root, labels, names, f"labels file for split {split!r}")
    base = labels_path.parent
    images_path = find_path(
        root,
        images,
        [base / "images", base / "imgs", base / "img", base],
        "labels: image folder",
        folder=True,
    )
    return labels_path, images_path


def read(
    root: Path,
    split: str,
    rejects: Rejects,
    *,
    labels: str | None = None,
    images: str | None = None,
    invert: str | bool = "auto",
    cursor: ReadCursor | None = None,
) -> Iterator[Record]:
    """Main-task records of an image folder + labels file (see the module doc).

    Options:
        labels: the labels file (relative to ``root`` unless absolute) instead of the search.
        images: the image folder instead of the search.
        invert: ink polarity, ``"auto"`` (default, per image) or forced ``true``/``false``.
        cursor: a :class:`~data_prep.readers.common.ReadCursor`: the build's resume position.

    Rejects: ``no_tab``/``bad_row``/``bad_json`` (a row without name and label), ``empty_label``,
    ``latex_error``, ``unbalanced_braces``, ``dangling_script``, ``duplicate_id`` and the image
    reasons (``missing_image`` names the file looked for). ``meta`` holds ``tokenised`` (whether
    the label was tokenised here), ``image_file``, ``label_file``, ``line`` and ``inverted``.
    """
    root = Path(root).absolute()
    cursor, rejects = start_reading(cursor, rejects)
    invert = check_invert(invert, SOURCE)
    labels_path, images_path = _locate(root, split, labels, images)
    maker, flat = folder_record_maker(
        SOURCE, split, rejects, labels_path, images_path, invert=invert, cursor=cursor
    )
    for line, name, label in _rows(labels_path, rejects):
        if not name:
            maker.reject("empty_label", line, "no image name")
            continue
        tokenised_here = not is_tokenised(label)
        latex = label
        if tokenised_here:
            try:
                latex = tokenize(label)
            except ValueError as err:
                maker.reject("latex_error", line, f"{name}: {err}; label: {label[:80]!r}")
                continue
        else:
            latex = " ".join(label.split())
        path = _image_path(images_path, flat, name)
        image_id = str(Path(name).with_suffix("")) if Path(name).suffix.lower() in IMAGE_SUFFIXES else name
        record = maker.make(line, image_id, latex, path, tokenised=tokenised_here, image_file=name)
        if record is not None:
            yield record


def _image_path(images: Path, flat: dict[str, Path], name: str) -> Path | None:
    """The image ``name`` names: itself, or with one of the image suffixes; ``None`` when absent."""
    if "/" not in name and "\\" not in name and name in flat:
        return flat[name]
    candidate = images / name
    if candidate.is_file():
        return candidate
    for suffix in IMAGE_SUFFIXES:
        for variant in (suffix, suffix.upper()):
            with_suffix = images / f"{name}{variant}"
            if with_suffix.is_file():
                return with_suffix
    return None
