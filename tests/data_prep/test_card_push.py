"""Hub-ready output: the dataset card makes `datasets.load_dataset(folder)` return every split by
name, and an upload sends the data, never the build's state (checked offline)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import yaml

from data_prep.build import build_dataset
from data_prep.build.card import CARD_MARKER, upload_files
from data_prep.build.recipe import load_recipe
from data_prep.dataset import load_split
from data_prep.push import main as push_main
from data_prep.push import push

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hub_ready")
    with contextlib.chdir(REPO):
        recipe = load_recipe(REPO / "recipes" / "data" / "crohme_sample.yaml")
        build_dataset(recipe, out, sharegpt=True, progress=False)
    return out


def test_load_dataset_on_the_folder_returns_every_split(built):
    import datasets

    card = (built / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert [f["split"] for f in header["configs"][0]["data_files"]] == ["crohme2014_sample", "train"]
    assert CARD_MARKER in card and "CROHME competition data" in card  # licence/terms per source
    loaded = datasets.load_dataset(str(built), cache_dir=str(built.parent / "hf_cache"))
    assert set(loaded) == {"crohme2014_sample", "train"}
    for split in loaded:
        ours = load_split(built, split)
        assert loaded[split].num_rows == ours.num_rows > 0
        assert loaded[split]["id"] == ours["id"]


def test_upload_sends_data_and_card_but_no_build_state(built, capsys):
    (built / ".build" / "train" / "shard-00009.parquet").write_bytes(b"left by a crash")
    files = upload_files(built)
    assert "README.md" in files and "report.json" in files
    assert any(f.startswith("train/shard-") for f in files)
    assert not any(f.startswith((".build", "sharegpt", ".cache")) or f == "manifest.json" for f in files)
    assert (built / "manifest.json").is_file() and (built / ".build").is_dir()  # they exist, stay local

    assert push_main(["--data-dir", str(built), "--repo-id", "me/hmer", "--dry-run"]) == 0
    assert capsys.readouterr().out.split() == files

    class FakeApi:
        def __init__(self):
            self.calls = []

        def create_repo(self, repo_id, **kwargs):
            self.calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            self.calls.append(("upload_folder", kwargs))
            return "https://huggingface.co/datasets/me/hmer/commit/0"

    api = FakeApi()
    assert push(built, "me/hmer", private=True, api=api).endswith("/commit/0")
    (_, repo, create), (_, upload) = api.calls
    assert repo == "me/hmer" and create == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert upload["repo_type"] == "dataset" and upload["folder_path"] == str(built)
    import fnmatch

    sent = sorted(
        str(p.relative_to(built))
        for p in built.rglob("*")
        if p.is_file()
        and any(fnmatch.fnmatch(str(p.relative_to(built)), pat) for pat in upload["allow_patterns"])
        and not any(fnmatch.fnmatch(str(p.relative_to(built)), pat) for pat in upload["ignore_patterns"])
    )
    assert sent == files  # huggingface_hub matches allow_patterns with fnmatch on relative paths


def test_push_refuses_a_folder_that_is_not_a_finished_build(tmp_path):
    assert push_main(["--data-dir", str(tmp_path), "--repo-id", "me/x", "--dry-run"]) == 2
