"""What every learning benchmark writes beside its figures: the command, the commit, the machine,
the data recipe's contamination report, and a smoke variant of a data recipe."""

from __future__ import annotations

import json
import os
import platform
import shlex
from pathlib import Path
from typing import Any

from benchmarks.learning.kernels import AVX2_CAPS

REPO = Path(__file__).resolve().parents[2]


def machine() -> dict[str, Any]:
    """The CPU, its cores and the torch threads a run used (figures move with all three)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "kernel_caps": {key: os.environ.get(key) for key in AVX2_CAPS},
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def start_commit() -> dict[str, Any]:
    """The checkout's commit when a benchmark starts (a long run must not record a later one)."""
    from train.run_folder import git_commit

    return git_commit(REPO)


def provenance(
    module: str, argv: list[str], started: float, finished: float, git: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The command (``python -m module argv...``), the commit (``git``: :func:`start_commit` taken
    when the run started), the machine and the wall time."""
    return {
        "command": " ".join(shlex.quote(a) for a in ["python", "-m", module, *argv]),
        "git": git or start_commit(),
        "machine": machine(),
        "wall_seconds": round(finished - started, 1),
    }


def contamination(data_dir: Path) -> dict[str, Any]:
    """The build's contamination figures (report.json), e.g. how many training renderings of a
    held-out formula were held back."""
    report = json.loads((Path(data_dir) / "report.json").read_text(encoding="utf-8"))
    return report.get("contamination", {})


def smoke_recipe(recipe: Path, out: Path, counts: dict[str, int]) -> Path:
    """A copy of data recipe ``recipe`` with the corpus ``count`` of each named source replaced
    (``{"structure_train": 64}``), written to ``out``: the smoke run builds the real recipe, small."""
    from data_prep.recipe_file import read_recipe_mapping

    data = read_recipe_mapping(recipe, what="data recipe")
    seen = set()
    for section in ("train", "test_sets"):
        for source in data.get(section) or []:
            if source.get("name") in counts:
                options = dict(source["options"])
                options["corpus"] = {**options["corpus"], "count": counts[source["name"]]}
                source["options"] = options
                seen.add(source["name"])
    missing = sorted(set(counts) - seen)
    if missing:
        raise ValueError(f"{recipe}: no source named {missing}")
    data["num_proc"] = 1  # a few rows: worker start-up would cost more than it saves
    return write_recipe(out, data)


def write_recipe(path: Path, data: dict[str, Any]) -> Path:
    """A derived data recipe (a mapping) written as YAML, atomically; returns ``path``."""
    import yaml

    from data_prep.io_utils import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))
    return path
