"""End-to-end dataset builds from the bundled CROHME sample: counts, files, report, resume, rejects."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from data_prep.build import MANIFEST_FORMAT, build_dataset, main
from data_prep.build import pipeline as build_module
from data_prep.build.recipe import load_recipe, parse_recipe
from data_prep.dataset import list_splits, load_split
from data_prep.rejects import TooManyRejects
from tests.build_support import build_crashes_writing_shard, sample_source

REPO = Path(__file__).resolve().parents[2]
SAMPLE_RECIPE = REPO / "recipes" / "data" / "crohme_sample.yaml"
SAMPLE = REPO / "samples" / "crohme2014_test"


def caption_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory):
    """The shipped demo recipe built once (main + all auxiliary tasks)."""
    import contextlib

    out = tmp_path_factory.mktemp("sample_build")
    with contextlib.chdir(REPO):  # recipe paths are relative to the repository root
        build_dataset(load_recipe(SAMPLE_RECIPE), out, progress=False)
    return out


def test_sample_build_counts(sample_build):
    assert list_splits(sample_build) == ["crohme2014_sample", "train"]
    test = load_split(sample_build, "crohme2014_sample")
    train = load_split(sample_build, "train")
    assert set(test["task"]) == {"main"}
    main_train = [i for i, t in zip(train["id"], train["task"]) if t == "main"]
    # Every captioned image lands in exactly one of the two splits.
    assert len(test) + len(main_train) == len(caption_lines(SAMPLE / "caption_comer.txt")) == 48
    assert not set(test["id"]) & set(main_train)
    assert 0 < len(test) < 24
    tasks = set(train["task"])
    assert tasks == {"main", "tree_cot", "counting", "error_detection", "error_correction"}
    assert set(train["split"]) == {"train"} and set(test["split"]) == {"crohme2014_sample"}


def test_sample_build_rows_are_valid(sample_build):
    from PIL import Image

    from data_prep.contract import extract_latex, prompt_for

    train = load_split(sample_build, "train")
    captions = dict(line.split("\t", 1) for line in caption_lines(SAMPLE / "caption_comer.txt"))
    for row in train.select(range(0, len(train), 7)):
        assert isinstance(row["image"], Image.Image) and min(row["image"].size) > 0
        base_id = json.loads(row["meta"]).get("base_id", row["id"].split("#")[0])
        if row["task"] != "error_detection":  # detection answers end with the marked prediction
            assert extract_latex(row["answer"]) == " ".join(captions[base_id].split())
        if row["task"] in ("main", "tree_cot", "counting"):
            assert row["prompt"] == prompt_for(row["task"])
    # Images are ink on white: the reader inverted the white-on-black bitmaps.
    image = train[0]["image"].convert("L")
    assert image.getpixel((0, 0)) > 200


def test_sample_report_matches_data(sample_build):
    report = json.loads((sample_build / "report.json").read_text())
    assert report["status"] == "ok"
    for split in ("crohme2014_sample", "train"):
        rows = load_split(sample_build, split)
        assert report["splits"][split]["rows"] == len(rows)
        by_task = report["splits"][split]["rows_by_task"]
        for task, n in by_task.items():
            assert sum(1 for t in rows["task"] if t == task) == n
        assert report["splits"][split]["latex_tokens"]["count"] == by_task["main"]
    assert report["contamination"]["findings"] == 0
    vocab = dict(line.split("\t") for line in (sample_build / "vocab.txt").read_text().splitlines())
    assert "\\frac" in vocab or "=" in vocab
    assert "## Rows" in (sample_build / "report.md").read_text()


def test_missing_split_lists_available(sample_build):
    with pytest.raises(KeyError, match="available splits: crohme2014_sample, train"):
        load_split(sample_build, "crohme2016")


@pytest.fixture
def broken_sample(tmp_path) -> Path:
    """The sample plus two bad caption lines: no tab, and an image that does not exist."""
    root = tmp_path / "broken"
    shutil.copytree(SAMPLE, root)
    with (root / "caption_comer.txt").open("a", encoding="utf-8") as handle:
        handle.write("\nno_tab_here x + 1\nghost_1\tx ^ { 2 }")
    return root


def test_rejects_are_reported_with_file_and_line(broken_sample, tmp_path):
    recipe = parse_recipe({"output_dir": str(tmp_path / "o"), "train": [sample_source(broken_sample)]})
    out = build_dataset(recipe, progress=False)
    rejected = json.loads((out / "report.json").read_text())["splits"]["train"]["rejected_input"]
    assert rejected["total"] == 2
    reasons = {g["reason"]: g["examples"][0] for g in rejected["by_source_and_reason"]}
    assert set(reasons) == {"no_tab", "missing_image"}
    lines = (broken_sample / "caption_comer.txt").read_text().split("\n")
    no_tab_line = next(i for i, line in enumerate(lines, 1) if line.startswith("no_tab_here"))
    assert f"caption_comer.txt:{no_tab_line}" in reasons["no_tab"]
    assert f"caption_comer.txt:{no_tab_line + 1}" in reasons["missing_image"]
    assert len(load_split(out, "train")) == 48


def test_max_reject_fraction_fails_clearly(broken_sample, tmp_path):
    recipe = parse_recipe({"output_dir": str(tmp_path / "o"), "train": [sample_source(broken_sample)]})
    with pytest.raises(TooManyRejects, match="2 of 50 records rejected"):
        build_dataset(recipe, max_reject_fraction=0.01, progress=False)
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["status"].startswith("failed")
    # The command line turns it into an exit status, not a traceback.
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump({"output_dir": str(tmp_path / "o2"), "train": [sample_source(broken_sample)]})
    )
    assert main(["--config", str(path), "--max-reject-fraction", "0.01", "--no-progress"]) == 3
    assert main(["--config", str(path), "--max-reject-fraction", "0.5", "--no-progress"]) == 0


def test_resume_after_crash(tmp_path, monkeypatch):
    root = tmp_path / "sample"
    shutil.copytree(SAMPLE, root)
    captions = root / "caption_comer.txt"
    captions.write_text("first line without a tab\n" + captions.read_text())  # a reject before the crash
    recipe = parse_recipe(
        {"output_dir": str(tmp_path / "o"), "shard_size": 10, "train": [sample_source(root)]}
    )
    out = tmp_path / "o"
    with build_crashes_writing_shard(3, leave_partial=True) as written:
        build_dataset(recipe, progress=False)
    first_two = [p.stat().st_ino for p in written]
    assert list((out / ".build" / "train").glob("*.tmp"))

    real_write = build_module.DatasetBuilder._write_shard
    rewritten = []
    monkeypatch.setattr(
        build_module.DatasetBuilder,
        "_write_shard",
        lambda self, p, r: (rewritten.append(p.name), real_write(self, p, r)),
    )
    build_dataset(recipe, progress=False)
    assert "shard-00000.parquet" not in rewritten and "shard-00001.parquet" not in rewritten
    final = sorted((out / "train").glob("*.parquet"))
    assert [p.name for p in final] == [f"shard-{i:05d}-of-00005.parquet" for i in range(5)]
    assert [p.stat().st_ino for p in final[:2]] == first_two  # moved, not rebuilt
    assert not list((out / ".build").rglob("*.tmp"))
    resumed = load_split(out, "train")

    clean = build_dataset(recipe, tmp_path / "clean", progress=False)
    assert resumed["id"] == load_split(clean, "train")["id"]
    report = json.loads((out / "report.json").read_text())["splits"]["train"]
    assert report["rows"] == 48
    assert report["rejected_input"]["total"] == 1  # counted once, not again on resume


def test_worker_processes_give_the_same_rows(tmp_path):
    source = sample_source(tasks={"counting": 1.0, "error_detection": {"synthetic": 1}})
    recipe = parse_recipe({"output_dir": str(tmp_path / "serial"), "train": [source]})
    serial = load_split(build_dataset(recipe, progress=False), "train")
    parallel = load_split(build_dataset(recipe, tmp_path / "pool", num_proc=2, progress=False), "train")
    assert parallel["id"] == serial["id"] and parallel["answer"] == serial["answer"]
    assert parallel[5]["image"].tobytes() == serial[5]["image"].tobytes()


def test_changed_recipe_rebuilds(tmp_path, caplog):
    source = sample_source(max_records=5)
    out = build_dataset(parse_recipe({"output_dir": str(tmp_path / "o"), "train": [source]}), progress=False)
    assert len(load_split(out, "train")) == 5
    build_dataset(
        parse_recipe({"output_dir": str(out), "train": [{**source, "max_records": 7}]}), progress=False
    )
    assert "the recipe changed since the last build" in caplog.text
    assert len(load_split(out, "train")) == 7


def test_contamination_exclusions_cite_the_caption_file_and_line(tmp_path):
    """A training image that is also a test image is excluded, cited as caption file:line."""
    captions = (SAMPLE / "caption_comer.txt").read_text(encoding="utf-8").split("\n")
    line_of = {line.split("\t")[0]: number for number, line in enumerate(captions, 1) if line.strip()}
    overlapping = list(line_of)[3:5]
    test_root = tmp_path / "fake_test"
    (test_root / "test" / "img").mkdir(parents=True)
    for name in overlapping:
        shutil.copy(SAMPLE / "off_image_test" / f"{name}_0.bmp", test_root / "test" / "img" / f"{name}.bmp")
    (test_root / "test" / "caption.txt").write_text(
        "".join(line + "\n" for line in captions if line.split("\t")[0] in overlapping)
    )
    recipe = parse_recipe(
        {
            "output_dir": str(tmp_path / "out"),
            "contamination": {"image": "exclude", "formula": "off"},
            "train": [sample_source()],
            "test_sets": [{"name": "fake", "reader": "crohme", "root": str(test_root), "split": "test"}],
        }
    )
    out = build_dataset(recipe, progress=False)
    excluded = json.loads((out / "report.json").read_text())["splits"]["train"]["excluded"]
    assert excluded["total"] == 2
    examples_text = "\n".join(e for group in excluded["by_source_and_reason"] for e in group["examples"])
    for name in overlapping:
        assert f"[sample] caption_comer.txt:{line_of[name]}: contaminated_image ({name}:" in examples_text


def _error_prompts(out: Path) -> list[str]:
    train = load_split(out, "train")
    return [p for p, t in zip(train["prompt"], train["task"]) if t == "error_detection"]


def test_learned_confusion_table_shapes_the_synthetic_errors(tmp_path):
    """A learned pair with a high count ('n' read as a symbol no built-in group has) shows up in
    the synthetic wrong predictions; without the table it never does."""
    from data_prep.tasks.error_driven.confusions import ConfusionTable

    table_path = tmp_path / "confusions.json"
    ConfusionTable({"n": {"\\clubsuit": 1000}}).to_json(table_path)
    error_task = {"synthetic": 2}
    source = sample_source(max_records=16, tasks={"error_detection": error_task})
    learned_source = {**source, "tasks": {"error_detection": {**error_task, "confusions": str(table_path)}}}
    baseline = build_dataset(
        parse_recipe({"output_dir": str(tmp_path / "base"), "seed": 7, "train": [source]}), progress=False
    )
    learned = build_dataset(
        parse_recipe({"output_dir": str(tmp_path / "learned"), "seed": 7, "train": [learned_source]}),
        progress=False,
    )
    assert not any("\\clubsuit" in p for p in _error_prompts(baseline))
    learned_prompts = _error_prompts(learned)
    assert len(learned_prompts) == len(_error_prompts(baseline)) > 0
    assert any("\\clubsuit" in p for p in learned_prompts)


def test_confusion_table_is_validated(tmp_path):
    from data_prep.build.recipe import RecipeError

    missing = tmp_path / "absent.json"
    source = sample_source(tasks={"error_detection": {"synthetic": 1, "confusions": str(missing)}})
    recipe = parse_recipe({"output_dir": str(tmp_path / "o"), "train": [source]})
    with pytest.raises(RecipeError, match=r"tasks\.error_detection\.confusions.*absent\.json"):
        build_dataset(recipe, progress=False)
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    bad = sample_source(tasks={"error_detection": {"synthetic": 1, "confusions": str(tmp_path / "bad.json")}})
    with pytest.raises(RecipeError, match=r"tasks\.error_detection\.confusions.*not a confusion table"):
        build_dataset(parse_recipe({"output_dir": str(tmp_path / "o"), "train": [bad]}), progress=False)
    with pytest.raises(RecipeError, match=r"confusions.*'synthetic'"):
        parse_recipe(
            {
                "output_dir": "o",
                "train": [
                    sample_source(tasks={"error_detection": {"predictions": ["p.jsonl"], "confusions": "c"}})
                ],
            }
        )


def test_ctrl_c_says_how_to_resume_without_a_traceback(monkeypatch, caplog):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build_module, "build_dataset", interrupted)
    assert main(["--config", "recipes/data/crohme_sample.yaml", "--no-progress"]) == 130
    assert "run the same command again to resume" in caplog.text


@pytest.mark.parametrize("value", ["1.5", "-0.1", "5%", "nan"])
def test_max_reject_fraction_outside_0_to_1_is_refused(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", "recipes/data/crohme_sample.yaml", "--max-reject-fraction", value])
    assert exit_info.value.code == 2
    assert "expected a number from 0 to 1" in capsys.readouterr().err


def test_resume_opens_no_image_that_finished_shards_cover(tmp_path, monkeypatch):
    """An interrupted build resumes with the same rows and rejections as an uninterrupted one, and
    never opens the images of the records its finished shards (and rejections) already cover: they
    are corrupted between the two runs and the result does not change."""
    from data_prep.images import DatasetRoot

    root = tmp_path / "sample"
    shutil.copytree(SAMPLE, root)
    captions = root / "caption_comer.txt"
    lines = caption_lines(captions)
    # Reader rejections before the crash (no tab, unreadable image) and after it (missing image).
    (root / "off_image_test" / "broken_0.bmp").write_bytes(b"BM not a bitmap")
    bad = ["first line without a tab", "broken\tx"]
    captions.write_text("\n".join([bad[0], *lines[:5], bad[1], *lines[5:], "ghost\ty"]) + "\n")
    source = sample_source(root, tasks={"counting": 1.0})
    recipe = parse_recipe(
        {"output_dir": str(tmp_path / "o"), "shard_size": 10, "max_reject_fraction": 0.1, "train": [source]}
    )
    clean = build_dataset(recipe, tmp_path / "clean", progress=False)

    with build_crashes_writing_shard(3):
        build_dataset(recipe, progress=False)
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    position = manifest["splits"]["train"]["shards"][-1]["position"]["sample"]["items"]
    covered = [line.split("\t")[0] for line in lines[:5] + ["broken"] + lines[5:]][:position]
    assert len(covered) >= 10 and "broken" in covered
    for name in covered:  # a resume that opened any of these would reject it or change its row
        (root / "off_image_test" / f"{name}_0.bmp").write_bytes(b"BM corrupted after the crash")

    opened = []
    real_load = DatasetRoot.load_image
    monkeypatch.setattr(
        DatasetRoot,
        "load_image",
        lambda self, path: (opened.append(Path(path).name), real_load(self, path))[1],
    )
    out = build_dataset(recipe, progress=False)
    assert opened and not {f"{name}_0.bmp" for name in covered} & set(opened)
    assert len(opened) == len(lines) + 1 - len(covered)  # each later image once ("ghost" has none)
    resumed, expected = load_split(out, "train"), load_split(clean, "train")
    assert resumed["id"] == expected["id"] and resumed["answer"] == expected["answer"]
    assert resumed["meta"] == expected["meta"]
    assert [r["image"].tobytes() for r in resumed.select(range(0, len(resumed), 9))] == [
        r["image"].tobytes() for r in expected.select(range(0, len(expected), 9))
    ]

    def rejected(build: Path) -> list:
        report = json.loads((build / "report.json").read_text())["splits"]["train"]["rejected_input"]
        # The examples cite file:line first; PIL's message after it names an object address.
        return [
            (g["reason"], g["count"], [e.split(" (")[0] for e in g["examples"]])
            for g in report["by_source_and_reason"]
        ]

    assert rejected(out) == rejected(clean)
    assert sorted((reason, count) for reason, count, _ in rejected(out)) == [
        ("missing_image", 1),
        ("no_tab", 1),
        ("unreadable_image", 1),
    ]  # each counted once


def test_manifest_of_an_older_build_is_rebuilt_not_misread(tmp_path, caplog):
    recipe = parse_recipe({"output_dir": str(tmp_path / "o"), "train": [sample_source(max_records=5)]})
    out = build_dataset(recipe, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["format"]  # what the build wrote before positions counted reader items
    (out / "manifest.json").write_text(json.dumps(manifest))
    build_dataset(recipe, progress=False)
    assert "written by an older version of the build" in caplog.text
    assert json.loads((out / "manifest.json").read_text())["format"] == MANIFEST_FORMAT
    assert len(load_split(out, "train")) == 5


def test_vanilla_prompt_goes_to_the_chosen_share_of_main_records(tmp_path):
    from data_prep.contract import MAIN_PROMPT, VANILLA_PROMPT

    source = sample_source(vanilla_prompt=0.5, tasks={"tree_cot": {"style": "structural"}})
    out = build_dataset(parse_recipe({"output_dir": str(tmp_path / "o"), "train": [source]}), progress=False)
    rows = load_split(out, "train")
    main = [r for r in rows if r["task"] == "main"]
    vanilla = [r for r in main if r["prompt"] == VANILLA_PROMPT]
    assert len(main) == 48 and 10 < len(vanilla) < 38  # a stable share, not all or none
    assert {r["prompt"] for r in main} == {MAIN_PROMPT, VANILLA_PROMPT}
    # The recipe's style reaches the build (8 of these 48 trees differ between the two styles).
    from data_prep.tasks import build_structural_tree_cot, build_tree_cot

    trees = [r for r in rows if r["task"] == "tree_cot"]
    assert len(trees) == 48
    latex = [r["answer"].rsplit("\n", 1)[1] for r in trees]
    assert [r["answer"] for r in trees] == [build_structural_tree_cot(x) for x in latex]
    assert sum(r["answer"] != build_tree_cot(x) for r, x in zip(trees, latex)) == 8
    off = build_dataset(
        parse_recipe({"output_dir": str(tmp_path / "p"), "train": [sample_source()]}), progress=False
    )
    assert {r["prompt"] for r in load_split(off, "train")} == {MAIN_PROMPT}


def test_a_build_of_an_older_task_format_is_rebuilt(tmp_path, monkeypatch, caplog):
    """A dataset whose auxiliary answers are of another format version is not resumed and mixed."""
    from data_prep.build import recipe as recipe_module

    recipe = {
        "output_dir": str(tmp_path / "o"),
        "train": [sample_source(max_records=3, tasks={"tree_cot": 1.0})],
    }
    with monkeypatch.context() as patch:
        patch.setattr(recipe_module, "TASK_FORMAT_VERSION", recipe_module.TASK_FORMAT_VERSION - 1)
        out = build_dataset(parse_recipe(recipe), progress=False)
    build_dataset(parse_recipe(recipe), progress=False)
    assert "the hash also covers the task answer format" in caplog.text
    assert "rebuilding from scratch" in caplog.text
    assert len(load_split(out, "train")) == 6
