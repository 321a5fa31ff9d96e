"""`pip install .` ships every package of the flow, the files they read, and the console scripts."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("data_prep", "train", "eval")


def _requirement_files() -> list[str]:
    """The files pyproject reads its dependencies and extras from."""
    dynamic = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["dynamic"]
    files = list(dynamic["dependencies"]["file"])
    for extra in dynamic["optional-dependencies"].values():
        files += extra["file"]
    return files


def _source_files() -> list[Path]:
    files = []
    for package in PACKAGES:
        files += [
            p.relative_to(REPO)
            for p in (REPO / package).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
    return files


def test_wheel_holds_every_package_its_data_and_the_console_scripts(tmp_path):
    # Built from a copy: setuptools leaves a build/ folder behind, whose stale modules would go into
    # later wheels. No build isolation: the test environment's setuptools (>= 70.1, pyproject's
    # build-system) builds it offline.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(REPO / package, source / package, ignore=ignore)
    for file in ["pyproject.toml", "README.md", *_requirement_files()]:
        (source / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / file, source / file)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "wheel"),
            ".",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("hmer_recipes-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    # Every module and every data file (the reports' script and style sheet, ...) is in the wheel.
    missing = [str(p) for p in _source_files() if p.as_posix() not in names]
    assert not missing, f"not in the wheel: {missing[:10]}"
    # Every folder with modules is a package (an __init__.py), so find_packages ships it.
    folders = {p.parent for p in _source_files() if p.suffix == ".py"}
    assert all((REPO / f / "__init__.py").is_file() for f in folders), sorted(map(str, folders))
    assert not any(n.startswith(("tests/", "scripts/", "benchmarks/")) for n in names)
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for name in (
        "hmer-build",
        "hmer-train",
        "hmer-evaluate",
        "hmer-score",
        "hmer-predict",
        "hmer-export",
        "hmer-app",
    ):
        assert f"{name} = {declared[name]}" in scripts
    # Each script names a module (or package) of the wheel that defines the function or imports it.
    for target in declared.values():
        module, function = target.split(":")
        path = REPO / (module.replace(".", "/") + ".py")
        if not path.is_file():
            path = REPO / module.replace(".", "/") / "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        imported = {
            alias.asname or alias.name
            for n in tree.body
            if isinstance(n, ast.ImportFrom)
            for alias in n.names
        }
        assert function in defined | imported, target
