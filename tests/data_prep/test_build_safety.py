"""A build never loses or fakes data: overlap with a source is refused before anything is written,
nothing outside the build's own files is deleted, an empty or over-rejected split is an error that
a rerun recovers from, holdout rejects are counted once, and the report is reproducible."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from data_prep.build import build_dataset, main
from data_prep.build.recipe import DEFAULT_MAX_REJECT_FRACTION, RecipeError, parse_recipe
from data_prep.dataset import list_splits, load_split
from data_prep.rejects import TooManyRejects
from tests.build_support import sample_source

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "crohme2014_test"


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def sample_copy(tmp_path) -> Path:
    root = tmp_path / "raw" / "crohme"
    shutil.copytree(SAMPLE, root)
    return root


@pytest.mark.parametrize("where", ["same", "inside", "containing"])
def test_output_dir_overlapping_a_source_is_refused_with_nothing_written(sample_copy, where, capsys):
    out = {"same": sample_copy, "inside": sample_copy / "off_image_test", "containing": sample_copy.parent}[
        where
    ]
    before = snapshot(sample_copy.parent)
    recipe = {"output_dir": str(out), "train": [sample_source(sample_copy)]}
    with pytest.raises(RecipeError, match="must be a folder of its own"):
        build_dataset(parse_recipe(recipe), progress=False)
    path = sample_copy.parent.parent / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["--config", str(path), "--no-progress"]) == 2  # a one-line error, no traceback
    assert snapshot(sample_copy.parent) == before


def test_datazip_split_folder_as_output_is_refused(tmp_path):
    """The issue's case: output_dir = the CROHME folder whose 2014/ a split folder would replace."""
    crohme = tmp_path / "data" / "CROHME"
    (crohme / "2014" / "img").mkdir(parents=True)
    recipe = parse_recipe(
        {
            "output_dir": str(crohme),
            "test_sets": [{"name": "crohme2014", "reader": "crohme", "root": str(crohme), "split": "2014"}],
        }
    )
    with pytest.raises(RecipeError, match="is source 'crohme2014'"):
        build_dataset(recipe, progress=False)
    assert sorted(p.name for p in crohme.iterdir()) == ["2014"]


def test_rebuild_deletes_only_the_builds_own_files(tmp_path):
    out = tmp_path / "out"
    recipe = {"output_dir": str(out), "train": [sample_source(SAMPLE, max_records=6)]}
    build_dataset(parse_recipe(recipe), progress=False)
    keep = [out / "train" / "my_notes.txt", out / "train" / "mine.parquet", out / "notes.md"]
    for path in keep:
        path.write_text("mine")
    build_dataset(parse_recipe({**recipe, "seed": 7}), progress=False)  # a changed recipe rebuilds
    assert all(path.read_text() == "mine" for path in keep)
    assert len(load_split(out, "train")) == 6


def test_file_modes_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        out = build_dataset(
            parse_recipe(
                {"output_dir": str(tmp_path / "o"), "train": [sample_source(SAMPLE, max_records=4)]}
            ),
            progress=False,
        )
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file() and ".cache" not in p.parts]
    assert files and {oct(p.stat().st_mode & 0o777) for p in files} == {"0o644"}


def _break_every_caption(root: Path) -> None:
    captions = root / "caption_comer.txt"
    lines = [line for line in captions.read_text().split("\n") if line.strip()]
    captions.write_text("\n".join(line.replace("\t", " ") for line in lines) + "\n")


def test_zero_row_split_is_an_error_whatever_the_threshold_and_a_rerun_recovers(sample_copy, tmp_path):
    good = (sample_copy / "caption_comer.txt").read_text()
    _break_every_caption(sample_copy)
    recipe = parse_recipe(
        {"output_dir": str(tmp_path / "o"), "max_reject_fraction": 1.0, "train": [sample_source(sample_copy)]}
    )
    with pytest.raises(
        TooManyRejects, match=r"split 'train' has no rows: all 48 items were rejected \(no_tab: 48\)"
    ):
        build_dataset(recipe, progress=False)
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert "train" not in manifest["splits"]  # not recorded as finished (nor as half done)
    assert list_splits(tmp_path / "o") == []
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["status"].startswith("failed: split 'train'")
    # The user fixes the captions and runs the same command again: no --fresh needed.
    (sample_copy / "caption_comer.txt").write_text(good)
    build_dataset(recipe, progress=False)
    assert len(load_split(tmp_path / "o", "train")) == 48


def test_an_empty_source_is_an_error_naming_it(tmp_path):
    root = tmp_path / "empty"
    (root / "off_image_test").mkdir(parents=True)
    (root / "caption_comer.txt").write_text("")
    recipe = parse_recipe({"output_dir": str(tmp_path / "o"), "train": [sample_source(root)]})
    with pytest.raises(TooManyRejects, match="the reader found nothing to read in sample"):
        build_dataset(recipe, progress=False)


