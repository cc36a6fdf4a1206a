"""Parameters, operations and an energy estimate per model, per sample over the whole sequence.

    python -m liafnet.profile model=liaf data=dvs_gesture [more Hydra overrides]
    python -m liafnet.profile --table outputs/tables/efficiency     # every model x event dataset

Counting rules (docs/profile.md):

- ``params``: weights and biases of convolutions, linear and recurrent layers; ``bn_params`` (BN
  affine) and ``neuron_params`` (learnable decays) are reported apart, as docs/paper.md §5 counts them.
- ``dense_macs``: every synaptic multiply-accumulate, ignoring sparsity (bias, BN and pooling not
  counted). A synaptic layer whose input is spike-driven (the output of a LIF neuron, possibly
  pooled, or binary event frames at the network input) does accumulates instead: its ``acs`` are the
  nonzero inputs times the outputs each one reaches (measured on a batch), or, without a batch, the
  stated ``spike_rate`` times its dense MACs. Every other synaptic layer counts its dense MACs in
  ``macs``. ``synops = macs + acs``.
- Neuron state updates: 2 multiplications (decay, reset) and 2 additions (integration, threshold
  compare) per neuron and step, as the authors' ops notebook (docs/paper.md §8).
- ``energy``: 45 nm, 32-bit float (Horowitz, ISSCC 2014): MAC 4.6 pJ, AC 0.9 pJ, neuron
  multiplication 3.7 pJ, neuron addition 0.9 pJ.
- ``paper_convention``: multiplications and additions by the authors' ``ops_cal.ipynb`` rules
  (docs/paper.md §8), dense, with our extension to linear and recurrent layers; labelled as such.

Models run once on the ``meta`` device when no batch is given, so profiling needs no data and no
memory for activations.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from liafnet.data.spec import DataSpec
from liafnet.layers import LIAFNeuron, RecurrentLIAF

DEFAULT_SPIKE_RATE = 0.1
ENERGY_PJ = {"mac": 4.6, "ac": 0.9, "neuron_mult": 3.7, "neuron_add": 0.9}
ENERGY_SOURCE = ("M. Horowitz, 'Computing's energy problem', ISSCC 2014: 45 nm, 32-bit float multiply "
                 "3.7 pJ, add 0.9 pJ; a MAC = multiply + add = 4.6 pJ, an AC = add = 0.9 pJ")
PAPER_LABEL = ("authors' ops_cal.ipynb rules (docs/paper.md §8): conv multiplications Cin*Cout*O^2*k^2 per step "
               "(none for spike-driven inputs), additions Cin*Cout*O^2*(k^2-1), ANN convs add one multiply per "
               "output for the bias, neurons 2 multiplications + 2 additions per step; linear and recurrent "
               "layers use our extension (Nin*Nout multiplications, (Nin-1)*Nout additions); dense, per sample")
CONF_DIR = Path(__file__).resolve().parent / "conf"

SYNAPTIC = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.LSTM, nn.GRU, nn.RNN)
NEURONS = (LIAFNeuron, RecurrentLIAF)
# Modules that pass a spike-driven signal on unchanged in kind (a pooled spike train still only
# needs accumulates downstream).
TRANSPARENT = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
               nn.Dropout, nn.Flatten, nn.Identity)


@dataclass
class LayerCount:
    name: str
    type: str
    params: int = 0
    calls: int = 0
    spike_driven: bool = False
    input_nonzero: float = 0.0
    input_elements: float = 0.0
    dense_macs: float = 0.0
    macs: float = 0.0
    acs: float = 0.0
    neuron_mults: float = 0.0
    neuron_adds: float = 0.0
    paper_mults: float = 0.0
    paper_adds: float = 0.0
    extra: dict = field(default_factory=dict)


def _own_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Weights+biases, BN affine and neuron (decay) parameters, counted apart."""
    counts = {"params": 0, "bn_params": 0, "neuron_params": 0}
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            key = "bn_params"
        elif isinstance(module, LIAFNeuron):
            key = "neuron_params"
        else:
            key = "params"
        counts[key] += _own_params(module)
    return counts


def _is_binary(x: torch.Tensor) -> bool:
    return x.device.type != "meta" and bool(((x == 0) | (x == 1)).all())


