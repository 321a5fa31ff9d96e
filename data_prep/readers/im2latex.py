"""im2latex-100k (rendered LaTeX from arXiv papers), in its three distributed variants.

* ``raw`` (harvardnlp/im2markup, the original release): ``im2latex_formulas.lst`` (or
  ``formulas.lst``), split lists ``im2latex_<split>.lst`` (or ``<split>.lst``) with lines
  ``FORMULA_IDX IMAGE_NAME RENDER_TYPE``, full-page PNGs in ``formula_images/`` (or ``images/``).
  Pages are cropped to the formula plus a margin; formulas are tokenised.
* ``norm`` (the preprocessed release): ``im2latex_formulas.norm.lst`` (already tokenised), split
  lists ``im2latex_<split>_filter.lst`` (lines ``IMAGE_NAME.png FORMULA_IDX``) or the raw lists,
  images in ``formula_images_processed/``.
* ``csv`` (the Kaggle copy): ``im2latex_<split>.csv`` with ``formula,image`` columns, images in
  ``formula_images_processed/``.

The formula file is split on ``\\n`` only: universal newlines give 104,563 lines instead of
103,558 and shift every index.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from data_prep.contract import Record
from data_prep.images import DatasetRoot, crop_to_ink
from data_prep.readers.common import (
    UTF8_BOM,
    ReadCursor,
    RecordMaker,
    check_invert,
    find_path,
    iter_lines,
    start_reading,
)
from data_prep.rejects import Rejects

SOURCE = "im2latex"
VARIANTS = ("raw", "norm", "csv")
_SPLIT_ALIASES = {"val": "validate", "valid": "validate", "validation": "validate"}


def _formulas(path: Path) -> list[str | None]:
    """Formula per 0-based index (``None`` where the line is not UTF-8: rejected when used)."""
    formulas: list[str | None] = []
    for raw in path.read_bytes().removeprefix(UTF8_BOM).split(b"\n"):
        try:
            formulas.append(raw.removesuffix(b"\r").decode("utf-8"))
        except UnicodeDecodeError:
            formulas.append(None)
    if formulas and formulas[-1] == "":
        formulas.pop()  # the newline after the last formula
    return formulas


def _detect_variant(root: Path, split: str) -> str:
    if any((root / n).is_file() for n in (f"im2latex_{split}.csv", f"{split}.csv")):
        return "csv"
    if any((root / n).is_file() for n in ("im2latex_formulas.norm.lst", "formulas.norm.lst")):
        return "norm"
    return "raw"


def _split_items(list_file: Path, rejects: Rejects) -> Iterator[tuple[int, str, int, str]]:
    """``(line, image_name, formula_index, render_type)`` from either split-list format."""
    for line_number, raw in iter_lines(list_file):
        fields = raw.decode("utf-8", errors="replace").split()
        if len(fields) >= 2 and fields[0].isdigit():  # IDX NAME [RENDER_TYPE]
            index, name, render = fields[0], fields[1], fields[2] if len(fields) > 2 else ""
        elif len(fields) == 2 and fields[1].isdigit():  # NAME.png IDX (filter lists)
            name, index, render = fields[0], fields[1], ""
        else:
            rejects.add(SOURCE, "bad_split_line", list_file, line_number, f"{raw[:80]!r}")
            continue
        yield line_number, name, int(index), render


def read(
    root: Path,
    split: str,
    rejects: Rejects,
    *,
    variant: str = "auto",
    images_dir: str | Path | None = None,
    formulas_file: str | Path | None = None,
    split_file: str | Path | None = None,
    tokenize_formulas: bool | None = None,
    crop: bool = True,
    margin: int = 8,
    invert: str | bool = "auto",
    cursor: ReadCursor | None = None,
) -> Iterator[Record]:
    """Main-task records of one im2latex split (``train``, ``validate``/``val``, ``test``).

    Options:
        variant: ``raw``, ``norm``, ``csv`` or ``auto`` (csv if ``im2latex_<split>.csv`` exists,
            else norm if ``im2latex_formulas.norm.lst`` exists, else raw).
        images_dir, formulas_file, split_file: override the searched paths (relative to root).
        tokenize_formulas: tokenise with ``data_prep.latex.tokenize_latex`` (default: yes for raw
            and csv, no for the already tokenised norm file).
        crop: crop to the ink bounding box plus ``margin`` pixels (default on; needed for the
            raw full pages, harmless on processed ones).
        invert: ink polarity: ``"auto"`` (default) decides per image from its border and
            histogram (:func:`data_prep.ink.ink_is_light`); ``true``/``false`` force it.
            ``meta["inverted"]`` records what was done.
        cursor: a :class:`~data_prep.readers.common.ReadCursor`: the build's resume position
            (its first ``skip`` items are passed over without opening their images).

    Rejects: ``bad_split_line``, ``missing_formula`` (index past the end), ``bad_encoding``,
    ``empty_label``, ``duplicate_id``, ``latex_error``, ``missing_image``, ``unreadable_image``,
    ``path_escapes_root``, ``pickle_refused``, ``blank_image``. ``meta`` holds ``variant``,
    ``image_file``, ``formula_index`` and ``render_type`` (list files), ``label_file`` (the split
    list or csv) and ``line`` (its line number).
    """
    root = Path(root).absolute()
    cursor, rejects = start_reading(cursor, rejects)
    invert = check_invert(invert, SOURCE)
    split = _SPLIT_ALIASES.get(split, split)
    if variant == "auto":
        variant = _detect_variant(root, split)
    if variant not in VARIANTS:
        raise ValueError(
            f"im2latex: unknown variant {variant!r}; expected auto or one of {', '.join(VARIANTS)}"
        )
    if tokenize_formulas is None:
        tokenize_formulas = variant != "norm"
    image_names = ["formula_images", "images"]
    if variant != "raw":
        image_names = ["formula_images_processed", "images_processed", *image_names]
    images = find_path(
        root, images_dir, [root / n for n in image_names], "im2latex images folder", folder=True
    )

    def items() -> Iterator[tuple[Path, int, str, str | None, dict]]:
        """``(file, line, image_name, formula or None, meta)`` per sample."""
        if variant == "csv":
            path = find_path(
                root,
                split_file,
                [root / f"im2latex_{split}.csv", root / f"{split}.csv"],
                f"im2latex csv for split {split!r}",
            )
            try:
                text = path.read_bytes().decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path} is not UTF-8 text: {err}") from None
            reader = csv.DictReader(io.StringIO(text, newline=""))
            if not reader.fieldnames or not {"formula", "image"} <= set(reader.fieldnames):
                raise ValueError(f"{path}: expected columns 'formula' and 'image', found {reader.fieldnames}")
            for row in reader:
                yield path, reader.line_num, row["image"] or "", row["formula"], {}
            return
        names = ["im2latex_formulas.norm.lst", "formulas.norm.lst"] if variant == "norm" else []
        names += ["im2latex_formulas.lst", "formulas.lst"] if variant == "raw" else []
        formulas_path = find_path(root, formulas_file, [root / n for n in names], "im2latex formulas file")
        formulas = _formulas(formulas_path)
        lists = [f"im2latex_{split}_filter.lst", f"{split}_filter.lst"] if variant == "norm" else []
        lists += [f"im2latex_{split}.lst", f"{split}.lst"]
        list_path = find_path(
            root, split_file, [root / n for n in lists], f"im2latex split list for {split!r}"
        )
        for line_number, name, index, render in _split_items(list_path, rejects):
            if index >= len(formulas):
                rejects.add(
                    SOURCE, "missing_formula", list_path, line_number, f"index {index} >= {len(formulas)}"
                )
                continue
            formula = formulas[index]
            if formula is None:
                rejects.add(SOURCE, "bad_encoding", formulas_path, index + 1, "formula line is not UTF-8")
                continue
            meta = {"formula_index": index, **({"render_type": render} if render else {})}
            yield list_path, line_number, name, formula, meta

    prepare = (lambda image: crop_to_ink(image, margin=margin)) if crop else None
    maker: RecordMaker | None = None
    for file, line, name, formula, meta in items():
        if maker is None:  # the label file (csv or split list) is known once items() has found it
            maker = RecordMaker(
                SOURCE,
                split,
                rejects,
                file,
                DatasetRoot(images),
                tokenize_formulas,
                prepare,
                invert=invert,
                polarity_first=False,
                cursor=cursor,
            )
        if not formula or not formula.strip():
            maker.reject("empty_label", line, name)
            continue
        if not name.strip():
            maker.reject("missing_image", line, "no image name")
            continue
        image_name = name if Path(name).suffix else f"{name}.png"
        record = maker.make(
            line,
            Path(image_name).stem,
            formula,
            images / image_name,
            variant=variant,
            image_file=image_name,
            **meta,
        )
        if record is not None:
            yield record
