"""Neuron core: the fused multi-step kernel equals the per-step autograd reference for every option."""

from __future__ import annotations

import pytest
import torch

from liafnet.neurons import (
    Gaussian,
    NeuronParams,
    Rectangle,
    ReLU,
    integrate,
    liaf_multistep,
    liaf_multistep_reference,
    liaf_step,
    lif_step,
    neuron_config,
    neuron_loop,
)

from tests.helpers import ACTS, ANALOG_GRID, SPIKE_GRID, analog_params, spike_params


def _inputs(seed: int, per_channel: bool, learnable: bool):
    generator = torch.Generator().manual_seed(seed)
    # T=5, B=2, C=3, 2x2: a few neurons cross the threshold, most steps do not.
    x = (0.6 * torch.randn(5, 2, 3, 2, 2, generator=generator, dtype=torch.float64) + 0.3).requires_grad_()
    shape = (3, 1, 1) if per_channel else ()
    d = (0.5 + 0.3 * torch.randn(shape, generator=generator, dtype=torch.float64)).requires_grad_(learnable)
    return x, d


def _compare(p: NeuronParams, per_channel: bool, learnable: bool, seed: int = 0) -> None:
    x, d = _inputs(seed, per_channel, learnable)
    alpha = torch.sigmoid(d) if learnable else torch.full(d.shape, 0.3, dtype=torch.float64)
    fused = liaf_multistep(x, alpha, p)
    reference = liaf_multistep_reference(x, alpha, p)
    torch.testing.assert_close(fused, reference, rtol=0, atol=1e-10)
    grad_out = torch.randn(fused.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    wrt = (x, d) if learnable else (x,)
    grads_fused = torch.autograd.grad(fused, wrt, grad_out, retain_graph=True)
    grads_reference = torch.autograd.grad(reference, wrt, grad_out)
    for fused_grad, reference_grad in zip(grads_fused, grads_reference):
        torch.testing.assert_close(fused_grad, reference_grad, rtol=0, atol=1e-10)
    # The comparison must exercise the dynamics: some neurons fire and reset, some do not.
    spikes = liaf_multistep(x.detach(), alpha.detach(), p._replace(output="spike"))
    assert 0 < spikes.sum() < spikes.numel()


@pytest.mark.parametrize("output,act,clamp,fire_ge,reset,detach,beta", ANALOG_GRID)
def test_fused_equals_reference_liaf(output, act, clamp, fire_ge, reset, detach, beta):
    p = analog_params(output, act, clamp, fire_ge, reset, detach, beta)
    _compare(p, per_channel=False, learnable=True)


@pytest.mark.parametrize("surrogate,reset,detach,v_reset,decay", SPIKE_GRID)
def test_fused_equals_reference_lif(surrogate, reset, detach, v_reset, decay):
    p = spike_params(surrogate, reset, detach, v_reset)
    _compare(p, per_channel=decay == "channel", learnable=decay != "fixed", seed=3)


@pytest.mark.parametrize("decay", ("layer", "channel"))
@pytest.mark.parametrize("act", ACTS)
def test_fused_equals_reference_decay_shapes(decay, act):
    _compare(NeuronParams(act=ACTS[act]), per_channel=decay == "channel", learnable=True, seed=7)


def test_single_step_and_float32():
    x = torch.randn(1, 4, 3, requires_grad=True)
    y = liaf_multistep(x, torch.tensor(0.6), NeuronParams())
    torch.testing.assert_close(y, torch.selu(x))
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, torch.autograd.grad(torch.selu(x).sum(), x)[0])


def test_authors_recurrence_by_hand():
    """U^t = alpha U^{t-1} (1 - S^{t-1}) + I^t, S = [U > 0.5], Y = selu(U) (authors' early code)."""
    x = torch.tensor([[0.3], [0.4], [0.1], [0.7]], dtype=torch.float64)
    alpha = 0.6
    u = []
    previous = None
    for x_t in x[:, 0].tolist():
        current = x_t if previous is None else alpha * previous * (previous <= 0.5) + x_t
        u.append(current)
        previous = current
    # 0.3 -> 0.58 (fires) -> 0.1 (reset) -> 0.76
    assert u == pytest.approx([0.3, 0.58, 0.1, 0.76])
    y = liaf_multistep(x, torch.tensor(alpha, dtype=torch.float64), NeuronParams())
    torch.testing.assert_close(y[:, 0], torch.selu(torch.tensor(u, dtype=torch.float64)))