class _Tracer:
    """Forward hooks that count each layer's work while the model runs once.

    ``spike_driven`` follows the data flow: set by a neuron (True for LIF), kept by pooling and
    dropout, cleared by any other layer. ``paper_spike_driven`` is the same for the §8 convention,
    which treats the network input as spikes exactly when the model's neurons spike.
    """

    def __init__(self, model: nn.Module, measured: bool, input_binary: bool, spike_rate: float, ann: bool,
                 spiking_model: bool):
        self.measured, self.spike_rate, self.ann = measured, spike_rate, ann
        self.spike_driven, self.paper_spike_driven = input_binary, spiking_model
        self.layers: dict[str, LayerCount] = {}
        self.handles = []
        for name, module in model.named_modules():
            if isinstance(module, SYNAPTIC + NEURONS):
                self.handles.append(module.register_forward_hook(self._hook(name)))
            elif not list(module.children()) and not isinstance(module, TRANSPARENT):
                self.handles.append(module.register_forward_hook(self._clear))
            elif type(module).__name__ == "FrameSum":  # summed frames are counts, not spikes
                self.handles.append(module.register_forward_pre_hook(self._clear_pre))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def _clear(self, module, inputs, output) -> None:
        self.spike_driven = self.paper_spike_driven = False

    def _clear_pre(self, module, inputs) -> None:
        self.spike_driven = self.paper_spike_driven = False

    def _layer(self, name: str, module: nn.Module) -> LayerCount:
        if name not in self.layers:
            self.layers[name] = LayerCount(name or "model", type(module).__name__, params=_own_params(module))
        return self.layers[name]

    def _hook(self, name: str):
        def hook(module, inputs, output) -> None:
            layer = self._layer(name, module)
            layer.calls += 1
            if isinstance(module, NEURONS):
                elements = float(output.numel())
                layer.neuron_mults += 2 * elements
                layer.neuron_adds += 2 * elements
                layer.paper_mults += 2 * elements
                layer.paper_adds += 2 * elements
                self.spike_driven = self.paper_spike_driven = module.spiking
                return
            self._synaptic(layer, module, inputs[0], output)
            self.spike_driven = self.paper_spike_driven = False

        return hook

    def _synaptic(self, layer: LayerCount, module: nn.Module, x: torch.Tensor, output) -> None:
        spike_driven, paper_spike_driven = self.spike_driven, self.paper_spike_driven
        if isinstance(module, (nn.LSTM, nn.GRU, nn.RNN)):
            dense, input_part, outputs, fan_ins, fan_out = _recurrent_macs(module, x)
        elif isinstance(module, nn.Linear):
            outputs = float(output.numel())
            dense = input_part = outputs * module.in_features
            fan_ins, fan_out = [(module.in_features, outputs)], module.out_features
        else:
            outputs = float(output.numel())
            fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
            dense = input_part = outputs * fan_in
            fan_ins, fan_out = None, None
        layer.dense_macs += dense
        layer.spike_driven = layer.spike_driven or spike_driven
        layer.input_elements += float(x.numel())
        if spike_driven:
            if self.measured:
                nonzero = float((x != 0).sum())
                layer.input_nonzero += nonzero
                accumulates = _conv_accumulates(module, x) if fan_out is None else nonzero * fan_out
                layer.acs += accumulates
                layer.macs += dense - input_part
            else:
                layer.input_nonzero += self.spike_rate * float(x.numel())
                layer.acs += self.spike_rate * input_part
                layer.macs += dense - input_part
        else:
            layer.macs += dense
        # Paper convention (§8).
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            per_output_in = module.in_channels // module.groups
            layer.paper_adds += outputs * per_output_in * (math.prod(module.kernel_size) - 1)
            if not paper_spike_driven:
                layer.paper_mults += dense + (outputs if self.ann and module.bias is not None else 0)
        else:
            layer.paper_adds += sum((n_in - 1) * n_out for n_in, n_out in fan_ins)
            layer.paper_mults += dense - (input_part if paper_spike_driven else 0)


