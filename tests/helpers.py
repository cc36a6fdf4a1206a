"""Paths, subprocess settings and the neuron option grid shared by the tests."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from liafnet.neurons import SELU, Gaussian, LeakyReLU, NeuronParams, Rectangle, ReLU

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


def cli(module_or_script: list[str], args: list[str], timeout: int = 600, **kwargs):
    """Run ``python <module_or_script> <args>`` from the repo root; returns the CompletedProcess."""
    return subprocess.run([sys.executable, *module_or_script, *args], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


# ---- hand-made sweeps for the report tests

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


def text_outside_figure(fig) -> list[str]:
    """Texts of a matplotlib figure drawn (partly) outside its canvas: cut off in the PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer, box = canvas.get_renderer(), fig.bbox
    # Tick labels are left out: matplotlib keeps labels of ticks beyond the view, which it never draws.
    ticks = {id(label) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for minor in (False, True)
             for label in axis.get_ticklabels(minor=minor)}
    outside = []
    for text in fig.findobj(Text):
        if id(text) not in ticks and text.get_visible() and text.get_text().strip():
            extent = text.get_window_extent(renderer)
            if extent.x0 < box.x0 - 1 or extent.x1 > box.x1 + 1 or extent.y0 < box.y0 - 1 or extent.y1 > box.y1 + 1:
                outside.append(text.get_text())
    return outside


# The neuron option grid on which each fast path is compared with the per-step reference
# (tests/test_neurons.py: the torch path; tests/test_triton_liaf.py: the Triton kernel).
ACTS = {"selu": SELU(), "relu": ReLU(), "leaky_relu": LeakyReLU(0.2)}
SURROGATES = {"rect": Rectangle(), "rect_narrow": Rectangle(centre=0.3, half_width=0.2, height=2.0),
              "gauss": Gaussian()}
# Analog (LIAF) options: output mode x activation x clamp x fire test x reset x reset gradient x beta.
ANALOG_GRID = list(itertools.product(("ntr", "tr"), ACTS, (False, True), (False, True), ("hard", "soft"),
                                     (True, False), (0.0, 0.05)))
# Spiking (LIF) options and the decay variants: surrogate x reset x reset gradient x v_reset x decay form.
SPIKE_GRID = list(itertools.product(SURROGATES, ("hard", "soft"), (True, False), (0.0, 0.1),
                                    ("layer", "channel", "fixed")))


def analog_params(output, act, clamp, fire_ge, reset, detach, beta) -> NeuronParams:
    """The NeuronParams of one ANALOG_GRID case."""
    return NeuronParams(output=output, act=ACTS[act], clamp=clamp, fire_ge=fire_ge, reset=reset,
                        detach_reset=detach, beta=beta, v_reset=0.0 if reset == "soft" else -0.1,
                        surrogate=Gaussian() if detach else Rectangle())


def spike_params(surrogate, reset, detach, v_reset) -> NeuronParams:
    """The NeuronParams of one SPIKE_GRID case (its decay form is the caller's)."""
    return NeuronParams(output="spike", surrogate=SURROGATES[surrogate], reset=reset, detach_reset=detach,
                        v_reset=v_reset, threshold=0.4)


# ---- bAbI
# A hand-written bAbI file: three stories, answers with commas, supporting facts over two lines.
BABI_SAMPLE = (
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

class KillAt(Callback):
    """A Lightning callback that SIGKILLs its own process at one point of training: fault injection
    through the real CLI (``+callbacks.kill._target_=tests.helpers.KillAt +callbacks.kill.point=...``).

    ``point``: ``train`` (after training batch ``batch`` of ``epoch``), ``validation`` (after
    validation batch ``batch`` of ``epoch``, not in the sanity check) or ``checkpoint`` (while the
    first checkpoint of ``epoch`` is written: its bytes are in the temporary file and the rename has
    not happened, because the next ``os.fsync`` is the one liafnet.io makes just before renaming).
    """

    POINTS = ("train", "validation", "checkpoint")

    def __init__(self, point: str, epoch: int, batch: int = 0):
        if point not in self.POINTS:
            raise ValueError(f"KillAt point must be one of {self.POINTS}, got {point!r}")
        self.point, self.epoch, self.batch = point, epoch, batch

    @staticmethod
    def _die(*_args) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.point == "train" and (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            self._die()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if (self.point == "validation" and not trainer.sanity_checking
                and (trainer.current_epoch, batch_idx) == (self.epoch, self.batch)):
            self._die()

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        if self.point == "checkpoint" and trainer.current_epoch == self.epoch:
            os.fsync = self._die


def write_babi_task1(folder: Path, stories: int, seed: int = 0) -> None:
    """``qa1_single-supporting-fact_{train,test}.txt`` in ``folder``: random stories in the real
    file format ("<name> moved to the <place>." facts, "Where is <name>?" questions answered by
    that person's latest place), 1 to 12 facts each, so story lengths vary from batch to batch."""
    import random

    names, places = ("Mary", "John", "Daniel", "Sandra"), ("kitchen", "garden", "office", "hallway")
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        lines = []
        for _ in range(stories):
            where, line = {}, 0
            for _ in range(rng.randint(1, 12)):
                name, place = rng.choice(names), rng.choice(places)
                line += 1
                lines.append(f"{line} {name} moved to the {place}.")
                where[name] = (place, line)
            name = rng.choice(sorted(where))
            line += 1
            lines.append(f"{line} Where is {name}? \t{where[name][0]}\t{where[name][1]}")
        (folder / f"qa1_single-supporting-fact_{split}.txt").write_text("\n".join(lines) + "\n")
