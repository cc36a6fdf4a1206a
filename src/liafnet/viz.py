"""Plots for tables and for looking at data and neurons (PNG, matplotlib's Agg canvas).

Figures are built as ``matplotlib.figure.Figure`` objects, never through pyplot, so nothing here
touches global backend state, and every PNG has a fixed pixel size (no tight bounding box).

Command line::

    python -m liafnet.viz                     # a synthetic sample's frames + LIAF membrane traces
    python -m liafnet.viz data=dvs_gesture --index 3 --out outputs/viz
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from liafnet.io import atomic_write_bytes

if TYPE_CHECKING:
    from liafnet.tables import Run, Table

DPI = 100
COST_LABELS = {
    "params": "parameters",
    "ops": "operations per sample (MACs + ACs)",
    "macs": "multiply-accumulates per sample",
    "acs": "accumulates per sample",
}


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` atomically; the PNG is ``figsize * DPI`` pixels."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return atomic_write_bytes(path, buffer.getvalue())


def _colours(labels: Sequence[str]) -> dict[str, Any]:
    palette = [f"C{i}" for i in range(10)]
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _model_axis(table: "Table"):
    """The axis that holds models, for colouring and naming points; ``None`` if neither does."""
    spec = table.spec
    if spec.rows.key == "model":
        return spec.rows
    if spec.columns is not None and spec.columns.key == "model":
        return spec.columns
    return None


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _metric_label(table: "Table") -> str:
    spec = table.spec
    return f"{spec.metric} (%)" if spec.scale == 100 else f"{spec.metric} × {spec.scale:g}"


# --------------------------------------------------------------------------------------------
# Table plots


def cell_cost(cell, cost: str) -> float | None:
    """A cell's ``params``, ``macs`` or ``acs`` (mean over its finished runs), or ``ops``: MACs + ACs,
    so spiking models, whose synaptic work is all accumulates, get a point too."""
    if cost != "ops":
        return cell.field_value(cost)
    parts = [cell.field_value(key) for key in ("macs", "acs")]
    return None if all(p is None for p in parts) else sum(p or 0.0 for p in parts)


def plot_accuracy_vs_cost(table: "Table", cost: str, path: str | Path) -> Path:
    """One point per finished cell: mean metric (± sample std) against ``cost`` (log x), coloured
    by model; the paper's known numbers are dotted horizontal lines in the model's colour."""
    from liafnet.tables import norm

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
    colours = _colours(models)
    for model in models:
        xs, ys, errs = zip(*sorted(points[model]))
        name = axis.display(model) if axis else model
        ax.errorbar(xs, ys, yerr=errs, fmt="o", capsize=3, color=colours[model], label=name)
        if len(xs) == 1:
            ax.annotate(name, (xs[0], ys[0]), textcoords="offset points", xytext=(6, 4), fontsize=9)
    if table.spec.paper is not None and table.spec.columns is None:
        for model in models:
            value, _ = table.spec.paper_entry(model, None)
            if value is not None:
                ax.axhline(value, linestyle=":", color=colours[model],
                           label=f"paper {axis.display(model) if axis else model}: {value:g}")
    if points:
        ax.set_xscale("log")
        ax.legend(fontsize=8, loc="best")
        ax.grid(True, which="both", alpha=0.3)
    else:
        _empty(ax, "no finished runs yet")
    if unplotted:
        ax.text(0.01, 0.01, f"no {cost} > 0 (not drawn): {', '.join(unplotted)}", transform=ax.transAxes,
                fontsize=7, color="0.4")
    ax.set_xlabel(f"{COST_LABELS.get(cost, cost)} (log scale)")
    ax.set_ylabel(_metric_label(table))
    ax.set_title(f"{table.spec.title}\naccuracy vs {COST_LABELS.get(cost, cost)}", fontsize=10)
    fig.set_layout_engine("constrained")
    return save_png(fig, path)


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


def csv_log_path(run: "Run") -> Path | None:
    """The run's ``metrics.csv``: the path metrics.json names, else the first under ``csv/``."""
    named = run.metrics.get("csv_log")
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


