"""Layers over time-first tensors ``[T, B, ...]``: LIAF/LIF conv and dense layers, the LIAF-RNN, a
ConvLSTM, and a wrapper that applies a stateless module to every step.

Modules own their ``nn.Parameter`` s and call the pure functions of :mod:`liafnet.neurons`; neuron
state lives in ``forward``'s locals and starts at zero on every call (never a buffer).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from liafnet.neurons import (
    Decay,
    NeuronConfig,
    NeuronParams,
    NeuronState,
    liaf_multistep,
    liaf_multistep_reference,
    neuron_config,
    neuron_step,
)

NORMS = ("synaptic", "membrane", "none")
DENSE_NORMS = ("time", "feature", "none")
POOL_ORDERS = ("after", "before")


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

    @property
    def spiking(self) -> bool:
        return self.params.spiking

    def alpha(self) -> torch.Tensor:
        return torch.sigmoid(self.decay_logit) if hasattr(self, "decay_logit") else self.fixed_alpha

    def forward(self, x: torch.Tensor, membrane_norm: nn.Module | None = None) -> torch.Tensor:
        """``x`` is the synaptic input ``[T, B, ...]``. With ``membrane_norm`` the potential is
        normalised every step after integration (BN on the membrane, framework-doc form); that puts
        a batch-statistics op inside the recurrence, so it runs the per-step path."""
        alpha = self.alpha().to(x.dtype)
        if membrane_norm is not None:
            state, outputs = None, []
            for x_t in x:
                u = membrane_norm(x_t if state is None else x_t + state.v)
                y, state = neuron_step(u, alpha, self.params)
                outputs.append(y)
            return torch.stack(outputs)
        if self.impl == "reference":
            return liaf_multistep_reference(x, alpha, self.params)
        return liaf_multistep(x, alpha, self.params)

    def extra_repr(self) -> str:
        return f"{self.params}, impl={self.impl}"


def init_authors_(module: nn.Module, bias: float = 0.5) -> None:
    """Authors' initialisation: Kaiming-normal weights, every bias set to ``bias`` (0.5 = theta)."""
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
        _check_choice("norm", norm, NORMS)
        _check_choice("pool_order", pool_order, POOL_ORDERS)
        _check_choice("pool_type", pool_type, ("avg", "max"))
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
        _check_choice("norm", norm, NORMS)
        _check_choice("dense_norm", dense_norm, DENSE_NORMS)
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
        z = self.linear(x)
        if self.time_norm:
            if z.shape[0] != self.norm.num_features:
                raise ValueError(
                    f"{type(self).__name__} was built for T={self.norm.num_features} (model.dense_norm=time "
                    f"normalises over the time axis) but got T={z.shape[0]}; rebuild with the data's T or "
                    "set model.dense_norm=feature")
            z = self.norm(z.transpose(0, 1)).transpose(0, 1)
        elif self.norm_mode == "synaptic":
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
    """LIAF-RNN (docs/paper.md §4): the recurrent weight acts on the membrane potential.

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
        alpha = self.neuron.alpha().to(drive.dtype)
        weight = self.recurrent_weight(alpha)
        state: NeuronState | None = None
        outputs = []
        for drive_t in drive:
            u = drive_t if state is None else drive_t + F.linear(state.v, weight)
            y, state = neuron_step(u, alpha, self.neuron.params)
            outputs.append(y)
        return torch.stack(outputs)


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
