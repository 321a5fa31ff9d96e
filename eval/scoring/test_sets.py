"""Test-set names -> splits of built datasets (``python -m data_prep.build``).

A test set is one split of a built dataset folder (``<data_dir>/<split>/*.parquet``). The standard
names are looked for where the shipped data recipes write them:

============  ==========================================================================
crohme2014    ``outputs/data/crohme``, then ``outputs/data/crohme_hme100k``, ... (same for
crohme2016    2016 and 2019)
crohme2019
hme100k       ``outputs/data/hme100k``, then ``outputs/data/crohme_hme100k``, ...
============  ==========================================================================

then in every other dataset folder under ``outputs/data``; any other split name (e.g. the demo's
``crohme2014_sample``) is found the same way. With ``--data-dir`` only that folder is searched.
A name that is not found fails with the list of every split that is available, and where.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_DATA_ROOT = Path("outputs/data")
#: Dataset folders (under the data root) searched first for each standard set.
PREFERRED_DIRS: dict[str, tuple[str, ...]] = {
    "crohme2014": ("crohme", "crohme_hme100k", "unimumer_full"),
    "crohme2016": ("crohme", "crohme_hme100k", "unimumer_full"),
    "crohme2019": ("crohme", "crohme_hme100k", "unimumer_full"),
    "hme100k": ("hme100k", "crohme_hme100k", "unimumer_full"),
}
STANDARD_SETS = tuple(PREFERRED_DIRS)


class TestSetNotFound(LookupError):
    """A requested test set is in none of the searched dataset folders."""

    __test__ = False  # not a pytest class


@dataclasses.dataclass(frozen=True)
class TestSet:
    """One test set: the name it was asked by, and the split of a built dataset that holds it."""

    __test__ = False  # not a pytest class

    name: str
    data_dir: Path
    split: str

    def load(self):
        """The split as a ``datasets.Dataset`` (see ``data_prep.dataset.load_split``)."""
        from data_prep.dataset import load_split

        return load_split(self.data_dir, self.split)


def parse_set_names(sets: str | list[str]) -> list[str]:
    """``"crohme2014,crohme2016"`` (or a list) -> names, in order, without repeats or blanks."""
    items = sets.split(",") if isinstance(sets, str) else [s for part in sets for s in part.split(",")]
    names: list[str] = []
    for item in (s.strip() for s in items):
        if item and item not in names:
            names.append(item)
    if not names:
        raise ValueError("no test set named (e.g. --sets crohme2014,crohme2016,crohme2019)")
    return names


def _search_dirs(name: str, data_dir: Path | None, data_root: Path) -> list[Path]:
    if data_dir is not None:
        return [data_dir]
    preferred = [data_root / d for d in PREFERRED_DIRS.get(name, ())]
    others = sorted(p for p in data_root.iterdir() if p.is_dir()) if data_root.is_dir() else []
    return preferred + [p for p in others if p not in preferred]


def available_splits(
    data_dir: Path | None = None, data_root: Path = DEFAULT_DATA_ROOT
) -> dict[Path, list[str]]:
    """Every dataset folder searched and the splits it holds (empty folders left out)."""
    from data_prep.dataset import list_splits

    dirs = [data_dir] if data_dir is not None else _search_dirs("", None, data_root)
    return {d: splits for d in dirs if (splits := list_splits(d))}


def resolve_test_set(
    name: str, data_dir: str | Path | None = None, data_root: str | Path = DEFAULT_DATA_ROOT
) -> TestSet:
    """Find the split for test set ``name``; :class:`TestSetNotFound` lists what is available."""
    from data_prep.dataset import list_splits

    data_dir = Path(data_dir) if data_dir is not None else None
    data_root = Path(data_root)
    for directory in _search_dirs(name, data_dir, data_root):
        if name in list_splits(directory):
            return TestSet(name=name, data_dir=directory, split=name)
    where = f"{data_dir}" if data_dir is not None else f"the dataset folders under {data_root}"
    available = available_splits(data_dir, data_root)
    listing = (
        "; ".join(f"{d}: {', '.join(s)}" for d, s in available.items()) or "none (no built dataset found)"
    )
    raise TestSetNotFound(
        f"test set {name!r} not found in {where}. Available splits: {listing}. Build the data first, "
        f"e.g. `make data DATA_RECIPE=recipes/data/crohme.yaml`, or pass --data-dir."
    )


def resolve_test_sets(
    names: str | list[str], data_dir: str | Path | None = None, data_root: str | Path = DEFAULT_DATA_ROOT
) -> list[TestSet]:
    return [resolve_test_set(name, data_dir, data_root) for name in parse_set_names(names)]
