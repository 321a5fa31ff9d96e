"""The built-dataset format has one writer and one reader (data_prep.dataset): what any writer
writes, training and evaluation read back, checked against the manifest."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from data_prep.contract import main_record, record_features
from data_prep.dataset import (
    MANIFEST,
    list_splits,
    load_split,
    read_split_table,
    shard_name,
    split_files,
    write_split,
)


def _table(n: int) -> pa.Table:
    from PIL import Image

    features = record_features()
    rows = [
        main_record(f"r{k}", "toy", "train", Image.new("L", (30, 30), 255), f"x _ {{ {k} }}").to_row()
        for k in range(n)
    ]
    encoded = [features.encode_example(row) for row in rows]
    schema = features.arrow_schema
    return pa.Table.from_pydict(
        {name: [row[name] for row in encoded] for name in schema.names}, schema=schema
    )


def test_a_written_split_reads_back_in_shards_with_its_manifest(tmp_path):
    table = _table(5)
    write_split(tmp_path, "toy", table, {"note": "test"}, shard_rows=2)
    assert list_splits(tmp_path) == ["toy"]
    assert [f.name for f in split_files(tmp_path, "toy")] == [shard_name(k, 3) for k in range(3)]
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["note"] == "test" and manifest["splits"]["toy"]["complete"]
    assert [s["rows"] for s in manifest["splits"]["toy"]["shards"]] == [2, 2, 1]
    assert read_split_table(tmp_path, "toy").column("id").to_pylist() == [f"r{k}" for k in range(5)]
    rows = load_split(tmp_path, "toy")
    assert rows["answer"][4] == "x _ { 4 }" and rows[0]["image"].size == (30, 30)


def test_a_rewritten_split_drops_its_earlier_shards_and_keeps_other_splits(tmp_path):
    write_split(tmp_path, "a", _table(4), shard_rows=1)
    write_split(tmp_path, "b", _table(1))
    write_split(tmp_path, "a", _table(2), shard_rows=5)
    assert len(split_files(tmp_path, "a")) == 1 and read_split_table(tmp_path, "a").num_rows == 2
    assert list_splits(tmp_path) == ["a", "b"]
    with pytest.raises(KeyError, match="available splits: a, b"):
        split_files(tmp_path, "c")
