"""The reference's released data as users download it: the data.zip layout (black-on-white JPG +
caption.txt + ShareGPT prompts) and the Hub's parquet shards with embedded images."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from data_prep import contract
from data_prep.build import build_dataset
from data_prep.build.recipe import parse_recipe
from data_prep.contract import ERROR_CORRECTION_PROMPT as PAPER_CORRECTION_PROMPT
from data_prep.contract import ERROR_DETECTION_PROMPT as PAPER_DETECTION_PROMPT
from data_prep.contract import VANILLA_PROMPT
from data_prep.dataset import load_split
from data_prep.ink import ink_is_light
from data_prep.readers import get_reader
from data_prep.rejects import Rejects
from tests.build_support import build_crashes_writing_shard, sample_source

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "crohme2014_test"


def captions() -> list[tuple[str, str]]:
    lines = (SAMPLE / "caption_comer.txt").read_text(encoding="utf-8").split("\n")
    return [tuple(line.split("\t", 1)) for line in lines if line.strip()]


def sharegpt(image: str, prompt: str, answer: str) -> dict:
    return {
        "images": [image],
        "messages": [{"from": "human", "value": f"<image>{prompt}"}, {"from": "gpt", "value": answer}],
    }


@pytest.fixture(scope="module")
def datazip(tmp_path_factory) -> Path:
    """The bundled CROHME sample in the layout of Uni-MuMER's data.zip: black ink on white JPGs
    (the WAP bitmaps inverted), ``data/CROHME/2014/caption.txt`` and a ShareGPT prompts file."""
    top = tmp_path_factory.mktemp("unimumer")
    year = top / "data" / "CROHME" / "2014"
    (year / "images").mkdir(parents=True)
    pairs = captions()
    (year / "caption.txt").write_text("".join(f"{n}\t{c}\n" for n, c in pairs), encoding="utf-8")
    prompts = []
    for name, caption in pairs:
        bitmap = Image.open(SAMPLE / "off_image_test" / f"{name}_0.bmp").convert("L")
        ImageOps.invert(bitmap).save(year / "images" / f"{name}.jpg", quality=90)
        prompts.append(sharegpt(f"./data/CROHME/2014/images/{name}.jpg", contract.MAIN_PROMPT, caption))
    (top / "data" / "CROHME" / "prompts").mkdir()
    (top / "data" / "CROHME" / "prompts" / "crohme_2014.json").write_text(json.dumps(prompts, indent=1))
    return top


def dark_on_light(image: Image.Image) -> bool:
    return np.asarray(image.convert("L")).mean() > 128 and not ink_is_light(image)


def test_datazip_caption_layout_reads_with_no_options(datazip):
    rejects = Rejects(log=False)
    records = list(get_reader("crohme")(datazip / "data" / "CROHME", "2014", rejects))
    assert not rejects and [(r.id, r.answer) for r in records] == captions()
    top = list(get_reader("crohme")(datazip / "data", "2014", Rejects(log=False)))  # root data/ works too
    assert [(r.id, r.answer) for r in top] == captions()
    assert {r.meta["edition"] for r in records} == {"comer"}
    # Black on white already: nothing inverted, every image still dark ink on a light page ...
    assert not any(r.meta["inverted"] for r in records)
    assert all(dark_on_light(r.image) for r in records)
    # ... while the WAP bitmaps of the same formulas (white on black) are all inverted.
    wap = list(get_reader("crohme")(SAMPLE, "test", Rejects(log=False), edition="comer"))
    assert all(r.meta["inverted"] for r in wap) and all(dark_on_light(r.image) for r in wap)
    # A split the download does not have is an error naming where it looked, not 0 rows.
    with pytest.raises(FileNotFoundError, match=r"split '2016' not found; looked for: .*2016/caption.txt"):
        list(get_reader("crohme")(datazip / "data" / "CROHME", "2016", rejects))


def test_wap_folder_with_one_caption_file_is_not_every_split(tmp_path):
    """One caption_comer.txt + images/ is no CROHME 2016 or train split (no fallback)."""
    (tmp_path / "images").mkdir()
    (tmp_path / "caption_comer.txt").write_text("a\tx\n")
    for split in ("2014", "2016", "train"):
        with pytest.raises(FileNotFoundError, match=f"split '{split}' not found"):
            list(get_reader("crohme")(tmp_path, split, Rejects(log=False)))
    # Images are never looked for in the caption folder itself.
    (tmp_path / "2016").mkdir()
    (tmp_path / "2016" / "caption.txt").write_text("a\tx\n")
    with pytest.raises(FileNotFoundError, match="images folder for split '2016' not found"):
        list(get_reader("crohme")(tmp_path, "2016", Rejects(log=False)))
    (tmp_path / "2016" / "images.pkl").write_bytes(b"\x80\x04not loaded")
    with pytest.raises(FileNotFoundError, match="holds images.pkl, a pickle, which is never loaded"):
        list(get_reader("crohme")(tmp_path, "2016", Rejects(log=False)))


def test_sharegpt_prompts_file_of_datazip(datazip):
    rejects = Rejects(log=False)
    records = list(
        get_reader("sharegpt")(datazip, "crohme_2014", rejects, file="data/CROHME/prompts/crohme_2014.json")
    )
    assert not rejects and [(r.id, r.answer) for r in records] == captions()
    assert {r.task for r in records} == {"main"}
    assert records[0].meta["label_file"] == "data/CROHME/prompts/crohme_2014.json"
    assert all(dark_on_light(r.image) and not r.meta["inverted"] for r in records)
    # The prompts file is also found by name, and with root = data/CROHME the paths still resolve.
    for root in (datazip, datazip / "data", datazip / "data" / "CROHME"):
        again = list(get_reader("sharegpt")(root, "crohme_2014", Rejects(log=False)))
        assert [(r.id, r.answer) for r in again] == captions()


def test_task_recognised_from_every_prompt_wording(tmp_path):
    Image.new("L", (60, 40), 255).save(tmp_path / "a.png")
    prediction = r"x ^ { 2 } + l"
    marked = r"x ^ { 2 } + <error_start> l <error_end>"
    samples = [
        (contract.MAIN_PROMPT, "x ^ { 2 } + 1", "main", None),
        (VANILLA_PROMPT, "x ^ { 2 } + 1", "main", None),
        (contract.TREE_COT_PROMPT, "+\n\tx (left)\nx ^ { 2 } + 1", "tree_cot", None),
        (contract.COUNTING_PROMPT, "x: 1, ^: 1, 2: 1, +: 1, 1: 1\nx ^ { 2 } + 1", "counting", None),
        (PAPER_DETECTION_PROMPT.format(prediction=prediction), marked, "error_detection", prediction),
        (
            PAPER_CORRECTION_PROMPT.format(prediction=marked),
            "REPLACE:l -> 1\nx ^ { 2 } + 1",
            "error_correction",
            marked,
        ),
        (contract.prompt_for("error_detection", prediction), marked, "error_detection", prediction),
        (
            contract.prompt_for("error_correction", marked),
            "REPLACE:l -> 1\nx ^ { 2 } + 1",
            "error_correction",
            marked,
        ),
        ("Describe this picture.", "a formula", "other", None),
    ]
    lines = []
    for prompt, answer, _, _ in samples:
        # role/content turns, JSON lines, the image tag after the prompt: all accepted.
        messages = [
            {"role": "user", "content": f"{prompt}\n<image>"},
            {"role": "assistant", "content": answer},
        ]
        lines.append(json.dumps({"images": ["a.png"], "messages": messages}))
    (tmp_path / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    rejects = Rejects(log=False)
    records = list(get_reader("sharegpt")(tmp_path, "mixed", rejects))
    assert not rejects
    assert [r.task for r in records] == [task for _, _, task, _ in samples]
    assert [r.answer for r in records] == [answer for _, answer, _, _ in samples]  # verbatim
    assert [r.meta.get("prediction") for r in records] == [p for _, _, _, p in samples]
    assert records[1].meta["prompt_variant"] == "vanilla" and records[1].prompt == VANILLA_PROMPT
    assert records[-1].prompt == "Describe this picture." and len({r.id for r in records}) == len(records)


def test_sharegpt_bad_samples_are_counted_with_reasons(tmp_path):
    Image.new("L", (60, 40), 255).save(tmp_path / "a.png")
    (tmp_path.parent / "outside.png").write_bytes((tmp_path / "a.png").read_bytes())
    main = contract.MAIN_PROMPT
    items = [
        sharegpt("a.png", main, "x ^ { 2 }"),  # good
        sharegpt("../outside.png", main, "x"),  # leaves the root
        sharegpt("absent.png", main, "x"),
        sharegpt("a.png", main, "x ^"),  # dangling script
        sharegpt("a.png", main, "\\frac { a } { b"),  # unbalanced braces
        sharegpt("a.png", main, "   "),  # empty
        {"images": ["a.png", "a.png"], "messages": sharegpt("a.png", main, "x")["messages"]},
        {"images": ["a.png"], "conversations": [{"from": "human", "value": "<image>hi"}]},
    ]
    (tmp_path / "bad.json").write_text(json.dumps(items))
    rejects = Rejects(log=False)
    records = list(get_reader("sharegpt")(tmp_path, "bad", rejects))
    assert [r.answer for r in records] == ["x ^ { 2 }"]
    assert rejects.by_reason() == {
        "path_escapes_root": 1,
        "missing_image": 1,
        "dangling_script": 1,
        "unbalanced_braces": 1,
        "empty_label": 1,
        "image_count": 1,
        "bad_sample": 1,
    }
    lines = sorted(r.line for group in rejects.examples.values() for r in group)
    assert lines == [2, 3, 4, 5, 6, 7, 8]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_hub_parquet_shards_with_embedded_images(tmp_path):
    """The Hub layout <config>/*.parquet: conversations + an embedded image, white-on-black
    bitmaps inverted and black-on-white ones left alone, per image."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pairs = captions()[:6]
    rows = []
    for index, (name, caption) in enumerate(pairs):
        bitmap = Image.open(SAMPLE / "off_image_test" / f"{name}_0.bmp").convert("L")
        image = bitmap if index % 2 else ImageOps.invert(bitmap)
        prompt = contract.MAIN_PROMPT if index < 4 else contract.COUNTING_PROMPT
        answer = caption if index < 4 else f"x: 1\n{caption}"
        rows.append(
            {
                "conversations": [
                    {"from": "human", "value": f"<image>{prompt}"},
                    {"from": "gpt", "value": answer},
                ],
                "image": {"bytes": _png(image), "path": f"{name}.png"},
            }
        )
    hub = tmp_path / "Uni-MuMER-Data"
    config = hub / "crohme_train"
    config.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows[:3]), config / "train-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(rows[3:]), config / "train-00001-of-00002.parquet")
    rejects = Rejects(log=False)
    records = list(get_reader("sharegpt")(hub, "crohme_train", rejects))
    assert not rejects and [r.latex for r in records] == [c for _, c in pairs]
    assert [r.task for r in records] == ["main"] * 4 + ["counting"] * 2
    assert [r.meta["inverted"] for r in records] == [False, True, False, True, False, True]
    assert all(dark_on_light(r.image) for r in records)

    # Through the build: every row, the report counts the inversions.
    recipe = parse_recipe(
        {
            "output_dir": str(tmp_path / "out"),
            "train": [{"name": "released", "reader": "sharegpt", "root": str(hub), "split": "crohme_train"}],
        }
    )
    out = build_dataset(recipe, progress=False)
    train = load_split(out, "train")
    assert sorted(train["task"]) == ["counting"] * 2 + ["main"] * 4
    assert sorted(train["answer"]) == sorted(r["conversations"][1]["value"] for r in rows)
    assert all(dark_on_light(image) for image in train["image"])
    report = json.loads((out / "report.json").read_text())
    assert report["splits"]["train"]["images_inverted"] == {"total": 3, "by_source": {"released": 3}}


def test_build_export_read_back_recognises_every_task(tmp_path):
    """Our own ShareGPT export read back by the sharegpt reader: every row's task and answer."""
    recipe = parse_recipe(
        {
            "output_dir": str(tmp_path / "out"),
            "sharegpt": True,
            "train": [
                sample_source(
                    name="crohme",
                    max_records=8,
                    tasks={
                        "tree_cot": 1.0,
                        "counting": 1.0,
                        "error_detection": {"synthetic": 1},
                        "error_correction": {"synthetic": 1},
                    },
                )
            ],
        }
    )
    out = build_dataset(recipe, progress=False)
    built = load_split(out, "train")
    rejects = Rejects(log=False)
    records = list(get_reader("sharegpt")(out / "sharegpt", "train", rejects))
    assert not rejects and len(records) == len(built)
    assert [(r.task, r.answer) for r in records] == list(zip(built["task"], built["answer"]))
    assert {"main", "tree_cot", "counting", "error_detection", "error_correction"} <= {
        r.task for r in records
    }
    for record, meta in zip(records, built["meta"]):
        if record.task == "error_detection":
            assert record.meta["prediction"] == json.loads(meta)["prediction"]


def test_shipped_released_recipes_build_the_datazip_and_hub_layouts(datazip, tmp_path, monkeypatch):
    """The shipped recipes, pointed at data/raw/ as docs/datasets.md says, on the two layouts (the
    sources this fixture lacks left out)."""
    import dataclasses

    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_prep.build.recipe import load_recipe

    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "unimumer").symlink_to(datazip)
    pairs = captions()[:5]
    for config, answer in (("crohme_train", "{}"), ("crohme_train_can", "x: 1\n{}")):
        rows = []
        for name, caption in pairs:
            image = Image.open(SAMPLE / "off_image_test" / f"{name}_0.bmp").convert("L")  # white on black
            prompt = contract.MAIN_PROMPT if config == "crohme_train" else contract.COUNTING_PROMPT
            conversations = [
                {"from": "human", "value": f"<image>{prompt}"},
                {"from": "gpt", "value": answer.format(caption)},
            ]
            rows.append(
                {"conversations": conversations, "image": {"bytes": _png(image), "path": f"{name}.png"}}
            )
        (raw / "Uni-MuMER-Data" / config).mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pylist(rows), raw / "Uni-MuMER-Data" / config / "train-00000-of-00001.parquet"
        )
    monkeypatch.chdir(tmp_path)

    test_recipe = load_recipe(REPO / "recipes" / "data" / "unimumer_released_test.yaml")
    test_recipe = dataclasses.replace(test_recipe, test_sets=test_recipe.test_sets[:1])
    out = build_dataset(test_recipe, tmp_path / "test_out", progress=False)
    rows = load_split(out, "crohme2014")
    assert list(zip(rows["id"], rows["answer"])) == captions()
    assert all(dark_on_light(image) for image in rows["image"])

    train_recipe = load_recipe(REPO / "recipes" / "data" / "unimumer_released.yaml")
    # The fixture's training images are the test images: keep them, reported, to see every row.
    train_recipe = dataclasses.replace(
        train_recipe,
        train=train_recipe.train[:1],
        test_sets=train_recipe.test_sets[:1],
        contamination=dataclasses.replace(train_recipe.contamination, image="report"),
    )
    out = build_dataset(train_recipe, tmp_path / "train_out", progress=False)
    train = load_split(out, "train")
    assert len(train) == 10 and sorted(set(train["task"])) == ["counting", "main"]
    assert all(dark_on_light(image) for image in train["image"])
    report = json.loads((out / "report.json").read_text())
    assert report["splits"]["train"]["images_inverted"]["total"] == 10
    assert report["contamination"]["findings"] >= 10


def test_recognition_follows_the_task_table(monkeypatch):
    """Prompts are recognised from the task table, not from a copy: when a task's wording changes
    there, the new wording is recognised (with its prediction) and the old one no longer is."""
    import dataclasses

    from data_prep.readers.sharegpt import recognise_task
    from data_prep.tasks import registry

    assert recognise_task(PAPER_DETECTION_PROMPT.format(prediction="a + b")) == (
        "error_detection",
        "contract",
        "a + b",
    )
    custom = "Check this LaTeX against the image and mark its errors: {prediction}"
    changed = dataclasses.replace(registry.TASKS["error_detection"], prompt=custom)
    monkeypatch.setitem(registry.TASKS, "error_detection", changed)
    assert recognise_task(custom.format(prediction="a + b")) == ("error_detection", "contract", "a + b")
    assert recognise_task(PAPER_DETECTION_PROMPT.format(prediction="a"))[0] == "other"


def test_sharegpt_build_resumes_with_the_rows_of_an_uninterrupted_one(datazip, tmp_path):
    recipe = parse_recipe(
        {
            "output_dir": str(tmp_path / "o"),
            "shard_size": 10,
            "train": [
                {
                    "name": "prompts",
                    "reader": "sharegpt",
                    "root": str(datazip),
                    "split": "crohme_2014",
                    "options": {"file": "data/CROHME/prompts/crohme_2014.json"},
                    "tasks": {"counting": 1.0},
                }
            ],
        }
    )
    clean = load_split(build_dataset(recipe, tmp_path / "clean", progress=False), "train")
    with build_crashes_writing_shard(4):
        build_dataset(recipe, progress=False)
    resumed = load_split(build_dataset(recipe, progress=False), "train")
    assert resumed["id"] == clean["id"] and resumed["answer"] == clean["answer"] and len(clean) == 96


def test_a_byte_order_mark_does_not_hide_line_one(datazip, tmp_path):
    """A caption file saved with a UTF-8 BOM: line 1 is read like every other line."""
    import shutil

    root = tmp_path / "CROHME"
    shutil.copytree(datazip / "data" / "CROHME" / "2014", root / "2014")
    caption = root / "2014" / "caption.txt"
    caption.write_bytes(b"\xef\xbb\xbf" + caption.read_bytes().replace(b"\n", b"\r\n"))
    rejects = Rejects(log=False)
    records = list(get_reader("crohme")(root, "2014", rejects))
    assert not rejects and [(r.id, r.answer) for r in records] == captions()
