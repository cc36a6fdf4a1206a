"""Layers over time-first tensors ``[T, B, ...]``: LIAF/LIF conv and dense layers, the LIAF-RNN, the
LIAF-LSTM text cells, a ConvLSTM, and a wrapper that applies a stateless module to every step.

Modules own their ``nn.Parameter`` s and call the pure functions of :mod:`liafnet.neurons`; neuron
state lives in ``forward``'s locals and starts at zero on every call (never a buffer).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from liafnet.neurons import (
    Decay,
    NeuronConfig,
    NeuronParams,
    NeuronState,
    Potential,
    Readout,
    Trace,
    integrate,
    liaf_multistep,
    membrane_potential,
    neuron_config,
    neuron_loop,
    spike,
)
from liafnet.schema import Options, option

NORMS = ("synaptic", "membrane", "none")
DENSE_NORMS = ("time", "feature", "none")
POOL_ORDERS = ("after", "before")


@dataclass
class LayerOptions(Options):
    """Normalisation and pooling of :class:`ConvLIAF` / :class:`DenseLIAF`: the layers' argument checks
    and the ``model.*`` keys of the event-frame networks (``liafnet.models.options``)."""

    norm: str = option("synaptic", choices=NORMS, kind="events",
                       doc="BN on the synaptic input | membrane | none")
    dense_norm: str = option("time", choices=DENSE_NORMS, kind="events",
                             doc="dense BN over the time axis (authors' BatchNorm1d(T)) | feature | none")
    pool_order: str = option("after", choices=POOL_ORDERS, kind="events",
                             doc="pool after the neuron (authors' early) | before (HEAD)")
    pool_type: str = option("avg", choices=("avg", "max"), kind="events")


def _check_choice(key: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"model.{key} must be one of {', '.join(choices)}; got {value!r}")


def _check_time_first(x: torch.Tensor, dims: int, layer: str) -> None:
    if x.dim() != dims:
        raise ValueError(f"{layer} expects a time-first tensor with {dims} dims, got shape {tuple(x.shape)}")


class TimeDistributed(nn.Module):
    """Applies a stateless module to every step by folding T into the batch: ``[T, B, ...]``."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch = x.shape[:2]
        return self.module(x.flatten(0, 1)).unflatten(0, (steps, batch))


