"""The fused Triton LIAF/LIF kernel (liafnet.kernels.triton_liaf) equals the per-step reference.

Without a GPU the kernels run in Triton's CPU interpreter (CPU tensors), so CI checks them; the
tests marked ``cuda`` rerun the checks compiled on a GPU (benchmarks/gpu_check.sh). Tolerances
against the float64 reference: float64 1e-10 (exact up to rounding), float32 rtol/atol 1e-5,
float16 2e-3, bfloat16 1.6e-2 (outputs and all gradients); low-precision inputs are chosen on a
dyadic grid so that U is exact and the spike decisions are the reference's.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
import torch

triton = pytest.importorskip("triton", reason="Triton is not installed (pip install 'liafnet[triton]')")

from liafnet.kernels import triton_liaf  # noqa: E402
from liafnet.kernels.triton_liaf import liaf_multistep_triton  # noqa: E402
from liafnet.layers import ConvLIAF  # noqa: E402
from liafnet.neurons import (  # noqa: E402
    Gaussian,
    LeakyReLU,
    NeuronParams,
    Rectangle,
    ReLU,
    liaf_multistep,
    liaf_multistep_reference,
    neuron_config,
)

from tests.helpers import ANALOG_GRID, SPIKE_GRID, analog_params, spike_params  # noqa: E402

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _check(p: NeuronParams, decay: str = "layer", dtype=torch.float64, device="cpu", seed: int = 0,
           shape=(5, 2, 3, 2, 2)) -> None:
    """Kernel vs float64 reference: outputs, dL/dI, dL/dd (alpha = sigmoid(d), unless fixed)."""
    generator = torch.Generator().manual_seed(seed)
    if dtype == torch.float64 or dtype == torch.float32:
        x64 = 0.6 * torch.randn(shape, generator=generator, dtype=torch.float64) + 0.3
        d = 0.5 + 0.3 * torch.randn((shape[2], 1, 1) if decay == "channel" else (), generator=generator,
                                    dtype=torch.float64)
    else:  # dyadic inputs, alpha = 0.5: U is exact in half precision for a few steps
        x64 = torch.randint(-8, 9, shape, generator=generator).double() / 8
        d = torch.zeros((shape[2], 1, 1) if decay == "channel" else (), dtype=torch.float64)
    x64, d = x64.to(device), d.to(device).requires_grad_(decay != "fixed")
    x = x64.to(dtype).requires_grad_()
    x64.requires_grad_()
    if decay == "fixed":
        alpha, alpha64 = torch.full_like(d, 0.3, dtype=dtype), torch.full_like(d, 0.3)
    else:
        alpha, alpha64 = torch.sigmoid(d).to(dtype), torch.sigmoid(d)
    y = liaf_multistep_triton(x, alpha, p)
    reference = liaf_multistep_reference(x64, alpha64, p)
    tol = TOLERANCE[dtype]
    assert y.dtype == dtype and y.device == x.device
    torch.testing.assert_close(y.double(), reference, rtol=tol, atol=tol)
    grad_out = torch.randn(y.shape, generator=generator, dtype=torch.float64).to(device)
    grad_out = grad_out.to(dtype).double()  # the same values for both
    wrt, wrt64 = ((x, d), (x64, d)) if d.requires_grad else ((x,), (x64,))
    grads = torch.autograd.grad(y, wrt, grad_out.to(dtype))
    grads64 = torch.autograd.grad(reference, wrt64, grad_out)
    assert grads[0].dtype == dtype
    for name, got, expected in zip(("dL/dI", "dL/dd"), grads, grads64):
        torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol, msg=lambda m: f"{name}: {m}")
    spikes = liaf_multistep_reference(x64.detach(), alpha64.detach(), p._replace(output="spike"))
    assert 0 < spikes.sum() < spikes.numel()  # the dynamics are exercised: some fire, some do not


@pytest.mark.parametrize("output,act,clamp,fire_ge,reset,detach,beta", ANALOG_GRID)
def test_liaf_options_float64(output, act, clamp, fire_ge, reset, detach, beta):
    p = analog_params(output, act, clamp, fire_ge, reset, detach, beta)
    _check(p)


@pytest.mark.parametrize("surrogate,reset,detach,v_reset,decay", SPIKE_GRID)
def test_lif_options_float64(surrogate, reset, detach, v_reset, decay):
    p = spike_params(surrogate, reset, detach, v_reset)
    _check(p, decay=decay, seed=3)




@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16, torch.float16), ids=str)
@pytest.mark.parametrize("p", [
    NeuronParams(),
    NeuronParams(output="tr", act=LeakyReLU(0.2), clamp=True, reset="soft", detach_reset=False,
                 beta=0.125, surrogate=Gaussian()),
    NeuronParams(output="spike", v_reset=-0.25, detach_reset=False, fire_ge=True),
], ids=("default", "tr-soft-surrogate", "lif"))
def test_low_precision(p, dtype):
    _check(p, decay="channel", dtype=dtype, shape=(4, 2, 3, 4, 4))


@pytest.mark.parametrize("alpha_shape", ((), (1,), (3, 1, 1), (1, 3, 1, 1), (2, 3, 4, 5), (5,), (4, 1)),
                         ids=str)
def test_decay_shapes(alpha_shape):
    """Per layer, per channel, per neuron, and other broadcastable shapes, with their gradient."""
    generator = torch.Generator().manual_seed(11)
    x = (0.6 * torch.randn(6, 2, 3, 4, 5, generator=generator, dtype=torch.float64) + 0.3).requires_grad_()
    d = torch.randn(alpha_shape, generator=generator, dtype=torch.float64).requires_grad_()
    y = liaf_multistep_triton(x, torch.sigmoid(d), NeuronParams())
    reference = liaf_multistep_reference(x, torch.sigmoid(d), NeuronParams())
    torch.testing.assert_close(y, reference, rtol=0, atol=1e-10)
    grad_out = torch.randn(y.shape, generator=generator, dtype=torch.float64)
    for got, expected in zip(torch.autograd.grad(y, (x, d), grad_out),
                             torch.autograd.grad(reference, (x, d), grad_out)):
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_single_step_empty_and_strided_inputs():
    p = NeuronParams()
    x = torch.randn(1, 4, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(liaf_multistep_triton(x, torch.tensor(0.6, dtype=torch.float64), p), torch.selu(x))
    empty = torch.empty(3, 0, 2)
    assert liaf_multistep_triton(empty, torch.tensor(0.5), p).shape == (3, 0, 2)
    # a time-last tensor viewed time-first: not contiguous
    strided = (torch.randn(2, 7, 5, dtype=torch.float64) + 0.3).permute(2, 0, 1).requires_grad_()
    alpha = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    y = liaf_multistep_triton(strided, alpha, p)
    reference = liaf_multistep_reference(strided, alpha, p)
    torch.testing.assert_close(y, reference, rtol=0, atol=1e-10)
    grad_out = torch.randn_like(y)
    for got, expected in zip(torch.autograd.grad(y, (strided, alpha), grad_out),
                             torch.autograd.grad(reference, (strided, alpha), grad_out)):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_saves_only_u_and_only_for_backward():
    """One saved activation-sized tensor (U) besides alpha when a gradient is needed; none without."""
    x = torch.randn(5, 2, 3, 4, 4, requires_grad=True)
    alpha = torch.tensor(0.6, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = liaf_multistep_triton(x, alpha, NeuronParams())
    assert sorted(t.numel() for t in saved) == [1, x.numel()]
    u = next(t for t in saved if t.numel() == x.numel())
    assert u.dtype == x.dtype and not u.requires_grad
    with torch.no_grad():
        y_no_grad = liaf_multistep_triton(x, alpha, NeuronParams())
        _, u_skipped = torch.ops.liafnet.liaf_forward(x, alpha, *triton_liaf.kernel_options(NeuronParams()), False)
    torch.testing.assert_close(y_no_grad, y.detach(), rtol=0, atol=0)
    assert u_skipped.numel() == 0


def test_unsupported_inputs():
    with pytest.raises(TypeError, match="float32"):
        liaf_multistep_triton(torch.zeros(2, 3, dtype=torch.int32), torch.tensor(0.5), NeuronParams())
    with pytest.raises(ValueError, match="time-first"):
        liaf_multistep_triton(torch.zeros(0, 3), torch.tensor(0.5), NeuronParams())
    assert triton_liaf.supports(torch.zeros(2, 3), NeuronParams())
    assert not triton_liaf.supports(torch.zeros(2, 3, dtype=torch.int32), NeuronParams())
    # A params type with a field the kernel does not know (say an adaptive threshold) is refused.
    Extended = NamedTuple("Extended", [(name, object) for name in NeuronParams._fields] + [("adaptive", bool)])
    extended = Extended(*NeuronParams(), adaptive=True)
    assert not triton_liaf.supports(torch.zeros(2, 3), extended)
    with pytest.raises(NotImplementedError, match="does not implement"):
        triton_liaf.kernel_options(extended)


def test_cpu_dispatch_keeps_the_torch_path(monkeypatch):
    """On CPU liaf_multistep stays on its torch path; Triton is for CUDA tensors. ENABLED = False
    (LIAFNET_TRITON=0) turns the kernel off everywhere."""
    x = torch.randn(3, 4, requires_grad=True)
    assert "liaf_forward" not in liaf_multistep(x, torch.tensor(0.5), NeuronParams()).grad_fn.name()
    assert "liaf_forward" in liaf_multistep_triton(x, torch.tensor(0.5), NeuronParams()).grad_fn.name()
    monkeypatch.setattr(triton_liaf, "ENABLED", False)
    assert not triton_liaf.supports(x.cuda() if torch.cuda.is_available() else x, NeuronParams())


def test_custom_ops_opcheck():
    """Schema, fake (meta) implementation, autograd registration and AOT dispatch of both ops."""
    generator = torch.Generator().manual_seed(2)
    x = (0.6 * torch.randn(4, 2, 3, 2, 2, generator=generator) + 0.3).requires_grad_()
    alpha = torch.full((3, 1, 1), 0.6, requires_grad=True)
    options = triton_liaf.kernel_options(NeuronParams(output="tr", reset="soft", detach_reset=False))
    torch.library.opcheck(torch.ops.liafnet.liaf_forward.default, (x, alpha, *options, True))
    u = x.detach() + 0.1
    torch.library.opcheck(torch.ops.liafnet.liaf_backward.default,
                          (torch.randn(u.shape, generator=generator), u, alpha.detach(), *options, True))


def _model_loss(x, alpha):
    return liaf_multistep_triton(x, alpha, NeuronParams()).square().sum()


def test_torch_compile_and_export():
    """torch.compile (full graph, AOT autograd) and torch.export treat the kernel as one op each way."""
    generator = torch.Generator().manual_seed(4)
    x = (0.6 * torch.randn(5, 2, 3, 2, 2, generator=generator) + 0.3).requires_grad_()
    alpha = torch.full((3, 1, 1), 0.6, requires_grad=True)
    compiled = torch.compile(_model_loss, backend="aot_eager", fullgraph=True)
    loss = compiled(x, alpha)
    expected = liaf_multistep_reference(x, alpha, NeuronParams()).square().sum()
    torch.testing.assert_close(loss, expected)
    for got, want in zip(torch.autograd.grad(loss, (x, alpha)), torch.autograd.grad(expected, (x, alpha))):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)

    class Neuron(torch.nn.Module):
        def forward(self, inputs):
            return liaf_multistep_triton(inputs, torch.tensor(0.6), NeuronParams(output="spike"))

    program = torch.export.export(Neuron(), (x.detach(),))
    assert "liafnet.liaf_forward" in str(program.graph)
    torch.testing.assert_close(program.module()(x.detach()), Neuron()(x.detach()))


# --------------------------------------------------------- compiled for a GPU without one (offline)

# Option sets that together reach every constexpr branch of both kernels.
COMPILE_VARIANTS = {
    "default": NeuronParams(),
    "tr-leaky-clamp-soft-surrogate-gauss-beta": NeuronParams(
        output="tr", act=LeakyReLU(0.2), clamp=True, reset="soft", detach_reset=False, beta=0.05,
        surrogate=Gaussian(), fire_ge=True),
    "ntr-relu-clamp-hard-surrogate-vreset": NeuronParams(act=ReLU(), clamp=True, v_reset=-0.1, detach_reset=False),
    "lif-rect-soft": NeuronParams(output="spike", reset="soft", surrogate=Rectangle(0.3, 0.2, 2.0)),
    "lif-gauss-hard-surrogate": NeuronParams(output="spike", detach_reset=False, surrogate=Gaussian()),
}
_TRITON_TYPES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16", torch.float64: "fp64"}


def _compile_offline(kernel, constexprs: dict, dtype: torch.dtype, ones: tuple = ()):
    """Compile ``kernel`` to a cubin for sm_90 (H100/H200) as the JIT would for contiguous torch
    tensors of ``dtype``: pointers and sizes 16-divisible, the integers in ``ones`` equal to 1."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    constexprs, signature, attrs = dict(constexprs), {}, {}
    compute = "fp64" if dtype == torch.float64 else "fp32"
    for index, name in enumerate(kernel.arg_names):
        if name in ones:
            constexprs[name] = 1
        if name in constexprs:
            signature[name] = "constexpr"
            continue
        signature[name] = (f"*{compute if name == 'galpha_ptr' else _TRITON_TYPES[dtype]}"
                           if name.endswith("_ptr") else "i32")
        attrs[(index,)] = [["tt.divisibility", 16]]
    return triton.compile(ASTSource(kernel, signature, constexprs, attrs), target=GPUTarget("cuda", 90, 32),
                          options=triton_liaf.LAUNCH)


