"""Shared fixtures: paths to the bundled sample, the shared real-data slice and the tiny model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
FIXTURES = REPO / "tests" / "fixtures"
# The real-data slices live beside the checkout (../shared/data); tests that need them are
# skipped with that reason where the folder is absent (e.g. a clone outside this workspace).
SHARED_DATA = Path(os.environ.get("HMER_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One torch thread (set before torch is imported; subprocesses inherit it): on a shared 2-core
# machine torch's default threads thrash (make test took 315 s instead of 114 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_configure(config):
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def crohme_sample_dir() -> Path:
    return SAMPLES / "crohme2014_test"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared real-data slice not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny Qwen2.5-VL model folder, built offline once per test session."""
    from train.tiny_model import build_tiny_model

    out = tmp_path_factory.mktemp("tiny-qwen2.5-vl")
    build_tiny_model(out)
    return out


@pytest.fixture(scope="session")
def crohme_sample_data(tmp_path_factory) -> Path:
    """The bundled CROHME sample built once by the real data build (test split ``crohme2014_sample``)."""
    from data_prep.build import build_dataset

    out = tmp_path_factory.mktemp("data") / "crohme_sample"
    previous = os.getcwd()
    os.chdir(REPO)  # the recipe's paths are relative to the repository root
    try:
        build_dataset(REPO / "recipes/data/crohme_sample.yaml", out, progress=False)
    finally:
        os.chdir(previous)
    return out