def _recurrent_macs(module: nn.Module, x: torch.Tensor):
    """Dense MACs of a torch LSTM/GRU/RNN call; ``input_part`` is the first layer's input matrix."""
    gates = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}[type(module)]
    steps_batch = float(x.numel() // x.shape[-1])
    directions = 2 if module.bidirectional else 1
    hidden = module.hidden_size
    dense, fan_ins, input_part = 0.0, [], 0.0
    for layer in range(module.num_layers):
        n_in = module.input_size if layer == 0 else hidden * directions
        outputs = steps_batch * gates * hidden * directions
        dense += outputs * (n_in + hidden)
        fan_ins += [(n_in, outputs), (hidden, outputs)]
        if layer == 0:
            input_part = outputs * n_in
    return dense, input_part, steps_batch * hidden * directions, fan_ins, gates * hidden * directions


def _conv_accumulates(module: nn.Module, x: torch.Tensor) -> float:
    """Exact accumulates of a conv layer on ``x``: each nonzero input adds into every output whose
    receptive field holds it, for each output channel it connects to (borders included)."""
    if module.groups != 1:
        raise ValueError("grouped convolutions are not supported by the AC counter")
    dims = len(module.kernel_size)
    nonzero = (x != 0).to(torch.float64).sum(dim=1, keepdim=True)
    ones = torch.ones((1, 1, *module.kernel_size), dtype=torch.float64, device=x.device)
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[dims]
    reached = conv(nonzero, ones, stride=module.stride, padding=module.padding, dilation=module.dilation)
    return float(reached.sum()) * module.out_channels


def _dummy_inputs(spec: DataSpec, device: torch.device) -> tuple[torch.Tensor, ...]:
    if spec.kind == "events":
        return (torch.empty(spec.time_steps, 1, spec.channels, spec.height, spec.width, device=device),)
    return (torch.zeros(spec.story_len, 1, dtype=torch.long, device=device),
            torch.zeros(spec.query_len, 1, dtype=torch.long, device=device))


def profile_model(model: nn.Module, spec: DataSpec, inputs=None, spike_rate: float = DEFAULT_SPIKE_RATE) -> dict:
    """Count parameters and operations per sample over the whole sequence.

    ``inputs``: a batch as the model takes it (a tensor ``[T, B, ...]`` or a tuple); spike rates are
    then measured on it. Without it the model runs on the ``meta`` device with the ``spike_rate``
    assumed for every spike-driven input (event frames are assumed binary).
    """
    if not 0.0 <= spike_rate <= 1.0:
        raise ValueError(f"spike_rate must be in [0, 1], got {spike_rate}")
    measured = inputs is not None
    neurons = [m for m in model.modules() if isinstance(m, NEURONS)]
    spiking_model = any(m.spiking for m in neurons)
    if measured:
        inputs = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
        runner = model
        input_binary = spec.kind == "events" and _is_binary(inputs[0])
    else:
        runner = copy.deepcopy(model).to("meta")
        inputs = _dummy_inputs(spec, torch.device("meta"))
        input_binary = spec.kind == "events"
    batch = inputs[0].shape[1]
    tracer = _Tracer(runner, measured, input_binary, spike_rate, ann=not neurons, spiking_model=spiking_model)
    was_training = runner.training
    runner.eval()
    try:
        with torch.no_grad():
            runner(*inputs)
    finally:
        tracer.remove()
        runner.train(was_training)

    layers = []
    totals = dict.fromkeys(("dense_macs", "macs", "acs", "neuron_mults", "neuron_adds", "paper_mults",
                            "paper_adds"), 0.0)
    for layer in tracer.layers.values():
        row = asdict(layer)
        row.pop("extra")
        for key in totals:
            row[key] = row[key] / batch
            totals[key] += row[key]
        row["input_rate"] = layer.input_nonzero / layer.input_elements if layer.spike_driven and layer.input_elements else None
        for key in ("input_nonzero", "input_elements"):
            row.pop(key)
        layers.append(row)
    as_int = {key: round(value) for key, value in totals.items()}
    energy_pj = {
        "synaptic_mac": as_int["macs"] * ENERGY_PJ["mac"],
        "synaptic_ac": as_int["acs"] * ENERGY_PJ["ac"],
        "neuron": as_int["neuron_mults"] * ENERGY_PJ["neuron_mult"] + as_int["neuron_adds"] * ENERGY_PJ["neuron_add"],
    }
    return {
        **count_parameters(model),
        "macs": as_int["macs"],
        "acs": as_int["acs"],
        "synops": as_int["macs"] + as_int["acs"],
        "dense_macs": as_int["dense_macs"],
        "neuron_ops": {"mults": as_int["neuron_mults"], "adds": as_int["neuron_adds"]},
        "energy": {
            "total_uj": sum(energy_pj.values()) / 1e6,
            "parts_uj": {key: value / 1e6 for key, value in energy_pj.items()},
            "pj_per_op": ENERGY_PJ,
            "source": ENERGY_SOURCE,
        },
        "rates": {
            "mode": "measured" if measured else "analytic",
            "spike_rate": None if measured else spike_rate,
            "input_spike_driven": input_binary,
            "note": ("nonzero inputs counted on the given batch" if measured else
                     f"every spike-driven input (binary event frames, LIF outputs) assumed to fire at rate {spike_rate}"),
        },
        "per_sample": True,
        "time_steps": spec.time_steps if spec.kind == "events" else spec.story_len,
        "paper_convention": {"multiplications": as_int["paper_mults"], "additions": as_int["paper_adds"],
                             "label": PAPER_LABEL},
        "layers": layers,
    }


# ------------------------------------------------------------------------------------------ CLI


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def profile_config(overrides: list[str], spike_rate: float = DEFAULT_SPIKE_RATE) -> dict:
    """Compose ``conf/train.yaml`` with ``overrides`` and profile its model on its data spec."""
    from omegaconf import OmegaConf

    from liafnet.models import build_model

    cfg = _compose(overrides)
    if cfg.data.get("spec") is None:
        raise ValueError(f"data config {cfg.data.get('name')!r} has no spec: profiling needs data.spec")
    if cfg.data.spec.kind == "text":
        # A text spec (vocabulary, lengths) is only known once the datamodule has read its files.
        import hydra

        datamodule = hydra.utils.instantiate(cfg.data.datamodule, seed=int(cfg.seed))
        datamodule.prepare_data()
        datamodule.setup("fit")
        spec = datamodule.spec
    else:
        spec = DataSpec(**OmegaConf.to_container(cfg.data.spec, resolve=True))
    options = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k not in ("family", "readout")}
    model = build_model(cfg.model.family, spec, **options)
    return {"model": cfg.model.family, "data": cfg.data.name, **profile_model(model, spec, spike_rate=spike_rate)}


