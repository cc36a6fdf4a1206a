"""Plots beside a table: accuracy against cost (parameters, operations), learning curves from the
runs' CSV logs, the frames strip of the table's dataset, and every row's columns side by side."""

from __future__ import annotations

import csv
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from liafnet.report.aggregate import Table
from liafnet.report.runs import Run
from liafnet.report.spec import norm
from liafnet.viz.figure import colours, empty, save_png
from liafnet.viz.frames import plot_class_frames

COST_LABELS = {
    "params": "parameters",
    "ops": "operations per sample (MACs + ACs)",
    "macs": "multiply-accumulates per sample",
    "acs": "accumulates per sample",
}

def _model_axis(table: Table):
    """The axis that holds models, for colouring and naming points; ``None`` if neither does."""
    spec = table.spec
    if spec.rows.key == "model":
        return spec.rows
    if spec.columns is not None and spec.columns.key == "model":
        return spec.columns
    return None



def _metric_label(table: Table) -> str:
    spec = table.spec
    return f"{spec.metric} (%)" if spec.scale == 100 else f"{spec.metric} × {spec.scale:g}"



def _wrap(text: str, width: int) -> str:
    """Break a long title into lines of at most ``width`` characters (figures have a fixed size)."""
    return "\n".join(textwrap.wrap(text, width)) or text


def cell_cost(cell, cost: str) -> float | None:
    """A cell's ``params``, ``macs`` or ``acs`` (mean over its finished runs), or ``ops``: MACs + ACs,
    so spiking models, whose synaptic work is all accumulates, get a point too."""
    if cost != "ops":
        return cell.field_value(cost)
    parts = [cell.field_value(key) for key in ("macs", "acs")]
    return None if all(p is None for p in parts) else sum(p or 0.0 for p in parts)


def plot_accuracy_vs_cost(table: Table, cost: str, path: str | Path) -> Path:
    """:func:`accuracy_vs_cost_figure` written to ``path`` (PNG)."""
    return save_png(accuracy_vs_cost_figure(table, cost), path)


def accuracy_vs_cost_figure(table: Table, cost: str) -> Figure:
    """One point per finished cell: mean metric (± sample std) against ``cost`` (log x), coloured
    by model; the paper's known numbers are dotted horizontal lines in the model's colour. Long
    titles wrap, so nothing is cut off at the figure's fixed size."""

    axis = _model_axis(table)
    fig = Figure(figsize=(6.4, 4.8))
    ax = fig.add_subplot()
    points: dict[str, list[tuple[float, float, float]]] = {}
    unplotted = []
    for cell in table.cells.values():
        x = cell_cost(cell, cost)
        if cell.mean is not None and (x is None or x <= 0):
            unplotted.append(cell.row + (f"/{cell.col}" if cell.col else ""))
        if cell.mean is None or x is None or x <= 0:
            continue
        model = norm(cell.ok_runs[0].lookup("model"))
        points.setdefault(model, []).append((x, cell.mean, cell.std or 0.0))
    order = list(axis.order) if axis else []
    models = [m for m in order if m in points] + sorted(set(points) - set(order))
    palette = colours(models)
    all_x = [math.log10(x) for values in points.values() for x, _, _ in values]
    for model in models:
        xs, ys, errs = zip(*sorted(points[model]))
        name = axis.display(model) if axis else model
        ax.errorbar(xs, ys, yerr=errs, fmt="o", capsize=3, color=palette[model], label=name)
        if len(xs) == 1:
            # Points near the right edge are named on their left, so the label is never cut off.
            at_right = math.log10(xs[0]) > min(all_x) + 0.75 * (max(all_x) - min(all_x))
            ax.annotate(name, (xs[0], ys[0]), textcoords="offset points", xytext=(-6 if at_right else 6, 4),
                        ha="right" if at_right else "left", fontsize=9)
    if table.spec.paper is not None and table.spec.columns is None:
        for model in models:
            value, _ = table.spec.paper_entry(model, None)
            if value is not None:
                ax.axhline(value, linestyle=":", color=palette[model],
                           label=f"paper {axis.display(model) if axis else model}: {value:g}")
    if points:
        ax.set_xscale("log")
        ax.margins(x=0.08, y=0.08)
        ax.legend(fontsize=8, loc="best")
        ax.grid(True, which="both", alpha=0.3)
    else:
        empty(ax, "no finished runs yet")
    if unplotted:
        ax.text(0.01, 0.01, _wrap(f"no {cost} > 0 (not drawn): {', '.join(unplotted)}", 110),
                transform=ax.transAxes, fontsize=7, color="0.4")
    ax.set_xlabel(f"{COST_LABELS.get(cost, cost)} (log scale)")
    ax.set_ylabel(_metric_label(table))
    ax.set_title(f"{_wrap(table.title, 70)}\naccuracy vs {COST_LABELS.get(cost, cost)}", fontsize=10)
    fig.set_layout_engine("constrained")
    return fig


