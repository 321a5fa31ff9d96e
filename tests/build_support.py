"""Helpers for the tests of the data build: the bundled CROHME sample as a recipe source, and a build
that crashes while writing a shard (for the resume tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SAMPLES

CROHME_SAMPLE = SAMPLES / "crohme2014_test"


def sample_source(root: Path = CROHME_SAMPLE, **extra) -> dict:
    """A recipe's source entry for the bundled CROHME sample (or a copy of it at ``root``);
    ``extra`` adds or replaces keys (``tasks``, ``max_records``, ``name``...)."""
    return {
        "name": "sample",
        "reader": "crohme",
        "root": str(root),
        "split": "2014",
        "options": {"caption_file": "caption_comer.txt", "images_dir": "off_image_test"},
        **extra,
    }


@contextlib.contextmanager
def build_crashes_writing_shard(number: int, *, leave_partial: bool = False) -> Iterator[list[Path]]:
    """Within the block, a build raises ``KeyboardInterrupt`` when it starts writing its shard
    ``number`` (1-based), as a kill would; the block must raise it. Yields the paths of the shards
    written before. ``leave_partial``: the crashing write leaves a half-written ``.tmp`` beside
    its shard, as a real crash does. Shard writes are real again after the block."""
    from data_prep.build import pipeline as build_module

    real_write = build_module.DatasetBuilder._write_shard
    written: list[Path] = []

    def crash_on_shard(self, path, rows):
        if len(written) == number - 1:
            if leave_partial:
                path.with_name(path.name + ".tmp").write_bytes(b"half a shard")
            raise KeyboardInterrupt("simulated crash")
        written.append(path)
        real_write(self, path, rows)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build_module.DatasetBuilder, "_write_shard", crash_on_shard)
        with pytest.raises(KeyboardInterrupt):
            yield written
