"""The ``synthetic`` source: formulas of a corpus rendered into images, TexTeller-style.

    - name: rendered
      reader: synthetic
      root: .                      # corpus paths are relative to it
      split: train                 # a label only (kept in the record ids)
      options:
        corpus: {generator: {symbols: digits+operators, max_symbols: 6}, count: 20000, seed: 7}
        renderings: 2              # images per formula
        renderer: mathtext         # or latex (latex + dvipng on PATH)
        style: {fontsets: [cm, stix], font_size: [18, 24], augment: 0.5}
        canvas: [168, 32]          # optional fixed page size
        seed: 0

Each item is one (formula, rendering): a main record whose answer is the formula in the answer
format and whose image is a :class:`data_prep.render.engine.RenderJob`, drawn in the build's worker
processes. A formula that cannot be drawn, or comes out blank or clipped, is rejected there with
the reason (``render_unsupported``, ``render_blank``, ``render_clipped`` ...). A training rendering
whose formula is in a test set is held back by the build's contamination check
(``contamination.rendered_formula``, ``exclude`` by default) and counted in the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_prep.contract import Record, main_record
from data_prep.readers.common import ReadCursor, start_reading
from data_prep.rejects import Rejects

SOURCE = "synthetic"


def read(
    root: Path,
    split: str,
    rejects: Rejects,
    *,
    corpus: dict[str, Any],
    renderings: int = 1,
    renderer: str = "mathtext",
    style: dict[str, Any] | None = None,
    canvas: list[int] | None = None,
    seed: int = 0,
    cursor: ReadCursor | None = None,
) -> Iterator[Record]:
    from data_prep.render.corpus import iter_corpus
    from data_prep.render.engine import RenderJob
    from data_prep.render.renderers import get_renderer
    from data_prep.render.style import StyleSpace

    if not isinstance(corpus, dict):
        raise ValueError("synthetic: 'corpus' must be a mapping (see data_prep.render.corpus)")
    if int(renderings) < 1:
        raise ValueError("synthetic: 'renderings' must be at least 1")
    get_renderer(renderer)  # fails now, with the reason, when the renderer cannot run here
    space = StyleSpace.from_options(style or {})
    page = None
    if canvas is not None:
        if not (isinstance(canvas, (list, tuple)) and len(canvas) == 2 and min(canvas) > 0):
            raise ValueError(f"synthetic: 'canvas' is [width, height] in pixels, got {canvas!r}")
        page = (int(canvas[0]), int(canvas[1]))
    cursor, rejects = start_reading(cursor, rejects)
    for formula_id, latex in iter_corpus(corpus, Path(root), SOURCE, rejects):
        for k in range(int(renderings)):
            cursor.passed += 1
            if cursor.passed <= cursor.skip:
                continue
            record_id = f"{split}-{formula_id}-r{k}"
            look = space.sample(seed, record_id)
            yield main_record(
                record_id,
                SOURCE,
                split,
                RenderJob(latex, look, renderer, page),
                latex,
                rendered=True,
                renderer=renderer,
                formula_id=formula_id,
                style=look.to_meta(),
            )
