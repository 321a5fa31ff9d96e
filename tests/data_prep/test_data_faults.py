"""Issue 19, items 6 and 7 (data side): over-long captions and blank images are counted rejects in
every reader (one limit, one check), dark-ink photos are never inverted while white-on-black
CROHME bitmaps still are, and the error-driven command reads the reference's ``*_pred.json``."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from data_prep.answer_check import MAX_ANSWER_TOKENS, answer_problem
from data_prep.build import build_dataset
from data_prep.build.recipe import parse_recipe
from data_prep.contract import MAIN_PROMPT
from data_prep.dataset import load_split
from data_prep.images import blank_detail
from data_prep.ink import ink_is_light
from data_prep.rejects import Rejects

REPO = Path(__file__).resolve().parents[2]
LONG_TOKENS = " ".join(["x"] * (MAX_ANSWER_TOKENS + 1))


def _formula(path: Path, seed: int = 0) -> None:
    image = Image.new("L", (80, 32), 255)
    draw = ImageDraw.Draw(image)
    draw.line([(6 + seed, 6), (60, 26 - seed % 5)], fill=0, width=3)
    draw.line([(10, 24), (40 + seed, 8)], fill=20, width=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _blank_images(folder: Path) -> dict[str, str]:
    """name -> kind of three images that hold no formula."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("L", (80, 32), 0).save(folder / "black.png")
    Image.new("RGB", (80, 32), (255, 255, 255)).save(folder / "white.png")
    stray = Image.new("L", (200, 100), 255)
    stray.putpixel((5, 5), 0)  # one stray pixel: 99.995% one value
    stray.save(folder / "stray.png")
    return {"black": "black.png", "white": "white.png", "stray": "stray.png"}


def _build_one(tmp_path: Path, source: dict) -> tuple[Path, dict]:
    recipe = parse_recipe(
        {"output_dir": str(tmp_path / "out"), "max_reject_fraction": 0.9, "test_sets": [source]}
    )
    out = build_dataset(recipe, progress=False)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))["splits"][source["name"]]
    reasons = {e["reason"]: e["count"] for e in report["rejected_input"]["by_source_and_reason"]}
    return out, reasons


# --------------------------------------------------------------------------- #
# Blank images and over-long captions, in each reader
# --------------------------------------------------------------------------- #


def test_blank_detail_flags_one_value_and_nearly_one_value_only():
    assert blank_detail(Image.new("L", (50, 50), 0))
    assert blank_detail(Image.new("RGB", (50, 50), (255, 255, 255)))
    noisy = Image.fromarray(
        np.full((64, 64), 200, np.uint8) + np.random.default_rng(0).integers(0, 2, (64, 64)).astype(np.uint8)
    )
    assert blank_detail(noisy)  # std < 1: a flat scan with sensor noise
    formula = Image.new("L", (80, 32), 255)
    ImageDraw.Draw(formula).line([(4, 4), (70, 28)], fill=0, width=1)
    assert blank_detail(formula) is None


