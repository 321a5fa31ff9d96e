"""Train/test overlap detection: fingerprints, and a build with a made-up overlap."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from data_prep.build import build_dataset
from data_prep.build.contamination import (
    KIND_EXACT,
    KIND_PERCEPTUAL,
    ContaminationIndex,
    fingerprint,
    hamming,
    normalize_formula,
)
from data_prep.build.recipe import parse_recipe
from data_prep.dataset import load_split
from tests.build_support import sample_source

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "crohme2014_test"
IMAGES = sorted((SAMPLE / "off_image_test").glob("*.bmp"))


def load(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return ImageOps.invert(image.convert("L"))


def test_exact_hash_is_of_pixels_not_encoding():
    image = load(IMAGES[0])
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG")
    assert fingerprint(Image.open(buffer)).exact == fingerprint(image).exact
    assert fingerprint(load(IMAGES[1])).exact != fingerprint(image).exact


def test_perceptual_match_survives_resize_and_jpeg_but_separates_images():
    index = ContaminationIndex(perceptual_max_distance=12)
    for path in IMAGES:
        index.add("test", path.stem, fingerprint(load(path)), "x")
    image = load(IMAGES[3])
    copy = image.resize((int(image.width * 0.7), int(image.height * 0.7)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    copy.save(buffer, "JPEG", quality=80)
    match = index.image_match(fingerprint(Image.open(buffer)))
    assert match is not None and match.kind == KIND_PERCEPTUAL and match.test_id == IMAGES[3].stem
    assert index.image_match(fingerprint(image)).kind == KIND_EXACT
    # Different handwritten formulas are far apart.
    prints = [fingerprint(load(p)).perceptual for p in IMAGES[:12]]
    assert min(hamming(a, b) for i, a in enumerate(prints) for b in prints[i + 1 :]) > 12


def test_formula_normalisation_bridges_caption_editions():
    assert normalize_formula("\\lim \\limits _ { n }  x") == normalize_formula("\\lim _ { n } x")
    assert normalize_formula("x ^ { 2 }") != normalize_formula("x ^ { 3 }")


def _overlap_setup(tmp_path: Path, count: int = 5) -> Path:
    """A made-up test set: ``count`` sample images (as PNG, renamed) with their captions."""
    root = tmp_path / "fake_test"
    (root / "test" / "img").mkdir(parents=True)
    captions = [line for line in (SAMPLE / "caption_comer.txt").read_text().split("\n") if line.strip()]
    lines = []
    for n, line in enumerate(captions[:count]):
        name, label = line.split("\t", 1)
        image = Image.open(SAMPLE / "off_image_test" / f"{name}_0.bmp")
        image.save(root / "test" / "img" / f"copy{n}.png")
        lines.append(f"copy{n}\t{label}")
    (root / "test" / "caption.txt").write_text("\n".join(lines))
    return root


def _recipe(tmp_path: Path, test_root: Path, **contamination) -> dict:
    return {
        "output_dir": str(tmp_path / "out"),
        "contamination": contamination,
        "train": [sample_source()],
        "test_sets": [{"name": "fake", "reader": "crohme", "root": str(test_root), "split": "test"}],
    }


def test_build_excludes_overlapping_images(tmp_path):
    out = build_dataset(parse_recipe(_recipe(tmp_path, _overlap_setup(tmp_path))), progress=False)
    train = load_split(out, "train")
    assert len(train) == 48 - 5
    report = json.loads((out / "report.json").read_text())
    excluded = report["splits"]["train"]["excluded"]
    assert excluded["total"] == 5
    assert [g["reason"] for g in excluded["by_source_and_reason"]] == ["contaminated_image"]
    assert "fake/copy0" in excluded["by_source_and_reason"][0]["examples"][0]
    findings = report["contamination"]
    assert findings["excluded"] == 5
    assert findings["by_train_source_and_test_set"]["sample -> fake"]["exact_image"] == 5


def test_formula_overlap_reported_or_excluded_by_policy(tmp_path):
    test_root = _overlap_setup(tmp_path)
    # Replace the test images by simple shapes (blank ones are rejected) so only the formulas overlap.
    for number, path in enumerate(sorted((test_root / "test" / "img").iterdir())):
        shape = Image.new("L", (40, 40), 255)
        ImageDraw.Draw(shape).ellipse([(4 + 3 * number, 6), (20 + 3 * number, 34)], outline=0, width=3)
        shape.save(path)
    report_only = build_dataset(parse_recipe(_recipe(tmp_path, test_root)), progress=False)
    report = json.loads((report_only / "report.json").read_text())
    assert len(load_split(report_only, "train")) == 48
    assert report["contamination"]["by_train_source_and_test_set"]["sample -> fake"]["formula"] >= 5
    assert report["contamination"]["excluded"] == 0

    strict = _recipe(tmp_path, test_root, formula="exclude")
    strict["output_dir"] = str(tmp_path / "strict")
    out = build_dataset(parse_recipe(strict), progress=False)
    excluded = json.loads((out / "report.json").read_text())["splits"]["train"]["excluded"]
    assert excluded["by_source_and_reason"][0]["reason"] == "contaminated_formula"
    assert len(load_split(out, "train")) == 48 - excluded["total"]
    assert excluded["total"] >= 5


def test_keep_policy_keeps_contaminated_records(tmp_path):
    out = build_dataset(
        parse_recipe(_recipe(tmp_path, _overlap_setup(tmp_path), image="report")), progress=False
    )
    assert len(load_split(out, "train")) == 48
    shutil.rmtree(out)
