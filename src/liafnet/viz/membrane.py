"""Membrane potential of a LIAF/LIF neuron layer over one sequence, and its plot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from liafnet.viz.figure import colours, save_png


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
    membrane potential, spikes and output of its first LIAF/LIF neuron layer (or the ``layer``
    named), for the first sample of the batch.

    The record comes from the neuron layer itself (:func:`liafnet.layers.record_traces`: the one
    per-step loop of :mod:`liafnet.neurons` run with recording on), so it is what the model
    computes. Raises ``ValueError`` naming the available layers for an unknown ``layer`` or a model
    without neuron layers."""
    import torch

    from liafnet.layers import neuron_layers, record_traces

    layers = neuron_layers(model)
    if layer is None and layers:
        layer = next(iter(layers))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), record_traces(model, None if layer is None else [layer]) as traces:
            model(*inputs) if isinstance(inputs, (tuple, list)) else model(inputs)
    finally:
        model.train(was_training)
    trace = traces[layer]
    first = lambda t: t[:, 0].reshape(t.shape[0], -1).cpu().numpy()  # noqa: E731
    neuron = layers[layer]
    return MembraneRecord(layer, first(trace.u), first(trace.s), first(trace.y), float(neuron.params.threshold),
                          neuron.params.spiking, tuple(trace.u.shape[2:]))


def plot_membrane_traces(record: MembraneRecord, path: str | Path, units: int = 4, title: str = "") -> Path:
    """:func:`membrane_figure` written to ``path`` (PNG)."""
    return save_png(membrane_figure(record, units, title), path)


def membrane_figure(record: MembraneRecord, units: int = 4, title: str = "") -> Figure:
    """Membrane potential (with threshold and spikes) and output of ``units`` neurons: those that
    fire now and then (integrate, fire, reset is visible), most variable first.

    Top: ``U`` per unit, a triangle where it fired; the legend sits beside the axes, never on the
    data. Bottom: for spiking layers a raster, one row per unit, so spikes at the same step stay
    apart; for analog (LIAF) layers the output ``Y`` per unit."""
    u, spikes, y = record.u, record.spikes, record.y
    counts = spikes.sum(axis=0)
    sometimes = (counts >= 1) & (counts <= u.shape[0] / 2)
    score = u.var(axis=0) + np.where(sometimes, u.var(axis=0).max() + 1.0, 0.0)
    chosen = np.argsort(-score, kind="stable")[:units]
    steps = np.arange(u.shape[0])
    fig = Figure(figsize=(8.0, 5.5))
    u_ax, y_ax = fig.subplots(2, 1, sharex=True)
    palette = colours([str(i) for i in chosen])
    for row, unit in enumerate(chosen):
        colour = palette[str(unit)]
        u_ax.plot(steps, u[:, unit], color=colour, marker=".", label=record.unit_name(int(unit)))
        fired = spikes[:, unit] > 0
        u_ax.plot(steps[fired], u[fired, unit], linestyle="none", marker="^", markersize=8,
                  markerfacecolor="none", color=colour)
        if record.spiking:
            y_ax.vlines(steps[fired], row - 0.35, row + 0.35, color=colour, linewidth=2)
        else:
            y_ax.step(steps, y[:, unit], where="mid", color=colour, marker=".", markersize=4)
    u_ax.axhline(record.threshold, color="0.3", linestyle="--", linewidth=1,
                 label=f"threshold {record.threshold:g}")
    u_ax.set_ylabel("membrane potential U")
    u_ax.set_title(f"{title or record.name}: membrane (triangles: fired, then reset)", fontsize=10)
    u_ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    u_ax.grid(True, alpha=0.3)
    if record.spiking:
        y_ax.set_yticks(range(len(chosen)), [record.unit_name(int(unit)) for unit in chosen], fontsize=7)
        y_ax.set_ylim(len(chosen) - 0.5, -0.5)  # first unit on top, as in the legend
        y_ax.set_ylabel("spikes S (one row per unit)")
    else:
        y_ax.set_ylabel("output Y (analog)")
    y_ax.set_xlabel("time step t")
    y_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    y_ax.grid(True, alpha=0.3)
    fig.set_layout_engine("constrained")
    return fig
