"""InkML parsing, stroke rendering and the crohme_inkml / mathwriting readers."""

from __future__ import annotations

import shutil
import tarfile

import pytest

from data_prep.readers import crohme_inkml, mathwriting
from data_prep.readers.inkml import InkmlError, parse_inkml, parse_trace, strip_math_delimiters
from data_prep.rejects import Rejects
from data_prep.render.inkml import RenderOptions, render_traces
from data_prep.render.inkml_compare import compare_dirs
from tests.conftest import FIXTURES

INKML = FIXTURES / "readers" / "inkml"
MATHWRITING = FIXTURES / "readers" / "mathwriting"


def test_parse_trace_formats():
    assert parse_trace("15 264, 15 263") == [(15.0, 264.0), (15.0, 263.0)]
    assert parse_trace("43.91 132.82, 43.84 132.79") == [(43.91, 132.82), (43.84, 132.79)]
    # A time column (MfrDB, 2023, MathWriting) or extra channels are ignored; commas without spaces.
    assert parse_trace("137 194 1318096,137 193 1318154 7") == [(137.0, 194.0), (137.0, 193.0)]
    for bad in ("1 2, 3", "1 x, 2 3", "nan 1"):
        with pytest.raises(InkmlError) as err:
            parse_trace(bad)
        assert err.value.reason == "malformed_trace"


def test_parse_real_files():
    kaist = parse_inkml(INKML / "KME1G3_2_sub_10.inkml")
    assert kaist.annotations["truth"] == r"\int_a^b \frac {\sqrt x} 2 d x"
    assert len(kaist.traces) > 5
    mfr = parse_inkml(INKML / "MfrDB1843.inkml")
    assert mfr.annotations["truth"].startswith("$") and strip_math_delimiters(
        mfr.annotations["truth"]
    ).startswith("2 l o g")
    assert all(len(point) == 2 for trace in mfr.traces for point in trace)


def test_bad_xml_and_entities_are_refused(tmp_path):
    bomb = tmp_path / "bomb.inkml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE ink [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        '<ink><annotation type="truth">&b;</annotation><trace>1 2, 3 4</trace></ink>'
    )
    external = tmp_path / "external.inkml"
    external.write_text(
        '<?xml version="1.0"?><!DOCTYPE ink [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        '<ink><annotation type="truth">&e;</annotation><trace>1 2</trace></ink>'
    )
    broken = tmp_path / "broken.inkml"
    broken.write_text("<ink><trace>1 2, 3 4</ink>")
    empty = tmp_path / "empty.inkml"
    empty.write_text('<ink><annotation type="truth">x</annotation></ink>')
    for path, reason in (
        (bomb, "malformed_xml"),
        (external, "malformed_xml"),
        (broken, "malformed_xml"),
        (empty, "no_traces"),
    ):
        with pytest.raises(InkmlError) as err:
            parse_inkml(path)
        assert err.value.reason == reason, path


