"""The LIAF/LIF layer over a whole ``[T, ...]`` sequence as one Triton kernel launch each way.

:func:`liaf_multistep_triton` computes what :func:`liafnet.neurons.liaf_multistep` does
(eqs. (1)-(5) there, every :class:`~liafnet.neurons.NeuronParams` option) as two launches:

- forward: one launch; each program walks T steps for its neurons, keeping ``V`` in registers, and
  writes ``Y`` and ``U`` (``U`` only when a gradient will be needed);
- backward: one launch over the saved ``U`` in reverse time, recomputing spikes, resets, ``Act'`` and
  the surrogate in registers, writing ``dL/dI`` and a per-neuron partial decay gradient that is then
  summed to ``alpha``'s shape.

So a training step reads and writes every activation three times each way (forward: I, Y, U;
backward: U, dL/dY, dL/dI) and saves one tensor of the input's size and dtype. Saving ``U`` beats
saving ``I`` and recomputing ``U``: the reverse-time backward needs every ``U^t`` before it can start.

dtypes: float32, bfloat16 and float16 compute in float32 registers; float64 in float64 (exact checks).
``U`` is rounded to the input dtype every step, so the backward's recomputed spikes are the forward's.

The two launches are registered as PyTorch custom ops (``liafnet::liaf_forward``,
``liafnet::liaf_backward``) with fake (meta) implementations and autograd, so ``torch.compile``,
``torch.export`` and CUDA-graph capture see one opaque node per direction and no host syncs.

On CUDA tensors the kernels are compiled; on CPU tensors they run in Triton's interpreter (slow; for
tests without a GPU). docs/neurons.md says what has been measured on a GPU (nothing yet) and how
to run the GPU check.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import os
from functools import cache
from pathlib import Path
from typing import NamedTuple

import torch

try:
    import triton
except ImportError:  # the `triton` extra is optional; liafnet.neurons then keeps its own path
    triton = None

# LIAFNET_TRITON=0 keeps liafnet.neurons.liaf_multistep on its torch path on CUDA too (checks, A/B
# benchmarks); read once at import, and the attribute can be set at run time.
ENABLED = os.environ.get("LIAFNET_TRITON", "1") != "0"
DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
# Neurons per program (and 4 warps): 4 consecutive fp32 values per thread, one 16-byte access.
BLOCK, NUM_WARPS = 512, 4
_OUTPUTS = {"ntr": 0, "tr": 1, "spike": 2}
# Activations and surrogates by their ``name`` (liafnet.neurons): the kernel reads NeuronParams by its
# fields and these names and does not import liafnet.neurons, which dispatches to it (no import circle).
_ACTS = {"selu": 0, "relu": 1, "leaky_relu": 2}
_SURROGATES = {"rectangle": 0, "gaussian": 1}
_RESETS = ("hard", "soft")
# The NeuronParams fields the kernel implements; a params type with other fields is not supported
# (supports() is False) rather than silently ignored.
_KNOWN_FIELDS = ("output", "act", "clamp", "threshold", "fire_ge", "reset", "v_reset", "detach_reset",
                 "beta", "surrogate")


def available() -> bool:
    """True when Triton can be imported."""
    return triton is not None


def supports(x: torch.Tensor, p) -> bool:
    """Whether :func:`liafnet.neurons.liaf_multistep` should hand this input and these options to
    :func:`liaf_multistep_triton` (False when disabled by :data:`ENABLED`). ``p``: a
    :class:`liafnet.neurons.NeuronParams`."""
    return ENABLED and available() and x.dtype in DTYPES and _implements(p)


def _implements(p) -> bool:
    return (tuple(p._fields) == _KNOWN_FIELDS and p.output in _OUTPUTS and getattr(p.act, "name", None) in _ACTS
            and p.reset in _RESETS and getattr(p.surrogate, "name", None) in _SURROGATES)


class KernelOptions(NamedTuple):
    """NeuronParams flattened to the custom ops' scalar arguments (the kernels' constexprs)."""

    output: int  # 0 NTR, 1 TR, 2 spike
    act: int  # 0 SELU, 1 ReLU, 2 LeakyReLU
    slope: float
    clamp: bool
    threshold: float
    fire_ge: bool
    soft_reset: bool
    v_reset: float
    detach_reset: bool
    beta: float
    surrogate: int  # 0 rectangle, 1 Gaussian
    sg_centre: float
    sg_width: float  # rectangle half-width or Gaussian sigma
    sg_scale: float  # rectangle height or the Gaussian's 1 / (sigma sqrt(2 pi))


def kernel_options(p) -> KernelOptions:
    """The kernel's view of ``p`` (a :class:`liafnet.neurons.NeuronParams`); raises
    ``NotImplementedError`` for options it does not know."""
    if not _implements(p):
        raise NotImplementedError(f"the Triton LIAF kernel does not implement {p}")
    s = p.surrogate
    if s.name == "rectangle":
        surrogate = (_SURROGATES["rectangle"], _rectangle_centre(s, p.threshold), s.half_width, s.height)
    else:  # Gaussian
        surrogate = (_SURROGATES["gaussian"], p.threshold + s.offset, s.sigma,
                     1.0 / (s.sigma * math.sqrt(2.0 * math.pi)))
    return KernelOptions(
        _OUTPUTS[p.output], _ACTS[p.act.name], float(getattr(p.act, "slope", 0.0)), bool(p.clamp),
        float(p.threshold), bool(p.fire_ge), p.reset == "soft", float(p.v_reset), bool(p.detach_reset),
        float(p.beta), surrogate[0], *map(float, surrogate[1:]))


def _rectangle_centre(s, threshold: float) -> float:
    """Where the rectangle window sits, as :meth:`liafnet.neurons.Rectangle.grad` places it: on the
    threshold when ``centre`` is None, else on ``centre``."""
    return threshold if s.centre is None else s.centre


# --------------------------------------------------------------------------------------- kernels


@cache
def _kernels(interpret: bool):
    """The kernel module compiled for the GPU, or built for Triton's CPU interpreter.

    Triton's ``jit`` picks the mode from ``TRITON_INTERPRET`` when the decorator runs, so the
    interpreted copy is a second import of the same file under another module name with that
    variable set meanwhile (the documented switch, read by every Triton 3.x).
    """
    if triton is None:
        raise RuntimeError("the Triton LIAF kernel needs Triton: pip install 'liafnet[triton]'")
    if not interpret:
        return importlib.import_module("liafnet.kernels._liaf_triton")
    path = Path(__file__).with_name("_liaf_triton.py")
    spec = importlib.util.spec_from_file_location("liafnet.kernels._liaf_triton_interpreted", path)
    module = importlib.util.module_from_spec(spec)
    previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = previous
    return module


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _triton_dtype(dtype: torch.dtype):
    return triton.language.float64 if dtype == torch.float64 else triton.language.float32


class _AlphaLayout(NamedTuple):
    values: torch.Tensor  # contiguous, 1-D
    scalar: bool
    channels: int  # neuron n uses values[(n // inner) % channels]
    inner: int


def _alpha_layout(alpha: torch.Tensor, step_shape: torch.Size) -> _AlphaLayout:
    """Index ``alpha`` (broadcastable to one step) per neuron without materialising it when its
    non-1 dimensions are one block matching the step's (per layer, per channel); else expand it."""
    if alpha.numel() == 1:
        return _AlphaLayout(alpha.reshape(1), True, 1, 1)
    if alpha.dim() <= len(step_shape):
        shape = (1,) * (len(step_shape) - alpha.dim()) + tuple(alpha.shape)
        dims = [i for i, size in enumerate(shape) if size != 1]
        lo, hi = dims[0], dims[-1] + 1
        if all(shape[i] == step_shape[i] for i in range(lo, hi)):
            return _AlphaLayout(alpha.contiguous().reshape(-1), False, math.prod(step_shape[lo:hi]),
                                math.prod(step_shape[hi:]))
    expanded = alpha.expand(step_shape).contiguous().reshape(-1)  # torch's broadcasting error if not
    return _AlphaLayout(expanded, False, expanded.numel(), 1)


