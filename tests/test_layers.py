"""Layers: LIAF/LIF conv and dense layers, BN placements, LIAF-RNN, ConvLSTM, time folding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from liafnet.layers import (
    ConvLIAF,
    ConvLIF,
    ConvLSTM,
    ConvLSTMCell,
    DenseLIAF,
    DenseLIF,
    LIAFLSTM,
    RecurrentLIAF,
    TimeDistributed,
    record_traces,
)
from liafnet.neurons import NeuronParams, liaf_multistep, neuron_config


def _grads(module: nn.Module, x: torch.Tensor, y: torch.Tensor):
    grad_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(5), dtype=y.dtype)
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.autograd.grad(y, [x, *params], grad_out)


@pytest.mark.parametrize("pool_order", ("after", "before"))
@pytest.mark.parametrize("norm", ("synaptic", "none"))
@pytest.mark.parametrize("spiking", (False, True))
@pytest.mark.parametrize("decay_per", ("layer", "channel"))
def test_conv_layer_fused_equals_reference(pool_order, norm, spiking, decay_per):
    layers = []
    for impl in ("fused", "reference"):
        torch.manual_seed(0)
        neuron = neuron_config(spiking=spiking, impl=impl, decay_per=decay_per)
        layers.append(ConvLIAF(2, 4, 3, neuron=neuron, padding=1, pool=2, pool_order=pool_order, norm=norm).double())
    x = (torch.rand(4, 2, 2, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) < 0.5)
    x = x.double().requires_grad_()
    outputs = [layer(x) for layer in layers]
    assert outputs[0].shape == (4, 2, 4, 3, 3)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-10)
    for a, b in zip(_grads(layers[0], x, outputs[0]), _grads(layers[1], x, outputs[1])):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_conv_norm_is_shared_over_time_and_batch():
    """Synaptic BN = the authors' BatchNorm3d over [B, C, T, H, W]."""
    torch.manual_seed(0)
    layer = ConvLIAF(2, 3, 3, padding=1)
    x = torch.randn(5, 4, 2, 6, 6)
    y = layer(x)
    z = layer.conv(x.flatten(0, 1)).unflatten(0, (5, 4))  # [T, B, C, H, W]
    bn3d = nn.BatchNorm3d(3)
    expected_input = bn3d(z.permute(1, 2, 0, 3, 4)).permute(2, 0, 1, 3, 4)
    expected = liaf_multistep(expected_input, layer.neuron.alpha(), layer.neuron.params)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


def test_membrane_norm_normalises_the_potential_each_step():
    """BN on U after integration, batch statistics per step, then the authors' fire/reset (by hand)."""
    torch.manual_seed(0)
    layer = DenseLIAF(3, 4, norm="membrane").double()
    x = torch.randn(6, 8, 3, dtype=torch.float64)
    y = layer(x)
    drive = x @ layer.linear.weight.T + layer.linear.bias
    alpha = torch.sigmoid(torch.tensor(0.5, dtype=torch.float64))
    v, expected = torch.zeros(8, 4, dtype=torch.float64), []
    for drive_t in drive:
        u = drive_t + v
        n = (u - u.mean(0)) / torch.sqrt(u.var(0, unbiased=False) + 1e-5)  # initial BN affine: 1, 0
        expected.append(torch.selu(n))
        v = alpha * n * (n <= 0.5)
    torch.testing.assert_close(y, torch.stack(expected))
    assert 0 < sum((e > torch.selu(torch.tensor(0.5))).sum() for e in expected) < y.numel()  # some fire


