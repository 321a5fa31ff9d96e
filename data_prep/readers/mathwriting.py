"""MathWriting (Google, 2024): InkML handwriting with normalised LaTeX labels, rendered to images.

Download layout: ``mathwriting-2024/{train,valid,test,synthetic,symbols}/*.inkml``. Each file's
``<annotation type="normalizedLabel">`` (falling back to ``label``) is tokenised with
:func:`data_prep.latex.tokenize_latex`; the strokes (``x y t`` decimals) are rendered with the
same renderer as CROHME online data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_prep.contract import Record
from data_prep.readers.common import ReadCursor, start_reading
from data_prep.readers.inkml import InkmlDocument, inkml_files, iter_inkml_records, render_options
from data_prep.rejects import Rejects
from data_prep.render.inkml import RenderOptions

SOURCE = "mathwriting"
LABEL_TYPES = ("normalizedLabel", "label")


def read(
    root: Path,
    split: str,
    rejects: Rejects,
    *,
    inkml_dir: str | Path | None = None,
    label_type: str = "normalizedLabel",
    render: RenderOptions | dict[str, Any] | None = None,
    cursor: ReadCursor | None = None,
) -> Iterator[Record]:
    """Main-task records of one MathWriting split (``train``, ``valid``, ``test``, ``synthetic``).

    Options:
        inkml_dir: folder searched recursively for ``*.inkml`` (default ``root/split`` when it
            exists, else ``root``).
        label_type: preferred annotation, ``normalizedLabel`` (default) or ``label``; the other is
            the fallback. ``meta["label_type"]`` says which one was used.
        render: :class:`~data_prep.render.inkml.RenderOptions` (or a dict of its fields).
        cursor: a :class:`~data_prep.readers.common.ReadCursor`: the build's resume position
            (its first ``skip`` files are passed over without being parsed).

    Rejects: ``no_truth`` (neither label), ``empty_label``, ``latex_error``, ``malformed_xml``,
    ``bad_encoding``, ``malformed_trace``, ``no_traces``, ``path_escapes_root``.
    """
    if label_type not in LABEL_TYPES:
        raise ValueError(
            f"mathwriting: unknown label_type {label_type!r}; expected one of {', '.join(LABEL_TYPES)}"
        )
    root = Path(root).absolute()
    cursor, rejects = start_reading(cursor, rejects)
    folder, files = inkml_files(root, split, inkml_dir)
    options = render_options(render)
    order = (label_type, *(t for t in LABEL_TYPES if t != label_type))

    def pick_label(path: Path, document: InkmlDocument) -> tuple[str | None, dict]:
        for kind in order:
            if document.annotations.get(kind, "").strip():
                meta = {"label_type": kind}
                if document.annotations.get("sampleId"):
                    meta["sample_id"] = document.annotations["sampleId"]
                return document.annotations[kind], meta
        return None, {}

    yield from iter_inkml_records(
        files,
        folder,
        SOURCE,
        split,
        rejects,
        pick_label,
        tokenize_label=True,
        render_options=options,
        cursor=cursor,
    )