def plot_learning_curves(runs: Sequence["Run"], path: str | Path, *, group_key: str = "model",
                         names: Mapping[str, str] | None = None, order: Sequence[str] = (),
                         scale: float = 100.0) -> Path:
    """Training loss per step and validation accuracy per epoch, one line per run, one colour per
    ``group_key`` value (seeds and tasks of a model share its colour)."""
    from liafnet.tables import norm

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
    colours = _colours(groups)
    labelled: set[str] = set()
    loss_key, acc_key = "train/loss", "val/acc"
    for group, rows in curves:
        label = None if group in labelled else names.get(group, group)
        labelled.add(group)
        steps, losses, loss_key = _series(rows, "step", ("train/loss_step", "train/loss", "train/loss_epoch"))
        epochs, accs, acc_key = _series(rows, "epoch", ("val/acc",))
        if steps:
            loss_ax.plot(steps, losses, color=colours[group], alpha=0.7, linewidth=1, label=label)
        if epochs:
            acc_ax.plot([e + 1 for e in epochs], [a * scale for a in accs], marker="o", markersize=3,
                        color=colours[group], alpha=0.7, linewidth=1, label=label)
    for ax, text in ((loss_ax, "no training logs yet"), (acc_ax, "no validation logs yet")):
        if ax.lines:
            ax.legend(fontsize=8)
            ax.grid(True, alpha=0.3)
        else:
            _empty(ax, text)
    loss_ax.set_xlabel("optimiser step")
    loss_ax.set_ylabel(loss_key)
    loss_ax.set_title("training loss", fontsize=10)
    acc_ax.set_xlabel("epoch")
    acc_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc_ax.set_ylabel(f"{acc_key} (%)" if scale == 100 else acc_key)
    acc_ax.set_title("validation accuracy", fontsize=10)
    fig.set_layout_engine("constrained")
    return save_png(fig, path)


def plot_table(table: "Table", out_dir: str | Path, dataset=None) -> dict[str, Path]:
    """The plots ``table.spec.plots`` asks for, as ``<out_dir>/<name>_<plot>.png``."""
    out_dir, name, written = Path(out_dir), table.spec.name, {}
    for plot in table.spec.plots:
        if plot in COST_LABELS:
            written[plot] = plot_accuracy_vs_cost(table, plot, out_dir / f"{name}_acc_vs_{plot}.png")
        elif plot == "curves":
            axis = _model_axis(table)
            written[plot] = plot_learning_curves(
                [run for cell in table.cells.values() for run in cell.runs], out_dir / f"{name}_curves.png",
                names=axis.names if axis else None, order=axis.order if axis else (), scale=table.spec.scale)
        elif plot == "frames" and dataset is not None:
            written[plot] = plot_class_frames(dataset, out_dir / f"{name}_frames.png")
    return written


# --------------------------------------------------------------------------------------------
# Event frames


