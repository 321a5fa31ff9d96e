"""Atomic file writes: a reader never sees a half-written file, even after a crash or Ctrl-C.

Each helper writes to a temporary file beside the target (same folder, so the same file system),
flushes it, then renames it over the target with :func:`os.replace`, which is atomic on POSIX and
Windows. The temporary file is removed when anything fails. Parent folders are created.
:func:`atomic_output` gives the same guarantee to writers that want a path of their own (parquet,
PIL images); :func:`atomic_directory` to writers of a whole folder (a model, an export).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; when the block ends without an error it
    is renamed over ``path`` (:func:`os.replace`), otherwise removed. The temporary name ends in
    ``.tmp``, so a writer that picks its format from the suffix must be told the format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; the result follows the umask
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path`` to fill; when the block ends without an error
    it replaces ``path``, otherwise it is removed, so ``path`` never holds half a folder.

    Raises :class:`FileExistsError` when ``path`` is a non-empty folder and ``overwrite`` is false.
    The staging folder's name starts with a dot, and it gets ordinary permissions (``mkdtemp``
    makes it private).
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} exists and is not empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    os.chmod(staging, 0o777 & ~_umask())
    try:
        yield staging
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file beside it, then :func:`os.replace`)."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, value: Any, *, indent: int | None = 1) -> None:
    """Write ``value`` as JSON (ASCII, so any reader's encoding works) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(value, indent=indent))


__all__ = [
    "atomic_directory",
    "atomic_output",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
