"""Layering: Hydra is imported only by the composition root and the command-line entry points."""

from __future__ import annotations

import ast

from tests.helpers import REPO

SRC = REPO / "src" / "liafnet"
HYDRA_ALLOWED = {"config.py", "build.py", "cli"}


def imported_modules(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_composition_root_and_cli_import_hydra():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        top = path.relative_to(SRC).parts[0]
        if top in HYDRA_ALLOWED:
            continue
        if any(name == "hydra" or name.startswith("hydra.") for name in imported_modules(path)):
            offenders.append(str(path.relative_to(SRC)))
    assert offenders == []
