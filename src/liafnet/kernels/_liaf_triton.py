"""Triton kernels for the LIAF/LIF layer over a whole ``[T, N]`` sequence (host code: triton_liaf.py).

Each program owns ``BLOCK`` neurons and walks the T steps in registers: the forward carries the
leaked potential ``V``, the backward carries ``dL/dU^{t+1}`` and the neuron's partial decay gradient.
The equations and their numbering are those of :mod:`liafnet.neurons`. Every neuron option is a
``tl.constexpr``, so each option set compiles to straight-line code; float options are constexpr
too because runtime float arguments are float32 in Triton, and float64 must stay exact.

Arithmetic runs in ``CDT``: float32 for float32/bfloat16/float16 inputs, float64 for float64. ``U``
is rounded to the storage dtype every step (a no-op for float32/float64), so the spikes that the
backward recomputes from the saved ``U`` are exactly the forward's.

This file is imported twice by triton_liaf.py: once compiled for the GPU, once for Triton's CPU
interpreter (the jit decorator picks the mode at import time). Triton's own library functions
(``tl.zeros``, ``tl.sum``, ...) were decorated when Triton was imported, in the compiled mode, so the
kernels call only Triton builtins (``tl.full``, ``tl.where``, ``tl.exp``, ...), which both modes share.
"""

import triton
import triton.language as tl

_SELU_ALPHA = tl.constexpr(1.6732632423543772848170429916717)
_SELU_SCALE = tl.constexpr(1.0507009873554804934193349852946)


@triton.jit
def _fired(u, THETA: tl.constexpr, FIRE_GE: tl.constexpr):
    """Eq. (2), S^t as a boolean."""
    if FIRE_GE:
        return u >= THETA
    else:
        return u > THETA


@triton.jit
def _act(z, ACT: tl.constexpr, SLOPE: tl.constexpr):
    """SELU (0), ReLU (1) or LeakyReLU (2), as torch.nn.functional computes them."""
    if ACT == 0:
        return tl.where(z > 0, _SELU_SCALE * z, (_SELU_SCALE * _SELU_ALPHA) * (tl.exp(z) - 1))
    elif ACT == 1:
        return tl.maximum(z, 0)
    else:
        return tl.where(z > 0, z, z * SLOPE)


@triton.jit
def _act_backward(grad, z, ACT: tl.constexpr, SLOPE: tl.constexpr):
    """grad * Act'(z) in the order ATen's elu/threshold/leaky_relu backward use (Act'(0) from z <= 0)."""
    if ACT == 0:
        return tl.where(z > 0, grad * _SELU_SCALE, grad * (_SELU_SCALE * _SELU_ALPHA) * tl.exp(z))
    elif ACT == 1:
        return tl.where(z > 0, grad, 0)
    else:
        return tl.where(z > 0, grad, grad * SLOPE)


@triton.jit
def _surrogate(u, SURROGATE: tl.constexpr, SG_CENTRE: tl.constexpr, SG_WIDTH: tl.constexpr,
               SG_SCALE: tl.constexpr):
    """dS/dU: rectangle (0) SG_SCALE where |u - SG_CENTRE| < SG_WIDTH; Gaussian (1)
    SG_SCALE * exp(-((u - SG_CENTRE) / SG_WIDTH)^2 / 2)."""
    if SURROGATE == 0:
        return tl.where(tl.abs(u - SG_CENTRE) < SG_WIDTH, 1.0, 0.0).to(u.dtype) * SG_SCALE
    else:
        z = (u - SG_CENTRE) / SG_WIDTH
        return tl.exp(-0.5 * z * z) * SG_SCALE


