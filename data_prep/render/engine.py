"""One rendering: formula + renderer + style -> a checked image, or a :class:`RenderError`.

:class:`RenderJob` is what the ``synthetic`` reader puts in a record's ``image``: a small picklable
description that the build's worker processes turn into pixels (``data_prep.build.as_image`` calls
it), so rendering runs in parallel with ``--num-proc`` like image decoding does for the other
sources, and a resumed build never renders what its finished shards hold.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from PIL import Image

from data_prep.render.augment import augment
from data_prep.render.renderers import RenderError, check_ink, get_renderer
from data_prep.render.style import RenderStyle

if TYPE_CHECKING:
    from data_prep.render.ink_layout import InkComposition

_RENDERERS: dict[str, object] = {}


def _renderer(name: str):
    if name not in _RENDERERS:
        _RENDERERS[name] = get_renderer(name)
    return _RENDERERS[name]


def _draw(latex: str, style: RenderStyle, renderer: str, ink: InkComposition | None) -> Image.Image:
    drawer = _renderer(renderer)
    return drawer.render(latex, style, ink) if renderer == "ink" else drawer.render(latex, style)


def _fit(
    image: Image.Image,
    latex: str,
    style: RenderStyle,
    renderer: str,
    ink: InkComposition | None,
    room: tuple[int, int],
) -> Image.Image:
    """``image`` redrawn as large as ``room`` allows, at most ``style.fit`` times (``fit`` below)."""
    scale = min(style.fit, room[0] / image.width, room[1] / image.height)
    if scale <= 1:
        return image  # already fills the page, or does not fit (then ``clipped``)
    larger = dataclasses.replace(style, padding=0, font_size=round(style.font_size * scale, 2))
    image = _draw(latex, larger, renderer, ink)
    # Drawn size is not exactly linear in font size (whole-pixel dpi, pen widths): shrink an overshoot.
    shrink = min(1.0, room[0] / image.width, room[1] / image.height)
    if shrink < 1:
        size = (max(1, int(image.width * shrink)), max(1, int(image.height * shrink)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def render(
    latex: str,
    style: RenderStyle,
    renderer: str = "mathtext",
    canvas: tuple[int, int] | None = None,
    ink: InkComposition | None = None,
) -> Image.Image:
    """``latex`` (answer format) drawn in ``style``, augmented when the style says so, then checked.

    ``canvas`` (width, height): place the drawing left-aligned (``padding`` from the left edge) on a
    page of that fixed size (so every image has the same token grid); one that does not fit is
    ``clipped``. With ``style.fit`` > 1 the drawing is redrawn as large as the page allows, at most
    ``fit`` times its sampled size (one that does not fit at its sampled size is still ``clipped``).
    ``ink``: the composed handwriting the ``ink`` renderer draws
    (:func:`data_prep.render.ink_layout.compose_formula`). Raises :class:`RenderError` (reasons
    ``unsupported``, ``blank``, ``clipped``, ``failed``, ``unavailable``).
    """
    if canvas is None:
        image = _draw(latex, style, renderer, ink)
    else:
        # On a fixed page the padding is the left margin; the drawing is centred vertically.
        image = _draw(latex, dataclasses.replace(style, padding=0), renderer, ink)
        width, height = canvas
        if style.fit > 1:
            # An augmented page keeps a margin: its 3-degree rotation moves a page-wide drawing's
            # ends ~4 px up or down, which would otherwise put ink on the border (``clipped``).
            margin = 2 if style.augment_seed is None else 10
            room = (width - 2 * style.padding, height - margin)
            image = _fit(image, latex, style, renderer, ink, room)
        if image.width + 2 * style.padding > width or image.height + 2 > height:
            raise RenderError(
                "clipped",
                f"{image.width}x{image.height} drawing (+ margin) exceeds the {width}x{height} canvas",
            )
        page = Image.new("L", (width, height), style.paper)
        page.paste(image, (style.padding, (height - image.height) // 2))
        image = page
    if style.augment_seed is not None:
        image = augment(image, style.augment_seed)
    check_ink(image, (style.ink + style.paper) // 2)
    return image


@dataclasses.dataclass(frozen=True)
class RenderJob:
    """A deferred :func:`render` (picklable; called in a build worker)."""

    latex: str
    style: RenderStyle
    renderer: str = "mathtext"
    canvas: tuple[int, int] | None = None
    ink: InkComposition | None = None  # the ``ink`` renderer's composed handwriting

    def __call__(self) -> Image.Image:
        return render(self.latex, self.style, self.renderer, self.canvas, self.ink)
