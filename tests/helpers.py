"""Paths and subprocess settings shared by the tests."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def subprocess_env(**extra) -> dict:
    """Environment for CLI subprocess tests: wandb off, few threads, unbuffered output."""
    env = dict(os.environ, WANDB_MODE="disabled", WANDB_SILENT="true", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(extra)
    return env


def simulate_nir(graph, x):
    """Run a NIR graph step by step: an interpreter independent of liafnet, written from NIR's node
    definitions (package ``nir``), for the export round-trip test.

    ``x``: ``[T, B, *input]``; every node sees a batch ``[B, ...]`` per step, in float64. Neuron
    nodes (``LIF``) integrate NIR's ODE with forward Euler at ``graph.metadata["dt"]`` from ``v = 0``:
    ``v <- v + dt / tau (v_leak - v + r I)``, spike ``z = v > v_threshold``, then ``v <- v_reset`` where
    ``z``. A node with several incoming edges gets their sum. Returns ``{node name: [T, B, ...]}``.
    """
    import nir
    import torch
    import torch.nn.functional as F

    def tensor(array):
        return torch.as_tensor(array, dtype=torch.float64)

    incoming: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for source, target in graph.edges:
        incoming[target].append(source)
    order: list[str] = []
    while len(order) < len(graph.nodes):  # topological order (Kahn); the graphs here have no cycles
        ready = [n for n in graph.nodes if n not in order and all(p in order for p in incoming[n])]
        assert ready, "graph has a cycle"
        order += ready
    dt = float(graph.metadata["dt"])
    state: dict[str, torch.Tensor] = {}
    outputs: dict[str, list] = {name: [] for name in order}
    for t in range(x.shape[0]):
        current: dict[str, torch.Tensor] = {}
        for name in order:
            node = graph.nodes[name]
            inp = sum(current[p] for p in incoming[name]) if incoming[name] else None
            if isinstance(node, nir.Input):
                out = x[t].double()
            elif isinstance(node, nir.Output):
                out = inp
            elif isinstance(node, nir.Conv2d):
                out = F.conv2d(inp, tensor(node.weight), tensor(node.bias), tuple(node.stride),
                               tuple(node.padding), tuple(node.dilation), int(node.groups))
            elif isinstance(node, nir.AvgPool2d):
                out = F.avg_pool2d(inp, tuple(int(k) for k in node.kernel_size),
                                   tuple(int(s) for s in node.stride), tuple(int(p) for p in node.padding))
            elif isinstance(node, nir.Flatten):
                end = node.end_dim if node.end_dim < 0 else node.end_dim + 1
                out = inp.flatten(node.start_dim + 1, end)  # NIR shapes have no batch axis
            elif isinstance(node, nir.Affine):
                out = F.linear(inp, tensor(node.weight), tensor(node.bias))
            elif isinstance(node, nir.Linear):
                out = F.linear(inp, tensor(node.weight))
            elif isinstance(node, nir.LIF):
                v = state.get(name, torch.zeros_like(inp))
                v = v + dt / tensor(node.tau) * (tensor(node.v_leak) - v + tensor(node.r) * inp)
                z = v > tensor(node.v_threshold)
                state[name] = torch.where(z, tensor(node.v_reset).expand_as(v), v)
                out = z.double()
            else:
                raise NotImplementedError(f"node {name}: {type(node).__name__} is not interpreted here")
            current[name] = out
            outputs[name].append(out)
    return {name: torch.stack(steps) for name, steps in outputs.items()}
