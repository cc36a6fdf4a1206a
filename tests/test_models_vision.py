"""Vision models: the authors' parameter counts, every family x layout trains a step, options."""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from liafnet.data.spec import DataSpec
from liafnet.models import FAMILIES, build_model
from liafnet.models.vision import VISION_ONLY_OPTIONS
from liafnet.profile import count_parameters

CONF = Path(__file__).resolve().parents[1] / "src" / "liafnet" / "conf"
SPECS = {
    "synthetic": DataSpec("events", 6, "synthetic", 16, 2, 16, 16),
    "dvs_gesture": DataSpec("events", 11, "dvs_gesture", 60, 2, 32, 32),
    "cifar10_dvs": DataSpec("events", 10, "cifar10_dvs", 10, 2, 42, 42),
    "mnist_dvs": DataSpec("events", 10, "mnist_dvs", 50, 2, 128, 128),
}


@pytest.mark.parametrize("family,layout,expected", [
    ("liaf", "dvs_gesture", 2_322_891),
    ("lif", "dvs_gesture", 2_322_891),
    ("convlstm", "dvs_gesture", 4_317_963),
    ("liaf", "cifar10_dvs", 524_842),
    ("liaf", "mnist_dvs", 1_314_186),
])
def test_authors_parameter_counts(family, layout, expected):
    counts = count_parameters(build_model(family, SPECS[layout]))
    assert counts["params"] == expected


def test_gesture_extra_parameters():
    """BN3d affine 640 + BatchNorm1d(60) x 2 = 240; five decay scalars (paper.md §5.1)."""
    counts = count_parameters(build_model("liaf", SPECS["dvs_gesture"]))
    assert counts["bn_params"] == 640 + 240
    assert counts["neuron_params"] == 5