@triton.jit
def _load_alpha(alpha_ptr, offs, mask, ALPHA_SCALAR: tl.constexpr, C, INNER, CDT: tl.constexpr):
    """The decay of each neuron: one value, or alpha[(n // INNER) % C] (e.g. per channel)."""
    if ALPHA_SCALAR:
        return tl.load(alpha_ptr).to(CDT)
    else:
        return tl.load(alpha_ptr + (offs // INNER) % C, mask=mask, other=0).to(CDT)


@triton.jit
def liaf_forward_kernel(
    x_ptr, alpha_ptr, y_ptr, u_ptr, T, N, C, INNER,
    OUTPUT: tl.constexpr, ACT: tl.constexpr, SLOPE: tl.constexpr, CLAMP: tl.constexpr,
    THETA: tl.constexpr, FIRE_GE: tl.constexpr, SOFT_RESET: tl.constexpr, V_RESET: tl.constexpr,
    BETA: tl.constexpr, ALPHA_SCALAR: tl.constexpr, SAVE_U: tl.constexpr, CDT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Eqs. (1)-(5) for t = 0..T-1: reads I, writes Y and (when SAVE_U) U. OUTPUT: 0 NTR, 1 TR, 2 spike."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    alpha = _load_alpha(alpha_ptr, offs, mask, ALPHA_SCALAR, C, INNER, CDT)
    v = tl.full([BLOCK], 0, CDT)
    x_ptrs, y_ptrs, u_ptrs = x_ptr + offs, y_ptr + offs, u_ptr + offs
    for _ in range(T):
        x = tl.load(x_ptrs, mask=mask, other=0).to(CDT)
        u_store = (x + v).to(y_ptr.dtype.element_ty)  # (1), rounded as the saved U will be
        u = u_store.to(CDT)
        if SAVE_U:
            tl.store(u_ptrs, u_store, mask=mask)
        fired = _fired(u, THETA, FIRE_GE)
        if OUTPUT == 2:  # (3) LIF: the spike
            y = tl.where(fired, 1.0, 0.0).to(CDT)
        else:  # (3) LIAF: Act(U) (NTR) or Act(U - theta) (TR), optionally clamped to [0, 1]
            if OUTPUT == 1:
                y = _act(u - THETA, ACT, SLOPE)
            else:
                y = _act(u, ACT, SLOPE)
            if CLAMP:
                y = tl.minimum(tl.maximum(y, 0), 1)
        tl.store(y_ptrs, y.to(y_ptr.dtype.element_ty), mask=mask)
        if SOFT_RESET:  # (4)
            r = tl.where(fired, u - THETA, u)
        else:
            r = tl.where(fired, V_RESET, u).to(CDT)
        v = alpha * r  # (5)
        if BETA != 0:
            v = v + BETA
        x_ptrs += N
        y_ptrs += N
        u_ptrs += N


@triton.jit(do_not_specialize=["T"])  # T = 1 must stay a runtime integer: (T - 1).to(...) below
def liaf_backward_kernel(
    gy_ptr, u_ptr, alpha_ptr, gx_ptr, galpha_ptr, T, N, C, INNER,
    OUTPUT: tl.constexpr, ACT: tl.constexpr, SLOPE: tl.constexpr, CLAMP: tl.constexpr,
    THETA: tl.constexpr, FIRE_GE: tl.constexpr, SOFT_RESET: tl.constexpr, V_RESET: tl.constexpr,
    DETACH_RESET: tl.constexpr, SURROGATE: tl.constexpr, SG_CENTRE: tl.constexpr,
    SG_WIDTH: tl.constexpr, SG_SCALE: tl.constexpr, ALPHA_SCALAR: tl.constexpr,
    ALPHA_GRAD: tl.constexpr, CDT: tl.constexpr, BLOCK: tl.constexpr,
):
    """From t = T-1 down to 0, recomputing everything from the saved U:

    gU^t = dY/dU^t gY^t + alpha dR/dU^t gU^{t+1},  dL/dI^t = gU^t,  dL/dalpha_n = sum_t gU^{t+1} R^t.

    The per-neuron decay gradient goes to ``galpha_ptr [N]`` (CDT) when ALPHA_GRAD; the host sums
    it to alpha's shape.
    """
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    alpha = _load_alpha(alpha_ptr, offs, mask, ALPHA_SCALAR, C, INNER, CDT)
    g_next = tl.full([BLOCK], 0, CDT)  # gU^{t+1}; zero after the last step
    g_alpha = tl.full([BLOCK], 0, CDT)
    last = (T - 1).to(tl.int64) * N
    gy_ptrs, u_ptrs, gx_ptrs = gy_ptr + last + offs, u_ptr + last + offs, gx_ptr + last + offs
    for _ in range(T):
        u = tl.load(u_ptrs, mask=mask, other=0).to(CDT)
        gy = tl.load(gy_ptrs, mask=mask, other=0).to(CDT)
        fired = _fired(u, THETA, FIRE_GE)
        if OUTPUT == 2 or not DETACH_RESET:
            sg = _surrogate(u, SURROGATE, SG_CENTRE, SG_WIDTH, SG_SCALE)
        # dY/dU gY, eq. (3)
        if OUTPUT == 2:
            g = gy * sg
        else:
            if OUTPUT == 1:
                z = u - THETA
            else:
                z = u
            if CLAMP:
                a = _act(z, ACT, SLOPE)
                gy = tl.where((a >= 0) & (a <= 1), gy, 0.0)
            g = _act_backward(gy, z, ACT, SLOPE)
        # dR/dU, eq. (4); the surrogate term only when the reset is not detached
        if SOFT_RESET:
            if DETACH_RESET:
                g = g + alpha * g_next
            else:
                g = g + alpha * (1 - sg * THETA) * g_next
        else:
            keep = tl.where(fired, 0.0, 1.0).to(CDT)
            if DETACH_RESET:
                g = g + alpha * keep * g_next
            else:
                g = g + alpha * (keep - sg * (u - V_RESET)) * g_next
        if ALPHA_GRAD:  # V^t = alpha R^t + beta feeds U^{t+1}
            if SOFT_RESET:
                r = tl.where(fired, u - THETA, u)
            else:
                r = tl.where(fired, V_RESET, u).to(CDT)
            g_alpha += g_next * r
        tl.store(gx_ptrs, g.to(gx_ptr.dtype.element_ty), mask=mask)
        g_next = g
        gy_ptrs -= N
        u_ptrs -= N
        gx_ptrs -= N
    if ALPHA_GRAD:
        tl.store(galpha_ptr + offs, g_alpha, mask=mask)
