"""M2E (multi-line handwritten expressions): JSON lines ``{"name": "0.jpg", "tex": "..."}``.

Its multi-line labels separate lines with a ``\\n`` pseudo-token and aligned columns with ``\\t``
(either as real newline/tab characters after JSON decoding or as the two-character tokens
``\\n``/``\\t``), which are not valid LaTeX. :func:`convert_pseudo_tokens` turns them into LaTeX:

* inside a label that already has an environment (``\\begin{cases}`` ...): ``\\n`` -> ``\\\\``,
  ``\\t`` -> ``&``, in place;
* otherwise the rows are wrapped in ``\\begin {array} {l...l} ... \\end {array}`` (one ``l`` column per
  cell of the widest row, the format MLHME-38K uses), rows joined by ``\\\\``, cells by ``&``.

Blank rows are dropped. A label with no text left is rejected (``empty_label``); one the tokeniser
cannot read is rejected (``latex_error``).
"""

from __future__ import annotations

import json
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

SOURCE = "m2e"
# Real newline/tab characters, or a ``\n`` / ``\t`` token that is not a command like ``\neq`` or
# ``\times`` and not the second half of ``\\``.
_NEWLINE = re.compile(r"\r?\n|(?<!\\)\\n(?![A-Za-z])")
_TAB = re.compile(r"\t|(?<!\\)\\t(?![A-Za-z])")
_HAS_ENVIRONMENT = re.compile(r"\\begin\s*\{")


def convert_pseudo_tokens(tex: str) -> str:
    """Valid LaTeX for an M2E label (see the module doc), whitespace collapsed."""
    rows = [row for row in _NEWLINE.split(tex) if row.strip()]
    if _HAS_ENVIRONMENT.search(tex):
        text = " \\\\ ".join(" & ".join(_TAB.split(row)) for row in rows)
    else:
        cells = [_TAB.split(row) for row in rows]
        if len(cells) <= 1 and all(len(row) <= 1 for row in cells):
            text = cells[0][0] if cells else ""
        else:
            columns = max(len(row) for row in cells)
            body = " \\\\ ".join(" & ".join(row) for row in cells)
            text = f"\\begin {{array}} {{{'l' * columns}}} {body} \\end {{array}}"
    return " ".join(text.split())


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
    """Main-task records of one M2E split.

    Options:
        labels_file: JSON-lines file instead of the search (``<split>.jsonl``, ``<split>.json``,
            ``<split>/<split>.jsonl``, ``<split>/labels.jsonl`` under ``root``).
        images_dir: image folder instead of the search (``<split>/images/``, ``<split>/``,
            ``<split>_images/``, ``images/``).
        tokenize_labels: tokenise the converted LaTeX with ``data_prep.latex.tokenize_latex``
            (default ``True``).
        invert: ink polarity: ``"auto"`` (default) decides per image from its border and
            histogram (:func:`data_prep.ink.ink_is_light`); ``true``/``false`` force it.
            ``meta["inverted"]`` records what was done.
        cursor: a :class:`~data_prep.readers.common.ReadCursor`: the build's resume position
            (its first ``skip`` items are passed over without opening their images).

    Rejects: ``bad_encoding``, ``bad_json`` (not a JSON object with string ``name`` and ``tex``),
    ``empty_label``, ``duplicate_id``, ``latex_error``, ``missing_image``, ``unreadable_image``,
    ``path_escapes_root``, ``pickle_refused``. ``meta`` holds ``multi_line``, ``image_file``,
    ``label_file`` and ``line`` (the labels file's line number).
    """
    root = Path(root).absolute()
    cursor, rejects = start_reading(cursor, rejects)
    invert = check_invert(invert, SOURCE)
    names = [f"{split}.jsonl", f"{split}.json", f"{split}/{split}.jsonl", f"{split}/labels.jsonl"]
    labels = find_path(root, labels_file, [root / n for n in names], f"m2e labels for split {split!r}")
    candidates = [root / split / "images", root / f"{split}_images", root / "images", root / split]
    images = find_path(
        root,
        images_dir,
        [c for c in candidates if c.is_dir()] or candidates,
        "m2e images folder",
        folder=True,
    )
    maker, index = folder_record_maker(
        SOURCE, split, rejects, labels, images, tokenize_labels=tokenize_labels, invert=invert, cursor=cursor
    )
    for line, text in iter_text_lines(labels, SOURCE, rejects):
        try:
            item = json.loads(text)
        except json.JSONDecodeError as err:
            maker.reject("bad_json", line, str(err))
            continue
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("tex"), str)
        ):
            maker.reject("bad_json", line, 'expected {"name": str, "tex": str}')
            continue
        name = item["name"].strip()
        latex = convert_pseudo_tokens(item["tex"])
        if not name or not latex:
            maker.reject("empty_label", line, f"name {name!r}")
            continue
        multi_line = bool(_NEWLINE.search(item["tex"]))
        record = maker.make(line, Path(name).stem, latex, index.get(name), multi_line=multi_line)
        if record is not None:
            yield record
