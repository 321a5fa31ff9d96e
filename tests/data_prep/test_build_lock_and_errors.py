"""Issue 19, items 2 and 8 (data side): one data build per output folder (a second, same or other
recipe, is refused in one line naming the holder), and a full disk, a read-only output folder or a
malformed recipe end ``python -m data_prep.build`` in one line, with nothing half-written."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from data_prep.build import pipeline
from tests.build_support import sample_source

REPO = Path(__file__).resolve().parents[2]

#: A build whose shard writes wait for a file to appear: it holds its output folder's lock until
#: the test lets it go (or kills it).
SLOW_BUILD = """
import pathlib, sys, time
from data_prep.build import builder
real = builder.DatasetBuilder._write_shard
def slow(self, path, rows):
    go = pathlib.Path(sys.argv[1])
    print("writing", flush=True)
    while not go.exists():
        time.sleep(0.05)
    real(self, path, rows)
builder.DatasetBuilder._write_shard = slow
from data_prep.build.pipeline import main
sys.exit(main(sys.argv[2:]))
"""


def _recipe(tmp_path: Path, name: str, out: Path, **extra) -> Path:
    path = tmp_path / f"{name}.yaml"
    data = {"output_dir": str(out), "test_sets": [sample_source(**extra)]}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _build(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "data_prep.build", "--no-progress", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ERROR")]


@pytest.mark.slow  # three build processes
def test_a_second_build_into_one_folder_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "out"
    first = _recipe(tmp_path, "first", out, max_records=6)
    other = _recipe(tmp_path, "other", out, max_records=4)  # another recipe, same folder
    go = tmp_path / "go"
    holder = subprocess.Popen(
        [sys.executable, "-c", SLOW_BUILD, str(go), "--config", str(first), "--no-progress"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "writing"  # it holds the lock now
        for recipe in (first, other):
            second = _build("--config", str(recipe))
            assert second.returncode == 2, second.stderr
            errors = _error_lines(second.stderr)
            assert len(errors) == 1 and "Traceback" not in second.stderr
            assert f"pid {holder.pid}" in errors[0] and "data build" in errors[0]
        assert not (out / "manifest.json").exists() or json.loads((out / "manifest.json").read_text())[
            "recipe"
        ] == str(first)
        go.touch()
        assert holder.wait(timeout=600) == 0, holder.stderr.read()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    # Released on exit: the other recipe now builds there.
    done = _build("--config", str(other))
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "manifest.json").read_text())["recipe"] == str(other)


@pytest.mark.slow  # two build processes
def test_a_killed_build_leaves_the_folder_unlocked(tmp_path):
    out = tmp_path / "out"
    recipe = _recipe(tmp_path, "r", out, max_records=3)
    holder = subprocess.Popen(
        [sys.executable, "-c", SLOW_BUILD, str(tmp_path / "never"), "--config", str(recipe), "--no-progress"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "writing"
    holder.kill()  # SIGKILL: the kernel drops the flock
    holder.wait()
    done = _build("--config", str(recipe))
    assert done.returncode == 0, done.stderr


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "err",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EROFS, "Read-only file system"),
        PermissionError(errno.EACCES, "Permission denied"),
    ],
    ids=["disk_full", "read_only", "permission"],
)
def test_a_write_failure_ends_in_one_line_with_nothing_half_written(tmp_path, monkeypatch, caplog, err):
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    recipe = _recipe(tmp_path, "r", out, max_records=4)

    def fail(table, where, **kwargs):
        Path(where).write_bytes(b"half a shard")  # the write got this far
        err.filename = str(where)
        raise err

    monkeypatch.setattr(pq, "write_table", fail)
    assert pipeline.main(["--config", str(recipe), "--no-progress"]) == 2
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0].getMessage()
    assert "nothing half-written" in errors[0].getMessage()
    assert not [f for f in _files(out) if f.endswith(".tmp") or f.endswith(".parquet")]


def test_an_unwritable_lock_folder_ends_in_one_line(tmp_path, monkeypatch, caplog):
    out = tmp_path / "ro" / "out"
    recipe = _recipe(tmp_path, "r", out, max_records=2)
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert pipeline.main(["--config", str(recipe), "--no-progress"]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "read-only" in errors[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"output_dir: x\ntest_sets: [a\n  b: c", "not valid YAML"),
        (b"- a\n- b\n", "must be a YAML mapping of keys to values (`key: value`), not a list"),
        (b"output_dir: \xff\xfe\n", "not UTF-8"),
        (b"", "missing required key(s) 'output_dir'"),
    ],
    ids=["malformed", "list", "not_utf8", "empty"],
)
def test_a_broken_recipe_is_one_line(tmp_path, content, expected):
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(content)
    done = _build("--config", str(recipe))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = _error_lines(done.stderr)
    assert len(errors) == 1 and expected in errors[0], done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
