"""Helpers every reader shares: label files split on ``\\n`` only, image indexes, counted rejects."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from data_prep.images import ImageError, load_image, on_white, resolve_inside
from data_prep.rejects import Rejects

#: Image suffixes readers look for when a label names an image without one.
IMAGE_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg")


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line_number, raw_bytes)`` for each line, split on ``\\n`` only (1-based numbers).

    Splitting on universal newlines would also break on ``\\x0b``, ``\\x1c``, ``\\u2028``... that
    occur inside some labels and shift every following line (im2latex: 104,563 lines instead of
    103,558). A trailing ``\\r`` (Windows line ends) is dropped; blank lines are skipped.
    """
    data = path.read_bytes()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.removesuffix(b"\r")
        if raw.strip():
            yield number, raw


def decode_line(raw: bytes, source: str, file: Path, line: int, rejects: Rejects) -> str | None:
    """UTF-8 text of one line, or ``None`` after a ``bad_encoding`` reject."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        rejects.add(source, "bad_encoding", file, line, f"not UTF-8: {err.reason} at byte {err.start}")
        return None


def iter_text_lines(path: Path, source: str, rejects: Rejects) -> Iterator[tuple[int, str]]:
    """Decoded lines of a label file; undecodable lines are rejected and skipped."""
    for number, raw in iter_lines(path):
        text = decode_line(raw, source, path, number, rejects)
        if text is not None:
            yield number, text


def index_images(directory: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> dict[str, Path]:
    """Map both ``file name`` and ``stem`` to the path of every image in ``directory``.

    One directory listing instead of a ``stat`` per label keeps large datasets fast.
    """
    index: dict[str, Path] = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            name = entry.name
            if os.path.splitext(name)[1].lower() in suffixes:
                path = Path(entry.path)
                index[name] = path
                index.setdefault(os.path.splitext(name)[0], path)
    return index


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a clear ``FileNotFoundError`` naming what was expected."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def option_path(root: Path, value: str | Path) -> Path:
    """An option path, relative to ``root`` unless absolute."""
    value = Path(value)
    return value if value.is_absolute() else root / value


def first_existing(candidates: list[Path], what: str) -> Path:
    """The first of ``candidates`` that exists, else an error listing every place looked at."""
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"{what} not found; looked for: {looked}")


def load_or_reject(
    path: Path, root: Path, source: str, rejects: Rejects, file: Path, line: int | None
) -> Image.Image | None:
    """The decoded image (mode ``L`` or ``RGB``), or ``None`` after rejecting it with its
    :class:`ImageError` reason."""
    try:
        return on_white(load_image(path, root))
    except ImageError as err:
        rejects.add(source, err.reason, file, line, f"{path}: {err.detail}" if err.detail else str(path))
        return None


def safe_image_path(
    name: str, directory: Path, root: Path, source: str, rejects: Rejects, file: Path, line: int
) -> Path | None:
    """``directory / name`` when it stays inside ``root``; a ``path_escapes_root`` reject otherwise."""
    try:
        return resolve_inside(directory / name, root)
    except ImageError as err:
        rejects.add(source, err.reason, file, line, err.detail)
        return None


def tokenize(raw: str) -> str:
    """Space-separated LaTeX tokens of a raw formula (``data_prep.latex.tokenize_latex``).

    Raises ``ValueError`` (``LatexError``) on LaTeX the tokeniser cannot read.
    """
    from data_prep.latex import tokenize_latex  # local: the tokeniser is optional for plain readers

    return tokenize_latex(raw)