def test_default_reject_limit_is_finite_and_a_failed_split_says_what_to_do(sample_copy, tmp_path):
    assert DEFAULT_MAX_REJECT_FRACTION == 0.05
    captions = sample_copy / "caption_comer.txt"
    lines = [line for line in captions.read_text().split("\n") if line.strip()]
    captions.write_text("\n".join(lines[:40] + [line.replace("\t", " ") for line in lines[40:]]) + "\n")
    recipe = parse_recipe({"output_dir": str(tmp_path / "o"), "train": [sample_source(sample_copy)]})
    assert recipe.max_reject_fraction == 0.05
    with pytest.raises(TooManyRejects) as error:
        build_dataset(recipe, progress=False)
    message = str(error.value)
    assert "8 of 48 records rejected (16.7% > 5.0%)" in message
    assert "run the same command again" in message and "--max-reject-fraction" in message


def test_holdout_rejects_are_counted_once(sample_copy, tmp_path):
    captions = sample_copy / "caption_comer.txt"
    captions.write_text(captions.read_text().rstrip("\n") + "\nghost\tx\n")  # one missing image: 1 of 49
    spec = {
        "output_dir": str(tmp_path / "o"),
        "train": [sample_source(sample_copy, holdout={"name": "held", "fraction": 0.25})],
    }
    build_dataset(parse_recipe(spec), progress=False)
    report = json.loads((tmp_path / "o" / "report.json").read_text())["splits"]
    assert report["train"]["rejected_input"]["total"] == 1
    assert report["held"]["rejected_input"]["total"] == 0
    assert report["held"]["reader_rejections_counted_in"] == "train"
    # The share checked is the source's real one, 1 of 49 (2.0%), not 1 of the ~37 training rows.
    strict = {**spec, "output_dir": str(tmp_path / "o2"), "max_reject_fraction": 0.021}
    build_dataset(parse_recipe(strict), progress=False)


def test_report_is_reproducible(sample_copy, tmp_path):
    """Identical builds give identical report.json (no memory addresses, times or output paths)."""
    (sample_copy / "off_image_test" / "18_em_5_0.bmp").write_bytes(b"BM truncated")  # PIL error text
    recipe = {"train": [sample_source(sample_copy)], "max_reject_fraction": 0.5}
    first = build_dataset(parse_recipe({"output_dir": str(tmp_path / "a"), **recipe}), progress=False)
    second = build_dataset(parse_recipe({"output_dir": str(tmp_path / "b"), **recipe}), progress=False)
    text = (first / "report.json").read_text()
    assert "unreadable_image" in text and " at 0x" not in text
    assert text == (second / "report.json").read_text()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"invert": "yes"}, "invert must be auto, true or false"),
        ({"colour": 1}, "unknown option(s) colour for reader 'crohme'"),  # caught at validation
    ],
)
def test_a_bad_reader_option_is_a_one_line_error(tmp_path, options, message, caplog):
    spec = sample_source(SAMPLE)
    spec["options"] = {**spec["options"], **options}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "o"), "train": [spec]}))
    assert main(["--config", str(path), "--no-progress"]) == 2
    assert "source 'sample'" in caplog.text and message in caplog.text


def _synthetic(root, corpus):
    return {
        "name": "rendered",
        "reader": "synthetic",
        "root": str(root),
        "split": "train",
        "options": {"corpus": corpus, "style": {"augment": 0}},
    }


def test_a_rendering_source_guards_its_corpus_file_not_its_root(tmp_path):
    from data_prep.build.safety import check_output_dir

    generator = {"generator": {"symbols": ["1", "2"], "min_symbols": 1, "max_symbols": 2}, "count": 4}
    # A generator reads no folder: an output below its (unused) root is fine.
    recipe = parse_recipe({"output_dir": str(tmp_path / "out"), "train": [_synthetic(tmp_path, generator)]})
    check_output_dir(tmp_path / "out", recipe)
    # A corpus file is read: an output folder holding it is refused, and nothing is written.
    corpus = tmp_path / "texts"
    corpus.mkdir()
    (corpus / "f.txt").write_text("a + b\n")
    spec = _synthetic(tmp_path, {"text_file": "texts/f.txt"})
    recipe = parse_recipe({"output_dir": str(corpus), "train": [spec]})
    with pytest.raises(RecipeError, match=r"contains source 'rendered' \(corpus.text_file\)"):
        check_output_dir(corpus, recipe)
    assert sorted(p.name for p in corpus.iterdir()) == ["f.txt"]
