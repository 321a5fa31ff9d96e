"""Which files a ``sharegpt`` source reads (:func:`find_files`): its ``file`` option (a file, a
folder or a glob) or, without it, the places data.zip and the Hub release put ``<split>``'s data.
A glob or folder holding two editions of one test set (``x.json`` and ``x_normalized.json``) is
refused: read as one, the set would hold every item twice, under two ground truths."""

from __future__ import annotations

import glob as globlib
from pathlib import Path

SUFFIXES = (".json", ".jsonl", ".parquet")


def find_files(root: Path, split: str, file: str | None) -> list[Path]:
    """The data files to read, sorted; a clear error listing what was looked for when none."""
    if file is not None:
        given = Path(file)
        target = given if given.is_absolute() else root / given
        if any(c in str(file) for c in "*?["):
            matches = sorted(Path(p) for p in globlib.glob(str(target), recursive=True))
            files = [p for p in matches if p.is_file() and p.suffix in SUFFIXES]
            if not files:
                raise FileNotFoundError(f"sharegpt: no .json/.jsonl/.parquet file matches {target}")
            _refuse_two_editions(files, str(file))
            return files
        if target.is_dir():
            return _folder_files(target)
        if target.is_file():
            return [target]
        raise FileNotFoundError(f"sharegpt data file not found: {target}")
    candidates = [
        root / f"{split}.json",
        root / f"{split}.jsonl",
        root / split,
        root / "prompts" / f"{split}.json",
    ]
    # data.zip: data/<DATASET>/prompts/<split>.json, with root the folder holding data/ or data/.
    for pattern in (f"data/*/prompts/{split}.json", f"*/prompts/{split}.json"):
        candidates += sorted(root.glob(pattern))
    for candidate in candidates:
        if candidate.is_file():
            return [candidate]
        if candidate.is_dir():
            return _folder_files(candidate)
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"sharegpt data for split {split!r} not found; looked for: {looked} (or set file:)"
    )


#: Suffixes data.zip gives a second edition of a test set's prompt file (``hme100k_test.json`` and
#: ``hme100k_test_normalized.json``): two files of one set, never one set together.
EDITION_SUFFIXES = ("_normalized", "_normalised")


def _set_of(path: Path) -> str:
    stem = path.stem
    for suffix in EDITION_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return str(path.parent / stem)


def _refuse_two_editions(files: list[Path], pattern: str) -> None:
    """A :class:`ValueError` (one line naming both) when a pattern matches two editions of one
    set: read as one, the set would hold every item twice, under two ground truths."""
    seen: dict[str, Path] = {}
    for path in files:
        if path.suffix == ".parquet":
            continue  # shards of one release: many files, one edition
        other = seen.setdefault(_set_of(path), path)
        if other != path:
            raise ValueError(
                f"sharegpt: file pattern {pattern!r} matches two files of one test set, {other} and "
                f"{path}; name the one file to read (a second edition, e.g. *_normalized.json, is "
                "its own test set with its own name)"
            )


def _folder_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise FileNotFoundError(f"sharegpt: no .json/.jsonl/.parquet file in {folder}")
    _refuse_two_editions(files, str(folder))
    return files