def test_dense_time_norm_uses_time_as_channels():
    torch.manual_seed(0)
    layer = DenseLIAF(5, 6, time_steps=4, dense_norm="time")
    assert isinstance(layer.norm, nn.BatchNorm1d) and layer.norm.num_features == 4
    x = torch.randn(4, 3, 5)
    y = layer(x)
    z = layer.linear(x)
    normalised = (z - z.mean(dim=(1, 2), keepdim=True)) / torch.sqrt(z.var(dim=(1, 2), unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(y, liaf_multistep(normalised, layer.neuron.alpha(), layer.neuron.params),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="T=4.*got T=3.*model.dense_norm"):
        layer(torch.randn(3, 3, 5))


@pytest.mark.parametrize("dense_norm", ("time", "feature", "none"))
def test_dense_layer_fused_equals_reference(dense_norm):
    layers = []
    for impl in ("fused", "reference"):
        torch.manual_seed(0)
        layers.append(DenseLIAF(5, 3, neuron=neuron_config(spiking=False, impl=impl, act="relu"), time_steps=4,
                                dense_norm=dense_norm).double())
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    outputs = [layer(x) for layer in layers]
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-10)
    for a, b in zip(_grads(layers[0], x, outputs[0]), _grads(layers[1], x, outputs[1])):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_lif_layers_emit_spikes_and_liaf_layers_analog_values():
    torch.manual_seed(0)
    x = torch.randn(5, 3, 2, 8, 8)
    spikes = ConvLIF(2, 4, 3, padding=1)(x)
    assert set(spikes.unique().tolist()) == {0.0, 1.0}
    dense_spikes = DenseLIF(10, 7, time_steps=5)(torch.randn(5, 3, 10))
    assert set(dense_spikes.unique().tolist()) <= {0.0, 1.0} and dense_spikes.sum() > 0
    analog = ConvLIAF(2, 4, 3, padding=1)(x)
    assert analog.unique().numel() > 50


def test_decay_parameters():
    layer = ConvLIAF(2, 4, 3, neuron=neuron_config(spiking=False, decay_per="channel"))
    assert layer.neuron.decay_logit.shape == (4, 1, 1)
    assert torch.allclose(layer.neuron.alpha(), torch.sigmoid(torch.tensor(0.5)))
    fixed = ConvLIAF(2, 4, 3, neuron=neuron_config(spiking=False, decay="fixed", decay_alpha=0.3))
    assert not any("decay" in name for name, _ in fixed.named_parameters())
    assert fixed.neuron.alpha().item() == pytest.approx(0.3)
    layer(torch.randn(3, 2, 2, 5, 5)).sum().backward()
    assert layer.neuron.decay_logit.grad is not None and layer.neuron.decay_logit.grad.abs().sum() > 0


def test_bad_options_name_the_key():
    with pytest.raises(ValueError, match="model.norm"):
        ConvLIAF(2, 4, 3, norm="layer")
    with pytest.raises(ValueError, match="model.pool_order"):
        ConvLIAF(2, 4, 3, pool_order="middle")
    with pytest.raises(ValueError, match="model.dense_norm"):
        DenseLIAF(2, 4, dense_norm="batch")
    with pytest.raises(ValueError, match="time-first"):
        ConvLIAF(2, 4, 3)(torch.randn(2, 2, 5, 5))


def test_record_traces_gives_the_potential_spikes_and_output_of_each_layer():
    torch.manual_seed(0)
    model = nn.Sequential(DenseLIAF(4, 6, norm="none"), DenseLIF(6, 5, norm="none"))
    x = torch.randn(7, 3, 4) + 0.3
    expected = model(x)  # the fused path
    with record_traces(model) as traces:
        recorded = model(x)
    torch.testing.assert_close(recorded, expected)
    assert set(traces) == {"0.neuron", "1.neuron"} and not model[0].neuron.record
    first = traces["0.neuron"]
    alpha = torch.sigmoid(torch.tensor(0.5))
    drive = model[0].linear(x).detach()
    for t in range(1, 7):  # U^t = I^t + alpha U^{t-1} (1 - S^{t-1}), S = [U > 0.5]
        torch.testing.assert_close(first.u[t], drive[t] + alpha * first.u[t - 1] * (1 - first.s[t - 1]))
    torch.testing.assert_close(first.s, (first.u > 0.5).float())
    torch.testing.assert_close(first.y, torch.selu(first.u))
    torch.testing.assert_close(traces["1.neuron"].y, expected)
    assert 0 < first.s.sum() < first.s.numel()
    with record_traces(model, ["1.neuron"]) as only:
        model(x)
    assert list(only) == ["1.neuron"]
    with pytest.raises(ValueError, match="no LIAF neuron layer named 'head'.*0.neuron"):
        with record_traces(model, ["head"]):
            pass
    with pytest.raises(ValueError, match="has no LIAF/LIF neuron layer"):
        with record_traces(nn.Linear(2, 2)):
            pass


def test_time_distributed_equals_per_step():
    conv = nn.Conv2d(2, 3, 3)
    x = torch.randn(4, 2, 2, 6, 6)
    torch.testing.assert_close(TimeDistributed(conv)(x), torch.stack([conv(x_t) for x_t in x]))


def test_recurrent_liaf_equations():
    torch.manual_seed(0)
    layer = RecurrentLIAF(4, 3).double()
    x = torch.randn(6, 2, 4, dtype=torch.float64)
    y = layer(x)
    assert y.shape == (6, 2, 3)
    w_x, b, w_v = layer.input.weight, layer.input.bias, layer.recurrent.weight
    alpha, p = layer.neuron.alpha(), NeuronParams()
    v, expected = torch.zeros(2, 3, dtype=torch.float64), []
    for x_t in x:
        u = x_t @ w_x.T + b + v @ w_v.T
        expected.append(torch.selu(u))
        v = alpha * u * (u <= p.threshold)
    torch.testing.assert_close(y, torch.stack(expected))
    y.sum().backward()
    assert layer.recurrent.weight.grad.abs().sum() > 0


def test_recurrent_lif_spikes():
    layer = RecurrentLIAF(4, 3, neuron=neuron_config(spiking=True))
    y = layer(torch.randn(5, 2, 4) * 2)
    assert set(y.unique().tolist()) <= {0.0, 1.0}


def test_convlstm_matches_single_conv_formulation():
    torch.manual_seed(0)
    layer = ConvLSTM(2, 3, 3).double()
    cell = layer.cell
    assert sum(p.numel() for p in cell.parameters()) == (2 + 3) * 4 * 3 * 9 + 4 * 3
    x = torch.randn(4, 2, 2, 5, 5, dtype=torch.float64)
    weight = torch.cat([cell.conv_x.weight, cell.conv_h.weight], dim=1)
    h = c = torch.zeros(2, 3, 5, 5, dtype=torch.float64)
    expected = []
    for x_t in x:
        gates = nn.functional.conv2d(torch.cat([x_t, h], dim=1), weight, cell.conv_x.bias, padding=1)
        i, f, o, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        expected.append(h)
    torch.testing.assert_close(layer(x), torch.stack(expected))
    h1, (h1_state, _) = ConvLSTMCell.forward(cell, x[0])
    torch.testing.assert_close(h1, expected[0])
    assert h1_state is h1
    with pytest.raises(ValueError, match="odd kernel"):
        ConvLSTMCell(2, 3, 4)



def _authors_lstm(x, w, b, r=None, gate=torch.relu, decay=0.3, theta=0.5):
    """The authors' LIAFLSTMCell loop written out: four gate potentials, spike with the rectangle
    surrogate on (0, 1) (straight-through form), reset not detached; optional recurrent gate input."""
    hidden = w.shape[0] // 4
    v = torch.zeros(x.shape[1], 4 * hidden, dtype=x.dtype)
    c = torch.zeros(x.shape[1], hidden, dtype=x.dtype)
    h, outputs = None, []
    for x_t in x:
        v = x_t @ w.T + b + v + (h @ r.T if r is not None and h is not None else 0)
        window = ((v - theta).abs() < 0.5).to(x.dtype)
        fire = (v > theta).to(x.dtype) + window * (v - v.detach())  # value H(v - theta), gradient window
        v_i, v_f, v_g, v_o = v.chunk(4, dim=-1)
        c = gate(v_f) * c + gate(v_i) * torch.selu(v_g)
        h = torch.selu(c) * gate(v_o)
        outputs.append(h)
        v = decay * (1 - fire) * v
    return torch.stack(outputs)


@pytest.mark.parametrize("recurrent_gates", (False, True))
@pytest.mark.parametrize("gate", ("relu", "sigmoid"))
def test_liaf_lstm_follows_the_authors_cell(gate, recurrent_gates):
    torch.manual_seed(0)
    layer = LIAFLSTM(5, 3, gate=gate, recurrent_gates=recurrent_gates).double()
    assert not any("decay" in name for name, _ in layer.named_parameters())  # fixed decay 0.3
    x = torch.randn(7, 2, 5, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    assert y.shape == (7, 2, 3)
    w, b = layer.input.weight, layer.input.bias
    assert torch.all(b == 0.5)  # authors' init
    r = layer.recurrent.weight if recurrent_gates else None
    decay = layer.neuron.alpha()  # 0.3 as stored (float32-rounded, then cast)
    assert decay.item() == pytest.approx(0.3)
    expected = _authors_lstm(x, w, b, r, torch.relu if gate == "relu" else torch.sigmoid, decay=decay)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)
    params = [x, w, b] + ([r] if recurrent_gates else [])
    grad_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for got, want in zip(torch.autograd.grad(y, params, grad_out), torch.autograd.grad(expected, params, grad_out)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    with record_traces(layer) as traces:
        layer(x)
    spikes = traces["neuron"].s
    assert 0 < spikes.sum() < spikes.numel()  # the gate neurons fire and reset


def test_liaf_lstm_extension_feeds_the_previous_output_to_the_gates():
    """The extension adds one bias-free [4H, H] matrix from h^{t-1} to the gates, and it learns."""
    torch.manual_seed(0)
    faithful, extended = LIAFLSTM(4, 6, init="keras"), LIAFLSTM(4, 6, init="keras", recurrent_gates=True)
    assert extended.recurrent.weight.shape == (24, 6) and extended.recurrent.bias is None
    assert "liafnet extension" in repr(extended) and "extension" not in repr(faithful)
    assert sum(p.numel() for p in extended.parameters()) - sum(p.numel() for p in faithful.parameters()) == 24 * 6
    x = torch.randn(5, 2, 4)
    y = extended(x)
    (grad_r,) = torch.autograd.grad(y[-1].sum(), extended.recurrent.weight)
    assert grad_r.abs().sum() > 0


def test_liaf_lstm_rejects_bad_options():
    with pytest.raises(ValueError, match="model.gate must be one of relu, sigmoid"):
        LIAFLSTM(2, 3, gate="tanh")
    with pytest.raises(ValueError, match="model.init"):
        LIAFLSTM(2, 3, init="xavier")
    with pytest.raises(ValueError, match="analog"):
        LIAFLSTM(2, 3, neuron=neuron_config(spiking=True))
    with pytest.raises(ValueError, match="time-first"):
        LIAFLSTM(2, 3)(torch.randn(4, 2))


@pytest.mark.parametrize("threshold", (0.5, 1.0))
def test_rectangle_surrogate_window_follows_the_threshold(threshold):
    """A LIF layer's input gradient is nonzero exactly where |U - threshold| < 0.5 (window centred on
    the threshold), unless the centre is set explicitly."""
    layer = DenseLIF(1, 1, neuron=neuron_config(spiking=True, threshold=threshold), norm="none").double()
    with torch.no_grad():
        layer.linear.weight.fill_(1.0)
        layer.linear.bias.zero_()
    u = torch.linspace(-0.2, 2.0, 23, dtype=torch.float64)
    x = u.reshape(1, -1, 1).requires_grad_()  # one step, so U = x
    layer(x).sum().backward()
    inside = ((u - threshold).abs() < 0.5).to(torch.float64)
    torch.testing.assert_close(x.grad.flatten(), inside)
    assert x.grad.flatten()[(u >= threshold) & (u < threshold + 0.5)].min() == 1.0  # at and above theta
    fixed = DenseLIF(1, 1, neuron=neuron_config(spiking=True, threshold=threshold, surrogate_centre=0.5),
                     norm="none").double()
    fixed.load_state_dict(layer.state_dict())
    x.grad = None
    fixed(x).sum().backward()
    torch.testing.assert_close(x.grad.flatten(), ((u - 0.5).abs() < 0.5).to(torch.float64))
