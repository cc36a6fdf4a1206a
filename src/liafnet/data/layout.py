"""Completeness of a dataset's original layout: which expected files are missing or empty.

Each dataset module has a ``check_layout(root) -> list[str]`` built on ``missing_files``; an empty
list means the full release is in place. ``python -m liafnet.data.check`` prints them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SHOWN = 5  # file names listed per problem line; the rest are counted


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def missing_root(root: Path, expected: str) -> list[str]:
    """One problem line when ``root`` is not a folder (so a missing dataset is one line, not one per
    subfolder), else ``[]``."""
    return [] if root.is_dir() else [f"{root}/: folder missing (expected {expected})"]


def missing_files(folder: Path, expected: Iterable[str], what: str = "files") -> list[str]:
    """Problems with ``expected`` file names in ``folder``: one line for the missing ones and one for
    the empty ones (a download that stopped early), each naming the first few; ``[]`` when all are
    present and non-empty. ``what`` names the files in the message (e.g. "recordings")."""
    expected = list(expected)
    if not folder.is_dir():
        return [f"{folder}/: folder missing ({len(expected)} {what} expected)"]
    sizes = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file():
                sizes[entry.name] = entry.stat().st_size
    missing = [name for name in expected if name not in sizes]
    empty = [name for name in expected if sizes.get(name) == 0]
    problems = []
    if missing:
        problems.append(f"{folder}/: {len(missing)} of {len(expected)} {what} missing ({_names(missing)})")
    if empty:
        problems.append(f"{folder}/: {len(empty)} {what} empty ({_names(empty)})")
    return problems
