"""Membrane potential of a LIAF/LIF neuron layer over one sequence, and its plot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

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
    palette = colours([str(i) for i in chosen])
    for unit in chosen:
        colour = palette[str(unit)]
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