def forward_constexprs(o: KernelOptions, dtype: torch.dtype, alpha_scalar: bool, save_u: bool) -> dict:
    """The forward kernel's compile-time arguments for options ``o`` and input ``dtype``."""
    return dict(OUTPUT=o.output, ACT=o.act, SLOPE=o.slope, CLAMP=o.clamp, THETA=o.threshold,
                FIRE_GE=o.fire_ge, SOFT_RESET=o.soft_reset, V_RESET=o.v_reset, BETA=o.beta,
                ALPHA_SCALAR=alpha_scalar, SAVE_U=save_u, CDT=_triton_dtype(dtype), BLOCK=BLOCK)


def backward_constexprs(o: KernelOptions, dtype: torch.dtype, alpha_scalar: bool, alpha_grad: bool) -> dict:
    """The backward kernel's compile-time arguments for options ``o`` and input ``dtype``."""
    return dict(OUTPUT=o.output, ACT=o.act, SLOPE=o.slope, CLAMP=o.clamp, THETA=o.threshold,
                FIRE_GE=o.fire_ge, SOFT_RESET=o.soft_reset, V_RESET=o.v_reset, DETACH_RESET=o.detach_reset,
                SURROGATE=o.surrogate, SG_CENTRE=o.sg_centre, SG_WIDTH=o.sg_width, SG_SCALE=o.sg_scale,
                ALPHA_SCALAR=alpha_scalar, ALPHA_GRAD=alpha_grad, CDT=_triton_dtype(dtype), BLOCK=BLOCK)