def test_neuron_loop_records_the_authors_recurrence():
    """The recorded U, S, Y follow U^t = alpha U^{t-1} (1 - S^{t-1}) + I^t, S = [U > 0.5], Y = selu(U)."""
    x = torch.tensor([[0.3], [0.4], [0.1], [0.7]], dtype=torch.float64)
    outputs, trace = neuron_loop(integrate(x), 4, torch.tensor(0.6, dtype=torch.float64), NeuronParams(),
                                 record=True)
    u = torch.tensor([[0.3], [0.58], [0.1], [0.76]], dtype=torch.float64)  # 0.58 fires, so 0.1 follows
    torch.testing.assert_close(trace.u, u)
    assert trace.s[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
    torch.testing.assert_close(trace.y, torch.selu(u))
    torch.testing.assert_close(outputs, torch.selu(u))
    assert neuron_loop(integrate(x), 4, torch.tensor(0.6), NeuronParams())[1] is None
    with pytest.raises(ValueError, match="at least one step"):
        neuron_loop(integrate(x), 0, torch.tensor(0.6), NeuronParams())


def test_neuron_loop_feeds_back_previous_output_and_carry():
    """Potential from the previous output, readout with a carry: a recurrence written out by hand."""
    x = torch.tensor([0.2, 0.5, -0.1, 0.3], dtype=torch.float64).reshape(4, 1)
    p = NeuronParams(act=ReLU())

    def potential(t, state, out):
        u = x[t] if state is None else x[t] + state.v
        return u if out is None else u + 2.0 * out

    def readout(u, y, carry):  # running sum of outputs, emitted as the loop output
        total = y if carry is None else carry + y
        return total, total

    outputs, _ = neuron_loop(potential, 4, torch.tensor(0.5, dtype=torch.float64), p, readout=readout)
    v, out, expected = 0.0, 0.0, []
    for x_t in x[:, 0].tolist():
        u = x_t + v + 2.0 * out
        out = out + max(u, 0.0)
        v = 0.5 * u * (u <= 0.5)
        expected.append(out)
    assert outputs[:, 0].tolist() == pytest.approx(expected)


def test_spikes_binary_and_liaf_analog():
    x = torch.randn(8, 16, 10) + 0.4
    spikes = liaf_multistep(x, torch.tensor(0.6), NeuronParams(output="spike"))
    assert set(spikes.unique().tolist()) == {0.0, 1.0}
    analog = liaf_multistep(x, torch.tensor(0.6), NeuronParams())
    assert analog.unique().numel() > 100  # continuous values, not spikes
    assert (analog < 0).any()  # SELU keeps negative outputs


def test_fire_test_boundary():
    x = torch.tensor([[0.5]])
    assert liaf_multistep(x, torch.tensor(0.6), NeuronParams(output="spike")).item() == 0.0
    assert liaf_multistep(x, torch.tensor(0.6), NeuronParams(output="spike", fire_ge=True)).item() == 1.0


def test_step_functions_match_multistep():
    x = torch.randn(6, 3, 5, dtype=torch.float64) + 0.3
    alpha = torch.tensor(0.7, dtype=torch.float64)
    p = NeuronParams(output="tr", reset="soft")
    state, outputs = None, []
    for x_t in x:
        y, state = liaf_step(x_t, state, alpha, p)
        outputs.append(y)
    torch.testing.assert_close(torch.stack(outputs), liaf_multistep(x, alpha, p))
    spikes, _ = lif_step(x[0], None, alpha, p)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}


def test_clamp_limits_output():
    x = torch.randn(5, 50) * 3
    y = liaf_multistep(x, torch.tensor(0.5), NeuronParams(clamp=True))
    assert y.min() >= 0 and y.max() <= 1


def test_surrogate_shapes():
    u = torch.tensor([0.0, 0.01, 0.5, 0.99, 1.0, 1.2])
    assert Rectangle().grad(u, 0.5).tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    g = Gaussian().grad(torch.tensor([0.7, 1.7]), 0.5)
    assert g[0].item() == pytest.approx(0.3989, abs=1e-4)
    assert g[1].item() == pytest.approx(0.3989 * torch.exp(torch.tensor(-0.5)).item(), abs=1e-4)


def test_neuron_config_defaults_and_errors():
    config = neuron_config(spiking=False)
    assert config.params == NeuronParams()
    assert config.decay.learnable and config.decay.d0 == 0.5
    assert neuron_config(spiking=True).params.output == "spike"
    with pytest.raises(ValueError, match="model.act"):
        neuron_config(spiking=False, act="tanh")
    with pytest.raises(ValueError, match="model.act is not an option of LIF"):
        neuron_config(spiking=True, act="selu")
    with pytest.raises(ValueError, match="model.threshold must be a number"):
        neuron_config(spiking=False, threshold="high")
    with pytest.raises(ValueError, match="model.surrogate_sigma"):
        neuron_config(spiking=False, surrogate="gaussian", surrogate_sigma=0)
    with pytest.raises(ValueError, match="model.unknown_key"):
        neuron_config(spiking=False, unknown_key=1)


def test_bad_input_shape():
    with pytest.raises(ValueError, match="time-first"):
        liaf_multistep(torch.empty(0, 3), torch.tensor(0.5), NeuronParams())


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.parametrize("output", ("ntr", "spike"))
@pytest.mark.parametrize("reset,detach", [("hard", True), ("soft", False)])
def test_fused_equals_reference_on_cuda(output, reset, detach):
    generator = torch.Generator().manual_seed(0)
    x = (0.6 * torch.randn(6, 4, 3, 5, 5, generator=generator, dtype=torch.float64) + 0.3).cuda().requires_grad_()
    d = torch.full((3, 1, 1), 0.5, dtype=torch.float64, device="cuda", requires_grad=True)
    p = NeuronParams(output=output, reset=reset, detach_reset=detach)
    fused = liaf_multistep(x, torch.sigmoid(d), p)
    reference = liaf_multistep_reference(x, torch.sigmoid(d), p)
    assert fused.is_cuda
    torch.testing.assert_close(fused, reference, rtol=0, atol=1e-10)
    grad_out = torch.randn_like(fused)
    for a, b in zip(torch.autograd.grad(fused, (x, d), grad_out, retain_graph=True),
                    torch.autograd.grad(reference, (x, d), grad_out)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@cuda
def test_cuda_float32_matches_cpu():
    x = torch.randn(20, 8, 64, 16, 16) + 0.2
    alpha = torch.tensor(0.62)
    cpu = liaf_multistep(x, alpha, NeuronParams())
    gpu = liaf_multistep(x.cuda(), alpha.cuda(), NeuronParams())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-5)

