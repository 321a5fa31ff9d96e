"""Ink polarity, decided once for every path: each image ends as dark ink on a light page.

One vocabulary, ``invert``: ``"auto"`` (decided per image by :func:`ink_is_light`, from its border
and histogram), ``True`` or ``False`` (forced). Recipes give it as a reader option
(``invert: auto|true|false``); ``eval.predict``, ``eval.client`` and ``eval.app`` take
``--invert auto|true|false`` (:func:`parse_invert`). Every reader, predict, the client and the app
call :func:`dark_ink_on_light`, so training and inference agree.
"""

from __future__ import annotations

from PIL import Image

from data_prep.images import invert as invert_image
from data_prep.images import on_white

#: ``invert`` values: ``"auto"`` decides per image (:func:`ink_is_light`); ``True``/``False`` force.
INVERT_MODES = ("auto", True, False)
#: The same three as typed on a command line (``--invert``), see :func:`parse_invert`.
INVERT_CHOICES = ("auto", "true", "false")
#: :func:`ink_is_light`: a page must be darker than this grey level to be light-on-dark.
DARK_BACKGROUND = 96
#: Share of the border ring that must lie within ``BORDER_SPREAD`` grey levels of its median for the
#: border to be trusted as the background.
BORDER_UNIFORM_SHARE = 0.9
BORDER_SPREAD = 48
#: How far above the background (grey levels) a pixel must be to count as light ink.
INK_CONTRAST = 40
#: How far below a dark background a pixel must be to count as dark ink. Smaller than
#: ``INK_CONTRAST``: on a dim photo (page grey ~50) pen strokes are only 15-40 levels darker, and
#: missing them made a few glare pixels outvote the ink (a dark HME100K test photo was inverted).
DARK_INK_CONTRAST = 10


def ink_is_light(image: Image.Image) -> bool:
    """True when ``image`` is light ink on a dark page (it must be inverted for the model).

    The page's grey is the median of the image's border (a ring 1/20 of the short side wide, at
    least one pixel) when 90% of that ring lies within 48 levels of it and it agrees (within 48)
    with the median of the whole image, as for scans, renders and CROHME bitmaps; otherwise (ink,
    shadows, black padding or a dark frame across the border) the median of the whole image,
    which is page because strokes are thin. The image is light-on-dark when that page
    is dark (grey < 96) and more pixels stand out from it as light ink (lighter than both page + 40
    and mid-grey) than as dark ink (darker than page - 10: dark ink on a dark page stands out
    little); a blank dark page counts as light-on-dark. So a white-on-black bitmap or a
    chalkboard is inverted, while a dim photo (dark grey page, darker ink, a few glare spots) or a
    photo of a light page on a grey table is never inverted.
    """
    import numpy as np

    gray = np.asarray(on_white(image).convert("L"), dtype=np.int16)
    ring = max(1, min(gray.shape) // 20)
    border = np.concatenate(
        [gray[:ring].ravel(), gray[-ring:].ravel(), gray[:, :ring].ravel(), gray[:, -ring:].ravel()]
    )
    page = float(np.median(border))
    majority = float(np.median(gray))
    if (
        np.mean(np.abs(border - page) <= BORDER_SPREAD) < BORDER_UNIFORM_SHARE
        or abs(page - majority) > BORDER_SPREAD
    ):
        page = majority  # ink, shadows, padding or a frame across the border: trust the histogram
    if page >= DARK_BACKGROUND:
        return False
    lighter = int(np.count_nonzero(gray > max(page + INK_CONTRAST, 128)))
    darker = int(np.count_nonzero(gray < page - DARK_INK_CONTRAST))
    return lighter >= darker


def dark_ink_on_light(image: Image.Image, invert: str | bool = "auto") -> tuple[Image.Image, bool]:
    """``(image, inverted)``: the image (mode ``L`` or ``RGB``) with dark ink on a light page.

    ``invert``: ``"auto"`` (inverted when :func:`ink_is_light`), ``True`` or ``False`` (forced).
    Every reader applies it, and predict/the client too, so training and evaluation agree.
    """
    flip = ink_is_light(image) if check_invert_mode(invert) == "auto" else invert
    return (invert_image(image) if flip else on_white(image)), flip


def check_invert_mode(invert: str | bool) -> str | bool:
    """``invert`` itself when it is ``"auto"``, ``True`` or ``False``; a one-line error otherwise."""
    if invert not in INVERT_MODES or (invert != "auto" and not isinstance(invert, bool)):
        raise ValueError(f"invert must be auto, true or false, not {invert!r}")
    return invert


def parse_invert(text: str | bool) -> str | bool:
    """A command line's ``--invert`` (``auto``, ``true`` or ``false``, any case) as an ``invert`` mode."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in INVERT_CHOICES:
        return INVERT_MODES[INVERT_CHOICES.index(value)]
    raise ValueError(f"invert must be auto, true or false, not {text!r}")
