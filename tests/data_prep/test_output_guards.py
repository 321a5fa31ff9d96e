"""Every figure bound to its inputs (issue 19), the foundations: a built split's content
fingerprint read from its manifest, one writer per output folder, and no output folder over an
input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_prep.build import build_dataset
from data_prep.build.recipe import parse_recipe
from data_prep.fingerprint import (
    fingerprint_changes,
    read_split_fingerprint,
    rows_fingerprint,
    split_fingerprint,
)
from data_prep.output_lock import OutputLocked, lock_path, output_lock
from data_prep.path_guard import OutputOverlapsInput, find_overlap, refuse_overlap
from tests.build_support import CROHME_SAMPLE, sample_source
from tests.conftest import REPO

# --------------------------------------------------------------------------- #
# Fingerprints
# --------------------------------------------------------------------------- #


def _rows(answers=("a", "b"), images=(b"x", b"y"), ids=("1", "2")):
    return [
        {"id": i, "task": "main", "prompt": "p", "answer": a, "image": {"bytes": b, "path": None}}
        for i, a, b in zip(ids, answers, images, strict=True)
    ]


def test_fingerprint_says_in_one_line_what_changed():
    base = rows_fingerprint(_rows())
    assert rows_fingerprint(_rows()) == base
    same = split_fingerprint([{"fingerprint": base}])
    assert fingerprint_changes(same, split_fingerprint([{"fingerprint": rows_fingerprint(_rows())}])) is None
    answers = split_fingerprint([{"fingerprint": rows_fingerprint(_rows(answers=("a", "c")))}])
    assert fingerprint_changes(same, answers) == "answers changed (2 -> 2 rows)"
    images = split_fingerprint([{"fingerprint": rows_fingerprint(_rows(images=(b"x", b"z")))}])
    assert fingerprint_changes(same, images) == "images changed (2 -> 2 rows)"
    fewer = split_fingerprint([{"fingerprint": rows_fingerprint(_rows()[:1])}])
    assert fingerprint_changes(same, fewer) == "ids, answers, prompts, images changed (2 -> 1 rows)"
    # Concatenation cannot collide: ["ab", "c"] is not ["a", "bc"].
    assert rows_fingerprint(_rows(answers=("ab", "c"))) != rows_fingerprint(_rows(answers=("a", "bc")))
    assert fingerprint_changes(None, same) == "no fingerprint was recorded"


def test_older_manifest_gets_a_shard_checksum_fingerprint():
    old = split_fingerprint([{"sha256": "aa", "rows": 3}])
    assert old["kind"] == "shards" and old["rows"] == 3
    assert fingerprint_changes(old, split_fingerprint([{"sha256": "bb", "rows": 3}])) == (
        "the content changed (3 -> 3 rows)"
    )
    assert split_fingerprint([{"rows": 3}]) is None


def test_build_records_the_fingerprint_and_a_caption_change_shows_as_answers(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(CROHME_SAMPLE, source)
    out = tmp_path / "out"
    recipe = {"output_dir": str(out), "train": [sample_source(source, max_records=4)]}
    build_dataset(parse_recipe(recipe), progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    recorded = manifest["splits"]["train"]["fingerprint"]
    first = read_split_fingerprint(out, "train")
    assert first == recorded and first["rows"] >= 4
    assert read_split_fingerprint(out, "no-such-split") is None
    assert read_split_fingerprint(tmp_path / "nowhere", "train") is None

    # The same build again: same fingerprint.
    build_dataset(parse_recipe(recipe), progress=False, fresh=True)
    assert fingerprint_changes(first, read_split_fingerprint(out, "train")) is None
    # Other captions, same images and ids: only the answers changed.
    captions = source / "caption_comer.txt"
    lines = captions.read_text(encoding="utf-8").splitlines()
    captions.write_text(
        "\n".join(f"{line.split(chr(9))[0]}\t1 + 1" for line in lines if line.strip()) + "\n",
        encoding="utf-8",
    )
    build_dataset(parse_recipe(recipe), progress=False, fresh=True)
    assert fingerprint_changes(first, read_split_fingerprint(out, "train")).startswith("answers changed")


# --------------------------------------------------------------------------- #
# One writer per output folder
# --------------------------------------------------------------------------- #

HOLDER = """
import sys, time
from pathlib import Path
from data_prep.output_lock import output_lock, OutputLocked
try:
    with output_lock(sys.argv[1], what="evaluation"):
        Path(sys.argv[2]).touch()
        time.sleep(float(sys.argv[3]))
except OutputLocked as err:
    print(err)
    sys.exit(3)
"""


def _start_holder(folder: Path, flag: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder), str(flag), str(seconds)],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


def test_second_writer_is_refused_naming_the_holder_and_sigkill_frees_the_folder(tmp_path):
    out = tmp_path / "eval"
    holder = _start_holder(out, tmp_path / "held", 3600)
    try:
        # A second real process is refused in one line naming the holder.
        second = subprocess.run(
            [sys.executable, "-c", HOLDER, str(out), str(tmp_path / "second"), "0"],
            cwd=REPO,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 3, second.stderr
        message = second.stdout.strip()
        assert len(message.splitlines()) == 1
        assert f"pid {holder.pid}" in message and "evaluation" in message and str(out) in message
        assert not (tmp_path / "second").exists()
        # So is this process.
        with pytest.raises(OutputLocked, match=f"pid {holder.pid}"), output_lock(out, what="evaluation"):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    # The kernel dropped the killed holder's lock: the folder is free again.
    with output_lock(out, what="evaluation") as lock:
        assert lock == lock_path(out)
        holder_info = json.loads(lock.with_name(lock.name + ".json").read_text())
        assert holder_info["pid"] == os.getpid()
    # Released on exit: it can be taken again, and the holder record is gone.
    with output_lock(out):
        pass
    assert not lock_path(out).with_name(lock_path(out).name + ".json").exists()


def test_lock_is_beside_the_folder_and_shared_by_its_spellings(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    link = tmp_path / "link"
    link.symlink_to(out)
    assert lock_path(out) == lock_path(link) == tmp_path.resolve() / ".out.lock"
    with output_lock(out), pytest.raises(OutputLocked), output_lock(link):
        pass
    assert list(out.iterdir()) == []  # nothing written inside the folder


# --------------------------------------------------------------------------- #
# Outputs never over inputs
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("output", "relation"), [("model", "is"), ("model/sub", "lies inside"), (".", "contains")]
)
def test_output_over_an_input_is_refused_naming_it(tmp_path, output, relation):
    (tmp_path / "model").mkdir()
    inputs = {"base model": tmp_path / "model", "adapter": None, "dataset": tmp_path.parent / "elsewhere"}
    with pytest.raises(OutputOverlapsInput) as err:
        refuse_overlap(tmp_path / output, inputs)
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert f"{relation} the base model {tmp_path / 'model'}" in message
    assert find_overlap(tmp_path / "apart", inputs) is None
    refuse_overlap(tmp_path / "apart", inputs)  # apart: no error
