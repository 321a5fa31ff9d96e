"""The code's shape, checked on its source: imports follow the flow data_prep -> train -> eval, no
import circle between modules, no module past 420 lines, and every package says what it holds."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: The flow, upstream first: a package may import only the packages before it (and itself).
FLOW = ("data_prep", "train", "eval")
MAX_MODULE_LINES = 420


def module_files() -> dict[str, Path]:
    """Every module of the three packages by dotted name (a package by its ``__init__``)."""
    modules = {}
    for package in FLOW:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``name`` imports anywhere in its file (function-level ones included),
    each resolved to the module that defines it: ``from pkg import sub`` is ``pkg.sub`` when that is a
    module, else ``pkg``."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # `import a.b.c` where only `a.b` is a module: the longest prefix that is one.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_sees_function_level_and_relative_imports(tmp_path):
    package = tmp_path / "data_prep"
    package.mkdir()
    (package / "__init__.py").write_text('"""p."""\n')
    (package / "a.py").write_text("def f():\n    from . import b\n")
    (package / "b.py").write_text("from data_prep.a import f\n")
    modules = {
        "data_prep": package / "__init__.py",
        "data_prep.a": package / "a.py",
        "data_prep.b": package / "b.py",
    }
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    assert graph == {"data_prep": set(), "data_prep.a": {"data_prep.b"}, "data_prep.b": {"data_prep.a"}}
    assert circles(graph) == [["data_prep.a", "data_prep.b"]]


def test_no_import_circle_between_modules():
    assert circles(import_graph()) == []


def test_imports_follow_the_flow():
    upstream_only = []
    for name, targets in import_graph().items():
        allowed = FLOW[: FLOW.index(name.split(".")[0]) + 1]
        upstream_only += [
            f"{name} imports {target}" for target in sorted(targets) if target.split(".")[0] not in allowed
        ]
    assert upstream_only == []


@pytest.mark.parametrize("package", FLOW)
def test_no_module_is_past_the_size_limit(package):
    long = {
        str(path.relative_to(REPO)): lines
        for path in (REPO / package).rglob("*.py")
        if (lines := len(path.read_text("utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_every_package_has_an_init_with_a_docstring():
    undocumented = []
    for package in FLOW:
        for folder in [REPO / package, *(REPO / package).rglob("*")]:
            if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py")):
                init = folder / "__init__.py"
                if not init.is_file() or not ast.get_docstring(ast.parse(init.read_text("utf-8"))):
                    undocumented.append(str(folder.relative_to(REPO)))
    assert undocumented == []