TABLE_COLUMNS = ("data", "model", "params", "bn_params", "neuron_params", "dense_macs", "macs", "acs", "synops",
                 "energy_uj", "paper_mults", "paper_adds")


def efficiency_table(out: Path, spike_rate: float = DEFAULT_SPIKE_RATE) -> list[dict]:
    """Profile every ``conf/model`` family on every event ``conf/data`` config; write ``out``.md/.csv."""
    from omegaconf import OmegaConf
    from tabulate import tabulate

    from liafnet.models import FAMILIES
    from liafnet.models.vision import LAYOUTS

    def order(names: list[str], preferred: tuple) -> list[str]:
        return sorted(names, key=lambda name: (preferred.index(name) if name in preferred else len(preferred), name))

    models = order([path.stem for path in (CONF_DIR / "model").glob("*.yaml")], FAMILIES)
    datasets = []
    for path in (CONF_DIR / "data").glob("*.yaml"):
        spec = OmegaConf.load(path).get("spec")
        if spec is not None and spec.get("kind") == "events":
            datasets.append(path.stem)
    datasets = order(datasets, tuple(LAYOUTS))
    rows = []
    for data in datasets:
        for model in models:
            stats = profile_config([f"model={model}", f"data={data}"], spike_rate)
            rows.append({"data": data, "model": model, **{k: stats[k] for k in TABLE_COLUMNS[2:9]},
                         "energy_uj": round(stats["energy"]["total_uj"], 3),
                         "paper_mults": stats["paper_convention"]["multiplications"],
                         "paper_adds": stats["paper_convention"]["additions"]})
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    notes = (
        "\n\nPer sample over the whole sequence, computed by `python -m liafnet.profile` from the model and data "
        "configs (no data files). `params` = weights + biases; BN affine and decay parameters apart. "
        "`macs`: synaptic multiply-accumulates on analog inputs; `acs`: accumulates on spike-driven inputs "
        f"(binary event frames, LIF spikes), assumed rate {spike_rate}; `synops = macs + acs`. "
        f"Energy: {ENERGY_SOURCE}; neuron updates 2 mult + 2 add each. `paper_*`: {PAPER_LABEL}. "
        "See docs/profile.md.\n")
    table = tabulate([[row[c] for c in TABLE_COLUMNS] for row in rows], headers=TABLE_COLUMNS, tablefmt="github",
                     intfmt=",", floatfmt=",.3f")
    out.with_suffix(".md").write_text("# Model efficiency\n\n" + table + notes)
    return rows


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = ("usage: python -m liafnet.profile model=<family> data=<dataset> [overrides] [--spike-rate R]\n"
             "       python -m liafnet.profile --table outputs/tables/efficiency [--spike-rate R]")
    if any(a in ("-h", "--help") for a in argv):
        print(usage)
        return
    spike_rate, table = DEFAULT_SPIKE_RATE, None
    overrides = []
    args = iter(argv)
    for arg in args:
        if arg in ("--spike-rate", "--table"):
            value = next(args, None)
            if value is None:
                sys.exit(f"{arg} needs a value\n{usage}")
            if arg == "--spike-rate":
                spike_rate = float(value)
            else:
                table = Path(value)
        elif arg.startswith("--"):
            sys.exit(f"unknown flag {arg}\n{usage}")
        else:
            overrides.append(arg)
    if table is not None:
        rows = efficiency_table(table, spike_rate)
        print(f"wrote {table.with_suffix('.md')} and {table.with_suffix('.csv')} ({len(rows)} rows)")
        return
    print(json.dumps(profile_config(overrides, spike_rate), indent=2))


if __name__ == "__main__":
    main()