def read_csv_log(path: str | Path) -> list[dict[str, float]]:
    """Lightning CSVLogger rows as numbers; blank entries (other stages' rows) are left out."""
    rows = []
    with Path(path).open(newline="") as handle:
        for raw in csv.DictReader(handle):
            row = {}
            for key, value in raw.items():
                try:
                    row[key] = float(value)
                except (TypeError, ValueError):
                    continue
            rows.append(row)
    return rows


def csv_log_path(run: Run) -> Path | None:
    """The run's ``metrics.csv``: the path its record names, else the first under ``csv/``."""
    named = run.record.csv_log if run.record is not None else None
    if named and (run.run_dir / named).is_file():
        return run.run_dir / named
    found = sorted((run.run_dir / "csv").rglob("metrics.csv")) if (run.run_dir / "csv").is_dir() else []
    return found[0] if found else None


def _series(rows: list[dict[str, float]], x_key: str, y_keys: Sequence[str]) -> tuple[list, list, str]:
    for y_key in y_keys:
        pairs = [(r[x_key], r[y_key]) for r in rows if x_key in r and y_key in r]
        if pairs:
            xs, ys = zip(*pairs)
            return list(xs), list(ys), y_key
    return [], [], y_keys[0]


def plot_learning_curves(runs: Sequence[Run], path: str | Path, **options) -> Path:
    """:func:`learning_curves_figure` written to ``path`` (PNG)."""
    return save_png(learning_curves_figure(runs, **options), path)


def learning_curves_figure(runs: Sequence[Run], *, group_key: str = "model",
                           names: Mapping[str, str] | None = None, order: Sequence[str] = (),
                           scale: float = 100.0, title: str = "learning curves") -> Figure:
    """Training loss per step and validation accuracy per epoch, one line per run, one colour per
    ``group_key`` value (seeds and tasks of a model share its colour), under ``title``. Both x axes
    have whole-number ticks (steps and epochs are counts), also for a one-epoch smoke run."""

    names = names or {}
    fig = Figure(figsize=(10.0, 4.0))
    loss_ax, acc_ax = fig.subplots(1, 2)
    curves = []
    for run in runs:
        log = csv_log_path(run)
        if log is None:
            continue
        rows = read_csv_log(log)
        curves.append((norm(run.lookup(group_key)), rows))
    groups = [g for g in order if any(c[0] == g for c in curves)]
    groups += sorted({c[0] for c in curves} - set(groups))
    palette = colours(groups)
    labelled: set[str] = set()
    loss_key, acc_key = "train/loss", "val/acc"
    last_step, last_epoch = 0.0, 1.0
    for group, rows in curves:
        label = None if group in labelled else names.get(group, group)
        labelled.add(group)
        steps, losses, loss_key = _series(rows, "step", ("train/loss_step", "train/loss", "train/loss_epoch"))
        epochs, accs, acc_key = _series(rows, "epoch", ("val/acc",))
        last_step = max([last_step, *steps])
        last_epoch = max([last_epoch, *(e + 1 for e in epochs)])
        if steps:
            loss_ax.plot(steps, losses, color=palette[group], alpha=0.7, linewidth=1, label=label)
        if epochs:
            acc_ax.plot([e + 1 for e in epochs], [a * scale for a in accs], marker="o", markersize=3,
                        color=palette[group], alpha=0.7, linewidth=1, label=label)
    for ax, text in ((loss_ax, "no training logs yet"), (acc_ax, "no validation logs yet")):
        if ax.lines:
            ax.legend(fontsize=8)
            ax.grid(True, alpha=0.3)
        else:
            empty(ax, text)
    loss_ax.set_xlabel("optimiser step")
    loss_ax.set_ylabel(loss_key)
    loss_ax.set_title("training loss", fontsize=10)
    acc_ax.set_xlabel("epoch")
    # Whole-number ticks, and a range of at least one unit either side: a single epoch (or a few
    # steps) would otherwise be autoscaled to a sliver with ticks like 0.96, 0.98, 1.00.
    for ax, low, high in ((loss_ax, 0.0, last_step), (acc_ax, 1.0, last_epoch)):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.lines:
            ax.set_xlim(low - 0.5, max(high, low + 1) + 0.5)
    acc_ax.set_ylabel(f"{acc_key} (%)" if scale == 100 else acc_key)
    acc_ax.set_title("validation accuracy", fontsize=10)
    fig.suptitle(_wrap(title, 140), fontsize=11)
    fig.set_layout_engine("constrained")
    return fig