def _train_step(model: torch.nn.Module, spec: DataSpec, steps: int, batch: int) -> torch.Tensor:
    torch.manual_seed(0)
    x = (torch.rand(steps, batch, spec.channels, spec.height, spec.width) < 0.2).float()
    target = torch.randint(0, spec.num_classes, (batch,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits.mean(0), target)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    changed = sum(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
    assert changed == len(before), "every parameter must receive a gradient and move"
    return logits


SLOW = {("mnist_dvs", "convlstm"), ("mnist_dvs", "conv3d")}
CASES = [pytest.param(layout, family, marks=pytest.mark.slow) if (layout, family) in SLOW else (layout, family)
         for layout in SPECS for family in FAMILIES]


@pytest.mark.parametrize("layout,family", CASES)
def test_every_family_and_layout_trains_one_step(layout, family):
    steps, batch = (4, 2) if layout == "synthetic" else (2, 1)
    spec = dataclasses.replace(SPECS[layout], time_steps=steps)
    model = build_model(family, spec)
    logits = _train_step(model, spec, steps, batch)
    expected_steps = steps if family in ("liaf", "lif") else 1
    assert logits.shape == (expected_steps, batch, spec.num_classes)


def test_lif_classifier_spikes_and_liaf_classifier_is_analog():
    spec = SPECS["synthetic"]
    x = (torch.rand(16, 3, 2, 16, 16) < 0.3).float()
    torch.manual_seed(0)
    assert set(build_model("lif", spec)(x).unique().tolist()) <= {0.0, 1.0}
    torch.manual_seed(0)
    assert build_model("liaf", spec)(x).unique().numel() > 20


def test_whole_network_fused_equals_reference():
    spec = SPECS["synthetic"]
    outputs, grads = [], []
    x = (torch.rand(16, 2, 2, 16, 16, generator=torch.Generator().manual_seed(2)) < 0.3).double()
    for impl in ("fused", "reference"):
        torch.manual_seed(0)
        model = build_model("liaf", spec, impl=impl).double()
        y = model(x)
        y.square().sum().backward()
        outputs.append(y)
        grads.append([p.grad for p in model.parameters()])
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-10)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_authors_initialisation():
    model = build_model("liaf", SPECS["synthetic"])
    assert all(torch.all(conv.conv.bias == 0.5) for conv in model.convs)
    default = build_model("liaf", SPECS["synthetic"], init="default")
    assert not torch.all(default.convs[0].conv.bias == 0.5)


@pytest.mark.parametrize("family", FAMILIES)
def test_sum_frames_baseline_sees_one_frame(family):
    spec = SPECS["synthetic"]
    torch.manual_seed(0)
    model = build_model(family, spec, sum_frames=True)
    x = (torch.rand(16, 2, 2, 16, 16) < 0.2).float()
    y = model(x)
    assert y.shape == (1, 2, 6)
    torch.testing.assert_close(y, model.net(x.sum(0, keepdim=True)))
    # Shuffling time cannot change the summed frame, so the baseline is blind to temporal order.
    torch.testing.assert_close(model(x.flip(0)), y)


def test_liaf_net_is_sensitive_to_temporal_order():
    torch.manual_seed(0)
    model = build_model("liaf", SPECS["synthetic"]).eval()
    x = (torch.rand(16, 2, 2, 16, 16) < 0.2).float()
    assert not torch.allclose(model(x).mean(0), model(x.flip(0)).mean(0))


def test_option_errors_name_the_key():
    spec = SPECS["synthetic"]
    with pytest.raises(ValueError, match="model.family"):
        build_model("transformer", spec)
    with pytest.raises(ValueError, match="model.hidden_size is not an option of the liaf model"):
        build_model("liaf", spec, hidden_size=3)
    with pytest.raises(ValueError, match="model.act is not an option of the lif model"):
        build_model("lif", spec, act="selu")
    with pytest.raises(ValueError, match="model.act must be one of"):
        build_model("liaf", spec, act="gelu")
    with pytest.raises(ValueError, match="model.classifier"):
        build_model("liaf", spec, classifier="softmax")
    with pytest.raises(ValueError, match="model.hidden_size must be a positive integer"):
        build_model("lstm", spec, hidden_size=0)
    with pytest.raises(ValueError, match="model.temporal_kernel"):
        build_model("conv3d", spec, temporal_kernel=2)
    with pytest.raises(ValueError, match="model.dropout"):
        build_model("convlstm", spec, dropout=1.5)
    with pytest.raises(ValueError, match="model.sum_frames"):
        build_model("gru", spec, sum_frames="yes")
    with pytest.raises(ValueError, match="data.spec.layout"):
        build_model("liaf", dataclasses.replace(spec, layout="imagenet"))
    with pytest.raises(ValueError, match="too small"):
        build_model("liaf", dataclasses.replace(SPECS["mnist_dvs"], height=8, width=8))


def test_text_keys_are_ignored_by_vision_models():
    """text_* keys change nothing in a vision model: same structure, same weights, same outputs."""
    torch.manual_seed(0)
    with_text = build_model("liaf", SPECS["synthetic"], text_hidden=7, text_merge="concat")
    torch.manual_seed(0)
    plain = build_model("liaf", SPECS["synthetic"])
    assert repr(with_text) == repr(plain)
    with_state, plain_state = with_text.state_dict(), plain.state_dict()
    assert with_state.keys() == plain_state.keys()
    assert all(torch.equal(with_state[key], plain_state[key]) for key in plain_state)
    x = (torch.rand(16, 2, 2, 16, 16, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    torch.testing.assert_close(with_text(x), plain(x), rtol=0, atol=0)


def test_text_specs_go_to_the_text_builder(monkeypatch):
    received = {}

    def build_text_model(family, spec, **options):
        received.update(family=family, spec=spec, options=options)
        return torch.nn.Identity()

    monkeypatch.setitem(sys.modules, "liafnet.models.text", types.SimpleNamespace(build_text_model=build_text_model))
    spec = DataSpec("text", 30, vocab_size=40, story_len=20, query_len=5)
    model = build_model("lstm", spec, sum_frames=False, pool_order="after", text_hidden=50, threshold=0.4)
    assert isinstance(model, torch.nn.Identity)
    assert received["family"] == "lstm" and received["spec"] is spec
    assert received["options"] == {"text_hidden": 50, "threshold": 0.4}
    assert not VISION_ONLY_OPTIONS & set(received["options"])


@pytest.mark.parametrize("family", FAMILIES)
def test_model_configs_build_on_every_layout(family):
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{family}.yaml"))
    assert cfg.pop("family") == family
    assert cfg.pop("readout") == ("mean" if family in ("liaf", "lif") else "last")
    for layout, spec in SPECS.items():
        model = build_model(family, spec, **cfg)
        assert count_parameters(model)["params"] > 0, layout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("family", FAMILIES)
def test_gesture_models_train_on_cuda(family):
    spec = dataclasses.replace(SPECS["dvs_gesture"], time_steps=8)
    torch.manual_seed(0)
    model = build_model(family, spec).cuda()
    x = (torch.rand(8, 4, 2, 32, 32, device="cuda") < 0.1).float()
    loss = torch.nn.functional.cross_entropy(model(x).mean(0), torch.randint(0, 11, (4,), device="cuda"))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.is_cuda for p in model.parameters())
