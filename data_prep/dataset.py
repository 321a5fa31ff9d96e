"""Loading a built dataset (``python -m data_prep.build``): training and evaluation both go through here.

A built dataset folder holds one sub-folder of parquet shards per split (``train`` and one per
test set) and a ``manifest.json`` that marks which splits finished building.
"""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = "manifest.json"


def list_splits(data_dir: str | Path) -> list[str]:
    """Names of the splits in ``data_dir`` that hold shards, sorted (hidden folders ignored)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in data_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and any(p.glob("shard-*.parquet"))
    )


def split_files(data_dir: str | Path, split: str) -> list[Path]:
    """The parquet shards of ``split``; a clear error naming the available splits otherwise."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"no dataset folder at {data_dir}; build one with `python -m data_prep.build`"
        )
    manifest_path = data_dir / MANIFEST
    state = None
    if manifest_path.is_file():
        state = json.loads(manifest_path.read_text(encoding="utf-8")).get("splits", {}).get(split)
        if state is not None and not state.get("complete"):
            raise RuntimeError(
                f"split {split!r} in {data_dir} did not finish building; rerun `python -m data_prep.build` to resume it"
            )
    files = sorted((data_dir / split).glob("shard-*.parquet"))  # the build's own shards only
    if state is not None:
        verify_shards(data_dir, split, state.get("shards", []))
    if not files:
        available = ", ".join(list_splits(data_dir)) or "none"
        raise KeyError(f"no split {split!r} in {data_dir}; available splits: {available}")
    return files


class ShardChecksumError(RuntimeError):
    """A shard on disk is not the one the build wrote (damaged, truncated or replaced)."""


def verify_shards(data_dir: Path, split: str, shards: list[dict]) -> None:
    """Every shard the manifest lists exists and has the SHA-256 the build recorded for it
    (manifests written before checksums existed are taken as they are)."""
    from data_prep.io_utils import file_sha256

    for entry in shards:
        path = data_dir / entry["file"]
        if not path.is_file():
            raise ShardChecksumError(
                f"shard {entry['file']} of split {split!r} is missing from {data_dir}; rebuild it with "
                "`python -m data_prep.build --fresh`"
            )
        expected = entry.get("sha256")
        if expected and file_sha256(path) != expected:
            raise ShardChecksumError(
                f"shard {path} is damaged or was replaced (its SHA-256 is not the one in {MANIFEST}); "
                "rebuild it with `python -m data_prep.build --fresh`"
            )


def load_split(data_dir: str | Path, split: str):
    """One split as a ``datasets.Dataset`` with :func:`data_prep.contract.record_features`.

    The parquet shards are converted once into an Arrow cache inside ``data_dir/.cache`` (kept
    beside the data rather than in the user's HF cache) and memory-mapped from there.
    """
    import datasets

    from data_prep.contract import record_features

    files = split_files(data_dir, split)
    return datasets.load_dataset(
        "parquet",
        data_files={"rows": [str(f) for f in files]},
        split="rows",
        features=record_features(),
        cache_dir=str(Path(data_dir) / ".cache"),
    )
