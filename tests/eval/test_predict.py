"""``python -m eval.predict``: folders in sorted order, inversion of white-on-black bitmaps, bad
files reported while the others are still predicted, TSV and JSONL output, the real HF backend."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from data_prep.contract import COUNTING_PROMPT, MAIN_PROMPT, extract_latex
from eval.serve import predict

SAMPLE_IMAGES = Path(__file__).resolve().parents[2] / "samples" / "crohme2014_test" / "off_image_test"


class RecordingBackend:
    """Stands in for an eval.backends Backend: answers with a two-line text naming the image size."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Image.Image], list[str]]] = []
        self.closed = False

    def generate(self, images, prompts):
        self.calls.append((list(images), list(prompts)))
        return [f"tree\n{im.width} x {im.height}" for im in images]

    def close(self) -> None:
        self.closed = True


@pytest.fixture()
def image_dir(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted(SAMPLE_IMAGES.glob("*.bmp"))[:3][::-1]:  # copied in reverse order
        shutil.copy(path, folder / path.name)
    Image.new("L", (60, 40), 255).save(folder / "z_light.png")  # already dark-on-light
    (folder / "notes.txt").write_text("not an image")
    return folder


def _args(*argv: str):
    return predict.parse_args(["--model", "unused", *argv])


def test_dir_and_missing_file(image_dir, tmp_path, capsys):
    missing = tmp_path / "missing.png"
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    backend = RecordingBackend()
    rc = predict.run(*_args(str(image_dir), str(missing), str(corrupt), "--batch-size", "2"), backend=backend)
    out, err = capsys.readouterr()
    assert rc == 1
    assert f"error: {missing}: missing_image" in err and f"error: {corrupt}: unreadable_image" in err
    assert "2 of 6 images failed" in err

    names = [line.split("\t")[0] for line in out.splitlines()]
    bitmaps = sorted(p.stem for p in image_dir.glob("*.bmp"))
    assert names == [*bitmaps, "z_light"]  # sorted folder, the text file skipped
    for line in out.splitlines():
        assert "\n" not in line.split("\t")[1] and "x" in line  # the LaTeX line only
    sent = [im for images, _ in backend.calls for im in images]
    prompts = [p for _, ps in backend.calls for p in ps]
    assert len(sent) == 4 and set(prompts) == {MAIN_PROMPT}
    # CROHME's white-on-black bitmaps reach the backend as dark ink on a light page.
    assert all(ImageStat.Stat(im.convert("L")).mean[0] > 128 for im in sent)
    assert backend.closed


def test_jsonl_output_and_task(image_dir, tmp_path, capsys):
    out_path = tmp_path / "out" / "preds.jsonl"
    backend = RecordingBackend()
    rc = predict.run(*_args(str(image_dir), "--task", "counting", "--jsonl", str(out_path)), backend=backend)
    assert rc == 0
    assert capsys.readouterr().out == ""
    rows = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert [r["id"] for r in rows] == [*sorted(p.stem for p in image_dir.glob("*.bmp")), "z_light"]
    assert all(r["task"] == "counting" and r["error"] is None for r in rows)
    assert all(
        r["pred"] == extract_latex(r["raw_output"]) and r["raw_output"].startswith("tree\n") for r in rows
    )
    assert [r["inverted"] for r in rows] == [True, True, True, False]
    assert backend.calls[0][1][0] == COUNTING_PROMPT


def test_invert_modes():
    dark = Image.new("L", (50, 30), 0)
    light = Image.new("L", (50, 30), 255)
    assert predict.prepare_for_model(dark, "auto")[1] is True
    assert predict.prepare_for_model(light, "auto")[1] is False
    assert predict.prepare_for_model(light, "true")[1] is True
    assert predict.prepare_for_model(dark, "false") == (dark, False)
    flipped, _ = predict.prepare_for_model(dark, "auto")
    assert ImageStat.Stat(flipped).mean[0] == 255
    with pytest.raises(ValueError, match="invert"):
        predict.prepare_for_model(dark, "sometimes")


def test_a_failing_batch_does_not_stop_the_run(image_dir, capsys):
    class FlakyBackend(RecordingBackend):
        def generate(self, images, prompts):
            if not self.calls:
                self.calls.append(([], []))
                raise RuntimeError("out of memory")
            return super().generate(images, prompts)

    rc = predict.run(*_args(str(image_dir), "--batch-size", "2"), backend=FlakyBackend())
    out, err = capsys.readouterr()
    assert rc == 1 and "generation_failed: RuntimeError: out of memory" in err
    assert len(out.splitlines()) == 2  # the second batch was still predicted


def test_predict_with_the_hf_backend_on_the_tiny_model(tiny_model_dir, image_dir, tmp_path, capsys):
    pytest.importorskip("eval.backends.hf")
    jsonl = tmp_path / "p.jsonl"
    rc = predict.main(
        [
            "--model",
            str(tiny_model_dir),
            "--backend",
            "hf",
            "--max-new-tokens",
            "4",
            "--batch-size",
            "4",
            str(image_dir),
            str(tmp_path / "gone.bmp"),
            "--jsonl",
            str(jsonl),
        ]
    )
    assert rc == 1
    assert "missing_image" in capsys.readouterr().err
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(rows) == 5 and rows[-1]["error"].startswith("missing_image")
    # A random tiny model may answer blank: that is an empty_generation failure, as in evaluation.
    assert all(isinstance(r["raw_output"], str) for r in rows[:4])
    assert all(r["error"] == (None if r["pred"] else "empty_generation") for r in rows[:4])


def test_a_blank_answer_is_an_empty_generation_failure(image_dir, tmp_path, capsys):
    class BlankBackend(RecordingBackend):
        def generate(self, images, prompts):
            return ["\n\n\n" if im.width == 60 else "x" for im in images]  # z_light.png is 60 wide

    out_path = tmp_path / "p.jsonl"
    rc = predict.run(*_args(str(image_dir), "--jsonl", str(out_path)), backend=BlankBackend())
    assert rc == 1
    assert "z_light.png: empty_generation" in capsys.readouterr().err
    rows = {r["id"]: r for r in map(json.loads, out_path.read_text().splitlines())}
    assert rows["z_light"]["error"] == "empty_generation" and rows["z_light"]["pred"] == ""
    assert all(r["error"] is None for name, r in rows.items() if name != "z_light")


def test_a_model_folder_that_does_not_exist_is_a_plain_error(image_dir, tmp_path, capsys):
    rc = predict.main(["--model", str(tmp_path / "no-model"), "--backend", "hf", str(image_dir)])
    err = capsys.readouterr().err
    assert rc == 2 and "predict failed" in err and str(tmp_path / "no-model") in err
    assert "Traceback" not in err