def test_labels_reader_rejects_blank_images_and_an_over_long_caption_without_crashing(tmp_path):
    root = tmp_path / "set"
    for i in range(3):
        _formula(root / "test" / "images" / f"ok{i}.png", i)
    blanks = _blank_images(root / "test" / "images")
    _formula(root / "test" / "images" / "huge.png", 7)
    rows = ["image,latex"] + [f"ok{i}.png,x + {i}" for i in range(3)]
    rows += [f"{name},y" for name in blanks.values()]
    rows.append('huge.png,"' + "x " * 1_000_000 + '"')  # a 2 MB caption: past csv's field limit
    rows.append("ok_after.png,z")  # the reading goes on after it
    _formula(root / "test" / "images" / "ok_after.png", 9)
    (root / "test" / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out, reasons = _build_one(tmp_path, {"name": "t", "reader": "labels", "root": str(root), "split": "test"})
    assert sorted(load_split(out, "t")["id"]) == ["ok0", "ok1", "ok2", "ok_after"]
    assert reasons == {"blank_image": 3, "answer_too_long": 1}


def test_crohme_reader_rejects_a_huge_truth_and_blank_bitmaps(tmp_path):
    root = tmp_path / "crohme"
    for i in range(2):
        _formula(root / "2014" / "images" / f"f{i}.bmp", i)
    _formula(root / "2014" / "images" / "long.bmp", 5)
    blanks = _blank_images(root / "2014" / "images")
    lines = [f"f{i}\tx + {i}" for i in range(2)] + [f"long\t{LONG_TOKENS}"]
    lines += [f"{Path(name).stem}\ty" for name in blanks.values()]
    (root / "2014" / "caption.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # Bitmaps of CROHME are white on black; these are already dark on light: not inverted.
    source = {
        "name": "c",
        "reader": "crohme",
        "root": str(root),
        "split": "2014",
        "options": {"invert": False},
    }
    out, reasons = _build_one(tmp_path, source)
    assert sorted(load_split(out, "c")["id"]) == ["f0", "f1"]
    assert reasons == {"answer_too_long": 1, "blank_image": 3}


def test_sharegpt_reader_rejects_blank_images_and_an_over_long_answer(tmp_path):
    root = tmp_path / "zip"
    images = root / "images"
    _formula(images / "a.png")
    _formula(images / "long.png", 3)
    blanks = _blank_images(images)
    answers = {"a.png": "a + b", "long.png": LONG_TOKENS, **{name: "y" for name in blanks.values()}}
    samples = [
        {
            "messages": [
                {"role": "user", "content": f"<image>{MAIN_PROMPT}"},
                {"role": "assistant", "content": answer},
            ],
            "images": [f"images/{name}"],
        }
        for name, answer in answers.items()
    ]
    (root / "test.json").write_text(json.dumps(samples), encoding="utf-8")
    out, reasons = _build_one(
        tmp_path, {"name": "s", "reader": "sharegpt", "root": str(root), "split": "test"}
    )
    assert load_split(out, "s")["id"] == ["a"]
    assert reasons == {"answer_too_long": 1, "blank_image": 3}


def test_the_length_limit_is_one_rule():
    assert answer_problem(LONG_TOKENS)[0] == "answer_too_long"
    assert answer_problem("x" * 100_001)[0] == "answer_too_long"
    assert answer_problem(" ".join(["x"] * MAX_ANSWER_TOKENS)) is None


def test_a_reader_that_crops_uses_the_shared_blank_check(tmp_path):
    """im2latex crops its pages to the ink (``RecordMaker.prepare``): a page without ink and an
    all-black page (all "ink", which the crop alone kept) are both ``blank_image``."""
    from data_prep.images import DatasetRoot, crop_to_ink
    from data_prep.readers.common import RecordMaker

    _formula(tmp_path / "page.png")
    Image.new("L", (300, 200), 255).save(tmp_path / "white.png")
    Image.new("L", (300, 200), 0).save(tmp_path / "black.png")
    rejects = Rejects(log=False)
    maker = RecordMaker(
        "im2latex",
        "test",
        rejects,
        tmp_path / "labels.lst",
        DatasetRoot(tmp_path),
        prepare=crop_to_ink,
        polarity_first=False,
        invert=False,
    )
    made = [
        maker.make(n, name, "x", tmp_path / f"{name}.png")
        for n, name in enumerate(["page", "white", "black"], 1)
    ]
    assert [r is not None for r in made] == [True, False, False]
    assert rejects.by_reason() == {"blank_image": 2}


# --------------------------------------------------------------------------- #
# Ink polarity
# --------------------------------------------------------------------------- #


def _dark_photo(seed: int, glare: bool) -> Image.Image:
    """A dim photo: dark grey page (~55) with sensor noise, darker pen strokes (~22), and a few
    glare pixels when asked: what made the old rule invert a dark HME100K test photo."""
    rng = np.random.default_rng(seed)
    page = np.clip(55 + rng.normal(0, 3, (120, 360)), 0, 255)
    image = Image.fromarray(page.astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for k in range(6):
        x = 30 + 50 * k
        draw.line([(x, 30), (x + 30, 90)], fill=(22, 22, 26), width=4)
        draw.arc([(x, 40), (x + 40, 80)], 0, 270, fill=(24, 22, 22), width=3)
    if glare:
        draw.ellipse([(300, 10), (318, 22)], fill=(170, 170, 170))
    return image


@pytest.mark.parametrize("glare", [False, True])
def test_a_dark_photo_with_darker_ink_is_never_inverted(glare):
    for seed in range(5):
        assert not ink_is_light(_dark_photo(seed, glare))


def test_white_on_black_is_still_inverted():
    image = Image.new("L", (120, 60), 0)
    ImageDraw.Draw(image).line([(10, 10), (100, 50)], fill=255, width=3)
    assert ink_is_light(image)
    chalk = Image.fromarray(np.full((60, 120), 40, np.uint8))
    ImageDraw.Draw(chalk).line([(10, 10), (100, 50)], fill=210, width=4)
    assert ink_is_light(chalk)


def test_real_photos_and_crohme_bitmaps_keep_their_polarity_decisions(shared_data, tmp_path):
    photos = sorted((shared_data / "hme100k" / "train" / "train_images").glob("*.jpg"))
    assert len(photos) >= 300
    assert not [p.name for p in photos if ink_is_light(Image.open(p))]
    with tarfile.open(shared_data / "crohme" / "crohme2014_test_images.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    bitmaps = sorted(tmp_path.rglob("*.bmp"))
    assert len(bitmaps) == 986
    assert all(ink_is_light(Image.open(p)) for p in bitmaps)
    # No real photo or bitmap is blank.
    assert not [p.name for p in [*photos, *bitmaps] if blank_detail(Image.open(p))]


@pytest.mark.slow  # 1,200 full pages: about 2 minutes on the 2-core machine
def test_full_im2latex_pages_are_not_blank_except_the_two_empty_ones(shared_data):
    pages = sorted((shared_data / "im2latex" / "im2markup_sample" / "images").glob("*.png"))
    assert len(pages) == 1200
    assert [p.name for p in pages if blank_detail(Image.open(p))] == ["1f6cbf77e4.png", "f0bf0dc25d.png"]


# --------------------------------------------------------------------------- #
# The error-driven command and the reference's *_pred.json
# --------------------------------------------------------------------------- #


def _run_error_driven(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "data_prep.tasks.error_driven", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_error_driven_reads_the_reference_pred_json(tmp_path):
    records = [
        {
            "gt": "z \\rightarrow x",
            "pred": "z \\rightarrow y",
            "image_path": "./data/C/i/a.jpg",
            "img_id": "a",
        },
        {
            "gt": "- \\frac { 3 } { 4 }",
            "pred": "- \\frac { 3 } { 4 }",
            "image_path": "./b.jpg",
            "img_id": "b",
        },
        {"gt": "x ^ { 2 }", "pred": "x ^ { 3 }", "image_path": "./c.jpg", "img_id": "c"},
    ]
    pred = tmp_path / "crohme2023_test_pred.json"
    pred.write_text(json.dumps(records, indent=2), encoding="utf-8")  # ONE JSON array, indented
    out = tmp_path / "samples.jsonl"
    done = _run_error_driven("--predictions", str(pred), "--output", str(out))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    metas = [json.loads(row["meta"]) if isinstance(row["meta"], str) else row["meta"] for row in rows]
    assert {meta["base_id"] for meta in metas} == {"a", "c"}
    assert "invalid_json" not in done.stdout + done.stderr


def test_error_driven_refuses_another_json_array_in_one_line(tmp_path):
    pred = tmp_path / "other.json"
    pred.write_text(json.dumps([{"question": "q", "answer": "a"}]), encoding="utf-8")
    done = _run_error_driven("--predictions", str(pred), "--output", str(tmp_path / "o.jsonl"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "not of the reference's prediction records" in done.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_error_driven_exits_non_zero_when_it_wrote_nothing(tmp_path):
    pred = tmp_path / "all_right_pred.json"
    pred.write_text(json.dumps([{"gt": "a", "pred": "a", "img_id": "1"}]), encoding="utf-8")
    done = _run_error_driven("--predictions", str(pred), "--output", str(tmp_path / "o.jsonl"))
    assert done.returncode == 1 and "nothing written" in done.stderr
    assert not (tmp_path / "o.jsonl").exists()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("not json\n{also not\n", encoding="utf-8")
    done = _run_error_driven("--predictions", str(broken), "--output", str(tmp_path / "o.jsonl"))
    assert done.returncode == 1 and not (tmp_path / "o.jsonl").exists()
