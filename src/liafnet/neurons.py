"""LIAF and LIF neuron dynamics: pure functions over explicit state, and a fused multi-step kernel.

One step of a layer with synaptic input ``I`` (docs/neurons.md has the derivation, the option table
and the sources: the authors' code, repository ``lyh983012/SNN-genunit``, and the Lynxi BIDL docs).
The state is the post-reset, post-leak potential ``V`` with ``V^{-1} = 0``::

    (1) U^t = I^t + V^{t-1}                      integrate
    (2) S^t = H(U^t - theta)                      fire (H: ``>`` by default, ``>=`` optional)
    (3) Y^t = Act(U^t) | Act(U^t - theta) | S^t   output: NTR (default), TR, or spike (LIF)
    (4) R^t = S^t V_reset + (1 - S^t) U^t         hard reset (default), or R^t = U^t - S^t theta (soft)
    (5) V^t = alpha R^t + beta                    leak

With ``V_reset = 0`` and ``beta = 0`` this is the authors' early-2021 code,
``U^t = alpha U^{t-1} (1 - S^{t-1}) + I^t``, with ``alpha = sigmoid(d)`` learnable and ``S`` detached
in (4). ``H`` is not differentiable; its surrogate derivative is used for LIF outputs (3) and, with
``detach_reset=False``, for the reset (4).

Everything here is functional: parameters are a :class:`NeuronParams` NamedTuple of small frozen
objects, the decay ``alpha`` is a tensor passed in by the owning module, the state is a
:class:`NeuronState`.

:func:`neuron_loop` is the one per-step loop: it asks a caller-supplied function for each step's
potential ``U^t`` (so recurrent input, membrane normalisation and gates may depend on the previous
step), applies eqs. (2)-(5), and can record ``U``, ``S`` and ``Y`` per step (:class:`Trace`). Every
per-step path in liafnet (membrane BN, the LIAF-RNN, the LIAF-LSTM cells, membrane recording, the
oracle :func:`liaf_multistep_reference`) runs through it. :func:`liaf_multistep` is the fast path for
the feed-forward case: a whole ``[T, ...]`` sequence in a hand-written autograd function that saves
only ``U``; the loop is its test oracle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from liafnet.schema import Options, option

# --------------------------------------------------------------------------------- surrogates


@dataclass(frozen=True)
class Rectangle:
    """dS/dU = height where |U - centre| < half_width, else 0.

    ``centre=None`` (default) centres the window on the neuron's threshold, so moving the threshold
    moves the window with it. With the default threshold 0.5 this is the authors' early code, whose
    window is centred on the class constant 0.5 (= its threshold); a number fixes the centre
    absolutely, whatever the threshold.
    """

    centre: float | None = None
    half_width: float = 0.5
    height: float = 1.0
    name = "rectangle"

    def grad(self, u: torch.Tensor, threshold: float) -> torch.Tensor:
        centre = threshold if self.centre is None else self.centre
        return ((u - centre).abs() < self.half_width).to(u.dtype) * self.height


@dataclass(frozen=True)
class Gaussian:
    """dS/dU = N(U; theta + offset, sigma^2): the authors' mid/HEAD surrogate (sigma 1 at theta + 0.2)."""

    sigma: float = 1.0
    offset: float = 0.2
    name = "gaussian"

    def grad(self, u: torch.Tensor, threshold: float) -> torch.Tensor:
        z = (u - (threshold + self.offset)) / self.sigma
        return torch.exp(-0.5 * z * z) / (self.sigma * math.sqrt(2.0 * math.pi))


Surrogate = Rectangle | Gaussian

# ----------------------------------------------------------------------- analog activations
# Each has ``__call__`` and ``backward(grad, x) = grad * Act'(x)``, the latter through the same fused
# ATen kernel autograd uses, so the fused neuron and autograd agree exactly and spend one pass.

_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