# Every option set in float32 and bfloat16; float16 and float64 code generation once.
COMPILE_CASES = ([(variant, dtype) for variant in COMPILE_VARIANTS for dtype in (torch.float32, torch.bfloat16)]
                 + [("default", torch.float16), ("default", torch.float64)])


@pytest.mark.skipif("nvidia" not in getattr(triton.backends, "backends", {}), reason="no NVIDIA backend in Triton")
@pytest.mark.parametrize("variant,dtype", COMPILE_CASES, ids=[f"{v}-{d}" for v, d in COMPILE_CASES])
def test_kernels_compile_for_hopper(variant, dtype, tmp_path, monkeypatch):
    """Both kernels compile through Triton's GPU code generator and its bundled ptxas for sm_90,
    which the CPU interpreter does not exercise (it would not catch, e.g., a non-constexpr global),
    for every branch, with and without the decay gradient and the saved U, and with sizes of 1."""
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))
    kernels = triton_liaf._kernels(interpret=False)
    if not isinstance(kernels.liaf_forward_kernel, triton.runtime.JITFunction):
        pytest.skip("TRITON_INTERPRET is set: the GPU kernels are interpreted too")
    o = triton_liaf.kernel_options(COMPILE_VARIANTS[variant])
    for scalar, needed, ones in ((False, True, ()), (True, False, ("N", "C", "INNER"))):
        compiled = _compile_offline(kernels.liaf_forward_kernel,
                                    triton_liaf.forward_constexprs(o, dtype, scalar, needed), dtype,
                                    ones + (("T",) if ones else ()))
        assert "cubin" in compiled.asm
        compiled = _compile_offline(kernels.liaf_backward_kernel,
                                    triton_liaf.backward_constexprs(o, dtype, scalar, needed), dtype, ones)
        assert "cubin" in compiled.asm


