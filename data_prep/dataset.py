"""The built-dataset format, written and read here only (``python -m data_prep.build``, eval's
k-fold subsets, the learning demo's control split write it; training and evaluation read it).

A built dataset folder holds one sub-folder of parquet shards per split (``train`` and one per
test set), named ``shard-NNNNN-of-NNNNN.parquet``, and a ``manifest.json`` that marks which splits
finished building (with each shard's row count and SHA-256 when the build recorded them).

Writers: :func:`write_shard` (one atomic parquet file), :func:`shard_name`, :func:`write_split`
(a whole split plus its manifest entry). Readers: :func:`list_splits`, :func:`split_files`,
:func:`load_split` (a ``datasets.Dataset``), :func:`read_split_table` (a ``pyarrow.Table``).
"""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = "manifest.json"
SHARD_PATTERN = "shard-{index:05d}-of-{total:05d}.parquet"
#: Small row groups keep random access to embedded images cheap.
PARQUET_ROW_GROUP = 100
#: Rows per shard when a whole split is written at once (:func:`write_split`).
SHARD_ROWS = 5000


def shard_name(index: int, total: int) -> str:
    """The final file name of shard ``index`` of ``total`` in a split folder."""
    return SHARD_PATTERN.format(index=index, total=total)


def write_shard(path: str | Path, table) -> None:
    """Write a ``pyarrow.Table`` (or a ``datasets.Dataset``) as one parquet shard, atomically."""
    from data_prep.io_utils import atomic_output

    with atomic_output(Path(path)) as tmp:
        if hasattr(table, "to_parquet"):  # a datasets.Dataset keeps its HF features metadata
            table.to_parquet(str(tmp))
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, tmp, row_group_size=PARQUET_ROW_GROUP)


def write_split(
    data_dir: str | Path, split: str, rows, info: dict | None = None, shard_rows: int = SHARD_ROWS
) -> Path:
    """Write ``rows`` (a ``pyarrow.Table`` or a ``datasets.Dataset`` with the record columns) as
    split ``split`` of the dataset folder ``data_dir``: shards renamed into place, then the
    manifest (``info`` adds top-level keys). Stale shards of an earlier attempt are removed."""
    from data_prep.io_utils import write_json_atomic

    data_dir = Path(data_dir)
    split_dir = data_dir / split
    split_dir.mkdir(parents=True, exist_ok=True)
    for stale in split_dir.glob("*.parquet*"):
        stale.unlink()
    import pyarrow as pa

    is_arrow = isinstance(rows, pa.Table)  # else a datasets.Dataset (pa.Table.select picks columns)
    count = rows.num_rows
    total = max(1, -(-count // shard_rows))
    shards = []
    for number in range(total):
        start, stop = number * shard_rows, min(count, (number + 1) * shard_rows)
        chunk = rows.slice(start, stop - start) if is_arrow else rows.select(range(start, stop))
        name = shard_name(number, total)
        write_shard(split_dir / name, chunk)
        shards.append({"file": f"{split}/{name}", "rows": stop - start})
    manifest_path = data_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    manifest.update(info or {})
    manifest.setdefault("splits", {})[split] = {"complete": True, "shards": shards}
    write_json_atomic(manifest_path, manifest)
    return data_dir


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


#: Where the Arrow caches of datasets on read-only storage go (``HMER_DATASETS_CACHE`` overrides).
FALLBACK_CACHE = Path("~/.cache/hmer-recipes/datasets")


def _writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (made if missing): tried, not guessed, since
    ``os.access`` says yes to root on storage that then refuses the write."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            return True
    except OSError:
        return False


def cache_dir(data_dir: str | Path) -> Path:
    """The Arrow cache of a dataset folder: ``data_dir/.cache`` (beside the data, rather than in
    the user's HF cache), or, when the dataset is on read-only storage (``datasets`` writes a lock
    file in its cache even to read), a folder of its own under ``~/.cache/hmer-recipes/datasets``."""
    import hashlib
    import os

    beside = Path(data_dir) / ".cache"
    if _writable(beside):
        return beside
    root = Path(os.environ.get("HMER_DATASETS_CACHE") or FALLBACK_CACHE).expanduser()
    key = hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:16]
    fallback = root / f"{Path(data_dir).resolve().name}-{key}"
    if not _writable(fallback):  # no writable home either: a private temporary folder
        import tempfile

        fallback = Path(tempfile.gettempdir()) / f"hmer-datasets-{os.getuid()}" / fallback.name
        fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def load_split(data_dir: str | Path, split: str):
    """One split as a ``datasets.Dataset`` with :func:`data_prep.contract.record_features`.

    The parquet shards are converted once into an Arrow cache (:func:`cache_dir`: inside
    ``data_dir/.cache``, or elsewhere when the dataset is read-only) and memory-mapped from there.
    """
    import datasets

    from data_prep.contract import record_features

    files = split_files(data_dir, split)
    return datasets.load_dataset(
        "parquet",
        data_files={"rows": [str(f) for f in files]},
        split="rows",
        features=record_features(),
        cache_dir=str(cache_dir(data_dir)),
    )


def read_split_table(data_dir: str | Path, split: str):
    """One split as a single ``pyarrow.Table`` (the shards concatenated, checked like :func:`load_split`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa.concat_tables([pq.read_table(f) for f in split_files(data_dir, split)])
