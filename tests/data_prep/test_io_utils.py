"""data_prep.io_utils: atomic writes leave either the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os

import pytest

from data_prep import io_utils
from data_prep.io_utils import write_bytes_atomic, write_json_atomic, write_text_atomic


def test_writes_text_bytes_and_json_creating_folders(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    write_text_atomic(target, "ℵ first\n")
    assert target.read_bytes() == "ℵ first\n".encode()
    write_text_atomic(str(target), "second")  # replaces, and takes a str path
    assert target.read_text(encoding="utf-8") == "second"
    write_bytes_atomic(tmp_path / "raw.bin", b"\x00\xff")
    assert (tmp_path / "raw.bin").read_bytes() == b"\x00\xff"
    write_json_atomic(tmp_path / "v.json", {"name": "ℵ", "n": [1, 2]})
    text = (tmp_path / "v.json").read_text(encoding="ascii")  # ASCII: readable in any locale
    assert json.loads(text) == {"name": "ℵ", "n": [1, 2]}
    write_json_atomic(tmp_path / "flat.json", {"n": 1}, indent=None)
    assert (tmp_path / "flat.json").read_text() == '{"n": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "flat.json", "raw.bin", "v.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def crash(*args):
        raise KeyboardInterrupt("interrupted before the rename")

    monkeypatch.setattr(io_utils.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_directory_replaces_the_folder_only_when_complete(tmp_path):
    target = tmp_path / "model"
    with io_utils.atomic_directory(target) as staging:
        (staging / "config.json").write_text("{}")
        assert not target.exists()  # nothing at the target until the block succeeds
    assert os.listdir(target) == ["config.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask  # an ordinary folder, not mkdtemp's 0o700

    with pytest.raises(FileExistsError, match="not empty"):
        with io_utils.atomic_directory(target):
            pass
    with pytest.raises(RuntimeError):
        with io_utils.atomic_directory(target, overwrite=True) as staging:
            (staging / "half.bin").write_bytes(b"x")
            raise RuntimeError("interrupted")
    assert os.listdir(target) == ["config.json"]  # the old folder is untouched
    with io_utils.atomic_directory(target, overwrite=True) as staging:
        (staging / "new.json").write_text("{}")
    assert os.listdir(target) == ["new.json"]
    assert os.listdir(tmp_path) == ["model"]  # no staging folder left behind