@dataclass(frozen=True)
class SELU:
    name = "selu"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.selu(x)

    def backward(self, grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.elu_backward(grad, _SELU_ALPHA, _SELU_SCALE, 1.0, False, x)


@dataclass(frozen=True)
class ReLU:
    name = "relu"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)

    def backward(self, grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.threshold_backward(grad, x, 0)


@dataclass(frozen=True)
class LeakyReLU:
    slope: float = 0.2
    name = "leaky_relu"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.slope)

    def backward(self, grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.leaky_relu_backward(grad, x, self.slope, False)


Activation = SELU | ReLU | LeakyReLU

RESETS = ("hard", "soft")


class NeuronParams(NamedTuple):
    """Fixed (non-learned) neuron settings. The defaults are the authors' early-2021 LIAF code."""

    output: str = "ntr"  # "ntr": Act(U); "tr": Act(U - theta); "spike": S (LIF)
    act: Activation = SELU()
    clamp: bool = False  # clamp Act's result to [0, 1] (authors' HEAD "ReLU1")
    threshold: float = 0.5
    fire_ge: bool = False  # fire on U >= theta instead of U > theta
    reset: str = "hard"  # "hard": to v_reset; "soft": subtract theta
    v_reset: float = 0.0
    detach_reset: bool = True  # the reset mask carries no gradient (authors' code)
    beta: float = 0.0  # additive leak term
    surrogate: Surrogate = Rectangle()

    @property
    def spiking(self) -> bool:
        return self.output == "spike"


class NeuronState(NamedTuple):
    """Membrane potential after reset and leak, ``V^t``."""

    v: torch.Tensor


# ---------------------------------------------------------------------------------- step form


class _SurrogateSpike(torch.autograd.Function):
    """H(U - theta) forward, the surrogate derivative backward."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, p: NeuronParams) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.p = p
        return _fired(u, p).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_spike: torch.Tensor):
        (u,) = ctx.saved_tensors
        return grad_spike * ctx.p.surrogate.grad(u, ctx.p.threshold), None


def spike(u: torch.Tensor, p: NeuronParams) -> torch.Tensor:
    """Eq. (2) with a surrogate gradient."""
    return _SurrogateSpike.apply(u, p)


def _reset_leak(u: torch.Tensor, s: torch.Tensor, alpha: torch.Tensor, p: NeuronParams) -> NeuronState:
    """Eqs. (4)-(5): reset with spikes ``s`` (detached unless ``p.detach_reset`` is off), then leak."""
    s_reset = s.detach() if p.detach_reset else s
    r = s_reset * p.v_reset + (1 - s_reset) * u if p.reset == "hard" else u - s_reset * p.threshold
    v = alpha * r
    if p.beta:
        v = v + p.beta
    return NeuronState(v)


def neuron_step(u: torch.Tensor, alpha: torch.Tensor, p: NeuronParams) -> tuple[torch.Tensor, NeuronState]:
    """Eqs. (2)-(5) for an already integrated (and possibly normalised) potential ``u``."""
    s = spike(u, p)
    return (s if p.spiking else _analog(u, p)), _reset_leak(u, s, alpha, p)


def liaf_step(
    x: torch.Tensor, state: NeuronState | None, alpha: torch.Tensor, p: NeuronParams
) -> tuple[torch.Tensor, NeuronState]:
    """One step, eqs. (1)-(5). ``state=None`` is the zero state (``U^0 = I^0``)."""
    u = x if state is None else x + state.v
    return neuron_step(u, alpha, p)


def lif_step(
    x: torch.Tensor, state: NeuronState | None, alpha: torch.Tensor, p: NeuronParams
) -> tuple[torch.Tensor, NeuronState]:
    """:func:`liaf_step` with spike output, whatever ``p.output`` says."""
    return liaf_step(x, state, alpha, p._replace(output="spike"))


class Trace(NamedTuple):
    """Per-step record of one neuron layer, each ``[T, ...]``, detached from the graph.

    ``u``: the potential ``U^t`` the neuron fired on (after integration and any normalisation, before
    reset); ``s``: the spikes ``S^t`` (0/1); ``y``: the neuron's output ``Y^t`` (eq. (3)).
    """

    u: torch.Tensor
    s: torch.Tensor
    y: torch.Tensor


# potential(t, V^{t-1} or None, previous loop output or None) -> U^t
Potential = Callable[[int, NeuronState | None, torch.Tensor | None], torch.Tensor]
# readout(U^t, Y^t, carry or None) -> (loop output at t, carry for t + 1)
Readout = Callable[[torch.Tensor, torch.Tensor, object], tuple[torch.Tensor, object]]


def neuron_loop(
    potential: Potential,
    steps: int,
    alpha: torch.Tensor,
    p: NeuronParams,
    readout: Readout | None = None,
    record: bool = False,
) -> tuple[torch.Tensor, Trace | None]:
    """The one per-step neuron loop, with autograd through every step.

    For ``t = 0 .. steps - 1``: ``U^t = potential(t, state, out)``, where ``state`` is the neuron state
    ``V^{t-1}`` (``None`` at ``t = 0``, the zero state) and ``out`` the loop's previous output (``None``
    at ``t = 0``); then fire, output, reset and leak (eqs. (2)-(5)) with decay ``alpha`` (cast to
    ``U``'s dtype). The step's output is the neuron output ``Y^t``, or ``readout(U^t, Y^t, carry)``,
    which also returns a carry for the next step (e.g. an LSTM cell state; ``None`` at ``t = 0``).

    Returns ``(outputs [steps, ...], trace)``; ``trace`` is a :class:`Trace` when ``record`` is true,
    else ``None``. Raises ``ValueError`` for ``steps < 1``.
    """
    if steps < 1:
        raise ValueError(f"neuron_loop needs at least one step, got steps={steps}")
    state: NeuronState | None = None
    out: torch.Tensor | None = None
    carry: object = None
    outputs, us, ss, ys = [], [], [], []
    for t in range(steps):
        u = potential(t, state, out)
        if t == 0:
            alpha = alpha.to(u.dtype)
        s = spike(u, p)
        y = s if p.spiking else _analog(u, p)
        state = _reset_leak(u, s, alpha, p)
        if readout is None:
            out = y
        else:
            out, carry = readout(u, y, carry)
        outputs.append(out)
        if record:
            us.append(u.detach())
            ss.append(s.detach())
            ys.append(y.detach())
    trace = Trace(torch.stack(us), torch.stack(ss), torch.stack(ys)) if record else None
    return torch.stack(outputs), trace


def integrate(x: torch.Tensor) -> Potential:
    """Eq. (1) over a synaptic input ``x [T, ...]``: ``U^t = I^t + V^{t-1}``, for :func:`neuron_loop`."""
    return lambda t, state, out: x[t] if state is None else x[t] + state.v


def liaf_multistep_reference(x: torch.Tensor, alpha: torch.Tensor, p: NeuronParams) -> torch.Tensor:
    """:func:`neuron_loop` over ``x [T, ...]`` with autograd: the oracle for :func:`liaf_multistep`."""
    return neuron_loop(integrate(x), x.shape[0], alpha, p)[0]


# ------------------------------------------------------------------------------- fused kernel


def _fired(u: torch.Tensor, p: NeuronParams) -> torch.Tensor:
    return u >= p.threshold if p.fire_ge else u > p.threshold


def _analog(u: torch.Tensor, p: NeuronParams) -> torch.Tensor:
    y = p.act(u - p.threshold if p.output == "tr" else u)
    return y.clamp(0.0, 1.0) if p.clamp else y


def _output(u: torch.Tensor, p: NeuronParams) -> torch.Tensor:
    return _fired(u, p).to(u.dtype) if p.spiking else _analog(u, p)


def _output_backward(grad_y: torch.Tensor, u: torch.Tensor, p: NeuronParams) -> torch.Tensor:
    """grad_y * dY/dU for eq. (3)."""
    if p.spiking:
        return grad_y * p.surrogate.grad(u, p.threshold)
    z = u - p.threshold if p.output == "tr" else u
    if p.clamp:
        a = p.act(z)
        grad_y = grad_y * ((a >= 0) & (a <= 1)).to(grad_y.dtype)
    return p.act.backward(grad_y, z)


def _keep_into(u: torch.Tensor, p: NeuronParams, out: torch.Tensor) -> torch.Tensor:
    """1.0 where the neuron did not fire, as a float mask written into ``out``."""
    return torch.lt(u, p.threshold, out=out) if p.fire_ge else torch.le(u, p.threshold, out=out)


def _reset_into(u: torch.Tensor, keep: torch.Tensor, p: NeuronParams, out: torch.Tensor) -> torch.Tensor:
    """R of eq. (4) from the float mask ``keep`` into ``out`` (which may be ``keep`` itself)."""
    if p.reset == "hard":
        if p.v_reset == 0:
            return torch.mul(u, keep, out=out)
        return torch.addcmul(torch.full_like(u, p.v_reset), u - p.v_reset, keep, out=out)
    torch.add(u, keep, alpha=p.threshold, out=out)  # soft: u - theta * (1 - keep)
    return out.sub_(p.threshold)


def _reset_derivative(u: torch.Tensor, keep: torch.Tensor, p: NeuronParams) -> torch.Tensor:
    """dR/dU of eq. (4) given the float mask ``keep``; the surrogate term only when not detached."""
    if p.reset == "hard":
        return keep if p.detach_reset else keep - p.surrogate.grad(u, p.threshold) * (u - p.v_reset)
    return torch.ones_like(u) if p.detach_reset else 1 - p.surrogate.grad(u, p.threshold) * p.threshold


def membrane_potential(x: torch.Tensor, alpha: torch.Tensor, p: NeuronParams) -> torch.Tensor:
    """The potentials ``U [T, ...]`` of eqs. (1)-(5) for synaptic input ``x [T, ...]``, without autograd
    bookkeeping: the forward recurrence of the fused kernel (also used to measure firing rates).

    ``alpha`` must already have ``x``'s dtype and device. Writes into one preallocated ``U`` and two
    per-step buffers: fresh CPU allocations page-fault and cost more than the arithmetic.
    """
    u = torch.empty_like(x)
    u[0] = x[0]
    keep, reset = torch.empty_like(x[0]), torch.empty_like(x[0])
    # Default case on CPU: U^t = I^t + alpha * keep * U^{t-1} in two ops per step instead of three
    # (each op is a parallel region, and their count dominates on busy CPUs); reading alpha as a
    # number would force a device sync on CUDA, so other devices take the general path.
    two_ops = x.device.type == "cpu" and alpha.dim() == 0 and p.reset == "hard" and p.v_reset == 0
    scalar_alpha = float(alpha) if two_ops else 0.0
    for t in range(1, x.shape[0]):
        if two_ops:
            torch.addcmul(x[t], u[t - 1], _keep_into(u[t - 1], p, keep), value=scalar_alpha, out=u[t])
        else:
            _reset_into(u[t - 1], _keep_into(u[t - 1], p, keep), p, reset)
            torch.addcmul(x[t], reset, alpha, out=u[t])
        if p.beta:
            u[t] += p.beta
    return u


class _LIAFMultiStep(torch.autograd.Function):
    """Whole-sequence LIAF/LIF layer with a hand-written backward.

    Saves only ``U [T, ...]``: spikes, resets and output derivatives are recomputed from it in
    backward, vectorised over T, so the only sequential work there is one fused multiply-add per step,
    gU^t = dY/dU^t gY^t + alpha dR/dU^t gU^{t+1} (and dL/dI^t = gU^t). Per-step work writes into
    preallocated buffers: fresh CPU allocations page-fault and cost more than the arithmetic.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor, p: NeuronParams) -> torch.Tensor:
        u = membrane_potential(x, alpha, p)
        ctx.save_for_backward(u, alpha)
        ctx.p = p
        return _output(u, p)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        u, alpha = ctx.saved_tensors
        p = ctx.p
        grad_u = _output_backward(grad_y, u, p)  # becomes dL/dU in place
        steps = u.shape[0]
        if steps == 1:
            return grad_u, torch.zeros_like(alpha) if ctx.needs_input_grad[1] else None, None
        u_prev = u[:-1]
        keep = _keep_into(u_prev, p, torch.empty_like(u_prev))
        carry = _reset_derivative(u_prev, keep, p)  # dR/dU; the mask itself in the default case
        # On CPU a scalar alpha rides along as the multiply-add's coefficient (no extra pass, and the
        # mask stays intact for the decay gradient); elsewhere it is folded into the carry.
        scalar_alpha = float(alpha) if u.device.type == "cpu" and alpha.dim() == 0 else None
        if scalar_alpha is None:
            carry = carry.mul_(alpha) if carry is keep else carry * alpha
        for t in range(steps - 2, -1, -1):
            grad_u[t].addcmul_(carry[t], grad_u[t + 1], value=1.0 if scalar_alpha is None else scalar_alpha)
        grad_alpha = None
        if ctx.needs_input_grad[1]:
            if carry is keep and scalar_alpha is None:  # the mask was scaled in place: recompute it
                _keep_into(u_prev, p, keep)
            reset_prev = _reset_into(u_prev, keep, p, keep)
            if alpha.dim() == 0:
                grad_alpha = torch.vdot(grad_u[1:].reshape(-1), reset_prev.reshape(-1))
            else:
                grad_alpha = (grad_u[1:] * reset_prev).sum_to_size(alpha.shape)
        return grad_u, grad_alpha, None