class LIAFNeuron(nn.Module):
    """The neuron of one layer: owns the decay parameter, runs the dynamics of :mod:`liafnet.neurons`.

    ``channels`` and ``spatial_dims`` (2 for conv feature maps, 0 for dense features) shape a
    per-channel decay; a per-layer decay is one scalar.

    Recording: with ``record = True`` (or inside :func:`record_traces`) every forward stores the
    layer's per-step potential, spikes and output as :attr:`trace` (a :class:`liafnet.neurons.Trace`),
    running the per-step loop instead of the fused kernel (same outputs to rounding).

    Measuring: with ``measure = True`` every forward adds the layer's spikes ``S`` (its internal
    firing; for LIF also its output) and outputs ``Y`` to running sums, read by :meth:`firing_stats`
    and cleared by :meth:`reset_firing_stats` (:class:`liafnet.telemetry.FiringRates` does both each
    validation epoch). Outputs are unchanged: the fused path recomputes ``U`` once more without
    autograd to get ``S``; the loop records it.
    """

    def __init__(self, config: NeuronConfig, channels: int, spatial_dims: int):
        super().__init__()
        self.params: NeuronParams = config.params
        self.impl = config.impl
        decay: Decay = config.decay
        shape = (channels,) + (1,) * spatial_dims if decay.per_channel else ()
        if decay.learnable:
            self.decay_logit = nn.Parameter(torch.full(shape, decay.d0))
        else:
            self.register_buffer("fixed_alpha", torch.full(shape, decay.alpha), persistent=False)
        self.record = False
        self.trace: Trace | None = None
        self.measure = False
        self.reset_firing_stats()

    @property
    def spiking(self) -> bool:
        return self.params.spiking

    def alpha(self) -> torch.Tensor:
        return torch.sigmoid(self.decay_logit) if hasattr(self, "decay_logit") else self.fixed_alpha

    def forward(self, x: torch.Tensor, membrane_norm: nn.Module | None = None) -> torch.Tensor:
        """``x`` is the synaptic input ``[T, B, ...]``; returns ``Y [T, B, ...]``. With
        ``membrane_norm`` the potential is normalised every step after integration (BN on the
        membrane, framework-doc form); that puts a batch-statistics op inside the recurrence, so it
        runs the per-step loop, as do ``impl="reference"`` and recording."""
        if membrane_norm is None and self.impl == "fused" and not self.record:
            alpha = self.alpha().to(x.dtype)
            y = liaf_multistep(x, alpha, self.params)
            if self.measure:
                with torch.no_grad():
                    self._observe(spike(membrane_potential(x, alpha, self.params), self.params), y)
            return y
        integrated = integrate(x)
        potential = integrated if membrane_norm is None else (
            lambda t, state, out: membrane_norm(integrated(t, state, out)))
        return self.run(potential, x.shape[0])

    def run(self, potential: Potential, steps: int, readout: Readout | None = None) -> torch.Tensor:
        """:func:`liafnet.neurons.neuron_loop` with this layer's decay and parameters, for layers whose
        potential depends on the previous step (recurrent weights, gates); records and measures when
        asked."""
        outputs, trace = neuron_loop(potential, steps, self.alpha(), self.params, readout,
                                     record=self.record or self.measure)
        if self.record:
            self.trace = trace
        if self.measure:
            self._observe(trace.s, trace.y)
        return outputs

    def _observe(self, spikes: torch.Tensor, outputs: torch.Tensor) -> None:
        # Sums stay on the device (no host sync per batch); float32 keeps a mean over ~1e9 values exact
        # to about 1e-7 relative, plenty for a rate.
        sums = torch.stack([spikes.detach().sum(dtype=torch.float32), outputs.detach().sum(dtype=torch.float32)])
        self._sums = sums if self._sums is None else self._sums + sums
        self._count += spikes.numel()

    def firing_stats(self) -> dict[str, float] | None:
        """``{"rate": mean S, "activity": mean Y}`` over every neuron, step and sample seen while
        measuring since the last reset (``rate`` in spikes per neuron per step); ``None`` if none."""
        if self._sums is None:
            return None
        rate, activity = (self._sums / self._count).tolist()
        return {"rate": rate, "activity": activity}

    def reset_firing_stats(self) -> None:
        self._sums: torch.Tensor | None = None
        self._count = 0

    def extra_repr(self) -> str:
        return f"{self.params}, impl={self.impl}"


def neuron_layers(model: nn.Module) -> dict[str, LIAFNeuron]:
    """Every :class:`LIAFNeuron` in ``model`` by its module name, in definition order."""
    return {name: module for name, module in model.named_modules() if isinstance(module, LIAFNeuron)}


@contextmanager
def record_traces(model: nn.Module, names: list[str] | None = None) -> Iterator[dict[str, Trace]]:
    """Record the per-step membrane potential, spikes and output of ``model``'s neuron layers.

    ``names`` picks layers by module name (default: all). Inside the block every forward of a chosen
    layer stores its :class:`liafnet.neurons.Trace` ``(u, s, y)``, each ``[T, B, ...]``; the yielded
    dict maps names to the last traces once forwards have run. Raises ``ValueError`` naming the
    available layers for an unknown name or a model without neuron layers.
    """
    layers = neuron_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no LIAF/LIF neuron layer to record")
    unknown = [name for name in names or () if name not in layers]
    if unknown:
        raise ValueError(f"no LIAF neuron layer named {unknown[0]!r}; the model has {sorted(layers)}")
    chosen = {name: layers[name] for name in (names if names is not None else layers)}
    traces: dict[str, Trace] = {}
    for layer in chosen.values():
        layer.record, layer.trace = True, None
    try:
        yield traces
    finally:
        for name, layer in chosen.items():
            if layer.trace is not None:
                traces[name] = layer.trace
            layer.record, layer.trace = False, None


