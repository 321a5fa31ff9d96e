"""``train_tasks``: one build, several task mixtures (the ablation's arms)."""

from __future__ import annotations

import datasets
import pytest

from train.config import RecipeError
from train.sft import select_tasks


def _rows() -> datasets.Dataset:
    tasks = ["main", "tree_cot", "counting", "main", "error_detection", "tree_cot"]
    return datasets.Dataset.from_dict({"id": [f"r{i}" for i in range(len(tasks))], "task": tasks})


def test_keeps_only_the_rows_of_the_named_tasks():
    kept = select_tasks(_rows(), ["main", "tree_cot"], "train")
    assert kept["task"] == ["main", "tree_cot", "main", "tree_cot"]
    assert kept["id"] == ["r0", "r1", "r3", "r5"]


def test_a_misspelt_task_is_a_recipe_error_naming_the_known_ones():
    with pytest.raises(RecipeError, match=r"unknown task\(s\) \['tree-cot'\].*known: main"):
        select_tasks(_rows(), ["main", "tree-cot"], "train")


def test_a_task_the_split_lacks_is_refused_with_what_it_has():
    with pytest.raises(RecipeError, match=r"no rows of \['error_correction'\].*counting \(1\)"):
        select_tasks(_rows(), ["main", "error_correction"], "train")
