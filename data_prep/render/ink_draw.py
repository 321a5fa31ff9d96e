"""Ink coverage of a composed handwritten formula (:mod:`data_prep.render.ink_layout`).

The strokes are drawn by :func:`data_prep.render.inkml.render_traces` (anti-aliased) at
``style.font_size`` pixels per glyph height, so a digit is about as tall as a mathtext digit of
that size at 100 dpi; the pen is ``font_size / 12`` pixels wide (at least 1). The ``ink`` renderer
(:class:`data_prep.render.renderers.InkRenderer`) turns the coverage into a page like every
renderer's (``compose``: ink and paper grey, ``stroke`` weight, ``padding``).
"""

from __future__ import annotations

import numpy as np

from data_prep.render.ink_layout import InkComposition
from data_prep.render.inkml import RenderOptions, render_traces
from data_prep.render.style import RenderStyle


def pen_width(style: RenderStyle) -> int:
    return max(1, round(style.font_size / 12))


def ink_coverage(ink: InkComposition, style: RenderStyle) -> np.ndarray:
    """``ink`` drawn at ``style``'s size: coverage in [0, 1] (1 = full ink). Raises ``ValueError``
    when there is nothing to draw."""
    options = RenderOptions(scale=style.font_size, line_width=pen_width(style), padding=0, antialias=True)
    drawn = render_traces(ink.strokes(), options)
    return 1.0 - np.asarray(drawn, dtype=np.float32) / 255.0
