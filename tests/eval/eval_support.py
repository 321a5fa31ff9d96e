"""Helpers for the evaluation tests: a small built test set whose answers can be rebuilt, and a
backend that answers without a model."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

import pytest

from eval.backends import Backend
from eval.evaluate import EvalArgs
from tests.build_support import CROHME_SAMPLE, sample_source

SET = "crohme2014"


class ConstantBackend(Backend):
    """Answers every image with the same text; counts what it was asked."""

    name = "constant"

    def __init__(self, answer: str = "x", chunk_size: int = 4) -> None:
        self.answer = answer
        self.chunk_size = chunk_size
        self.seen = 0

    def _generate(self, images, prompts):
        self.seen += len(images)
        return [self.answer] * len(images)


def copy_sample(root: Path) -> Path:
    """A writable copy of the bundled CROHME sample (captions and images)."""
    shutil.copytree(CROHME_SAMPLE, root)
    return root


def rewrite_captions(root: Path, suffix: str) -> None:
    """Give every caption of the copy at ``root`` other answers (``suffix`` tokens appended)."""
    path = root / "caption_comer.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text(
        "".join(f"{line.rstrip()} {suffix}\n" if "\t" in line else f"{line}\n" for line in lines),
        encoding="utf-8",
    )


def build_test_set(source_root: Path, out: Path, records: int = 6) -> Path:
    """Build ``records`` items of the sample at ``source_root`` as test set ``crohme2014`` in ``out``."""
    from data_prep.build import build_dataset
    from data_prep.build.recipe import parse_recipe

    spec = sample_source(source_root, name=SET, max_records=records)
    recipe = parse_recipe({"output_dir": str(out), "shard_size": 64, "test_sets": [spec]})
    return build_dataset(recipe, progress=False, fresh=True)


def eval_args(data_dir: Path, out: Path, **kw) -> EvalArgs:
    return EvalArgs(
        model="constant", sets=SET, output_dir=str(out), data_dir=str(data_dir), progress=False, **kw
    )


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` as read-only storage: a read-only bind mount of it (skipped where mounting is not
    allowed). Root ignores file permissions, so chmod would not do."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
