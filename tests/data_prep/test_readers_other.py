"""Readers for HME100K, im2latex-100k, MLHME-38K and M2E (real slices where they exist, made fixtures
elsewhere)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from PIL import Image

from data_prep.latex import tokenize_latex
from data_prep.readers import crohme, crohme_inkml, hme100k, im2latex, m2e, mathwriting, mlhme38k
from data_prep.readers.m2e import convert_pseudo_tokens
from data_prep.rejects import Rejects


def _read(reader, root, split="train", **options):
    rejects = Rejects(log=False)
    return list(reader(root, split, rejects, **options)), rejects


def _formula_image(path, size=(120, 40), ink=(20, 10, 80, 25), mode="RGB"):
    image = Image.new(mode, size, "white")
    image.paste("black", ink)
    image.save(path)


# --------------------------------------------------------------------------- HME100K


def test_hme100k_real_slice(shared_data):
    root = shared_data / "hme100k"
    records, rejects = _read(hme100k.read, root)
    assert len(records) == 346 and not rejects
    cjk = [r for r in records if r.meta["has_cjk"]]
    assert [r.id for r in cjk] == ["train_188", "train_339"]
    assert all(r.image.mode in ("L", "RGB") for r in records[:20])
    first = records[0]
    assert first.id == "train_0" and first.answer.startswith("( 2 ) 2 N a O H")
    kept, dropped = _read(hme100k.read, root, drop_cjk=True)
    assert len(kept) == 344 and dropped.by_reason() == {"cjk_label": 2}


def test_hme100k_bad_lines(tmp_path):
    split = tmp_path / "test"
    (split / "test_images").mkdir(parents=True)
    _formula_image(split / "test_images" / "a.jpg")
    (split / "test_images" / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (split / "test_labels.txt").write_bytes(b"a.jpg\tx + 1\nb.jpg\ty\nc.jpg\tz\nd.jpg\n")
    records, rejects = _read(hme100k.read, tmp_path, split="test")
    assert [r.id for r in records] == ["a"]
    assert records[0].meta == {
        "has_cjk": False,
        "image_file": "a.jpg",
        "label_file": "test_labels.txt",
        "line": 1,
        "inverted": False,
    }
    assert rejects.by_reason() == {"unreadable_image": 1, "missing_image": 1, "no_tab": 1}


def test_hme100k_symlink_out_of_the_dataset_is_refused(tmp_path):
    images = tmp_path / "train_images"
    images.mkdir()
    _formula_image(tmp_path / "outside.jpg")
    os.symlink(tmp_path / "outside.jpg", images / "a.jpg")
    (tmp_path / "train_labels.txt").write_text("a.jpg\tx\n")
    records, rejects = _read(hme100k.read, tmp_path)
    assert not records and rejects.by_reason() == {"path_escapes_root": 1}


# --------------------------------------------------------------------------- im2latex


def test_im2latex_raw_sample(shared_data):
    root = shared_data / "im2latex" / "im2markup_sample"
    records, rejects = _read(im2latex.read, root, split="validate")
    assert len(records) + len(rejects) == 100 and len(records) >= 90
    assert set(rejects.by_reason()) <= {"latex_error", "empty_label", "blank_image"}
    record = records[0]
    assert record.meta["variant"] == "raw" and record.meta["render_type"] == "basic"
    # The full 1654x2339 page is cropped to the formula plus an 8 px white margin.
    assert record.image.height < 300 and record.image.width < 1654
    gray = record.image.convert("L")
    assert gray.getpixel((0, 0)) == 255 and min(gray.getdata()) < 100
    # The formula index of the split list points at the right line (split on "\n" only).
    lines = (root / "formulas.lst").read_bytes().split(b"\n")
    assert record.id == "5abbb9b19f" and record.meta["formula_index"] == 1100
    assert record.answer == tokenize_latex(lines[1100].decode())


def test_im2latex_formula_file_is_split_on_newlines_only(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("p0", "p1"):
        _formula_image(tmp_path / "images" / f"{name}.png", size=(300, 400), ink=(50, 100, 120, 130))
    # A form feed and a Unicode line separator inside formula 0 must not shift formula 1.
    (tmp_path / "im2latex_formulas.lst").write_bytes("a \x0c b \u2028 c\nx^2\n".encode())
    (tmp_path / "im2latex_train.lst").write_text("0 p0 basic\n1 p1 basic\n7 p0 basic\nnonsense\n")
    records, rejects = _read(im2latex.read, tmp_path, tokenize_formulas=False)
    assert [r.answer for r in records] == ["a b c", "x^2"]
    assert records[1].image.size == (70 + 16, 30 + 16)
    assert rejects.by_reason() == {"missing_formula": 1, "bad_split_line": 1}


def test_im2latex_norm_and_csv_variants(tmp_path):
    processed = tmp_path / "formula_images_processed"
    processed.mkdir()
    for name in ("n0", "n1", "blank"):
        _formula_image(processed / f"{name}.png")
    Image.new("RGB", (50, 50), "white").save(processed / "blank.png")
    (tmp_path / "im2latex_formulas.norm.lst").write_text("\\frac { a } { b }\nx _ { 1 }\ny\n")
    (tmp_path / "im2latex_test_filter.lst").write_text("n0.png 0\nn1.png 1\nblank.png 2\n../escape.png 1\n")
    records, rejects = _read(im2latex.read, tmp_path, split="test")
    assert [(r.id, r.answer, r.meta["variant"]) for r in records] == [
        ("n0", r"\frac { a } { b }", "norm"),
        ("n1", "x _ { 1 }", "norm"),
    ]
    assert [(r.meta["label_file"], r.meta["line"]) for r in records] == [
        ("im2latex_test_filter.lst", 1),
        ("im2latex_test_filter.lst", 2),
    ]
    assert rejects.by_reason() == {"blank_image": 1, "path_escapes_root": 1}

    (tmp_path / "im2latex_validate.csv").write_text(
        'formula,image\n"\\frac{a}{b}",n0.png\n"x_1",missing.png\n,n1.png\n'
    )
    records, rejects = _read(im2latex.read, tmp_path, split="val")
    assert [(r.id, r.answer, r.meta["variant"]) for r in records] == [("n0", r"\frac { a } { b }", "csv")]
    assert (records[0].meta["label_file"], records[0].meta["line"]) == ("im2latex_validate.csv", 2)
    assert rejects.by_reason() == {"missing_image": 1, "empty_label": 1}
    with pytest.raises(ValueError, match="unknown variant"):
        _read(im2latex.read, tmp_path, variant="kaggle")


# --------------------------------------------------------------------------- MLHME-38K


def test_mlhme38k(tmp_path):
    folder = tmp_path / "train_set"
    (folder / "train_images").mkdir(parents=True)
    for name in ("1", "2", "3"):
        _formula_image(folder / "train_images" / f"{name}.jpg")
    (folder / "all_labels.txt").write_text(
        "1.jpg \\begin{array}{l} x+y=1 \\\\ x-y=2 \\end{array}\n"
        "2 \\begin{array}{l} a=1 \\\\\n"  # a multi-line label continued on the next physical line
        "b=2 \\end{array}\n"
        "3.jpg\n"  # no label
        "4.jpg z\n"  # no image
        "1.jpg w\n"  # duplicate
    )
    records, rejects = _read(mlhme38k.read, tmp_path)
    assert [(r.id, r.answer) for r in records] == [
        ("1", r"\begin {array} {l} x + y = 1 \\ x - y = 2 \end {array}"),  # raw: tokenised
        ("2", r"\begin {array} {l} a = 1 \\ b = 2 \end {array}"),
    ]
    # A label broken over two physical lines is cited by its first line.
    assert [(r.meta["label_file"], r.meta["line"]) for r in records] == [
        ("all_labels.txt", 1),
        ("all_labels.txt", 2),
    ]
    assert rejects.by_reason() == {"empty_label": 1, "missing_image": 1, "duplicate_id": 1}


# --------------------------------------------------------------------------- M2E


def test_m2e_pseudo_tokens():
    assert convert_pseudo_tokens("x + 1") == "x + 1"
    assert convert_pseudo_tokens("a = 1 \\n b = 2") == r"\begin {array} {l} a = 1 \\ b = 2 \end {array}"
    assert convert_pseudo_tokens("a = 1\nb = 2\n") == r"\begin {array} {l} a = 1 \\ b = 2 \end {array}"
    assert (
        convert_pseudo_tokens("x \\t = 1 \\n \\t = 2") == r"\begin {array} {ll} x & = 1 \\ & = 2 \end {array}"
    )
    # Commands that start with n or t are not pseudo-tokens; \\ stays a line break.
    assert convert_pseudo_tokens("\\neq \\times \\theta \\\\n") == "\\neq \\times \\theta \\\\n"
    inside = "f = \\begin{cases} 1 \\t x > 0 \\n 0 \\t x \\leq 0 \\end{cases}"
    assert convert_pseudo_tokens(inside) == r"f = \begin{cases} 1 & x > 0 \\ 0 & x \leq 0 \end{cases}"


def test_m2e_reader(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("0", "1", "2"):
        _formula_image(tmp_path / "images" / f"{name}.jpg")
    lines = [
        json.dumps({"name": "0.jpg", "tex": "a = 1 \\n b = 2"}),
        json.dumps({"name": "1.jpg", "tex": "x ^ 2"}),
        "{not json",
        json.dumps({"name": "2.jpg", "tex": "\\frac{1"}),
        json.dumps({"name": "9.jpg", "tex": "y"}),
        json.dumps({"name": "1.jpg", "tex": " \\n "}),
        json.dumps(["0.jpg", "x"]),
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    records, rejects = _read(m2e.read, tmp_path)
    assert [(r.id, r.answer, r.meta["multi_line"]) for r in records] == [
        ("0", r"\begin {array} {l} a = 1 \\ b = 2 \end {array}", True),
        ("1", "x ^ 2", False),  # already space-separated tokens: kept as written
    ]
    assert [(r.meta["label_file"], r.meta["line"]) for r in records] == [
        ("train.jsonl", 1),
        ("train.jsonl", 2),
    ]
    assert rejects.by_reason() == {"bad_json": 2, "latex_error": 1, "missing_image": 1, "empty_label": 1}


# --------------------------------------------------------------------------- resuming (every reader)


def _crohme_case(tmp_path):
    from tests.conftest import REPO

    sample = REPO / "samples" / "crohme2014_test"
    images = tmp_path / "off_image_test"
    images.mkdir()
    lines = [line for line in (sample / "caption_comer.txt").read_text().split("\n") if line.strip()][:6]
    for line in lines:
        name = line.split("\t")[0]
        shutil.copy(sample / "off_image_test" / f"{name}_0.bmp", images)
    (images / "broken_0.bmp").write_bytes(b"BM not a bitmap")
    bad = ["no tab here", "ghost\tx", "broken\ty", lines[0]]  # no_tab, missing, unreadable, duplicate
    text = "\n".join(lines[:2] + bad[:2] + lines[2:4] + bad[2:] + lines[4:]) + "\n"
    (tmp_path / "caption_comer.txt").write_text(text)
    return crohme.read, tmp_path, "2014", {"caption_file": "caption_comer.txt", "images_dir": images}


def _hme100k_case(tmp_path):
    images = tmp_path / "train_images"
    images.mkdir()
    for name in ("a", "c", "e", "f"):
        _formula_image(images / f"{name}.jpg")
    (images / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (tmp_path / "train_labels.txt").write_text(
        "a.jpg\tx + 1\nb.jpg\ty\nno tab\nc.jpg\tz\nd.jpg\tw\ne.jpg\t\\frac { 1 } { 2 }\na.jpg\tx\nf.jpg\tq\n"
    )
    return hme100k.read, tmp_path, "train", {}


def _im2latex_case(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("p0", "p1", "p3", "p4"):
        _formula_image(tmp_path / "images" / f"{name}.png", size=(300, 400), ink=(50, 100, 120, 130))
    Image.new("RGB", (300, 400), "white").save(tmp_path / "images" / "blank.png")
    (tmp_path / "im2latex_formulas.lst").write_text("x^2\n\\frac{a}{b}\n\\frac{1\ny_1\nz\n")
    (tmp_path / "im2latex_train.lst").write_text(
        "0 p0 basic\nnonsense\n2 p1 basic\n1 p1 basic\n9 p3 basic\n3 blank basic\n3 p3 basic\n4 p4 basic\n"
    )
    return im2latex.read, tmp_path, "train", {}


def _mlhme38k_case(tmp_path):
    folder = tmp_path / "train_set"
    (folder / "train_images").mkdir(parents=True)
    for name in ("1", "2", "3", "5"):
        _formula_image(folder / "train_images" / f"{name}.jpg")
    (folder / "all_labels.txt").write_text(
        "1.jpg x + y\n2 \\begin{array}{l} a=1 \\\\\nb=2 \\end{array}\n3.jpg\n4.jpg z\n1.jpg w\n5.jpg \\frac{1}{2}\n"
    )
    return mlhme38k.read, tmp_path, "train", {}


def _m2e_case(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("0", "1", "3"):
        _formula_image(tmp_path / "images" / f"{name}.jpg")
    items = [{"name": "0.jpg", "tex": "a = 1 \\n b = 2"}, {"name": "2.jpg", "tex": "y"}]
    items += [
        {"name": "1.jpg", "tex": "\\frac{1"},
        {"name": "1.jpg", "tex": "x"},
        {"name": "3.jpg", "tex": "z"},
    ]
    lines = [json.dumps(items[0]), "{not json", *map(json.dumps, items[1:])]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    return m2e.read, tmp_path, "train", {}


def _crohme_inkml_case(tmp_path):
    from tests.conftest import FIXTURES

    for path in (FIXTURES / "readers" / "inkml").glob("*.inkml"):
        shutil.copy(path, tmp_path)
    (tmp_path / "a_broken.inkml").write_text("<ink><trace>")
    (tmp_path / "l_no_truth.inkml").write_text("<ink><trace>1 2, 3 4</trace></ink>")
    return crohme_inkml.read, tmp_path, "train", {}


def _mathwriting_case(tmp_path):
    from tests.conftest import FIXTURES

    return mathwriting.read, FIXTURES / "readers" / "mathwriting", "train", {}


class _Timeline(Rejects):
    """Every rejection, in order."""

    def __init__(self) -> None:
        super().__init__(log=False)
        self.items: list[tuple[str, str, str, int | None]] = []

    def add(self, source, reason, file, line=None, detail="") -> None:
        super().add(source, reason, file, line, detail)
        self.items.append((source, reason, str(file), line))


@pytest.mark.parametrize(
    "case",
    [
        _crohme_case,
        _hme100k_case,
        _im2latex_case,
        _mlhme38k_case,
        _m2e_case,
        _crohme_inkml_case,
        _mathwriting_case,
    ],
    ids=lambda case: case.__name__.strip("_").removesuffix("_case"),
)
def test_a_resumed_read_skips_without_opening(case, tmp_path, monkeypatch):
    """From every resume position the build can save (the cursor after a record), a read with
    ``skip`` gives exactly the records and rejections that followed it in the full read, and opens
    (decodes, or parses for InkML) only the files of the items after it."""
    from data_prep.images import DatasetRoot
    from data_prep.readers import inkml
    from data_prep.readers.common import ReadCursor

    read, root, split, options = case(tmp_path)
    opened: list[str] = []
    real_load, real_parse = DatasetRoot.load_image, inkml.parse_inkml
    monkeypatch.setattr(
        DatasetRoot, "load_image", lambda self, p: (opened.append(str(p)), real_load(self, p))[1]
    )
    monkeypatch.setattr(inkml, "parse_inkml", lambda p: (opened.append(str(p)), real_parse(p))[1])

    def run(skip: int):
        opened.clear()
        cursor, rejects = ReadCursor(skip=skip), _Timeline()
        # Per record: (id, answer, cursor after it, rejections and files opened so far).
        steps = [
            (r.id, r.answer, cursor.passed, len(rejects.items), len(opened))
            for r in read(root, split, rejects, cursor=cursor, **options)
        ]
        return steps, rejects.items, list(opened), cursor.passed

    full, full_rejects, full_opened, items = run(0)
    assert len(full) >= 2 and full_rejects  # the fixture mixes records and rejections
    for index, (_, _, position, rejects_before, opened_before) in enumerate(full):
        resumed, rejects, files, passed = run(position)
        assert [s[:3] for s in resumed] == [s[:3] for s in full[index + 1 :]]
        assert rejects == full_rejects[rejects_before:]
        assert files == full_opened[opened_before:]
        assert passed == items
