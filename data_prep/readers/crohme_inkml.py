"""CROHME online handwriting (InkML, 2011-2019 and 2023), rendered to offline images.

Each ``NAME.inkml`` holds strokes (``<trace>``: ``x y, x y`` or ``x y t, ...``, integer or decimal)
and, in training and ground-truth files, the raw LaTeX in ``<annotation type="truth">`` (sometimes
wrapped in ``$``). The truth is tokenised with :func:`data_prep.latex.tokenize_latex`; the strokes
are rendered black on white by :func:`data_prep.render.inkml.render_traces`, sized like the official
offline bitmaps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_prep.contract import Record
from data_prep.readers.common import ReadCursor, iter_tab_labels, option_path, require_file, start_reading
from data_prep.readers.inkml import InkmlDocument, inkml_files, iter_inkml_records, render_options
from data_prep.rejects import Rejects
from data_prep.render.inkml import RenderOptions

SOURCE = "crohme_inkml"


def _captions(path: Path, rejects: Rejects) -> dict[str, str]:
    """``NAME -> tokens`` from a CROHME caption file (for test InkML files that carry no truth)."""
    return {name: label for _, name, label in iter_tab_labels(path, SOURCE, rejects)}


def read(
    root: Path,
    split: str,
    rejects: Rejects,
    *,
    inkml_dir: str | Path | None = None,
    caption_file: str | Path | None = None,
    render: RenderOptions | dict[str, Any] | None = None,
    cursor: ReadCursor | None = None,
) -> Iterator[Record]:
    """Main-task records from the InkML files of one split.

    Options:
        inkml_dir: folder searched recursively for ``*.inkml`` (default ``root/split`` when it
            exists, else ``root``).
        caption_file: a CROHME caption file (``NAME<TAB>tokens``, already tokenised) whose labels
            are used instead of the in-file truth. This labels the test-input InkML files, which
            carry no truth (their names match the offline ``NAME_0.bmp`` captions).
        render: :class:`~data_prep.render.inkml.RenderOptions` (or a dict of its fields).
        cursor: a :class:`~data_prep.readers.common.ReadCursor`: the build's resume position
            (its first ``skip`` files are passed over without being parsed).

    Files without truth are rejected (``no_truth``) because a record needs an answer. Other
    rejects: ``malformed_xml`` (also unsafe XML: entities, DTDs), ``bad_encoding``,
    ``malformed_trace``, ``no_traces``, ``empty_label``, ``latex_error``, ``path_escapes_root``.
    """
    root = Path(root).absolute()
    cursor, rejects = start_reading(cursor, rejects)
    folder, files = inkml_files(root, split, inkml_dir)
    options = render_options(render)
    captions = None
    if caption_file is not None:
        captions = _captions(require_file(option_path(root, caption_file), "caption file"), rejects)

    def pick_label(path: Path, document: InkmlDocument) -> tuple[str | None, dict]:
        meta = {
            k: document.annotations[k] for k in ("UI", "copyright", "writer") if document.annotations.get(k)
        }
        if captions is not None:
            return captions.get(path.stem), {**meta, "label_from": "caption_file"}
        return document.annotations.get("truth"), {**meta, "label_from": "truth"}

    yield from iter_inkml_records(
        files,
        folder,
        SOURCE,
        split,
        rejects,
        pick_label,
        tokenize_label=captions is None,
        render_options=options,
        cursor=cursor,
    )
