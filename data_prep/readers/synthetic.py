"""The ``synthetic`` source: formulas of a corpus rendered into images, TexTeller-style.

    - name: rendered
      reader: synthetic
      root: .                      # corpus paths are relative to it
      split: train                 # a label only (kept in the record ids)
      options:
        corpus: {generator: {symbols: digits+operators, max_symbols: 6}, count: 20000, seed: 7}
        renderings: 2              # images per formula
        renderer: mathtext         # or latex (latex + dvipng on PATH), or ink (below)
        style: {fontsets: [cm, stix], font_size: [18, 24], augment: 0.5}
        canvas: [168, 32]          # optional fixed page size (style fit: 2 draws each formula as
                                   # large as the page allows, at most twice its sampled size)
        seed: 0

``renderer: ink`` with ``ink_bank: FOLDER`` (relative to ``root``) writes the formulas in real
handwriting: each symbol one handwritten instance from the segmented CROHME InkML files under
``FOLDER`` (:mod:`data_prep.render.ink_bank`), laid out by :mod:`data_prep.render.ink_layout` when
the record is read and drawn in the build's workers like any rendering (canvas, padding, ``clipped``,
augmentation alike). Its one font set is ``ink`` (the default then); ``font_size`` is the glyph
height in pixels. A generator whose symbols the bank lacks stops the build with one line naming
them and the bank's symbols; a formula of another corpus that needs a missing symbol is rejected
(``render_unsupported``). Each record's meta names the bank and, per symbol, the InkML file and
trace group it came from (``ink_symbols``).

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
    ink_bank: str | None = None,
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
    bank = None
    if renderer == "ink":
        bank = _ink_bank(Path(root), ink_bank, corpus)
        style = {"fontsets": ["ink"], **(style or {})}
    elif ink_bank is not None:
        raise ValueError(f"synthetic: 'ink_bank' is for renderer: ink (this source renders with {renderer})")
    space = StyleSpace.from_options(style or {})
    if bank is not None and space.fontsets != ("ink",):
        raise ValueError(f"synthetic: the ink renderer's one font set is 'ink', got {list(space.fontsets)}")
    page = None
    if canvas is not None:
        if not (isinstance(canvas, (list, tuple)) and len(canvas) == 2 and min(canvas) > 0):
            raise ValueError(f"synthetic: 'canvas' is [width, height] in pixels, got {canvas!r}")
        page = (int(canvas[0]), int(canvas[1]))
    elif space.fit > 1:
        raise ValueError("synthetic: style 'fit' scales a drawing to a fixed page: give 'canvas' too")
    cursor, rejects = start_reading(cursor, rejects)
    for formula_id, latex in iter_corpus(corpus, Path(root), SOURCE, rejects):
        for k in range(int(renderings)):
            if cursor.skipping:
                cursor.passed += 1
                continue
            record_id = f"{split}-{formula_id}-r{k}"
            look = space.sample(seed, record_id)
            ink, extra = None, {}
            if bank is not None:
                ink = _composed(latex, bank, seed, record_id, rejects)
                extra = {"ink_bank": str(ink_bank), "ink_symbols": ink.provenance()} if ink else {}
            cursor.passed += 1  # after this item's rejection, before its record is yielded
            if bank is not None and ink is None:
                continue
            yield main_record(
                record_id,
                SOURCE,
                split,
                RenderJob(latex, look, renderer, page, ink),
                latex,
                rendered=True,
                renderer=renderer,
                formula_id=formula_id,
                style=look.to_meta(),
                **extra,
            )


def _ink_bank(root: Path, folder: str | None, corpus: dict[str, Any]):
    """The ``ink_bank`` of an ``ink`` source, checked against a generator corpus's symbols."""
    from data_prep.readers.common import option_path
    from data_prep.render.ink_bank import SymbolBank
    from data_prep.render.ink_layout import generator_needs

    if not folder:
        raise ValueError("synthetic: renderer ink needs 'ink_bank', a folder of segmented InkML files")
    bank = SymbolBank.load(option_path(root, folder))
    if "generator" in corpus:
        from data_prep.render.generator import GeneratorSpec

        spec = GeneratorSpec.from_options(corpus["generator"] or {})
        bank.require(generator_needs(spec), "synthetic: the generator")
    return bank


def _composed(latex: str, bank, seed: int, record_id: str, rejects: Rejects):
    """The formula laid out in the bank's handwriting, or ``None`` after a counted reject."""
    from data_prep.render.ink_layout import LayoutError, compose_formula

    try:
        return compose_formula(latex, bank, seed, record_id)
    except LayoutError as err:
        rejects.add(SOURCE, f"render_{err.reason}", record_id, None, err.detail)
        return None