def init_authors_(module: nn.Module, bias: float = NeuronParams().threshold) -> None:
    """Authors' initialisation: Kaiming-normal weights, every bias set to ``bias``; the authors use
    their threshold constant, so callers pass the layer's threshold (default: the default threshold)."""
    nn.init.kaiming_normal_(module.weight)
    if module.bias is not None:
        nn.init.constant_(module.bias, bias)


class ConvLIAF(nn.Module):
    """Conv2d per step -> BN -> LIAF neuron -> pool -> dropout (authors' early order).

    ``norm``: ``synaptic`` normalises the conv output with statistics shared over time and batch
    (the authors' BatchNorm3d), ``membrane`` normalises the potential each step, ``none``.
    ``pool_order="before"`` pools the synaptic input before the neuron (authors' HEAD).
    ``pool`` is the pooling kernel (None: no pooling), ``pool_stride`` defaults to it.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        neuron: NeuronConfig | None = None,
        padding: int = 0,
        stride: int = 1,
        pool: int | None = None,
        pool_stride: int | None = None,
        pool_type: str = "avg",
        norm: str = "synaptic",
        pool_order: str = "after",
        dropout: float = 0.0,
    ):
        super().__init__()
        LayerOptions.parse({"norm": norm, "pool_order": pool_order, "pool_type": pool_type}, prefix="model.")
        neuron = neuron or neuron_config(spiking=False)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        self.norm_mode = norm
        self.norm = nn.BatchNorm2d(out_channels) if norm != "none" else None
        self.neuron = LIAFNeuron(neuron, out_channels, spatial_dims=2)
        self.pool_order = pool_order
        self.pool = None
        if pool is not None:
            pool_class = nn.AvgPool2d if pool_type == "avg" else nn.MaxPool2d
            self.pool = pool_class(pool, stride=pool_stride or pool)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_first(x, 5, type(self).__name__)
        steps, batch = x.shape[:2]
        z = self.conv(x.flatten(0, 1))
        if self.norm_mode == "synaptic":
            z = self.norm(z)
        if self.pool is not None and self.pool_order == "before":
            z = self.pool(z)
        membrane_norm = self.norm if self.norm_mode == "membrane" else None
        y = self.neuron(z.unflatten(0, (steps, batch)), membrane_norm).flatten(0, 1)
        if self.pool is not None and self.pool_order == "after":
            y = self.pool(y)
        if self.dropout is not None:
            y = self.dropout(y)
        return y.unflatten(0, (steps, batch))


class ConvLIF(ConvLIAF):
    """:class:`ConvLIAF` whose neuron emits spikes."""

    def __init__(self, *args, neuron: NeuronConfig | None = None, **kwargs):
        neuron = neuron or neuron_config(spiking=True)
        super().__init__(*args, neuron=neuron._replace(params=neuron.params._replace(output="spike")), **kwargs)


class DenseLIAF(nn.Module):
    """Linear per step -> BN -> LIAF neuron -> dropout, on ``[T, B, N]``.

    ``dense_norm`` with ``norm="synaptic"``: ``time`` is the authors' early ``BatchNorm1d(T)`` on
    ``[B, T, N]`` (time as the channel axis, so ``time_steps`` is fixed at build time); ``feature``
    normalises each unit with statistics over time and batch; ``none`` turns BN off (mid/HEAD code).
    With ``norm="membrane"`` the potential is normalised per unit each step.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        neuron: NeuronConfig | None = None,
        time_steps: int | None = None,
        norm: str = "synaptic",
        dense_norm: str = "time",
        dropout: float = 0.0,
    ):
        super().__init__()
        LayerOptions.parse({"norm": norm, "dense_norm": dense_norm}, prefix="model.")
        neuron = neuron or neuron_config(spiking=False)
        self.linear = nn.Linear(in_features, out_features)
        self.norm_mode = "none" if norm == "none" or dense_norm == "none" else norm
        self.time_norm = self.norm_mode == "synaptic" and dense_norm == "time"
        self.norm = None
        if self.time_norm:
            if not time_steps:
                raise ValueError("DenseLIAF with dense_norm='time' needs time_steps (BatchNorm1d over T)")
            self.norm = nn.BatchNorm1d(time_steps)
        elif self.norm_mode != "none":
            self.norm = nn.BatchNorm1d(out_features)
        self.neuron = LIAFNeuron(neuron, out_features, spatial_dims=0)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_first(x, 3, type(self).__name__)
        if self.time_norm:
            if x.shape[0] != self.norm.num_features:
                raise ValueError(
                    f"{type(self).__name__} was built for T={self.norm.num_features} (model.dense_norm=time "
                    f"normalises over the time axis) but got T={x.shape[0]}; rebuild with the data's T or "
                    "set model.dense_norm=feature")
            # The linear runs on [B, T, N] directly: linear -> transpose -> BN trips a stride bug in
            # torch.compile's backward (torch 2.13, aot_eager), this order does not.
            z = self.norm(self.linear(x.transpose(0, 1))).transpose(0, 1)
        else:
            z = self.linear(x)
            if self.norm_mode == "synaptic":
                z = self.norm(z.flatten(0, 1)).unflatten(0, z.shape[:2])
        y = self.neuron(z, self.norm if self.norm_mode == "membrane" else None)
        return self.dropout(y) if self.dropout is not None else y


