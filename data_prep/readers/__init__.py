"""Dataset readers: each turns one distributed dataset format into main-task ``Record``\\ s.

Every reader has the signature ``read(root, split, rejects, **options) -> Iterator[Record]``; bad
items are counted in ``rejects`` (file, line, reason) and skipped, never raised. Every reader also
takes ``cursor=ReadCursor(skip=n)`` (:mod:`data_prep.readers.common`): the build's resume position,
whose first ``n`` items are passed over without opening their images. See docs/datasets.md for the
layouts and options of each source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from data_prep.contract import Record
from data_prep.readers import (
    crohme,
    crohme_inkml,
    hme100k,
    im2latex,
    labels,
    m2e,
    mathwriting,
    mlhme38k,
    sharegpt,
    synthetic,
)
from data_prep.rejects import Rejects

Reader = Callable[..., Iterator[Record]]

#: Source name -> reader function ``read(root: Path, split: str, rejects: Rejects, **options)``.
READERS: dict[str, Reader] = {
    "crohme": crohme.read,
    "crohme_inkml": crohme_inkml.read,
    "hme100k": hme100k.read,
    "im2latex": im2latex.read,
    "mlhme38k": mlhme38k.read,
    "m2e": m2e.read,
    "mathwriting": mathwriting.read,
    "sharegpt": sharegpt.read,
    "labels": labels.read,
    "synthetic": synthetic.read,
}


def get_reader(name: str) -> Reader:
    """The reader for source ``name``; a ``KeyError`` listing the known names otherwise."""
    try:
        return READERS[name]
    except KeyError:
        raise KeyError(
            f"unknown dataset source {name!r}; known sources: {', '.join(sorted(READERS))}"
        ) from None


def read(name: str, root: str | Path, split: str, rejects: Rejects, **options: Any) -> Iterator[Record]:
    """Shorthand for ``get_reader(name)(Path(root), split, rejects, **options)``."""
    return get_reader(name)(Path(root), split, rejects, **options)


__all__ = ["READERS", "Reader", "get_reader", "read"]
