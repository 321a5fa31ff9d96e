"""Every shipped data recipe validates; bad recipes fail with the file and the key named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from data_prep.build.recipe import RecipeError, load_recipe, parse_recipe

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes" / "data").glob("*.yaml"))
MINIMAL = {
    "output_dir": "out",
    "train": [{"reader": "crohme", "root": "samples/crohme2014_test", "split": "2014"}],
}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipe_validates(path):
    recipe = load_recipe(path)
    assert recipe.split_names(), "a recipe must produce at least one split"
    assert len(set(recipe.split_names())) == len(recipe.split_names())
    assert len(recipe.content_hash()) == 16


def test_expected_recipes_are_shipped():
    names = {p.name for p in RECIPES}
    assert {"crohme_sample.yaml", "crohme.yaml", "crohme_hme100k.yaml", "unimumer_full.yaml"} <= names
    assert {"unimumer_released.yaml", "unimumer_released_test.yaml"} <= names


def test_sample_recipe_paths_exist(monkeypatch):
    monkeypatch.chdir(REPO)
    recipe = load_recipe(REPO / "recipes" / "data" / "crohme_sample.yaml", require_paths=True)
    assert recipe.split_names() == ["crohme2014_sample", "train"]


def test_full_recipe_mixes_four_sources_with_all_tasks():
    recipe = load_recipe(REPO / "recipes" / "data" / "unimumer_full.yaml")
    assert [s.reader for s in recipe.train] == ["crohme", "hme100k", "im2latex", "mlhme38k"]
    for source in recipe.train:
        assert set(source.tasks) == {"tree_cot", "counting", "error_detection", "error_correction"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"shard_sise": 10}, "unknown key(s) 'shard_sise'"),
        ({"train": [{**MINIMAL["train"][0], "tasks": {"tree_cott": 1.0}}]}, "tasks.tree_cott: unknown task"),
        ({"train": [{**MINIMAL["train"][0], "tasks": {"counting": 1.5}}]}, "between 0 and 1"),
        ({"train": [{**MINIMAL["train"][0], "tasks": {"error_detection": {}}}]}, "exactly one of"),
        ({"train": [{**MINIMAL["train"][0], "reader": "nope"}]}, "unknown reader 'nope'"),
        ({"train": [{"reader": "crohme", "root": "x"}]}, "missing required key(s) 'split'"),
        ({"contamination": {"image": "drop"}}, "contamination.image"),
        (
            {"train": [{**MINIMAL["train"][0], "tasks": {"tree_cot": {"style": "fancy"}}}]},
            "unknown style 'fancy'",
        ),
        ({"train": [{**MINIMAL["train"][0], "tasks": {"counting": {"style": "structural"}}}]}, "'style'"),
        ({"train": [{**MINIMAL["train"][0], "vanilla_prompt": 2}]}, "vanilla_prompt"),
        ({"test_sets": [{**MINIMAL["train"][0], "name": "t", "vanilla_prompt": 0.5}]}, "'vanilla_prompt'"),
        ({"test_sets": [{"name": "train", "reader": "crohme", "root": "x", "split": "t"}]}, "not 'train'"),
    ],
)
def test_bad_recipes_fail_clearly(change, message):
    with pytest.raises(RecipeError, match=None) as info:
        parse_recipe({**MINIMAL, **change}, "bad.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("bad.yaml")


def test_missing_paths_are_reported_only_when_asked(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump({**MINIMAL, "train": [{**MINIMAL["train"][0], "root": str(tmp_path / "absent")}]})
    )
    load_recipe(path)  # schema only: fine
    with pytest.raises(RecipeError, match="missing paths"):
        load_recipe(path, require_paths=True)


def test_content_hash_ignores_output_dir_but_not_seed():
    base = parse_recipe(MINIMAL)
    assert parse_recipe({**MINIMAL, "output_dir": "elsewhere"}).content_hash() == base.content_hash()
    assert parse_recipe({**MINIMAL, "seed": 7}).content_hash() != base.content_hash()


def test_tree_style_and_vanilla_prompt_keys():
    source = {**MINIMAL["train"][0], "tasks": {"tree_cot": {"style": "structural"}}, "vanilla_prompt": 0.25}
    recipe = parse_recipe({**MINIMAL, "train": [source]})
    assert recipe.train[0].tasks["tree_cot"].style == "structural"
    assert recipe.train[0].vanilla_prompt == 0.25
    default = parse_recipe({**MINIMAL, "train": [{**MINIMAL["train"][0], "tasks": {"tree_cot": 1.0}}]})
    assert default.train[0].tasks["tree_cot"].style is None  # the reference's serialisation
    assert default.train[0].vanilla_prompt == 0.0
    assert recipe.content_hash() != default.content_hash()


def test_content_hash_records_the_task_format(monkeypatch):
    from data_prep.build import recipe as recipe_module

    before = parse_recipe(MINIMAL).content_hash()
    monkeypatch.setattr(recipe_module, "TASK_FORMAT_VERSION", recipe_module.TASK_FORMAT_VERSION + 1)
    assert parse_recipe(MINIMAL).content_hash() != before  # a build of another answer format is rebuilt


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "not found"),
        ("output_dir: [out\n", "is not valid YAML: expected ',' or ']'"),
        ("- output_dir: out\n", "must be a YAML mapping of keys to values"),
        (b"output_dir: \xff\n", "is not UTF-8 text"),
    ],
)
def test_unreadable_recipe_file_is_one_line_naming_it(tmp_path, text, message):
    """Data recipes are read like training recipes and --config files (data_prep.recipe_file)."""
    path = tmp_path / "recipe.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(RecipeError, match=f"data recipe {path} {message}") as err:
        load_recipe(path)
    assert "\n" not in str(err.value)
