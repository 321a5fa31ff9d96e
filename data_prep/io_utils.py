"""Atomic file writes: a reader never sees a half-written file, even after a crash or Ctrl-C.

Each helper writes to a temporary file beside the target (same folder, so the same file system),
flushes it, then renames it over the target with :func:`os.replace`, which is atomic on POSIX and
Windows. The temporary file is removed when anything fails. Parent folders are created.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file beside it, then :func:`os.replace`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, value: Any, *, indent: int | None = 1) -> None:
    """Write ``value`` as JSON (ASCII, so any reader's encoding works) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(value, indent=indent))


__all__ = ["write_bytes_atomic", "write_json_atomic", "write_text_atomic"]
