"""CROHME offline reader: both layouts, both caption editions, every kind of bad input."""

from __future__ import annotations

import shutil
import tarfile

import pytest
from PIL import Image

from data_prep.readers import READERS, crohme, get_reader
from data_prep.rejects import Rejects


def _read(root, split="test", **options):
    rejects = Rejects(log=False)
    return list(crohme.read(root, split, rejects, **options)), rejects


def test_registry_lists_every_source_and_rejects_unknown_names():
    assert set(READERS) == {
        "crohme",
        "crohme_inkml",
        "hme100k",
        "im2latex",
        "mlhme38k",
        "m2e",
        "mathwriting",
        "sharegpt",
        "synthetic",
        "labels",
    }
    assert get_reader("crohme") is crohme.read
    with pytest.raises(KeyError, match="known sources: crohme, crohme_inkml"):
        get_reader("crohme2014")


def test_bundled_sample_both_editions(crohme_sample_dir):
    wap, rejects = _read(crohme_sample_dir, edition="wap")
    comer, _ = _read(crohme_sample_dir, edition="comer")
    assert len(wap) == len(comer) == 48 and not rejects
    assert {r.meta["edition"] for r in wap} == {"wap"}
    assert {r.meta["edition"] for r in comer} == {"comer"}
    differing = [a.id for a, b in zip(wap, comer) if a.answer != b.answer]
    assert len(differing) == 8  # the sample keeps the first 8 lines on which the editions differ
    record = wap[0]
    assert record.id == "18_em_5" and record.source == "crohme" and record.task == "main"
    assert record.answer == r"\int g = \lim _ { n \rightarrow \infty } \int g _ { n }"
    image = record.image
    assert image.mode == "L"
    # Inverted: a light background with dark ink.
    histogram = image.histogram()
    assert histogram[255] > 0.7 * image.width * image.height and histogram[0] > 0


@pytest.fixture(scope="session")
def crohme2014(shared_data, tmp_path_factory):
    """The full CROHME 2014 test set (986 bitmaps) with both caption editions, in the WAP layout."""
    root = tmp_path_factory.mktemp("crohme2014")
    with tarfile.open(shared_data / "crohme" / "crohme2014_test_images.tar.gz") as archive:
        archive.extractall(root, filter="data")
    for edition in ("wap", "comer"):
        shutil.copy(
            shared_data / "crohme" / f"crohme2014_test_caption_{edition}.txt", root / f"caption_{edition}.txt"
        )
    return root


def test_full_2014_test_set_both_editions(crohme2014):
    wap, rejects_wap = _read(crohme2014, edition="wap")
    comer, rejects_comer = _read(crohme2014, edition="comer")
    assert len(wap) == len(comer) == 986
    assert not rejects_wap and not rejects_comer
    assert len({r.id for r in wap}) == 986
    comer_answers = {r.id: r.answer for r in comer}
    assert set(comer_answers) == {r.id for r in wap}
    assert sum(r.answer != comer_answers[r.id] for r in wap) == 85
    assert all(r.image.mode == "L" and r.image.getpixel((0, 0)) == 255 for r in wap[:50])


def test_comer_layout(crohme_sample_dir, tmp_path):
    split_dir = tmp_path / "data" / "2014"
    (split_dir / "img").mkdir(parents=True)
    lines = (crohme_sample_dir / "caption_comer.txt").read_text().split("\n")[:5]
    (split_dir / "caption.txt").write_text("\n".join(lines) + "\n")
    for line in lines:
        name = line.split("\t")[0]
        shutil.copy(crohme_sample_dir / "off_image_test" / f"{name}_0.bmp", split_dir / "img" / f"{name}.bmp")
    records, rejects = _read(tmp_path, split="2014")
    assert [r.id for r in records] == [line.split("\t")[0] for line in lines]
    assert {r.meta["edition"] for r in records} == {"comer"} and not rejects


def test_bad_inputs_are_counted_with_file_and_line(crohme_sample_dir, tmp_path):
    images = tmp_path / "off_image_test"
    images.mkdir()
    names = ["18_em_5", "20_em_29", "20_em_34"]
    for name in names:
        shutil.copy(crohme_sample_dir / "off_image_test" / f"{name}_0.bmp", images / f"{name}_0.bmp")
    data = (images / "20_em_34_0.bmp").read_bytes()
    (images / "truncated_0.bmp").write_bytes(data[: len(data) // 3])
    Image.new("L", (30, 30), 0).save(images / "odd\x0bname.bmp")
    caption = tmp_path / "caption_wap.txt"
    caption.write_bytes(
        b"18_em_5\tx ^ { 2 }\r\n"  # 1: good (Windows line end)
        b"no_tab_here x + 1\n"  # 2: no_tab
        b"20_em_29\t   \n"  # 3: empty_label
        b"20_em_34\t\xff\xfe bad bytes\n"  # 4: bad_encoding
        b"absent\ty\n"  # 5: missing_image
        b"truncated\tz\n"  # 6: unreadable_image
        b"\n"  # 7: blank, ignored
        b"18_em_5\tx\n"  # 8: duplicate_id
        b"20_em_34\ta \x0b b\n"  # 9: a vertical tab inside a label does not split the line
    )
    records, rejects = _read(tmp_path)
    assert [r.id for r in records] == ["18_em_5", "20_em_34"]
    assert records[1].answer == "a b"
    # Each record cites its caption line (for file:line in later reports), blank and rejected
    # lines included in the count.
    assert [(r.meta["label_file"], r.meta["line"]) for r in records] == [
        ("caption_wap.txt", 1),
        ("caption_wap.txt", 9),
    ]
    assert records[0].meta["image_file"] == "18_em_5_0.bmp"
    assert rejects.by_reason("crohme") == {
        "no_tab": 1,
        "empty_label": 1,
        "bad_encoding": 1,
        "missing_image": 1,
        "unreadable_image": 1,
        "duplicate_id": 1,
    }
    lines = {r.reason: r.line for examples in rejects.examples.values() for r in examples}
    assert lines == {
        "no_tab": 2,
        "empty_label": 3,
        "bad_encoding": 4,
        "missing_image": 5,
        "unreadable_image": 6,
        "duplicate_id": 8,
    }
    files = {r.file for examples in rejects.examples.values() for r in examples}
    assert files == {str(caption.absolute())}


def test_missing_caption_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="crohme caption file for split 'test' not found"):
        _read(tmp_path)
    with pytest.raises(ValueError, match="unknown edition"):
        _read(tmp_path, edition="bttr")