def liaf_multistep(x: torch.Tensor, alpha: torch.Tensor, p: NeuronParams) -> torch.Tensor:
    """Run ``x [T, ...]`` (synaptic input) from the zero state; returns ``Y [T, ...]``.

    ``alpha`` is a tensor broadcastable to ``x[0]`` (a scalar, or e.g. ``[C, 1, 1]`` per channel); it
    gets a gradient when it requires one. Eager calls run the fused kernel; under ``torch.compile``
    and ``torch.export`` the per-step loop (:func:`liaf_multistep_reference`) is traced instead.
    CUDA tensors run the Triton kernel (:mod:`liafnet.kernels.triton_liaf`), eagerly and under
    ``torch.compile``; ``torch.export`` keeps the portable per-step loop.
    """
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"liaf_multistep needs a time-first input [T, ...] with T >= 1, got {tuple(x.shape)}")
    alpha = alpha.to(dtype=x.dtype, device=x.device)
    if x.is_cuda and not torch.compiler.is_exporting():  # one Triton launch each way over all T
        from liafnet.kernels import triton_liaf  # (docs/neurons.md); imported on first CUDA call
        if triton_liaf.supports(x, p):
            return triton_liaf.liaf_multistep_triton(x, alpha, p)
    if torch.compiler.is_compiling() or torch.compiler.is_exporting():
        # Under torch.compile / torch.export the per-step loop traces into one functional graph
        # whose backward (AOTAutograd) is the oracle's; the kernel's in-place buffers and its reading
        # of alpha as a Python number would break or fail the trace.
        return liaf_multistep_reference(x, alpha, p)
    return _LIAFMultiStep.apply(x, alpha, p)


