"""A paper table from a sweep: gather every ``metrics.json`` under the sweep dir, aggregate, and
write Markdown, LaTeX and CSV (plus the plots the spec asks for) beside the paper's numbers.

A pure function of the files on disk: run it mid-sweep, after a crash or twice; the outputs have
fixed names and are replaced atomically.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping

from liafnet.io import atomic_write_text
from liafnet.report.aggregate import Table, aggregate
from liafnet.report.render import render_csv, render_latex, render_markdown
from liafnet.report.runs import collect_runs
from liafnet.report.spec import TableSpec


def write_table(table: Table, out_dir: str | os.PathLike) -> dict[str, Path]:
    """``<out_dir>/<name>.{md,tex,csv}``; returns the paths."""
    out_dir = Path(out_dir)
    paths = {}
    for suffix, render in (("md", render_markdown), ("tex", render_latex), ("csv", render_csv)):
        paths[suffix] = out_dir / f"{table.spec.name}.{suffix}"
        atomic_write_text(paths[suffix], render(table))
    return paths


def build_table(spec: TableSpec | Mapping[str, Any], sweep_dir: str | os.PathLike,
                out_dir: str | os.PathLike, *, paper_dir: str | os.PathLike | None = None,
                plots: bool = True, dataset=None) -> tuple[Table, dict[str, Path]]:
    """Aggregate ``sweep_dir`` into ``out_dir``: tables, then the plots the spec asks for (a
    ``dataset`` object is needed for the frames strip). The hook for custom tables (e.g. bAbI)."""
    if not isinstance(spec, TableSpec):
        spec = TableSpec.from_dict(spec, paper_dir=paper_dir)
    sweep_dir = Path(sweep_dir)
    runs = collect_runs(sweep_dir) if sweep_dir.is_dir() else []
    table = aggregate(spec, runs)
    if not sweep_dir.is_dir():
        table.notes.append(f"sweep dir {sweep_dir} does not exist yet: every cell is missing")
    for duplicate, paths in table.duplicates:
        warnings.warn(f"{spec.name}: duplicate runs {duplicate} in {sweep_dir}: {paths}", stacklevel=2)
    paths = write_table(table, out_dir)
    if plots:
        from liafnet.report.plots import plot_table  # matplotlib is only needed for plots

        paths.update(plot_table(table, out_dir, dataset=dataset))
    return table, paths