def frames_to_rgb(frames: np.ndarray, scale: float | None = None) -> np.ndarray:
    """``[T, 2, H, W]`` -> ``[T, H, W, 3]`` on black: ON (channel 1) red, OFF (channel 0) blue,
    both on one scale (``scale`` or the sample's maximum) so their strengths compare."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[1] != 2:
        raise ValueError(f"expected event frames [T, 2, H, W] (OFF, ON), got shape {frames.shape}")
    top = scale if scale is not None else float(frames.max())
    top = top if top > 0 else 1.0
    rgb = np.zeros(frames.shape[:1] + frames.shape[2:] + (3,), dtype=np.float32)
    rgb[..., 0] = np.clip(frames[:, 1] / top, 0, 1)
    rgb[..., 2] = np.clip(frames[:, 0] / top, 0, 1)
    return rgb


def _frame_indices(time_steps: int, count: int) -> list[int]:
    if time_steps <= count:
        return list(range(time_steps))
    return sorted({int(round(i)) for i in np.linspace(0, time_steps - 1, count)})


def _first_index_per_class(dataset) -> dict[int, int]:
    targets = getattr(dataset, "targets", None)
    if targets is None:
        targets = [int(dataset[i][1]) for i in range(len(dataset))]
    first: dict[int, int] = {}
    for index, target in enumerate(targets):
        first.setdefault(int(target), index)
    return first


def class_frames_figsize(n_classes: int, n_frames: int) -> tuple[float, float]:
    """Figure size in inches for :func:`plot_class_frames` with ``n_frames`` columns, i.e.
    ``min(T, n_frames)`` (so callers and tests know the PNG size)."""
    return 1.6 + 1.0 * n_frames, 0.7 + 1.0 * n_classes


def plot_class_frames(dataset, path: str | Path, n_frames: int = 8) -> Path:
    """A strip of ``n_frames`` evenly spaced frames from the first sample of every class.

    ``dataset`` has items ``(frames [T, 2, H, W], label)`` and, optionally, ``classes`` (names)
    and ``targets`` (labels without loading frames)."""
    first = _first_index_per_class(dataset)
    if not first:
        raise ValueError("the dataset is empty: no frames to draw")
    classes = list(getattr(dataset, "classes", []))
    labels = sorted(first)
    samples = [np.asarray(dataset[first[label]][0]) for label in labels]
    steps = _frame_indices(samples[0].shape[0], n_frames)
    fig = Figure(figsize=class_frames_figsize(len(labels), len(steps)))
    axes = fig.subplots(len(labels), len(steps), squeeze=False)
    for row, (label, frames) in enumerate(zip(labels, samples)):
        rgb = frames_to_rgb(frames)
        for col, step in enumerate(steps):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(rgb[step], interpolation="nearest")
            if row == 0:
                ax.set_title(f"t = {step}", fontsize=8)
        name = classes[label] if label < len(classes) else str(label)
        axes[row][0].set_ylabel(name.replace("_", " "), rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("one sample per class (red: ON events, blue: OFF events, magenta: both)", fontsize=10)
    fig.set_layout_engine("constrained")
    return save_png(fig, path)


def sample_frames_figsize(time_steps: int, per_row: int = 10) -> tuple[float, float]:
    rows = math.ceil(time_steps / per_row)
    return 0.4 + 1.0 * min(time_steps, per_row), 0.7 + 1.1 * rows


def plot_sample_frames(frames, path: str | Path, title: str = "", per_row: int = 10) -> Path:
    """Every frame of one sample ``[T, 2, H, W]``, ``per_row`` to a row."""
    frames = np.asarray(frames)
    rgb = frames_to_rgb(frames)
    steps = rgb.shape[0]
    rows, cols = math.ceil(steps / per_row), min(steps, per_row)
    fig = Figure(figsize=sample_frames_figsize(steps, per_row))
    axes = fig.subplots(rows, cols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index < steps:
            ax.imshow(rgb[index], interpolation="nearest")
            ax.set_title(f"t = {index}", fontsize=8)
        else:
            ax.set_axis_off()
    fig.suptitle(f"{title} (red: ON, blue: OFF, magenta: both)".strip(), fontsize=10)
    fig.set_layout_engine("constrained")
    return save_png(fig, path)


# --------------------------------------------------------------------------------------------
# Membrane potential of a LIAF layer


@dataclass(frozen=True)
class MembraneRecord:
    """One LIAF neuron layer over a sequence, each ``[T, N]`` (N = units of the first sample)."""

    name: str  # the layer's module path in the model
    u: Any  # membrane potential after integration (and membrane BN), before fire/reset
    spikes: Any  # S^t: 1 where the neuron fired (and was reset)
    y: Any  # the layer's output
    threshold: float
    spiking: bool
    unit_shape: tuple[int, ...] = ()  # per-sample feature shape, e.g. (C, H, W), to name units

    def unit_name(self, unit: int) -> str:
        if len(self.unit_shape) == 3:
            channel, row, col = np.unravel_index(unit, self.unit_shape)
            return f"channel {channel} at ({row}, {col})"
        return f"unit {unit}"


def record_membrane(model, inputs, layer: str | None = None) -> MembraneRecord:
    """Run ``inputs`` (time-first, batch of 1 or more) through ``model`` in eval mode and record the
    membrane potential of its first LIAF/LIF neuron layer (or the ``layer`` named).

    The neuron core keeps U inside its fused kernel, so the layer's synaptic input is captured with
    a forward hook and the dynamics replayed with :func:`liafnet.neurons.neuron_step`; the replayed
    output must equal the layer's real output, which guards against the two drifting apart."""
    import torch

    from liafnet.layers import LIAFNeuron
    from liafnet.neurons import neuron_step, spike

    neurons = {name: module for name, module in model.named_modules() if isinstance(module, LIAFNeuron)}
    if not neurons:
        raise ValueError(f"{type(model).__name__} has no LIAF/LIF neuron layer to record")
    if layer is None:
        layer = next(iter(neurons))
    elif layer not in neurons:
        raise ValueError(f"no LIAF neuron layer named {layer!r}; the model has {sorted(neurons)}")
    neuron = neurons[layer]
    captured = {}

    def hook(module, args, output):
        captured["x"], captured["norm"] = args[0], (args[1] if len(args) > 1 else None)
        captured["y"] = output

    handle = neuron.register_forward_hook(hook)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs) if isinstance(inputs, (tuple, list)) else model(inputs)
            x, norm = captured["x"], captured["norm"]
            alpha = neuron.alpha().to(x.dtype)
            state, us, ys = None, [], []
            for x_t in x:
                u = x_t if state is None else x_t + state.v
                if norm is not None:
                    u = norm(u)
                y, state = neuron_step(u, alpha, neuron.params)
                us.append(u)
                ys.append(y)
            u, y = torch.stack(us), torch.stack(ys)
            spikes = spike(u, neuron.params)
    finally:
        handle.remove()
        model.train(was_training)
    if not torch.allclose(y, captured["y"], atol=1e-5, rtol=1e-4):
        raise RuntimeError(f"replaying layer {layer!r} does not reproduce its output; the neuron "
                           "dynamics in liafnet.neurons changed and record_membrane must follow")
    first = lambda t: t[:, 0].reshape(t.shape[0], -1).cpu().numpy()  # noqa: E731
    return MembraneRecord(layer, first(u), first(spikes), first(y), float(neuron.params.threshold),
                           neuron.params.spiking, tuple(u.shape[2:]))


