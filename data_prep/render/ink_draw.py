"""Pixels of a composed handwritten formula (:mod:`data_prep.render.ink_layout`).

The strokes are drawn by :func:`data_prep.render.inkml.render_traces` (anti-aliased) at
``style.font_size`` pixels per glyph height, so a digit is about as tall as a mathtext digit of
that size at 100 dpi; the pen is ``font_size / 12`` pixels wide (at least 1). The coverage then
goes through :func:`data_prep.render.renderers.compose` like every renderer's: ink and paper grey,
``stroke`` weight, ``padding``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from data_prep.render.ink_layout import InkComposition
from data_prep.render.inkml import RenderOptions, render_traces
from data_prep.render.renderers import RenderError, compose
from data_prep.render.style import RenderStyle


def pen_width(style: RenderStyle) -> int:
    return max(1, round(style.font_size / 12))


def draw_composition(ink: InkComposition, style: RenderStyle) -> Image.Image:
    """``ink`` in ``style``: an ``L`` image, dark ink on a light page, ``style.padding`` around."""
    options = RenderOptions(scale=style.font_size, line_width=pen_width(style), padding=0, antialias=True)
    try:
        drawn = render_traces(ink.strokes(), options)
    except ValueError as err:
        raise RenderError("blank", str(err)) from None
    coverage = 1.0 - np.asarray(drawn, dtype=np.float32) / 255.0
    return compose(coverage, style)
