"""Safe image loading and the few pixel operations the dataset readers share.

Readers never open a dataset file with PIL directly: :func:`load_image` keeps every path inside
the dataset root (symlinks included; see :class:`DatasetRoot`), refuses pickles (some CROHME
copies ship ``images.pkl``), and fully decodes the file, once, so a truncated image fails here,
cleanly, rather than deep inside training. Failures raise :class:`ImageError`, whose ``reason`` is the short reject reason the
reader passes on to :class:`data_prep.rejects.Rejects`.
"""

from __future__ import annotations

import errno
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageOps

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


class DatasetRoot:
    """A dataset folder that every file read from it must stay inside (symlinks included).

    The folder's real path is resolved once, so a reader makes one per call, not one per file.
    """

    __slots__ = ("path", "real")

    def __init__(self, root: str | Path) -> None:
        self.path = Path(root)
        self.real = Path(os.path.realpath(root))

    def _candidate(self, path: str | Path) -> Path:
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.path / candidate

    def resolve(self, path: str | Path) -> Path:
        """``path`` (relative to the root unless absolute) resolved; ``path_escapes_root`` outside it."""
        real = Path(os.path.realpath(self._candidate(path)))
        if real != self.real and self.real not in real.parents:
            raise ImageError("path_escapes_root", path, f"resolves to {real}, outside {self.real}")
        return real

    def read_bytes(self, path: str | Path) -> bytes:
        """The bytes of a file inside the root; raises :class:`ImageError`.

        Reasons: ``path_escapes_root``, ``pickle_refused`` (by suffix), ``missing_image``,
        ``unreadable_image``.
        """
        candidate = self._candidate(path)
        name = candidate.name
        if candidate.parent in (self.path, self.real) and name not in ("", ".", ".."):
            # A plain file directly in the root is inside it: open it without following a link
            # (no per-file realpath). A symlink (ELOOP) takes the resolving path below.
            try:
                fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
            except OSError as err:
                if err.errno not in (errno.ELOOP, errno.EMLINK):
                    raise _read_error(err, path) from None
            else:
                if os.path.splitext(name)[1].lower() in PICKLE_SUFFIXES:
                    os.close(fd)
                    raise ImageError("pickle_refused", path, "pickle files are never loaded")
                try:
                    with os.fdopen(fd, "rb") as handle:
                        return handle.read()
                except OSError as err:
                    raise _read_error(err, path) from None
        real = self.resolve(path)
        if real.suffix.lower() in PICKLE_SUFFIXES:
            raise ImageError("pickle_refused", path, "pickle files are never loaded")
        try:
            return real.read_bytes()
        except OSError as err:
            raise _read_error(err, path) from None

    def load_image(self, path: str | Path) -> Image.Image:
        """The image at ``path`` inside the root, fully decoded (see :func:`load_image`)."""
        return decode_image(self.read_bytes(path), path)


def _read_error(err: OSError, path: str | Path) -> ImageError:
    if isinstance(err, FileNotFoundError):
        return ImageError("missing_image", path)
    if isinstance(err, IsADirectoryError):
        return ImageError("unreadable_image", path, "is a directory")
    return ImageError("unreadable_image", path, str(err))


def resolve_inside(path: str | Path, root: str | Path | DatasetRoot) -> Path:
    """``path`` (relative to ``root`` unless absolute) resolved, refusing anything outside ``root``.

    Symlinks are followed before the check, so a link pointing out of the dataset is refused too.
    """
    return (root if isinstance(root, DatasetRoot) else DatasetRoot(root)).resolve(path)


def looks_like_pickle(head: bytes) -> bool:
    """True for the first bytes of a pickle (protocol 2 and later; protocols 0-1 have no magic)."""
    return len(head) >= 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS


def decode_image(data: bytes, path: str | Path = "<bytes>") -> Image.Image:
    """Fully decode encoded image bytes, once; raises :class:`ImageError`.

    ``load()`` reads every pixel, so with Pillow's default ``ImageFile.LOAD_TRUNCATED_IMAGES =
    False`` a truncated or corrupt file raises here (a separate ``verify()`` pass would parse the
    file a second time and, for BMP or JPEG, check nothing more).
    """
    if looks_like_pickle(data[:2]):
        raise ImageError("pickle_refused", path, "the file is a Python pickle; it is never unpickled")
    try:
        with warnings.catch_warnings():
            # A decompression-bomb warning is an error here: such a file is not a formula image.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
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


def read_image(path: str | Path) -> Image.Image:
    """Read and fully decode an image file given by the user (no dataset root to stay inside).

    Raises :class:`ImageError` with reason ``pickle_refused``, ``missing_image`` or
    ``unreadable_image``.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise _read_error(err, path) from None
    return decode_image(data, path)


def load_image(path: str | Path, root: str | Path | DatasetRoot) -> Image.Image:
    """Open the image at ``path`` (inside ``root``), fully decoded.

    Pass a :class:`DatasetRoot` when loading many files from one folder. Raises
    :class:`ImageError` with reason ``path_escapes_root``, ``pickle_refused``, ``missing_image``
    or ``unreadable_image``.
    """
    return (root if isinstance(root, DatasetRoot) else DatasetRoot(root)).load_image(path)


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


#: :func:`blank_detail`: an image whose grey levels spread less than this (standard deviation) ...
BLANK_STD = 1.0
#: ... or whose commonest grey level covers more than this share of its pixels ...
BLANK_SHARE = 0.999
#: ... with at most this many pixels off it (a speck, not a formula: a full im2latex page holds a
#: small formula on more than 99.9% white, yet hundreds of ink pixels) holds no formula.
BLANK_MAX_STRAY = 64


def blank_detail(image: Image.Image) -> str | None:
    """Why ``image`` holds no formula (one grey value, or nearly), or ``None`` when it may.

    The one blank-image check of every path that makes records (the build's per-record step,
    :class:`data_prep.readers.common.RecordMaker`, so im2latex's blank pages too): an all-black or
    all-white image, or one with a few stray pixels (grey standard deviation < ``BLANK_STD``, or
    one value on more than ``BLANK_SHARE`` of the pixels with at most ``BLANK_MAX_STRAY`` others),
    is a ``blank_image`` reject.
    """
    gray = np.asarray(on_white(image).convert("L"))
    if gray.size == 0:
        return "no pixels"
    std = float(gray.std())
    if std < BLANK_STD:
        return f"one grey value (standard deviation {std:.2f})"
    counts = np.bincount(gray.ravel(), minlength=256)
    share = float(counts.max()) / gray.size
    if share > BLANK_SHARE and gray.size - int(counts.max()) <= BLANK_MAX_STRAY:
        return f"grey level {int(counts.argmax())} covers {share:.2%} of the pixels"
    return None


def invert(image: Image.Image) -> Image.Image:
    """Swap ink and background (CROHME bitmaps are white on black)."""
    # ImageChops inverts in C; ImageOps.invert builds a Python lookup table per call.
    return ImageChops.invert(on_white(image))


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