class DenseLIF(DenseLIAF):
    """:class:`DenseLIAF` whose neuron emits spikes."""

    def __init__(self, *args, neuron: NeuronConfig | None = None, **kwargs):
        neuron = neuron or neuron_config(spiking=True)
        super().__init__(*args, neuron=neuron._replace(params=neuron.params._replace(output="spike")), **kwargs)


RECURRENT_NORMS = ("none", "gain")


class RecurrentLIAF(nn.Module):
    """LIAF-RNN (the authors' 2020 ``LIAFRCell``): the recurrent weight acts on the membrane potential.

    ``U^t = W_x X^t + b + W_v V^{t-1}``, then fire/output/reset/leak as every LIAF neuron
    (eqs. (2)-(5) of :mod:`liafnet.neurons`), ``V^{-1} = 0``. Input ``[L, B, N]``, output ``[L, B, H]``.
    The decay follows the neuron config (the authors' 2020 cell used it raw; here it is
    ``sigmoid(d)`` by default, or fixed with ``decay=fixed``). ``keras_init``: Glorot-uniform ``W_x``,
    orthogonal ``W_v``, zero bias.

    Below threshold nothing resets the membrane, so ``V^t = alpha (W_v V^{t-1} + ...)`` and the
    gradient flows back through ``alpha W_v^T`` at every step: once training pushes the loop gain
    ``alpha ||W_v||_2`` past 1, both grow geometrically over stories hundreds of words long.
    ``recurrent_norm="gain"`` uses ``W_v min(1, 1 / (alpha ||W_v||_2))``, a loop gain of at most 1:
    memory can still last (gain near 1), explosion cannot happen.
    """

    def __init__(self, input_size: int, hidden_size: int, neuron: NeuronConfig | None = None,
                 recurrent_norm: str = "none", keras_init: bool = False):
        super().__init__()
        if recurrent_norm not in RECURRENT_NORMS:
            raise ValueError(f"recurrent_norm must be one of {RECURRENT_NORMS}, got {recurrent_norm!r}")
        self.input = nn.Linear(input_size, hidden_size)
        self.recurrent = nn.Linear(hidden_size, hidden_size, bias=False)
        self.recurrent_norm = recurrent_norm
        if keras_init:
            nn.init.xavier_uniform_(self.input.weight)
            nn.init.zeros_(self.input.bias)
            nn.init.orthogonal_(self.recurrent.weight)
        self.neuron = LIAFNeuron(neuron or neuron_config(spiking=False), hidden_size, spatial_dims=0)

    @property
    def spiking(self) -> bool:
        return self.neuron.spiking

    def recurrent_weight(self, alpha: torch.Tensor) -> torch.Tensor:
        """``W_v`` as used in the recurrence (rescaled with ``recurrent_norm="gain"``) for decay ``alpha``."""
        weight = self.recurrent.weight
        if self.recurrent_norm == "gain":
            gain = alpha.max() * torch.linalg.matrix_norm(weight, ord=2)
            weight = weight * torch.clamp(1.0 / gain, max=1.0)
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_first(x, 3, type(self).__name__)
        drive = self.input(x)
        weight = self.recurrent_weight(self.neuron.alpha().to(drive.dtype))

        def potential(t: int, state: NeuronState | None, out: torch.Tensor | None) -> torch.Tensor:
            return drive[t] if state is None else drive[t] + F.linear(state.v, weight)

        return self.neuron.run(potential, x.shape[0])


