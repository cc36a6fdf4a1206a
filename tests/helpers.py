"""Paths and subprocess settings shared by the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def run_cli(module_or_script: list[str], args: list[str], timeout: int = 600, **kwargs):
    """Run ``python <module_or_script> <args>`` in the repo root with :func:`subprocess_env`."""
    return subprocess.run([sys.executable, *module_or_script, *args], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


# ---------------------------------------------------------------------- hand-made sweeps (tables, viz)
MODELS = ["liaf", "lif", "lstm", "gru", "convlstm", "conv3d"]
NAMES = {"liaf": "LIAF-Net", "lif": "LIF-SNN", "lstm": "LSTM", "gru": "GRU", "convlstm": "ConvLSTM",
         "conv3d": "Conv3D"}


def write_run(root: Path, subdir: str, **fields) -> Path:
    """One job dir with a metrics.json; the dir name is deliberately not what the table reads."""
    metrics = {"model": "liaf", "data": "dvs_gesture", "seed": 0, "status": "ok", "test/acc": 0.9,
               "val/acc": 0.9, "params": 2_322_891, "macs": 6_991_549_440, "acs": 0, "train_time_s": 60.0,
               "samples_per_s": 100.0, "error": None}
    metrics.update(fields)
    run_dir = root / subdir
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


def gesture_spec(**extra) -> dict:
    spec = {
        "name": "gesture", "title": "Gesture test accuracy (%)",
        "rows": {"key": "model", "label": "model", "order": MODELS, "names": NAMES},
        "grid": {"model": MODELS, "seed": [0, 1, 2]},
        "paper": {"values": {"liaf": {"value": 97.6, "source": "third-party table"},
                             "lif": {"value": None, "source": "unknown"}}},
    }
    spec.update(extra)
    return spec


def md_rows(text: str) -> dict[str, list[str]]:
    """Markdown table body keyed by the first cell."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells))
    return rows


# ---------------------------------------------------------------------- bAbI
# Three stories in the bAbI file format (ids restart at 1 for a new story).
SAMPLE = (
    "1 Mary moved to the bathroom.\n"
    "2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
    "4 Daniel went back to the hallway.\n"
    "5 Where is Daniel? \thallway\t4\n"
    "1 The office is north of the kitchen.\n"
    "2 What is north of the kitchen?\toffice\t1\n"
    "1 Mary got the milk there.\n"
    "2 John moved to the bedroom.\n"
    "3 What is Mary carrying?\tmilk,apple\t1 2\n"
)