# ----------------------------------------------------------------------- options -> objects


class Decay(NamedTuple):
    """How the leak ``alpha`` is obtained: learnable ``sigmoid(d)`` from ``d0`` (authors), or fixed."""

    learnable: bool = True
    d0: float = 0.5
    alpha: float = 0.3
    per_channel: bool = False


class NeuronConfig(NamedTuple):
    params: NeuronParams
    decay: Decay
    impl: str  # "fused" | "reference"


@dataclass
class LIFNeuronOptions(Options):
    """Flat model-config keys of a spiking (LIF) neuron; one home for each default and check.

    Defaults are the authors' early-2021 code (docs/neurons.md has the option table).
    """

    threshold: float = option(0.5, doc="firing threshold theta")
    fire: str = option("gt", choices=("gt", "ge"), doc="gt: U > theta | ge: U >= theta")
    reset: str = option("hard", choices=RESETS, doc="hard: to v_reset | soft: subtract theta")
    v_reset: float = option(0.0, doc="hard-reset potential")
    reset_grad: str = option("detach", choices=("detach", "surrogate"),
                             doc="detach: the reset mask carries no gradient (authors) | surrogate")
    beta: float = option(0.0, doc="additive leak")
    decay: str = option("learnable", choices=("learnable", "fixed"),
                        doc="learnable: alpha = sigmoid(d), d from decay_d0 | fixed: alpha = decay_alpha")
    decay_d0: float = option(0.5)
    decay_alpha: float = option(0.3, ge=0)
    decay_per: str = option("layer", choices=("layer", "channel"))
    surrogate: str = option("rectangle", choices=("rectangle", "gaussian"),
                            doc="surrogate dS/dU, used by LIF outputs and reset_grad=surrogate")
    surrogate_centre: float | None = option(
        None, doc="rectangle: |U - centre| < half_width -> height; None: centre = threshold")
    surrogate_half_width: float = option(0.5, gt=0)
    surrogate_height: float = option(1.0, gt=0)
    surrogate_sigma: float = option(1.0, gt=0, doc="gaussian: N(threshold + offset, sigma^2)")
    surrogate_offset: float = option(0.2)
    impl: str = option("fused", choices=("fused", "reference"),
                       doc="fused | reference (per-step autograd loop, for checks)")


