"""The calls into vllm / unsloth / unsloth_zoo / llm-compressor match the pinned releases.

``tests/fixtures/pinned_signatures.json`` records, from the pinned wheels' source, the parameters
this project passes. Here: (1) where a pinned package is installed, each record is checked with
``inspect`` and against the installed source text; (2) the project's own keyword arguments are
all among the recorded names, so a new argument cannot slip in unrecorded; (3) the source checker
fails on a renamed parameter. ``make check-signatures`` checks every record against the wheels.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import inspect
import typing
from pathlib import Path

import pytest

from scripts.check_signatures import check_source, load_entries

DATA = load_entries()


def _entries(package: str, kind: str | None = None, used_by: str = "") -> list[dict]:
    return [
        e
        for e in DATA["entries"]
        if e["package"] == package and (kind is None or e["kind"] == kind) and used_by in e["used_by"]
    ]


def _names(package: str, obj: str, kind: str) -> set[str]:
    return {n for e in _entries(package, kind) if e["object"] == obj for n in e["names"]}


def _resolve(entry: dict):
    obj = importlib.import_module(entry["module"])
    for part in entry["object"].split("."):
        obj = getattr(obj, part)
    return obj


def _inspect_problems(entry: dict) -> list[str]:
    kind = entry["kind"]
    if kind == "text":
        return []  # source text only (checked below)
    obj = _resolve(entry)
    if kind == "params":
        have = set(inspect.signature(obj).parameters)
    elif kind == "fields":
        if dataclasses.is_dataclass(obj):
            have = {f.name for f in dataclasses.fields(obj)}
        elif hasattr(obj, "model_fields"):
            have = set(obj.model_fields)
        elif hasattr(obj, "__struct_fields__"):
            have = set(obj.__struct_fields__)
        else:
            have = set(inspect.signature(obj).parameters)
    elif kind == "slots":
        have = set(obj.__slots__)
    elif kind == "attribute":
        return [] if getattr(obj, entry["name"], None) == entry["value"] else [f"{entry['name']} changed"]
    elif kind == "literal":
        values = set(typing.get_args(obj))
        lost = [v for v in entry["includes"] if v not in values]
        return lost + [v for v in entry["excludes"] if v in values]
    else:
        return [f"unknown kind {kind}"]
    return [f"{entry['object']}: no {name!r}" for name in entry["names"] if name not in have]


@pytest.mark.parametrize("package", sorted(DATA["packages"]))
def test_recorded_signatures_hold_where_installed(package):
    version = DATA["packages"][package]
    spec = importlib.util.find_spec(package)
    if spec is None:
        pytest.skip(f"{package} is not installed here; `make check-signatures` checks it against the wheel")
    installed = importlib.metadata.version(package.replace("_", "-"))
    assert installed == version, f"{package} {installed} installed, signatures recorded for {version}"
    root = Path(spec.submodule_search_locations[0]).parent
    problems = []
    for entry in _entries(package):
        problems += check_source(entry, (root / entry["file"]).read_text(encoding="utf-8"))
        problems += _inspect_problems(entry)
    assert not problems


def test_engine_and_sampling_arguments_are_recorded():
    from eval.backends.vllm import engine_kwargs, sampling_kwargs
    from eval.backends.vllm_lora import AdapterPlan

    plan = AdapterPlan(adapter="a", base="b", rank=8, tower_lora=True)
    kwargs = engine_kwargs("m", lora_rank=8, **plan.engine_options())
    assert set(kwargs) <= _names("vllm", "EngineArgs", "fields")
    assert "enable_tower_connector_lora" in kwargs
    assert set(sampling_kwargs(16, [1], seed=0)) <= _names("vllm", "SamplingParams", "fields")


def test_unsloth_arguments_are_recorded(tmp_path):
    from train.config import HmerTrainingArguments, ModelArguments, ScriptArguments
    from train.engines.unsloth_engine import from_pretrained_kwargs, get_peft_model_kwargs

    model_args = ModelArguments(model_name_or_path=str(tmp_path), attn_implementation="sdpa", use_peft=True)
    training_args = HmerTrainingArguments(output_dir=str(tmp_path / "out"), report_to=[])
    load = from_pretrained_kwargs(model_args, ScriptArguments(), training_args)
    read_from_kwargs = {"local_files_only", "attn_implementation"}  # recorded as "text" entries
    assert set(load) - read_from_kwargs <= _names("unsloth", "FastModel.from_pretrained", "params")
    texts = " ".join(s for e in _entries("unsloth", "text") for s in e["contains"])
    assert all(f'"{key}"' in texts for key in read_from_kwargs)
    peft = get_peft_model_kwargs(model_args, training_args)
    assert set(peft) <= _names("unsloth", "FastBaseModel.get_peft_model", "params")


def test_source_check_fails_on_changed_signatures():
    entry = {"file": "m.py", "object": "Loader.load", "kind": "params", "names": ["model_name", "dtype"]}
    assert check_source(entry, "class Loader:\n    def load(model_name, dtype=None, **kw): ...\n") == []
    assert check_source(entry, "class Loader:\n    def load(model_id, dtype=None, **kw): ...\n") == [
        "m.py:Loader.load: has no param 'model_name'"
    ]
    assert check_source(entry, "def load(model_name, dtype): ...\n") == ["m.py:Loader.load: not found"]
    fields = {"file": "m.py", "object": "Args", "kind": "fields", "names": ["enable_tower_connector_lora"]}
    assert check_source(fields, "class Args:\n    enable_tower_connector_lora: bool = False\n") == []
    assert check_source(fields, "class Args:\n    enable_lora: bool = False\n")
    literal = {
        "file": "q.py",
        "object": "Methods",
        "kind": "literal",
        "includes": ["gptq"],
        "excludes": ["bitsandbytes"],
    }
    assert check_source(literal, 'Methods = Literal["gptq", "awq"]\n') == []
    assert check_source(literal, 'Methods = Literal["gptq", "bitsandbytes"]\n') == [
        "q.py:Methods: now has 'bitsandbytes'"
    ]
    slots = {"file": "c.py", "object": "C", "kind": "slots", "names": ["truncation"]}
    assert check_source(slots, 'class C:\n    __slots__ = ("truncation", "x")\n') == []
    assert check_source(slots, 'class C:\n    __slots__ = ("x",)\n')
    attribute = {
        "file": "v.py",
        "object": "M",
        "kind": "attribute",
        "name": "supports_tower_connector_lora",
        "value": True,
    }
    assert check_source(attribute, "class M:\n    supports_tower_connector_lora = True\n") == []
    assert check_source(attribute, "class M:\n    supports_tower_connector_lora = False\n")


def test_wheel_check_reads_the_wheel_and_reports_a_drop(tmp_path):
    import zipfile

    from scripts.check_signatures import check_wheels

    data = {
        "packages": {"demo_pkg": "1.0"},
        "entries": [
            {
                "package": "demo_pkg",
                "file": "demo_pkg/api.py",
                "object": "load",
                "kind": "params",
                "names": ["model_name"],
            }
        ],
    }
    with zipfile.ZipFile(tmp_path / "demo_pkg-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("demo_pkg/api.py", "def load(model_name, **kwargs): ...\n")
    assert check_wheels(tmp_path, data) == []
    data["entries"][0]["names"].append("use_exact_model_name")
    assert check_wheels(tmp_path, data) == [
        "demo_pkg==1.0 demo_pkg/api.py:load: has no param 'use_exact_model_name'"
    ]
    assert "no wheel" in check_wheels(tmp_path / "empty", data)[0]