# Launch settings; floating-point contraction (FMA) stays on, as in torch's own CUDA kernels (and
# named, so Triton >= 3.9 does not warn about its default).
LAUNCH = dict(num_warps=NUM_WARPS, enable_fp_fusion=True)


def _device_of(t: torch.Tensor):
    """Triton launches on the current CUDA device: make it the tensor's (several GPUs, one process)."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


# ------------------------------------------------------------------------------------ custom ops


@torch.library.custom_op("liafnet::liaf_forward", mutates_args=())
def liaf_forward(
    x: torch.Tensor, alpha: torch.Tensor, output: int, act: int, slope: float, clamp: bool,
    threshold: float, fire_ge: bool, soft_reset: bool, v_reset: float, detach_reset: bool, beta: float,
    surrogate: int, sg_centre: float, sg_width: float, sg_scale: float, save_u: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Y, U)`` for ``x [T, ...]``; ``U`` is empty unless ``save_u``. Arguments after ``alpha``
    are :class:`KernelOptions`."""
    o = KernelOptions(output, act, slope, clamp, threshold, fire_ge, soft_reset, v_reset, detach_reset,
                      beta, surrogate, sg_centre, sg_width, sg_scale)
    x = x.contiguous()
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    u = torch.empty(x.shape, dtype=x.dtype, device=x.device) if save_u else x.new_empty(0)
    steps, n = x.shape[0], x[0].numel()
    if n == 0:
        return y, u
    a = _alpha_layout(alpha.to(x.dtype), x.shape[1:])
    with _device_of(x):
        _kernels(x.device.type == "cpu").liaf_forward_kernel[(triton.cdiv(n, BLOCK),)](
            x, a.values, y, u if save_u else y, steps, n, a.channels, a.inner,
            **forward_constexprs(o, x.dtype, a.scalar, save_u), **LAUNCH)
    return y, u


@liaf_forward.register_fake
def _(x, alpha, *options_and_save_u):
    save_u = options_and_save_u[-1]
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    return y, (torch.empty_like(y) if save_u else x.new_empty(0))


