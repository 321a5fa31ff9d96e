"""Render online handwriting (InkML strokes) into offline images like the CROHME bitmaps.

The official CROHME offline bitmaps (WAP/CoMER lineage) are binary, ink 1-3 px wide, with a
12 px margin, and scaled so that strokes keep a similar size whatever the tablet's resolution:
across the 2014 test set the mean stroke height is about 22-23 px (18-29) while the raw coordinate
scales differ by 10x. :func:`render_traces` reproduces that: scale so the mean stroke height is
``stroke_height`` pixels, draw polylines ``line_width`` wide, pad ``padding`` pixels.
:mod:`data_prep.render.inkml_compare` measures how alike renders and official bitmaps are.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
from collections.abc import Sequence

from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

Trace = Sequence[tuple[float, float]]


@dataclasses.dataclass(frozen=True)
class RenderOptions:
    """How strokes become pixels (defaults tuned against the CROHME 2014 official bitmaps)."""

    #: Mean stroke height after scaling, in pixels.
    stroke_height: float = 22.0
    #: Polyline width in pixels.
    line_width: int = 3
    #: White margin on each side, in pixels.
    padding: int = 12
    #: Draw at 4x and downsample (grey edges) instead of binary ink like the official bitmaps.
    antialias: bool = False
    #: Longest side allowed (after padding); larger renders are scaled down to fit.
    max_side: int = 2048
    #: Pixels per coordinate unit, instead of the mean stroke height's scale (strokes already laid
    #: out to size: :mod:`data_prep.render.ink_draw`).
    scale: float | None = None


DEFAULT_RENDER = RenderOptions()


def _scale_for(traces: Sequence[Trace], options: RenderOptions) -> float:
    xs = [p[0] for t in traces for p in t]
    ys = [p[1] for t in traces for p in t]
    extent = max(max(xs) - min(xs), max(ys) - min(ys))
    if options.scale is not None:
        scale = options.scale
    else:
        mean_height = statistics.fmean(max(p[1] for p in t) - min(p[1] for p in t) for t in traces)
        if mean_height <= 0:
            # Only dots or perfectly flat strokes: fall back to the whole extent.
            mean_height = extent or 1.0
        scale = options.stroke_height / mean_height
    room = options.max_side - 2 * options.padding - options.line_width - 2  # the +1 and rounding below
    if extent * scale > room:
        scale = room / extent
    return scale


def render_traces(traces: Sequence[Trace], options: RenderOptions = DEFAULT_RENDER) -> Image.Image:
    """A mode ``L`` image of the strokes: black ink on white.

    Raises ``ValueError`` when there is nothing to draw.
    """
    traces = [t for t in traces if len(t)]
    if not traces:
        raise ValueError("no strokes to render")
    scale = _scale_for(traces, options)
    min_x = min(p[0] for t in traces for p in t)
    min_y = min(p[1] for t in traces for p in t)
    max_x = max(p[0] for t in traces for p in t)
    max_y = max(p[1] for t in traces for p in t)
    factor = 4 if options.antialias else 1
    half = options.line_width / 2
    offset = options.padding + half
    width = math.ceil((max_x - min_x) * scale + 2 * offset) + 1
    height = math.ceil((max_y - min_y) * scale + 2 * offset) + 1
    canvas = Image.new("L", (width * factor, height * factor), 255)
    draw = ImageDraw.Draw(canvas)
    line_width = max(1, round(options.line_width * factor))
    for trace in traces:
        points = [
            ((x - min_x) * scale * factor + offset * factor, (y - min_y) * scale * factor + offset * factor)
            for x, y in trace
        ]
        if len(points) == 1 or all(p == points[0] for p in points):
            x, y = points[0]
            r = max(line_width / 2, 0.5)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=0)
        else:
            draw.line(points, fill=0, width=line_width, joint="curve")
    if factor > 1:
        canvas = canvas.resize((width, height), Image.Resampling.BOX)
    return canvas
