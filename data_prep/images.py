"""Safe image loading and the few pixel operations the dataset readers share.

Readers never open a dataset file with PIL directly: :func:`load_image` keeps every path inside
the dataset root (symlinks included), refuses pickles (some CROHME copies ship ``images.pkl``),
and fully decodes the file so a truncated image fails here, cleanly, rather than deep inside
training. Failures raise :class:`ImageError`, whose ``reason`` is the short reject reason the
reader passes on to :class:`data_prep.rejects.Rejects`.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

#: Suffixes refused outright: unpickling an untrusted file runs arbitrary code.
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle"})
#: Every pickle protocol >= 2 starts with PROTO (0x80) then the protocol number.
_PICKLE_PROTOCOLS = frozenset(range(2, 6))


class ImageError(ValueError):
    """An image that cannot be used; ``reason`` is a short fixed reject reason."""

    def __init__(self, reason: str, path: str | Path, detail: str = "") -> None:
        self.reason = reason
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{reason}: {path}" + (f" ({detail})" if detail else ""))


def resolve_inside(path: str | Path, root: str | Path) -> Path:
    """``path`` (relative to ``root`` unless absolute) resolved, refusing anything outside ``root``.

    Symlinks are followed before the check, so a link pointing out of the dataset is refused too.
    """
    root_real = Path(os.path.realpath(root))
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = Path(root) / candidate
    real = Path(os.path.realpath(candidate))
    if real != root_real and root_real not in real.parents:
        raise ImageError("path_escapes_root", path, f"resolves to {real}, outside {root_real}")
    return real


def looks_like_pickle(head: bytes) -> bool:
    """True for the first bytes of a pickle (protocol 2 and later; protocols 0-1 have no magic)."""
    return len(head) >= 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS


def decode_image(data: bytes, path: str | Path = "<bytes>") -> Image.Image:
    """Verify then fully decode encoded image bytes; raises :class:`ImageError`."""
    if looks_like_pickle(data[:2]):
        raise ImageError("pickle_refused", path, "the file is a Python pickle; it is never unpickled")
    try:
        with warnings.catch_warnings():
            # A decompression-bomb warning is an error here: such a file is not a formula image.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as err:
        raise ImageError("unreadable_image", path, f"{type(err).__name__}: {err}") from None
    if image.width == 0 or image.height == 0:
        raise ImageError("unreadable_image", path, "zero-sized image")
    return image


def load_image(path: str | Path, root: str | Path) -> Image.Image:
    """Open the image at ``path`` (inside ``root``), verified and fully decoded.

    Raises :class:`ImageError` with reason ``path_escapes_root``, ``pickle_refused``,
    ``missing_image`` or ``unreadable_image``.
    """
    real = resolve_inside(path, root)
    if real.suffix.lower() in PICKLE_SUFFIXES:
        raise ImageError("pickle_refused", path, "pickle files are never loaded")
    try:
        data = real.read_bytes()
    except FileNotFoundError:
        raise ImageError("missing_image", path) from None
    except IsADirectoryError:
        raise ImageError("unreadable_image", path, "is a directory") from None
    except OSError as err:
        raise ImageError("unreadable_image", path, str(err)) from None
    return decode_image(data, path)


def on_white(image: Image.Image) -> Image.Image:
    """Flatten transparency onto white and drop palettes: mode ``L`` or ``RGB`` out.

    im2latex pages are palette PNGs whose background is transparent; composited on white, the
    ink stays dark, as the model expects.
    """
    if image.mode in ("L", "RGB"):
        return image
    if image.mode == "1":
        return image.convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        image = canvas
    gray_modes = ("L", "LA", "I", "I;16", "F")
    return image.convert("L" if image.mode in gray_modes else "RGB")


def invert(image: Image.Image) -> Image.Image:
    """Swap ink and background (CROHME bitmaps are white on black)."""
    return ImageOps.invert(on_white(image))


def _ink_box(image: Image.Image, threshold: int) -> tuple[int, int, int, int] | None:
    """Bounding box of the pixels darker than ``threshold`` once composited on white.

    Palette images are classified per palette entry and the indices mapped through a lookup table
    in C, so a full im2latex page is never converted to RGBA (that dominated the reader's time).
    """
    if image.mode == "P":
        palette = np.array(image.getpalette("RGB") or [], dtype=np.float32).reshape(-1, 3)[:256]
        entries = np.full((256, 3), 255.0, dtype=np.float32)
        entries[: len(palette)] = palette
        alpha = np.ones(256, dtype=np.float32)
        transparency = image.info.get("transparency")
        if isinstance(transparency, bytes):
            alpha[: len(transparency)] = np.frombuffer(transparency, dtype=np.uint8)[:256] / 255.0
        elif isinstance(transparency, int):
            alpha[transparency] = 0.0
        gray = entries @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        table = np.where(alpha * gray + (1.0 - alpha) * 255.0 < threshold, 255, 0).tolist()
        indices = Image.frombuffer("L", image.size, image.tobytes(), "raw", "L", 0, 1)
        return indices.point(table).getbbox()
    flat = on_white(image)
    gray = flat if flat.mode == "L" else flat.convert("L")
    return gray.point([255 if value < threshold else 0 for value in range(256)]).getbbox()


def crop_to_ink(image: Image.Image, margin: int = 8, threshold: int = 250) -> Image.Image | None:
    """Crop a dark-on-light image to its ink bounding box plus ``margin`` white pixels per side.

    Pixels darker than ``threshold`` (after compositing on white) count as ink. Returns an ``L``
    or ``RGB`` image, or ``None`` when there is no ink.
    """
    box = _ink_box(image, threshold)
    if box is None:
        return None
    cropped = on_white(image.crop(box))
    if margin <= 0:
        return cropped
    fill = 255 if cropped.mode == "L" else (255, 255, 255)
    return ImageOps.expand(cropped, border=margin, fill=fill)