def plot_membrane_traces(record: MembraneRecord, path: str | Path, units: int = 4, title: str = "") -> Path:
    """Membrane potential (with threshold and spikes) and output of ``units`` neurons: those that
    fire now and then (integrate, fire, reset is visible), most variable first."""
    u, spikes, y = record.u, record.spikes, record.y
    counts = spikes.sum(axis=0)
    sometimes = (counts >= 1) & (counts <= u.shape[0] / 2)
    score = u.var(axis=0) + np.where(sometimes, u.var(axis=0).max() + 1.0, 0.0)
    chosen = np.argsort(-score, kind="stable")[:units]
    steps = np.arange(u.shape[0])
    fig = Figure(figsize=(8.0, 5.5))
    u_ax, y_ax = fig.subplots(2, 1, sharex=True)
    colours = _colours([str(i) for i in chosen])
    for unit in chosen:
        colour = colours[str(unit)]
        u_ax.plot(steps, u[:, unit], color=colour, marker=".", label=record.unit_name(int(unit)))
        fired = spikes[:, unit] > 0
        u_ax.plot(steps[fired], u[fired, unit], linestyle="none", marker="^", markersize=8,
                  markerfacecolor="none", color=colour)
        y_ax.step(steps, y[:, unit], where="mid", color=colour)
    u_ax.axhline(record.threshold, color="0.3", linestyle="--", linewidth=1,
                 label=f"threshold {record.threshold:g}")
    u_ax.set_ylabel("membrane potential U")
    u_ax.set_title(f"{title or record.name}: membrane (triangles: fired, then reset)", fontsize=10)
    u_ax.legend(fontsize=8, ncol=2)
    u_ax.grid(True, alpha=0.3)
    y_ax.set_ylabel("output Y (spike)" if record.spiking else "output Y (analog)")
    y_ax.set_xlabel("time step t")
    y_ax.grid(True, alpha=0.3)
    fig.set_layout_engine("constrained")
    return save_png(fig, path)


# --------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m liafnet.viz",
        description="Draw one sample's event frames, one sample per class, and the membrane traces of "
                    "a LIAF layer fed that sample. Hydra overrides pick data and model (default: the "
                    "synthetic dataset and LIAF-Net).")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=dvs_gesture model=lif")
    parser.add_argument("--index", type=int, default=0, help="test-split sample to draw (default 0)")
    parser.add_argument("--layer", help="neuron layer to record, e.g. features.0.neuron (default: the first)")
    parser.add_argument("--ckpt", help="a liafnet checkpoint whose weights to load (default: untrained)")
    parser.add_argument("--out", help="output folder (default: <paths.output_dir>/viz)")
    args = parser.parse_intermixed_args(argv)

    import torch

    from liafnet import build, config

    cfg = config.compose(config.first_of_sweeps(args.overrides))
    out = Path(args.out or Path(cfg.paths.output_dir) / "viz")
    datamodule = build.build_datamodule(cfg)
    if datamodule.spec.kind != "events":
        parser.error(f"data={cfg.data.name} is not event data; choose an event dataset")
    datamodule.prepare_data()
    dataset = datamodule.dataset_factory(split="test")
    if not 0 <= args.index < len(dataset):
        parser.error(f"--index {args.index} outside the test split (0..{len(dataset) - 1})")
    frames, label = dataset[args.index]
    classes = list(getattr(dataset, "classes", []))
    name = classes[label] if label < len(classes) else str(label)
    written = [
        plot_sample_frames(frames, out / f"{cfg.data.name}_sample{args.index}_frames.png",
                           title=f"{cfg.data.name} test sample {args.index}: {name}"),
        plot_class_frames(dataset, out / f"{cfg.data.name}_class_frames.png"),
    ]
    model = build.build_model_from_config(cfg, build.spec_of(datamodule), compile=False)
    if args.ckpt:
        model.load_state_dict(build.model_state(build.load_checkpoint(args.ckpt)))
    inputs = torch.as_tensor(frames, dtype=torch.float32).unsqueeze(1)  # [T, 1, C, H, W]
    record = record_membrane(model, inputs, layer=args.layer)
    weights = "trained" if args.ckpt else "untrained"
    written.append(plot_membrane_traces(
        record, out / f"{cfg.model.family}_{cfg.data.name}_membrane.png",
        title=f"{cfg.model.family} ({weights}) layer {record.name}, sample {args.index}"))
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
