"""Data recipes: which sources, tasks and test sets one dataset build reads (YAML, validated).

A recipe is a small YAML file (see ``docs/data.md`` and ``recipes/data/``)::

    output_dir: outputs/data/crohme
    seed: 1234
    shard_size: 2000
    max_reject_fraction: 0.02
    sharegpt: false
    contamination: {image: exclude, formula: report, perceptual_max_distance: 12}
    train:
      - name: crohme_train
        reader: crohme
        root: data/raw/crohme
        split: train
        options: {edition: comer}
        tasks: {tree_cot: 1.0, counting: 1.0, error_detection: {synthetic: 1}}
    test_sets:
      - {name: crohme2014, reader: crohme, root: data/raw/crohme, split: "2014"}

Unknown keys, wrong types and impossible values fail with a :class:`RecipeError` naming the file
and the key. Source paths are checked only when asked (``check_paths=True``): recipes name
downloads that CI machines do not have.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from data_prep.build.recipe_fields import (
    RecipeError,
    as_fraction,
    as_int,
    as_str,
    check_keys,
    check_reader,
    fail,
    split_name,
)
from data_prep.contract import (
    TASK_FORMAT_VERSION,
    TASK_MAIN,
)
from data_prep.recipe_file import RecipeFileError, read_recipe_mapping
from data_prep.tasks.registry import derived_tasks, error_tasks, get_task

#: What to do with a training record that matches a test set.
CONTAMINATION_ACTIONS = ("exclude", "report", "off")
#: A split whose rejected share of input exceeds this fails, unless the recipe says otherwise.
DEFAULT_MAX_REJECT_FRACTION = 0.05
#: A source's ``answers``: ``checked`` (malformed answers rejected) or ``published`` (test sets: kept).
ANSWER_MODES = ("checked", "published")
#: What ``datasets`` accepts as a split name (``datasets.splits``): test sets and holdouts are splits.
_HF_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """How often one auxiliary task is derived from a source's main records.

    ``fraction``: share of main records (chosen by a seeded hash of the record id, so the choice is
    stable across runs and resumes). ``max_records``: cap on the records derived for this source.
    Error tasks also say where wrong predictions come from: ``synthetic`` (that many synthetic
    wrong predictions per record) or ``predictions`` (prediction files keyed by record id). With
    ``synthetic``, ``confusions`` may name a learned confusion table (JSON of
    ``data_prep.tasks.error_driven.confusions.ConfusionTable.to_json``, e.g. the ``confusions.json`` of
    ``python -m eval.mine_errors``), added to the built-in table for the symbol substitutions.
    """

    fraction: float = 1.0
    max_records: int | None = None
    synthetic: int | None = None
    predictions: tuple[str, ...] = ()
    confusions: str | None = None
    #: Tree-CoT only: ``reference`` (default, Uni-MuMER's serialisation) or ``structural``.
    style: str | None = None


@dataclasses.dataclass(frozen=True)
class HoldoutSpec:
    """Carve a deterministic test set out of a training source (e.g. a demo sample)."""

    name: str
    fraction: float


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """One reader call: ``get_reader(reader).read(root, split, rejects, **options)``."""

    name: str
    reader: str
    root: str
    split: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    tasks: dict[str, TaskSpec] = dataclasses.field(default_factory=dict)
    max_records: int | None = None
    holdout: HoldoutSpec | None = None
    #: Share of the main records that get Fig. 2's second prompt (``contract.VANILLA_PROMPT``).
    vanilla_prompt: float = 0.0
    #: ``checked`` (default: a malformed answer is rejected) or, for a test set only,
    #: ``published``: every answer is kept byte-equal to its file, its problems counted in the
    #: report (the reference scored CROHME2023's 2,300 published answers, 609 with unbalanced braces).
    answers: str = "checked"


@dataclasses.dataclass(frozen=True)
class ContaminationSpec:
    """Policy for training records that overlap a test set (see ``data_prep.build.contamination``)."""

    image: str = "exclude"
    formula: str = "report"
    perceptual_max_distance: int = 12
    #: Renderings (``synthetic`` sources) of a test-set formula: held back unless the recipe says.
    rendered_formula: str = "exclude"


@dataclasses.dataclass(frozen=True)
class DataRecipe:
    output_dir: str
    train: tuple[SourceSpec, ...] = ()
    test_sets: tuple[SourceSpec, ...] = ()
    seed: int = 1234
    shard_size: int = 2000
    max_reject_fraction: float = DEFAULT_MAX_REJECT_FRACTION
    contamination: ContaminationSpec = ContaminationSpec()
    sharegpt: bool = False
    num_proc: int = 1
    path: str = ""

    def content_hash(self) -> str:
        """Hash of everything that changes the built rows (not where they go or how fast)."""
        content = dataclasses.asdict(self)
        for key in ("output_dir", "sharegpt", "num_proc", "path", "max_reject_fraction"):
            content.pop(key)
        for source in (*content["train"], *content["test_sets"]):
            if source["answers"] == "checked":  # the default: hashes of earlier builds stay valid
                del source["answers"]
        content["task_format"] = TASK_FORMAT_VERSION  # answers of another version are rebuilt
        # A learned confusion table changes the synthetic errors when its contents change.
        content["confusion_tables"] = {
            path: hashlib.sha256(Path(path).read_bytes()).hexdigest() if Path(path).is_file() else None
            for path in sorted(self.confusion_paths())
        }
        text = json.dumps(content, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def confusion_paths(self) -> set[str]:
        """The learned confusion tables the error tasks name."""
        return {t.confusions for s in self.train for t in s.tasks.values() if t.confusions}

    def split_names(self) -> list[str]:
        """Output splits: every test set (explicit and holdout) first, then ``train``."""
        names = [s.name for s in self.test_sets]
        names += [s.holdout.name for s in self.train if s.holdout is not None]
        return names + (["train"] if self.train else [])


def _task_spec(task: str, value: Any, where: str) -> TaskSpec:
    if task in derived_tasks():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return TaskSpec(fraction=as_fraction(value, where))
        styles = get_task(task).styles
        keys = {"fraction", "max_records"} | ({"style"} if styles else set())
        spec = check_keys(value, keys, set(), where)
        style = spec.get("style")
        if style is not None:
            if style not in styles:
                raise fail(f"{where}.style", f"unknown style {style!r}; known: {', '.join(styles)}")
        return TaskSpec(
            fraction=as_fraction(spec.get("fraction", 1.0), f"{where}.fraction"),
            max_records=None
            if spec.get("max_records") is None
            else as_int(spec["max_records"], f"{where}.max_records", 1),
            style=style,
        )
    # Error-driven tasks need to know where the wrong predictions come from.
    spec = check_keys(
        value, {"fraction", "max_records", "synthetic", "predictions", "confusions"}, set(), where
    )
    synthetic = spec.get("synthetic")
    predictions = spec.get("predictions") or []
    if isinstance(predictions, str):
        predictions = [predictions]
    if (synthetic is None) == (not predictions):
        raise fail(where, "give exactly one of 'synthetic: N' or 'predictions: [files]'")
    if not isinstance(predictions, list):
        raise fail(f"{where}.predictions", "expected a list of prediction files")
    confusions = spec.get("confusions")
    if confusions is not None:
        if synthetic is None:
            raise fail(f"{where}.confusions", "a confusion table only shapes 'synthetic' errors")
        confusions = as_str(confusions, f"{where}.confusions")
    return TaskSpec(
        fraction=as_fraction(spec.get("fraction", 1.0), f"{where}.fraction"),
        max_records=None
        if spec.get("max_records") is None
        else as_int(spec["max_records"], f"{where}.max_records", 1),
        synthetic=None if synthetic is None else as_int(synthetic, f"{where}.synthetic", 1),
        predictions=tuple(as_str(p, f"{where}.predictions") for p in predictions),
        confusions=confusions,
    )


def _source(value: Any, where: str, *, is_train: bool) -> SourceSpec:
    allowed = {"name", "reader", "root", "split", "options", "max_records", "answers"}
    if is_train:
        allowed |= {"tasks", "holdout", "vanilla_prompt"}
    spec = check_keys(value, allowed, {"reader", "root", "split"}, where)
    reader = as_str(spec["reader"], f"{where}.reader")
    name = split_name(spec.get("name", reader), f"{where}.name")
    options = spec.get("options") or {}
    if not isinstance(options, dict):
        raise fail(f"{where}.options", "expected a mapping of reader options")
    tasks: dict[str, TaskSpec] = {}
    raw_tasks = spec.get("tasks") or {}
    if not isinstance(raw_tasks, dict):
        raise fail(f"{where}.tasks", "expected a mapping task -> weight or spec")
    for task, task_value in raw_tasks.items():
        task_where = f"{where}.tasks.{task}"
        if task == TASK_MAIN:
            if task_value not in (1, 1.0, True):
                raise fail(
                    task_where, "the main task is always built in full; leave it out or write 'main: 1.0'"
                )
            continue
        if task not in (*derived_tasks(), *error_tasks()):
            known = ", ".join((TASK_MAIN, *derived_tasks(), *error_tasks()))
            raise fail(task_where, f"unknown task; known: {known}")
        tasks[task] = _task_spec(task, task_value, task_where)
    holdout = None
    if spec.get("holdout") is not None:
        raw = check_keys(spec["holdout"], {"name", "fraction"}, {"name", "fraction"}, f"{where}.holdout")
        holdout = HoldoutSpec(
            name=split_name(raw["name"], f"{where}.holdout.name"),
            fraction=as_fraction(raw["fraction"], f"{where}.holdout.fraction"),
        )
        if not 0 < holdout.fraction < 1:
            raise fail(f"{where}.holdout.fraction", "must be strictly between 0 and 1")
    max_records = spec.get("max_records")
    answers = spec.get("answers", "checked")
    if answers not in ANSWER_MODES:
        raise fail(f"{where}.answers", f"expected one of {', '.join(ANSWER_MODES)}, got {answers!r}")
    if answers == "published" and is_train:
        raise fail(
            f"{where}.answers",
            "'published' keeps malformed answers and is for test sets only; training answers are always checked",
        )
    return SourceSpec(
        name=name,
        reader=reader,
        root=as_str(spec["root"], f"{where}.root"),
        split=as_str(spec["split"], f"{where}.split"),
        options=dict(options),
        tasks=tasks,
        max_records=None if max_records is None else as_int(max_records, f"{where}.max_records", 1),
        holdout=holdout,
        vanilla_prompt=as_fraction(spec.get("vanilla_prompt", 0.0), f"{where}.vanilla_prompt"),
        answers=answers,
    )


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #

_TOP_KEYS = {
    "output_dir",
    "train",
    "test_sets",
    "seed",
    "shard_size",
    "max_reject_fraction",
    "contamination",
    "sharegpt",
    "num_proc",
}


def parse_recipe(data: Any, where: str = "recipe") -> DataRecipe:
    """Validate a recipe mapping (already parsed from YAML) into a :class:`DataRecipe`."""
    top = check_keys(data, _TOP_KEYS, {"output_dir"}, where)
    train = top.get("train") or []
    tests = top.get("test_sets") or []
    if not isinstance(train, list) or not isinstance(tests, list):
        raise fail(where, "'train' and 'test_sets' are lists of sources")
    if not train and not tests:
        raise fail(where, "the recipe has neither 'train' sources nor 'test_sets'")
    train_specs = tuple(_source(s, f"{where}: train[{i}]", is_train=True) for i, s in enumerate(train))
    test_specs = tuple(_source(s, f"{where}: test_sets[{i}]", is_train=False) for i, s in enumerate(tests))

    source_names = [s.name for s in train_specs]
    if len(set(source_names)) != len(source_names):
        raise fail(where, f"train source names must be unique (use 'name:'), got {source_names}")
    split_names = [s.name for s in test_specs] + [s.holdout.name for s in train_specs if s.holdout]
    if "train" in split_names or len(set(split_names)) != len(split_names):
        raise fail(where, f"test set names must be unique and not 'train', got {split_names}")
    for name in split_names:
        if not _HF_SPLIT_NAME.match(name):
            raise fail(
                where,
                f"test set name {name!r} is not a usable dataset split name (Hugging Face datasets "
                "accepts letters, digits and '_', groups joined by '.')",
            )

    for spec in train_specs + test_specs:
        check_reader(spec.reader, f"{where}: source {spec.name!r}", spec.options)

    contamination = check_keys(
        top.get("contamination") or {},
        {"image", "formula", "perceptual_max_distance", "rendered_formula"},
        set(),
        f"{where}: contamination",
    )
    for key in ("image", "formula", "rendered_formula"):
        if contamination.get(key, "exclude") not in CONTAMINATION_ACTIONS:
            raise fail(f"{where}: contamination.{key}", f"expected one of {', '.join(CONTAMINATION_ACTIONS)}")
    max_reject = top.get("max_reject_fraction")
    sharegpt = top.get("sharegpt", False)
    if not isinstance(sharegpt, bool):
        raise fail(f"{where}: sharegpt", "expected true or false")
    return DataRecipe(
        output_dir=as_str(top["output_dir"], f"{where}: output_dir"),
        train=train_specs,
        test_sets=test_specs,
        seed=as_int(top.get("seed", 1234), f"{where}: seed"),
        shard_size=as_int(top.get("shard_size", 2000), f"{where}: shard_size", 1),
        max_reject_fraction=DEFAULT_MAX_REJECT_FRACTION
        if max_reject is None
        else as_fraction(max_reject, f"{where}: max_reject_fraction"),
        contamination=ContaminationSpec(
            image=contamination.get("image", "exclude"),
            formula=contamination.get("formula", "report"),
            perceptual_max_distance=as_int(
                contamination.get("perceptual_max_distance", 12),
                f"{where}: contamination.perceptual_max_distance",
            ),
            rendered_formula=contamination.get("rendered_formula", "exclude"),
        ),
        sharegpt=sharegpt,
        num_proc=as_int(top.get("num_proc", 1), f"{where}: num_proc", 1),
        path=where,
    )


def check_paths(recipe: DataRecipe) -> None:
    """Fail clearly when a source root, predictions file or confusion table named by the recipe is
    absent."""
    missing = []
    for spec in recipe.train + recipe.test_sets:
        if not Path(spec.root).exists():
            missing.append(f"source {spec.name!r}: root {spec.root}")
        for task, task_spec in spec.tasks.items():
            missing += [
                f"source {spec.name!r}: {task} predictions {p}"
                for p in task_spec.predictions
                if not Path(p).is_file()
            ]
            if task_spec.confusions and not Path(task_spec.confusions).is_file():
                missing.append(f"source {spec.name!r}: tasks.{task}.confusions {task_spec.confusions}")
    if missing:
        raise RecipeError(f"{recipe.path}: missing paths:\n  " + "\n  ".join(missing))


def load_recipe(path: str | Path, *, require_paths: bool = False, **overrides: Any) -> DataRecipe:
    """Read and validate a recipe YAML; ``overrides`` replace top-level keys (``None`` ignored)."""
    path = Path(path)
    try:
        data = read_recipe_mapping(path, what="data recipe")
    except RecipeFileError as err:
        raise RecipeError(str(err)) from None
    data.update({k: v for k, v in overrides.items() if v is not None})
    recipe = parse_recipe(data, str(path))
    if require_paths:
        check_paths(recipe)
    return recipe
