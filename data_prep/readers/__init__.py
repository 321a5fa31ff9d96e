"""Dataset readers: each turns one distributed dataset format into main-task ``Record``\\ s.

Every reader has the signature ``read(root, split, rejects, **options) -> Iterator[Record]``; bad
items are counted in ``rejects`` (file, line, reason) and skipped, never raised. Every reader also
takes ``cursor=ReadCursor(skip=n)`` (:mod:`data_prep.readers.common`): the build's resume position,
whose first ``n`` items are passed over without opening their images. See docs/datasets.md for the
layouts and options of each source.

The reader table is :mod:`data_prep.readers.registry` (name, read function, terms of use);
:mod:`data_prep.readers.common` holds what readers share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_prep.contract import Record
from data_prep.readers.registry import (
    READERS,
    REGISTRY,
    Reader,
    ReaderSpec,
    get_reader,
    get_reader_spec,
    reader_terms,
    register_reader,
    unregister_reader,
)
from data_prep.rejects import Rejects


def read(name: str, root: str | Path, split: str, rejects: Rejects, **options: Any):
    """Shorthand for ``get_reader(name)(Path(root), split, rejects, **options)``: an iterator of
    :class:`~data_prep.contract.Record`."""
    return get_reader(name)(Path(root), split, rejects, **options)


__all__ = [
    "READERS",
    "REGISTRY",
    "Reader",
    "ReaderSpec",
    "Record",
    "get_reader",
    "get_reader_spec",
    "read",
    "reader_terms",
    "register_reader",
    "unregister_reader",
]
