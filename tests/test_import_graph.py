"""The import graph of src/liafnet, read from the sources with ``ast`` (nothing is imported): no
import circle, and Hydra imported only by the composition root and the command-line modules."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

SRC = REPO / "src"
# Modules allowed to import Hydra (issue 12: the composition root and thin CLI entry modules).
HYDRA_ALLOWED = ("liafnet.config", "liafnet.build", "liafnet.cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((SRC / "liafnet").rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module ``name`` imports, lazy imports inside functions included. ``from p import x``
    counts as importing ``p.x`` when that is a module, else ``p``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in known else base)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, known) for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle among liafnet modules as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in edges:
                continue  # not a liafnet module
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_checker_sees_circles_and_lazy_imports(tmp_path):
    """The checker itself: a circle made of a top-level and a function-level import is found."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a", "os"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None
    source = tmp_path / "m.py"
    source.write_text("import os\n\ndef f():\n    from .sibling import thing\n    from . import other\n")
    assert imports("pkg.m", source, {"pkg.other"}) == {"os", "pkg.sibling", "pkg.other"}


def test_no_import_circle_in_liafnet():
    edges = graph()
    assert {"liafnet.report.table", "liafnet.viz.membrane", "liafnet.profile"} <= set(edges)
    cycle = find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_hydra_only_in_the_composition_root_and_cli():
    offenders = {name: sorted(i for i in targets if i == "hydra" or i.startswith("hydra."))
                 for name, targets in graph().items()
                 if not any(name == allowed or name.startswith(allowed + ".") for allowed in HYDRA_ALLOWED)}
    offenders = {name: found for name, found in offenders.items() if found}
    assert not offenders, f"Hydra imported outside {HYDRA_ALLOWED}: {offenders}"