def test_render_is_black_ink_on_white_with_padding():
    image = render_traces([[(0, 0), (100, 50)], [(0, 50), (100, 0)], [(50, 25)]], RenderOptions(padding=12))
    assert image.mode == "L"
    assert image.getpixel((0, 0)) == 255 and image.getpixel((image.width // 2, image.height // 2)) == 0
    columns = [
        x for x in range(image.width) if any(image.getpixel((x, y)) < 128 for y in range(image.height))
    ]
    assert columns[0] >= 12 and image.width - 1 - columns[-1] >= 12
    with pytest.raises(ValueError):
        render_traces([])
    capped = render_traces([[(0, 0), (100000, 10)], [(0, 5), (3, 5)]], RenderOptions(max_side=512))
    assert max(capped.size) <= 512


def _read(reader, root, split="train", **options):
    rejects = Rejects(log=False)
    return list(reader(root, split, rejects, **options)), rejects


def test_crohme_inkml_reader_on_fixtures():
    records, rejects = _read(crohme_inkml.read, INKML)
    by_id = {r.id: r for r in records}
    assert set(by_id) == {"KME1G3_2_sub_10", "form_201_E1605", "MfrDB1843"} and not rejects
    assert by_id["KME1G3_2_sub_10"].answer == r"\int _ { a } ^ { b } \frac { \sqrt { x } } { 2 } d x"
    assert by_id["form_201_E1605"].answer == r"- \frac { 3 } { 4 }"
    assert by_id["MfrDB1843"].answer == "2 l o g ( x - 3 ) = l o g ( 5 - x )"  # `$` stripped
    assert by_id["form_201_E1605"].meta["copyright"] == "LTU_2023"
    assert all(r.image.mode == "L" and r.image.getpixel((0, 0)) == 255 for r in records)


def test_crohme_inkml_rejects(tmp_path):
    shutil.copy(INKML / "form_201_E1605.inkml", tmp_path)
    (tmp_path / "no_truth.inkml").write_text("<ink><trace>1 2, 3 4</trace></ink>")
    (tmp_path / "bad_latex.inkml").write_text(
        '<ink><annotation type="truth">\\frac{3</annotation><trace>1 2, 3 4</trace></ink>'
    )
    (tmp_path / "dollars.inkml").write_text(
        '<ink><annotation type="truth">$ $</annotation><trace>1 2, 3 4</trace></ink>'
    )
    (tmp_path / "broken.inkml").write_text("<ink><trace>")
    records, rejects = _read(crohme_inkml.read, tmp_path)
    assert [r.id for r in records] == ["form_201_E1605"]
    assert rejects.by_reason() == {"no_truth": 1, "latex_error": 1, "empty_label": 1, "malformed_xml": 1}


def test_crohme_inkml_test_files_labelled_from_captions(shared_data):
    root = shared_data / "crohme" / "inkml"
    records, rejects = _read(
        crohme_inkml.read, root, caption_file=shared_data / "crohme" / "crohme2014_test_caption_comer.txt"
    )
    assert len(records) == 33  # the 2014 test InkML files (no truth inside) with official bitmaps
    assert {r.meta["label_from"] for r in records} == {"caption_file"}
    assert rejects.by_reason() == {"no_truth": 15}  # the other files are not in the 2014 captions
    plain, plain_rejects = _read(crohme_inkml.read, root)
    assert len(plain) == 13 and plain_rejects.by_reason() == {"no_truth": 35}


def test_renders_resemble_official_bitmaps(shared_data, tmp_path):
    with tarfile.open(shared_data / "crohme" / "crohme2014_test_images.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    report = compare_dirs(shared_data / "crohme" / "inkml", tmp_path / "off_image_test")
    assert report["files"] == 33
    assert report["iou"]["mean"] > 0.65
    assert 0.9 < report["width_ratio"]["mean"] < 1.1 and 0.9 < report["height_ratio"]["mean"] < 1.1
    # Stroke width matters: one-pixel strokes would make far less ink than the official bitmaps.
    thin = compare_dirs(
        shared_data / "crohme" / "inkml", tmp_path / "off_image_test", RenderOptions(line_width=1)
    )
    assert thin["iou"]["mean"] < report["iou"]["mean"] and thin["ink_ratio"]["mean"] < 0.5


def test_mathwriting_reader():
    records, rejects = _read(mathwriting.read, MATHWRITING)
    by_id = {r.id: r for r in records}
    assert by_id["mw_normalized"].answer == r"x ^ { 2 } + \frac { 1 } { 2 }"
    assert by_id["mw_normalized"].meta == {
        "label_type": "normalizedLabel",
        "sample_id": "mw_normalized",
        "inkml_file": "mw_normalized.inkml",
        "inverted": False,  # rendered black on white: the polarity rule leaves it alone
    }
    assert (
        by_id["mw_label_only"].meta["label_type"] == "label" and by_id["mw_label_only"].answer == "a _ { 1 }"
    )
    assert rejects.by_reason() == {"no_truth": 1}
    raw, _ = _read(mathwriting.read, MATHWRITING, label_type="label")
    assert {r.id: r.answer for r in raw}["mw_normalized"] == r"x ^ { 2 } + \frac { 1 } { 2 }"
    assert {r.id: r.meta["label_type"] for r in raw}["mw_normalized"] == "label"
    with pytest.raises(ValueError, match="unknown label_type"):
        _read(mathwriting.read, MATHWRITING, label_type="truth")


def test_crohme_inkml_caption_file_lines_are_checked(tmp_path):
    shutil.copy(INKML / "form_201_E1605.inkml", tmp_path / "a.inkml")
    shutil.copy(INKML / "form_201_E1605.inkml", tmp_path / "b.inkml")
    captions = tmp_path / "captions.txt"
    captions.write_text("a\tx + 1\nb\t  \nc no tab\n")
    records, rejects = _read(crohme_inkml.read, tmp_path, caption_file=captions)
    assert [(r.id, r.answer) for r in records] == [("a", "x + 1")]
    # A caption line with no label is counted, not silently dropped; "b" then has no truth.
    lines = {r.reason: r.line for examples in rejects.examples.values() for r in examples}
    assert lines == {"empty_label": 2, "no_tab": 3, "no_truth": None}
