"""The reader table: every dataset format a data recipe can name (``reader:``), declared once.

Each entry is a :class:`ReaderSpec`: the name a recipe uses, the module's ``read`` function
(``read(root: Path, split: str, rejects: Rejects, *, cursor=ReadCursor(), **options)``) and the
terms of use the dataset card prints for rows from it. Adding a dataset format is one module in
``data_prep/readers/`` plus one :func:`register_reader` line below (docs/contributing.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping

import data_prep.readers.crohme as crohme
import data_prep.readers.crohme_inkml as crohme_inkml
import data_prep.readers.hme100k as hme100k
import data_prep.readers.im2latex as im2latex
import data_prep.readers.labels as labels
import data_prep.readers.m2e as m2e
import data_prep.readers.mathwriting as mathwriting
import data_prep.readers.mlhme38k as mlhme38k
import data_prep.readers.sharegpt as sharegpt
import data_prep.readers.synthetic as synthetic
from data_prep.contract import Record

Reader = Callable[..., Iterator[Record]]

#: What the dataset card says about a source whose reader declares no terms.
UNKNOWN_TERMS = "see the dataset's terms"


@dataclasses.dataclass(frozen=True)
class ReaderSpec:
    """One dataset format."""

    name: str
    read: Reader
    #: Licence / terms of use, as the dataset's distributors state them (docs/datasets.md).
    terms: str = UNKNOWN_TERMS


REGISTRY: dict[str, ReaderSpec] = {}


def register_reader(name: str, read: Reader, terms: str = UNKNOWN_TERMS) -> ReaderSpec:
    """Make ``read`` available to data recipes as ``reader: name``."""
    if name in REGISTRY:
        raise ValueError(f"reader {name!r} is registered twice")
    spec = ReaderSpec(name, read, terms)
    REGISTRY[name] = spec
    return spec


def unregister_reader(name: str) -> None:
    """Remove a reader added by :func:`register_reader` (tests register throwaway readers)."""
    REGISTRY.pop(name)


def get_reader_spec(name: str) -> ReaderSpec:
    """The entry for source ``name``; a ``KeyError`` listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown dataset source {name!r}; known sources: {', '.join(sorted(REGISTRY))}"
        ) from None


def get_reader(name: str) -> Reader:
    """The reader function for source ``name``; a ``KeyError`` listing the known names otherwise."""
    return get_reader_spec(name).read


def reader_terms(name: str) -> str:
    """The terms of use of rows read by ``name`` (for the dataset card)."""
    spec = REGISTRY.get(name)
    return spec.terms if spec else UNKNOWN_TERMS


class _Readers(Mapping):
    """``name -> read`` for every registered reader, read live from :data:`REGISTRY`."""

    def __getitem__(self, name: str) -> Reader:
        return REGISTRY[name].read

    def __iter__(self):
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


#: Source name -> reader function.
READERS: Mapping[str, Reader] = _Readers()

# --------------------------------------------------------------------------- #
# The table
# --------------------------------------------------------------------------- #

_CROHME_TERMS = "CROHME competition data (TC11): research use; cite the competition"
register_reader("crohme", crohme.read, _CROHME_TERMS)
register_reader("crohme_inkml", crohme_inkml.read, _CROHME_TERMS)
register_reader("hme100k", hme100k.read, "HME100K (TAL Education Group): research use only")
register_reader(
    "im2latex",
    im2latex.read,
    "im2latex-100k (harvardnlp/im2markup): formulas from arXiv papers; research use",
)
register_reader("mlhme38k", mlhme38k.read, "MLHME-38K (TAL, ICDAR 2021 competition): research use only")
register_reader("m2e", m2e.read, "M2E: research use; see its distributors' terms")
register_reader("mathwriting", mathwriting.read, "MathWriting (Google Research): CC BY-NC-SA 4.0")
register_reader("sharegpt", sharegpt.read, "Uni-MuMER released data: the terms of each dataset it repackages")
register_reader("labels", labels.read, "your own data: state its licence here")
register_reader(
    "synthetic",
    synthetic.read,
    "formulas rendered by data_prep.render: the terms of the corpus the formulas come from "
    "(the built-in generator's formulas are the project's own)",
)