@dataclass
class LIAFNeuronOptions(LIFNeuronOptions):
    """:class:`LIFNeuronOptions` plus the analog-output keys of a LIAF neuron."""

    output_mode: str = option("ntr", choices=("ntr", "tr"), doc="ntr: Act(U) | tr: Act(U - threshold)")
    act: str = option("selu", choices=("selu", "relu", "leaky_relu"))
    leaky_slope: float = option(0.2, doc="leaky_relu only")
    clamp: bool = option(False, doc="clamp outputs to [0, 1] (authors' HEAD 'ReLU1')")


def neuron_options(spiking: bool) -> type[LIFNeuronOptions]:
    """The option schema of a LIF (``spiking=True``) or LIAF neuron."""
    return LIFNeuronOptions if spiking else LIAFNeuronOptions


def neuron_config(spiking: bool, **options) -> NeuronConfig:
    """Turn flat config values (keys of :class:`LIAFNeuronOptions`) into a :class:`NeuronConfig`.

    ``spiking=True`` builds a LIF neuron (:class:`LIFNeuronOptions`: the analog-output keys are then
    unknown). Raises :class:`liafnet.schema.OptionError` (a ``ValueError``) naming ``model.<key>``.
    """
    o = neuron_options(spiking).parse(options, prefix="model.")
    analog = not spiking
    act = None
    if analog:
        act = {"selu": SELU(), "relu": ReLU()}.get(o.act) or LeakyReLU(o.leaky_slope)
    if o.surrogate == "rectangle":
        surrogate: Surrogate = Rectangle(o.surrogate_centre, o.surrogate_half_width, o.surrogate_height)
    else:
        surrogate = Gaussian(o.surrogate_sigma, o.surrogate_offset)
    params = NeuronParams(
        output=o.output_mode if analog else "spike",
        clamp=o.clamp if analog else False,
        threshold=o.threshold,
        fire_ge=o.fire == "ge",
        reset=o.reset,
        v_reset=o.v_reset,
        detach_reset=o.reset_grad == "detach",
        beta=o.beta,
        surrogate=surrogate,
        **({"act": act} if analog else {}),
    )
    decay = Decay(learnable=o.decay == "learnable", d0=o.decay_d0, alpha=o.decay_alpha,
                  per_channel=o.decay_per == "channel")
    return NeuronConfig(params, decay, o.impl)
