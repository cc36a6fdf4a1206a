"""Parameters, operations and an energy estimate per model, per sample over the whole sequence.

    python -m liafnet.profile model=liaf data=dvs_gesture [more Hydra overrides]
    python -m liafnet.profile --table outputs/tables/efficiency     # every model x event dataset

This module holds the counting rules only; the command line is :mod:`liafnet.cli.profile` and the
efficiency table :mod:`liafnet.report.efficiency`. Counting rules (docs/profile.md):

- ``params``: weights and biases of convolutions, linear and recurrent layers; ``bn_params`` (BN
  affine) and ``neuron_params`` (learnable decays) are reported apart, as docs/paper.md §5 counts them.
- ``dense_macs``: every synaptic multiply-accumulate, ignoring sparsity (bias, BN and pooling not
  counted). A synaptic layer whose input is spike-driven (the output of a LIF neuron, possibly
  pooled, or binary event frames at the network input) does accumulates instead: its ``acs`` are the
  nonzero inputs times the outputs each one reaches (measured on a batch), or, without a batch, its
  driving layer's firing rate times its dense MACs: the measured rate where ``rates`` gives one
  (e.g. from a trained run's telemetry), else the assumed ``spike_rate``. Every other synaptic layer counts its dense MACs in
  ``macs``. ``synops = macs + acs``.
- Neuron state updates: 2 multiplications (decay, reset) and 2 additions (integration, threshold
  compare) per neuron and step, as the authors' ops notebook (docs/paper.md §8).
- ``energy``: operations times an energy per operation. Defaults (:data:`ENERGY_PJ`): 45 nm CMOS,
  32-bit float (M. Horowitz, "Computing's energy problem", ISSCC 2014): MAC 4.6 pJ (multiply 3.7 +
  add 0.9), AC 0.9 pJ, neuron multiplication 3.7 pJ, neuron addition 0.9 pJ. Other technologies:
  pass ``energy_pj`` (``--energy mac=3.1`` on the command line); the output says which were used.
- ``paper_convention``: multiplications and additions by the authors' ``ops_cal.ipynb`` rules
  (docs/paper.md §8), dense, with our extension to linear and recurrent layers; labelled as such.

Models run once on the ``meta`` device when no batch is given, so profiling needs no data and no
memory for activations.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

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
# Key of ``rates`` for the network input (binary event frames); other keys are neuron layer names.
INPUT_RATE_KEY = "input"

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
                 spiking_model: bool, rates: Mapping[str, float]):
        self.measured, self.spike_rate, self.ann, self.rates = measured, spike_rate, ann, rates
        self.spike_driven, self.paper_spike_driven = input_binary, spiking_model
        self.source = INPUT_RATE_KEY  # the layer whose spikes drive the current signal
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
                self.source = name
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
                rate = self.rates.get(self.source, self.spike_rate)
                layer.input_nonzero += rate * float(x.numel())
                layer.acs += rate * input_part
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


def energy_per_op(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """:data:`ENERGY_PJ` with ``overrides`` (pJ per operation) applied; unknown keys or negative
    values raise ``ValueError`` naming them."""
    table = dict(ENERGY_PJ)
    for key, value in (overrides or {}).items():
        if key not in ENERGY_PJ:
            raise ValueError(f"energy per operation: unknown operation {key!r}; choose from {sorted(ENERGY_PJ)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"energy per operation {key}={value!r}: expected a number of pJ >= 0")
        table[key] = float(value)
    return table


def _check_rates(model: nn.Module, rates: Mapping[str, float]) -> dict[str, float]:
    """``rates`` keyed by neuron module name (``convs.0.neuron``); the owning layer's name as the
    firing-rate telemetry writes it (``convs.0``, :mod:`liafnet.telemetry`) is accepted too."""
    names = [name for name, module in model.named_modules() if isinstance(module, NEURONS)]
    aliases = {name.removesuffix(".neuron"): name for name in names}
    checked = {}
    for key, value in rates.items():
        name = key if key == INPUT_RATE_KEY or key in names else aliases.get(key)
        if name is None:
            raise ValueError(f"rates: {key!r} is not a neuron layer of {type(model).__name__}; keys are "
                             f"{INPUT_RATE_KEY!r} or one of {names}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"rates[{key!r}] = {value!r}: a firing rate must be a number in [0, 1]")
        checked[name] = float(value)
    return checked


def profile_model(model: nn.Module, spec: DataSpec, inputs=None, spike_rate: float = DEFAULT_SPIKE_RATE,
                  rates: Mapping[str, float] | None = None,
                  energy_pj: Mapping[str, float] | None = None) -> dict:
    """Count parameters and operations per sample over the whole sequence.

    ``inputs``: a batch as the model takes it (a tensor ``[T, B, ...]`` or a tuple); spike rates are
    then measured on it. Without it the model runs on the ``meta`` device; a spike-driven input
    fires at ``rates[<name of the neuron layer driving it>]`` (``rates["input"]`` for binary event
    frames at the network input) where given, e.g. measured firing rates of a trained run, else at
    the assumed ``spike_rate``. ``energy_pj`` overrides entries of :data:`ENERGY_PJ` (pJ per op).
    Raises ``ValueError`` for a rate outside [0, 1], a rate key that is not a neuron layer, or an
    unknown energy key.
    """
    if not 0.0 <= spike_rate <= 1.0:
        raise ValueError(f"spike_rate must be in [0, 1], got {spike_rate}")
    rates = _check_rates(model, rates or {})
    pj = energy_per_op(energy_pj)
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
    tracer = _Tracer(runner, measured, input_binary, spike_rate, ann=not neurons, spiking_model=spiking_model,
                     rates={} if measured else rates)
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
        "synaptic_mac": as_int["macs"] * pj["mac"],
        "synaptic_ac": as_int["acs"] * pj["ac"],
        "neuron": as_int["neuron_mults"] * pj["neuron_mult"] + as_int["neuron_adds"] * pj["neuron_add"],
    }
    changed = {key: value for key, value in pj.items() if value != ENERGY_PJ[key]}
    if measured:
        mode, note = "measured", "nonzero inputs counted on the given batch"
    elif rates:
        mode = "given rates"
        note = (f"spike-driven inputs fire at the given rates {rates}; any other at the assumed rate {spike_rate}")
    else:
        mode = "analytic"
        note = f"every spike-driven input (binary event frames, LIF outputs) assumed to fire at rate {spike_rate}"
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
            "pj_per_op": pj,
            "source": ENERGY_SOURCE if not changed else f"user-set {changed}; the rest: {ENERGY_SOURCE}",
        },
        "rates": {
            "mode": mode,
            "spike_rate": None if measured else spike_rate,
            "given": None if measured else rates,
            "input_spike_driven": input_binary,
            "note": note,
        },
        "per_sample": True,
        "time_steps": spec.time_steps if spec.kind == "events" else spec.story_len,
        "paper_convention": {"multiplications": as_int["paper_mults"], "additions": as_int["paper_adds"],
                             "label": PAPER_LABEL},
        "layers": layers,
    }
