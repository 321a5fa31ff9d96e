"""reader: labels: an image folder + a TSV/CSV/JSONL labels file, on the shared real slices."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from data_prep.latex import tokenize_latex
from data_prep.readers import get_reader
from data_prep.rejects import Rejects


def _read(root: Path, split: str = "train", **options):
    rejects = Rejects(log=False)
    return list(get_reader("labels")(root, split, rejects, **options)), rejects


def test_hme100k_slice_as_a_labels_file_keeps_every_caption_verbatim(shared_data):
    """346 real photos + their already tokenised labels: every row, answers as published."""
    root = shared_data / "hme100k" / "train"
    records, rejects = _read(root, labels="train_labels.txt", images="train_images")
    published = {}
    for line in (root / "train_labels.txt").read_text(encoding="utf-8").split("\n"):
        if line.strip():
            name, caption = line.split("\t", 1)
            published[name.removesuffix(".jpg")] = caption
    assert not rejects and len(records) == len(published) == 346
    assert {r.id: r.answer for r in records} == published
    assert not any(r.meta["tokenised"] for r in records)
    assert not any(r.meta["inverted"] for r in records)  # photos of dark ink on paper


@pytest.fixture()
def im2latex_tsv(shared_data, tmp_path) -> tuple[Path, list[tuple[str, str]]]:
    """Eight real im2latex pages with their raw formulas in a TSV written on Windows (BOM, CRLF),
    names with a sub-folder and without the extension, one formula quoted across two lines."""
    sample = shared_data / "im2latex" / "im2markup_sample"
    formulas = (sample / "formulas.lst").read_bytes().decode("utf-8").split("\n")
    items = []
    for line in (sample / "train.lst").read_text().split("\n")[:8]:
        index, name, _ = line.split()
        items.append((name, formulas[int(index)]))
    (tmp_path / "images" / "pages").mkdir(parents=True)
    rows = []
    for number, (name, formula) in enumerate(items):
        shutil.copy(sample / "images" / f"{name}.png", tmp_path / "images" / "pages" / f"{name}.png")
        label = f"pages/{name}" if number % 2 else f"pages/{name}.png"
        if number == 3:
            formula = formula.replace(" ", "\n", 1) if " " in formula else formula + "\n"
            items[number] = (name, formula)
            quoted = formula.replace('"', '""')
            rows.append(f'{label}\t"{quoted}"')
        else:
            rows.append(f"{label}\t{formula}")
    text = "\ufeffimage\tlatex\r\n" + "\r\n".join(rows) + "\r\n"
    (tmp_path / "labels.tsv").write_bytes(text.encode("utf-8"))
    return tmp_path, items


def test_raw_latex_tsv_with_crlf_bom_and_quoted_newline(im2latex_tsv):
    root, items = im2latex_tsv
    records, rejects = _read(root)
    assert not rejects and len(records) == len(items)
    assert [r.id for r in records] == [f"pages/{name}" for name, _ in items]
    assert [r.answer for r in records] == [tokenize_latex(formula) for _, formula in items]
    assert all(r.meta["tokenised"] for r in records)
    assert records[3].meta["line"] == 5 and records[4].meta["line"] == 7  # the quoted row spans 2 lines
    assert all(isinstance(r.image, Image.Image) for r in records)


def test_csv_and_jsonl_labels_and_bad_rows(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a", "b", "c", "d", "e", "f"):
        Image.new("L", (50, 30), 255).save(images / f"{name}.png")
    (tmp_path / "train.csv").write_bytes(
        b"file,tex\r\n"
        b'a.png,"\\frac{1}{2}"\r\n'  # raw: tokenised
        b"b,\\frac { 1 } { 2 }\r\n"  # already tokenised: verbatim
        b'c.png,"\\frac{a"\r\n'  # cannot be tokenised
        b"d.png,x } {\r\n"  # tokenised but unbalanced
        b"e.png,x ^\r\n"  # dangling script
        b"ghost.png,x\r\n"  # no image
        b"f.png,\r\n"  # empty
    )
    records, rejects = _read(tmp_path)
    assert [(r.id, r.answer) for r in records] == [("a", "\\frac { 1 } { 2 }"), ("b", "\\frac { 1 } { 2 }")]
    assert [r.meta["tokenised"] for r in records] == [True, False]
    assert rejects.by_reason() == {
        "latex_error": 1,
        "unbalanced_braces": 1,
        "dangling_script": 1,
        "missing_image": 1,
        "empty_label": 1,
    }
    latex_error = rejects.examples[("labels", "latex_error")][0]
    assert latex_error.line == 4 and "unbalanced" in latex_error.detail  # the tokeniser's reason

    lines = [
        {"name": "a.png", "latex": "x^{2}"},
        {"image": "b", "text": "y"},
        {"file": "c.png"},
    ]
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    records, rejects = _read(tmp_path, "test")
    assert [(r.id, r.answer) for r in records] == [("a", "x ^ { 2 }"), ("b", "y")]
    assert rejects.by_reason() == {"bad_json": 2}


def test_labels_reader_refuses_names_leaving_the_image_folder(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("L", (50, 30), 255).save(tmp_path / "secret.png")
    (tmp_path / "labels.tsv").write_text("../secret.png\tx\n")
    records, rejects = _read(tmp_path)
    assert not records and rejects.by_reason() == {"path_escapes_root": 1}