@torch.library.custom_op("liafnet::liaf_backward", mutates_args=())
def liaf_backward(
    grad_y: torch.Tensor, u: torch.Tensor, alpha: torch.Tensor, output: int, act: int, slope: float,
    clamp: bool, threshold: float, fire_ge: bool, soft_reset: bool, v_reset: float, detach_reset: bool,
    beta: float, surrogate: int, sg_centre: float, sg_width: float, sg_scale: float, alpha_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL/dI, dL/dalpha)`` from ``dL/dY`` and the saved ``U``; ``dL/dalpha`` is zero unless
    ``alpha_grad``."""
    o = KernelOptions(output, act, slope, clamp, threshold, fire_ge, soft_reset, v_reset, detach_reset,
                      beta, surrogate, sg_centre, sg_width, sg_scale)
    grad_y = grad_y.to(u.dtype).contiguous()
    grad_x = torch.empty(u.shape, dtype=u.dtype, device=u.device)
    steps, n = u.shape[0], u[0].numel()
    if n == 0 or not alpha_grad:
        grad_alpha = torch.zeros(alpha.shape, dtype=alpha.dtype, device=alpha.device)
    if n == 0:
        return grad_x.zero_(), grad_alpha
    a = _alpha_layout(alpha.to(u.dtype), u.shape[1:])
    per_neuron = torch.empty(n if alpha_grad else 0, dtype=_compute_dtype(u.dtype), device=u.device)
    with _device_of(u):
        _kernels(u.device.type == "cpu").liaf_backward_kernel[(triton.cdiv(n, BLOCK),)](
            grad_y, u, a.values, grad_x, per_neuron if alpha_grad else grad_x, steps, n, a.channels,
            a.inner, **backward_constexprs(o, u.dtype, a.scalar, alpha_grad), **LAUNCH)
    if alpha_grad:
        grad_alpha = per_neuron.view(u.shape[1:]).sum_to_size(alpha.shape).to(alpha.dtype)
    return grad_x, grad_alpha


@liaf_backward.register_fake
def _(grad_y, u, alpha, *options_and_alpha_grad):
    return (torch.empty(u.shape, dtype=u.dtype, device=u.device),
            torch.empty(alpha.shape, dtype=alpha.dtype, device=alpha.device))


def _setup_context(ctx, inputs, output):
    _, alpha, *options, _save_u = inputs
    ctx.options = options
    ctx.save_for_backward(output[1], alpha)
    ctx.mark_non_differentiable(output[1])


def _backward(ctx, grad_y, _grad_u):
    u, alpha = ctx.saved_tensors
    alpha_grad = ctx.needs_input_grad[1]
    grad_x, grad_alpha = liaf_backward(grad_y, u, alpha, *ctx.options, alpha_grad)
    return (grad_x, grad_alpha if alpha_grad else None) + (None,) * (len(ctx.options) + 1)


torch.library.register_autograd("liafnet::liaf_forward", _backward, setup_context=_setup_context)


def liaf_multistep_triton(x: torch.Tensor, alpha: torch.Tensor, p) -> torch.Tensor:
    """:func:`liafnet.neurons.liaf_multistep` through the Triton kernels: ``x [T, ...]`` (T >= 1)
    from the zero state to ``Y [T, ...]``, in ``x``'s dtype (float32, bfloat16, float16, float64).

    ``alpha`` broadcasts to one step (scalar, or e.g. ``[C, 1, 1]``) and is cast to ``x``'s dtype; it
    gets a gradient when it requires one. ``U`` is saved only when a gradient is needed.
    Raises ``TypeError`` for other dtypes and ``NotImplementedError`` for options the kernel lacks.
    """
    if x.dtype not in DTYPES:
        raise TypeError(f"the Triton LIAF kernel takes {', '.join(map(str, DTYPES))}; got {x.dtype}")
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"liaf_multistep_triton needs a time-first input [T, ...] with T >= 1, got {tuple(x.shape)}")
    save_u = torch.is_grad_enabled() and (x.requires_grad or alpha.requires_grad)
    y, _ = liaf_forward(x, alpha, *kernel_options(p), save_u)
    return y