# ------------------------------------------------------------------------- CUDA (compiled kernels)


@cuda
@pytest.mark.parametrize("dtype", (torch.float64, torch.float32, torch.bfloat16, torch.float16), ids=str)
@pytest.mark.parametrize("p", [
    NeuronParams(),
    NeuronParams(output="tr", act=ReLU(), clamp=True, reset="soft", detach_reset=False, beta=0.125,
                 surrogate=Gaussian(), fire_ge=True),
    NeuronParams(output="ntr", act=LeakyReLU(0.2), v_reset=-0.25, detach_reset=False),
    NeuronParams(output="spike", surrogate=Rectangle(centre=0.3, half_width=0.2, height=2.0)),
], ids=("default", "tr-relu-soft", "leaky-vreset", "lif"))
def test_cuda_equals_reference(p, dtype):
    _check(p, decay="channel", dtype=dtype, device="cuda", shape=(4, 3, 3, 8, 8))


@cuda
def test_cuda_dispatch_and_large_layer(monkeypatch):
    """liaf_multistep picks the kernel on CUDA (LIAFNET_TRITON=0 / ENABLED=False keeps the torch
    path); float32 at Gesture-layer size, per-channel decay, equals the torch path."""
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(20, 8, 64, 16, 16, generator=generator) + 0.2).cuda().requires_grad_()
    alpha = torch.full((64, 1, 1), 0.62, device="cuda", requires_grad=True)
    y = liaf_multistep(x, alpha, NeuronParams())
    assert "liaf_forward" in y.grad_fn.name()
    monkeypatch.setattr(triton_liaf, "ENABLED", False)
    torch_path = liaf_multistep(x, alpha, NeuronParams())
    assert "liaf_forward" not in torch_path.grad_fn.name()
    torch.testing.assert_close(y, torch_path, rtol=1e-5, atol=1e-5)
    grad_out = torch.randn_like(y)
    for got, want in zip(torch.autograd.grad(y, (x, alpha), grad_out),
                         torch.autograd.grad(torch_path, (x, alpha), grad_out)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def _layer_step(layer, x):
    loss = layer(x).square().mean()
    loss.backward()
    return loss


@cuda
def test_cuda_graph_capture_and_compile():
    """A conv LIAF layer's training step replays from a captured CUDA graph and runs under
    torch.compile (inductor) with the kernel, giving the eager results."""
    torch.manual_seed(0)
    layer = ConvLIAF(2, 8, 3, neuron=neuron_config(spiking=False, decay_per="channel"), padding=1).cuda()
    x = (torch.rand(6, 4, 2, 12, 12, device="cuda") < 0.3).float()
    eager_loss = _layer_step(layer, x)
    eager_grads = [p.grad.clone() for p in layer.parameters()]

    static_x = x.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            layer.zero_grad(set_to_none=True)
            _layer_step(layer, static_x)
    torch.cuda.current_stream().wait_stream(side)
    layer.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss = _layer_step(layer, static_x)
    for p in layer.parameters():
        p.grad.zero_()
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(static_loss, eager_loss)
    for p, want in zip(layer.parameters(), eager_grads):
        torch.testing.assert_close(p.grad, want, rtol=1e-5, atol=1e-6)

    compiled = torch.compile(layer, fullgraph=True)
    layer.zero_grad(set_to_none=True)
    compiled_loss = compiled(x).square().mean()
    compiled_loss.backward()
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-6)
    for p, want in zip(layer.parameters(), eager_grads):
        torch.testing.assert_close(p.grad, want, rtol=1e-4, atol=1e-5)


@cuda
def test_cuda_export_keeps_the_portable_loop():
    """torch.export of a CUDA model traces the per-step loop, not the custom op (portable, ONNX)."""
    layer = ConvLIAF(2, 4, 3, neuron=neuron_config(spiking=False), padding=1).cuda().eval()
    x = (torch.rand(3, 2, 2, 8, 8, device="cuda") < 0.3).float()
    program = torch.export.export(layer, (x,))
    assert "liafnet.liaf_forward" not in str(program.graph)
    torch.testing.assert_close(program.module()(x), layer(x), rtol=1e-5, atol=1e-5)
