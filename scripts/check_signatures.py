"""Check the calls this project makes into vllm, unsloth, unsloth_zoo and llm-compressor against the
pinned releases' own source, so an upgrade that renames or drops a parameter fails loudly.

    python -m scripts.check_signatures --download --wheels /tmp/pinned-wheels   # pip download --no-deps
    python -m scripts.check_signatures --wheels DIR                             # wheels already there

What is checked is recorded in ``tests/fixtures/pinned_signatures.json``: one entry per object
(``file`` inside the wheel, dotted ``object``) and ``kind``:

* ``params``: the function's (or class's ``__init__``'s) parameters include ``names``;
* ``fields``: the class body declares ``names`` (dataclass / pydantic / msgspec fields);
* ``slots``: the class's ``__slots__`` include ``names``;
* ``attribute``: the class body sets ``name = value``;
* ``literal``: the module-level ``Literal[...]`` alias holds ``includes`` and none of ``excludes``;
* ``text``: the file contains each string of ``contains`` (keys read from ``**kwargs``).

Read from the wheel's source with :mod:`ast` (nothing imported, so it runs on any machine);
``tests/scripts/test_pinned_signatures.py`` checks the same entries with :mod:`inspect` where a pinned
package is installed. Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIGNATURES = ROOT / "tests" / "fixtures" / "pinned_signatures.json"


def load_entries(path: Path = SIGNATURES) -> dict[str, Any]:
    return json.loads(path.read_text())


def _find(tree: ast.Module, dotted: str) -> ast.AST | None:
    node: ast.AST = tree
    for part in dotted.split("."):
        body = getattr(node, "body", [])
        found = None
        for child in body:
            if (
                isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and child.name == part
            ):
                found = child
            elif isinstance(child, (ast.Assign, ast.AnnAssign)):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                if any(isinstance(t, ast.Name) and t.id == part for t in targets):
                    found = child
        if found is None:
            return None
        node = found
    return node


def _params(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ClassDef):
        init = next((c for c in node.body if isinstance(c, ast.FunctionDef) and c.name == "__init__"), None)
        if init is None:
            return _fields(node)
        node = init
    args = node.args  # type: ignore[attr-defined]
    return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]


def _fields(node: ast.ClassDef) -> list[str]:
    return [c.target.id for c in node.body if isinstance(c, ast.AnnAssign) and isinstance(c.target, ast.Name)]


def _class_assign(node: ast.ClassDef, name: str) -> ast.expr | None:
    for child in node.body:
        if isinstance(child, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in child.targets
        ):
            return child.value
        if (
            isinstance(child, ast.AnnAssign)
            and isinstance(child.target, ast.Name)
            and child.target.id == name
        ):
            return child.value
    return None


def _strings(node: ast.AST | None) -> list[str]:
    return (
        [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        if node
        else []
    )


def check_source(entry: dict[str, Any], text: str) -> list[str]:
    """Problems with ``entry`` in the source ``text`` of its file (empty: it holds)."""
    where = f"{entry['file']}:{entry.get('object', '')}"
    kind = entry["kind"]
    if kind == "text":
        return [f"{where}: no longer contains {s!r}" for s in entry["contains"] if s not in text]
    tree = ast.parse(text)
    node = _find(tree, entry["object"])
    if node is None:
        return [f"{where}: not found"]
    if kind == "params":
        have = set(_params(node))
    elif kind == "fields":
        have = set(_fields(node)) if isinstance(node, ast.ClassDef) else set()
    elif kind == "slots":
        have = set(_strings(_class_assign(node, "__slots__"))) if isinstance(node, ast.ClassDef) else set()
    elif kind == "attribute":
        value = _class_assign(node, entry["name"]) if isinstance(node, ast.ClassDef) else None
        if value is None or not isinstance(value, ast.Constant) or value.value != entry["value"]:
            return [f"{where}: {entry['name']} is no longer {entry['value']!r}"]
        return []
    elif kind == "literal":
        values = set(_strings(node))
        problems = [f"{where}: lost {v!r}" for v in entry.get("includes", []) if v not in values]
        return problems + [f"{where}: now has {v!r}" for v in entry.get("excludes", []) if v in values]
    else:
        return [f"{where}: unknown kind {kind!r}"]
    return [f"{where}: has no {kind[:-1]} {name!r}" for name in entry["names"] if name not in have]


def wheel_for(wheels: Path, package: str, version: str) -> Path | None:
    stem = package.replace("-", "_").lower()
    for path in sorted(wheels.glob("*.whl")):
        name, ver = path.name.split("-")[:2]
        if name.lower() == stem and ver == version:
            return path
    return None


def download(wheels: Path, packages: dict[str, str]) -> None:
    wheels.mkdir(parents=True, exist_ok=True)
    missing = [f"{p}=={v}" for p, v in packages.items() if wheel_for(wheels, p, v) is None]
    if missing:
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        command += ["--python-version", "3.12", "--platform", "manylinux_2_28_x86_64", "-d", str(wheels)]
        subprocess.run(command + missing, check=True)


def check_wheels(wheels: Path, data: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    packages = data["packages"]
    for package, version in packages.items():
        wheel = wheel_for(wheels, package, version)
        if wheel is None:
            problems.append(f"{package}=={version}: no wheel in {wheels} (run with --download)")
            continue
        with zipfile.ZipFile(wheel) as archive:
            for entry in (e for e in data["entries"] if e["package"] == package):
                try:
                    text = archive.read(entry["file"]).decode("utf-8")
                except KeyError:
                    problems.append(f"{package}: {entry['file']} is not in {wheel.name}")
                    continue
                problems += [f"{package}=={version} {p}" for p in check_source(entry, text)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.check_signatures", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--wheels", type=Path, required=True, help="folder holding the pinned wheels")
    parser.add_argument("--download", action="store_true", help="pip download the missing ones (--no-deps)")
    args = parser.parse_args(argv)
    data = load_entries()
    if args.download:
        download(args.wheels, data["packages"])
    problems = check_wheels(args.wheels, data)
    for problem in problems:
        print("FAIL", problem)
    print(f"{len(data['entries'])} recorded signatures, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