def plot_rows(table: Table, path: str | Path) -> Path:
    """:func:`rows_figure` written to ``path`` (PNG)."""
    return save_png(rows_figure(table), path)


def rows_figure(table: Table) -> Figure:
    """A wide table at a glance: one line per row (e.g. a bAbI task), each column's mean (± sample
    std over seeds) as a coloured marker, the reference columns as black crosses. Only finished
    cells are drawn; a column with none is named as such in the legend."""
    spec = table.spec
    rows = list(table.rows)
    fig = Figure(figsize=(8.0, 1.6 + 0.34 * len(rows)))
    ax = fig.add_subplot()
    palette = colours(list(table.cols))
    step = 0.7 / max(len(table.cols), 1)  # the columns of one row spread over 0.7 of its line
    handles = []  # legend in the table's column order, references last
    for i, col in enumerate(table.cols):
        offset = (i - (len(table.cols) - 1) / 2) * step
        points = [(table.cell(row, col).mean, table.cell(row, col).std or 0.0, y + offset)
                  for y, row in enumerate(rows) if table.cell(row, col).mean is not None]
        name = _wrap(spec.columns.display(col), 45)
        if points:
            xs, errs, ys = zip(*points)
            handles.append(ax.errorbar(xs, ys, xerr=errs, fmt="o", markersize=4, capsize=2,
                                       color=palette[col], label=name))
        else:
            handles.extend(ax.plot([], [], "o", color=palette[col], label=f"{name} (no finished cell)"))
    markers = "xX+*"
    for i, reference in enumerate(spec.references):
        points = [(reference.values.get(row), y) for y, row in enumerate(rows) if reference.values.get(row) is not None]
        if points:
            xs, ys = zip(*points)
            handles.extend(ax.plot(xs, ys, markers[i % len(markers)], color="black", markersize=6,
                                   label=_wrap(reference.name, 45)))
    ax.set_yticks(range(len(rows)), [spec.rows.display(row) for row in rows], fontsize=8)
    ax.invert_yaxis()  # the table's first row on top, as in the Markdown table
    ax.set_xlabel(_metric_label(table))
    ax.grid(True, axis="x", alpha=0.3)
    for y in range(len(rows) - 1):
        ax.axhline(y + 0.5, color="0.9", linewidth=0.6)
    if spec.pass_threshold is not None:
        ax.axvline(spec.pass_threshold, linestyle=":", color="0.5")
    if spec.scale == 100:
        ax.set_xlim(-2, 102)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.set_title(_wrap(table.title, 95), fontsize=10)
    fig.set_layout_engine("constrained")
    return fig


def plot_table(table: Table, out_dir: str | Path, dataset=None) -> dict[str, Path]:
    """The plots ``table.spec.plots`` asks for, as ``<out_dir>/<name>_<plot>.png``."""
    out_dir, name, written = Path(out_dir), table.spec.name, {}
    for plot in table.spec.plots:
        if plot in COST_LABELS:
            written[plot] = plot_accuracy_vs_cost(table, plot, out_dir / f"{name}_acc_vs_{plot}.png")
        elif plot == "curves":
            axis = _model_axis(table)
            written[plot] = plot_learning_curves(
                [run for cell in table.cells.values() for run in cell.runs], out_dir / f"{name}_curves.png",
                names=axis.names if axis else None, order=axis.order if axis else (), scale=table.spec.scale,
                title=f"{table.title}: learning curves")
        elif plot == "rows":
            written[plot] = plot_rows(table, out_dir / f"{name}_rows.png")
        elif plot == "frames" and dataset is not None:
            written[plot] = plot_class_frames(dataset, out_dir / f"{name}_frames.png")
    return written