LSTM_GATES = ("relu", "sigmoid")
LSTM_INITS = ("authors", "keras", "torch")


def liaf_lstm_neuron() -> NeuronConfig:
    """The gate neurons of the authors' 2020 ``LIAFLSTMCell``: LIAF, threshold 0.5 (``>``), hard reset
    to 0 with the spike *not* detached (the reset gradient flows through the rectangle surrogate), and
    a fixed raw decay 0.3 (no sigmoid, not learned); SELU as ``Act``."""
    return neuron_config(spiking=False, decay="fixed", decay_alpha=0.3, reset_grad="surrogate")


class LIAFLSTM(nn.Module):
    """LIAF-LSTM over word steps: ``LIAFLSTM(input_size, hidden_size, neuron=None, gate="relu",
    recurrent_gates=False, init="authors")``, input ``[T, B, input_size]``, output ``[T, B, hidden_size]``.

    The authors' 2020 ``LIAFLSTMCell`` (their ``LIAF.py``; THUCNews text classification). Each of the
    four gates ``i, f, g, o`` is a layer of ``hidden_size`` LIAF neurons whose potential integrates
    the current input only (no recurrent matrices)::

        U_k^t = W_k X^t + b_k + V_k^{t-1}                 k in i, f, g, o   (V^{-1} = 0)
        i, f, o = gate(U_i), gate(U_f), gate(U_o);   g = Y_g = Act(U_g)    (pre-reset potentials)
        c^t = f c^{t-1} + i g                             (c^{-1} = 0)
        h^t = Act(c^t) o                                  the layer's output
        V_k^t = alpha (1 - S_k^t) U_k^t,  S_k^t = [U_k^t > theta]

    Fire, reset and leak are the one neuron loop (:func:`liafnet.neurons.neuron_loop`); the gates and
    the cell state are its readout. Defaults, with their evidence (docs/neurons.md, "LIAF-LSTM"):

    - ``gate="relu"``: the code's default ``sgFun``; its comment says sigmoid (``gate="sigmoid"``).
    - ``neuron``: :func:`liaf_lstm_neuron` (the cell's constants: decay 0.3 fixed, threshold 0.5,
      spike not detached in the reset, SELU); any LIAF :class:`NeuronConfig` may replace it
      (its ``act``, ``output_mode`` and ``clamp`` shape ``g``; ``act`` also ``Act(c)``).
    - ``init="authors"``: Kaiming-normal weights, biases = threshold (the code's ``paramInit``); ``"keras"``:
      Glorot-uniform input and orthogonal recurrent weights per gate, zero biases; ``"torch"``.

    ``recurrent_gates=True`` is a **liafnet extension, not found in the authors' code**: the previous
    output ``h^{t-1}`` also feeds every gate neuron, ``U_k^t = W_k X^t + R_k h^{t-1} + b_k + V_k^{t-1}``
    (``R`` has no bias), so the gates depend nonlinearly on the layer's own state.

    Raises ``ValueError`` for an unknown ``gate`` or ``init``, or a spiking (LIF) neuron config.
    """

    def __init__(self, input_size: int, hidden_size: int, neuron: NeuronConfig | None = None,
                 gate: str = "relu", recurrent_gates: bool = False, init: str = "authors"):
        super().__init__()
        _check_choice("gate", gate, LSTM_GATES)
        _check_choice("init", init, LSTM_INITS)
        neuron = neuron or liaf_lstm_neuron()
        if neuron.params.spiking:
            raise ValueError("LIAFLSTM needs an analog (LIAF) neuron config; its g gate and output are analog")
        self.hidden_size = hidden_size
        self.gate = gate
        self.recurrent_gates = recurrent_gates
        self.input = nn.Linear(input_size, 4 * hidden_size)  # gates i, f, g, o
        self.recurrent = nn.Linear(hidden_size, 4 * hidden_size, bias=False) if recurrent_gates else None
        self.neuron = LIAFNeuron(neuron, 4 * hidden_size, spatial_dims=0)
        if init == "authors":
            for module in (self.input, self.recurrent):
                if module is not None:
                    init_authors_(module, bias=neuron.params.threshold)
        elif init == "keras":
            for chunk in self.input.weight.data.chunk(4):
                nn.init.xavier_uniform_(chunk)
            nn.init.zeros_(self.input.bias)
            if self.recurrent is not None:
                for chunk in self.recurrent.weight.data.chunk(4):
                    nn.init.orthogonal_(chunk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_first(x, 3, type(self).__name__)
        drive = self.input(x)
        gate = torch.relu if self.gate == "relu" else torch.sigmoid
        act = self.neuron.params.act

        def potential(t: int, state: NeuronState | None, out: torch.Tensor | None) -> torch.Tensor:
            u = drive[t] if state is None else drive[t] + state.v
            return u if self.recurrent is None or out is None else u + self.recurrent(out)

        def readout(u: torch.Tensor, y: torch.Tensor, c: torch.Tensor | None):
            u_i, u_f, _, u_o = u.chunk(4, dim=-1)
            g = y.chunk(4, dim=-1)[2]
            c = gate(u_i) * g if c is None else gate(u_f) * c + gate(u_i) * g
            return act(c) * gate(u_o), c

        return self.neuron.run(potential, x.shape[0], readout)

    def extra_repr(self) -> str:
        extension = ", recurrent_gates=True (liafnet extension, not in the authors' code)"
        return f"hidden_size={self.hidden_size}, gate={self.gate}" + (extension if self.recurrent_gates else "")


class ConvLSTMCell(nn.Module):
    """ConvLSTM cell (Shi et al. 2015, without peepholes), 'same' padding.

    Gates ``[i, f, o, g] = W_x * x + W_h * h + b``; ``c' = f c + i g``, ``h' = o tanh(c')``. The input
    and hidden convolutions are kept apart so a sequence layer can apply ``conv_x`` to all steps at
    once; together they hold ``(C_in + C_h) * 4 C_h * k^2 + 4 C_h`` parameters, the same as one conv
    over the concatenation.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"ConvLSTMCell needs an odd kernel for 'same' padding, got {kernel_size}")
        padding = kernel_size // 2
        self.hidden_channels = hidden_channels
        self.conv_x = nn.Conv2d(in_channels, 4 * hidden_channels, kernel_size, padding=padding)
        self.conv_h = nn.Conv2d(hidden_channels, 4 * hidden_channels, kernel_size, padding=padding, bias=False)

    def step(self, gates_x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None):
        """One step given the input part of the gates; ``state=None`` is zero (h, c)."""
        gates = gates_x if state is None else gates_x + self.conv_h(state[0])
        i, f, o, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(i) * torch.tanh(g)
        if state is not None:
            c = c + torch.sigmoid(f) * state[1]
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        return self.step(self.conv_x(x), state)


class ConvLSTM(nn.Module):
    """A ConvLSTM cell run over ``[T, B, C, H, W]``; returns every hidden state ``[T, B, C_h, H, W]``."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3):
        super().__init__()
        self.cell = ConvLSTMCell(in_channels, hidden_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_first(x, 5, type(self).__name__)
        steps, batch = x.shape[:2]
        gates_x = self.cell.conv_x(x.flatten(0, 1)).unflatten(0, (steps, batch))
        state, outputs = None, []
        for gates_t in gates_x:
            h, state = self.cell.step(gates_t, state)
            outputs.append(h)
        return torch.stack(outputs)
