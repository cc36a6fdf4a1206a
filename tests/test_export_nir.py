"""NIR export (liafnet-export): a trained LIF-SNN checkpoint -> .nir file -> read back with ``nir`` ->
simulated by an independent interpreter (tests/helpers.simulate_nir) -> the same spikes as liafnet."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

nir = pytest.importorskip("nir", reason="NIR export needs the optional nir package (pip install 'liafnet[nir]')")

import liafnet  # noqa: E402
from liafnet.cli.train import train  # noqa: E402
from liafnet.data.spec import DataSpec  # noqa: E402
from liafnet.export_nir import NIRExportError, to_nir  # noqa: E402
from liafnet.layers import record_traces  # noqa: E402
from liafnet.task import readout  # noqa: E402
from tests.helpers import cli, simulate_nir  # noqa: E402

TINY = ("trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "logger=none",
        "trainer.accelerator=cpu", "data.time_steps=8")
SPEC = DataSpec("events", 6, "synthetic", 8, 2, 16, 16)


def export(*arguments: str) -> subprocess.CompletedProcess:
    """The export command, ``python -m liafnet.cli.export <arguments>``, in the repo root."""
    return cli(["-m", "liafnet.cli.export"], list(arguments), timeout=300)


ROUND_TRIPS = {
    # conv BN and dense feature BN folded into the weights; per-channel decay; reset potential != 0
    "synaptic_bn": ("model.dense_norm=feature", "model.decay_per=channel", "model.v_reset=-0.1",
                    "model.threshold=0.4"),
    # BN on the membrane (its scale times alpha is the graph's decay, so a fixed alpha 0.3 keeps that
    # below 1), pooling before the neuron, a linear classifier, the last step as readout
    "membrane_bn": ("model.norm=membrane", "model.decay=fixed", "model.decay_alpha=0.3",
                    "model.pool_order=before", "model.classifier=linear", "model.readout=last"),
}


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_exported_lif_snn_matches_liafnet_spike_for_spike(name, make_cfg, tmp_path):
    """A trained checkpoint -> liafnet-export -> nir.read -> simulate_nir: every neuron layer's spikes
    equal liafnet's own (the fused kernel for the output, the recorded loop for hidden layers), and so
    do the output and its readout over time (linear classifier: logits to float32 rounding)."""
    cfg = make_cfg(*TINY, "model=lif", *ROUND_TRIPS[name])
    ckpt = train(cfg).test_ckpt
    out = tmp_path / "lif.nir"
    result = export(f"ckpt_path={ckpt}", f"out={out}", "dt=0.001")
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout

    graph = nir.read(out)
    mode = cfg.model.readout
    assert float(graph.metadata["dt"]) == 0.001 and graph.metadata["readout"] == mode
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds["convs.0.conv"] == "Conv2d" and kinds["convs.0.neuron"] == "LIF"
    assert kinds["convs.0.pool"] == "AvgPool2d" and kinds["flatten"] == "Flatten"
    assert kinds["dense.0.linear"] == "Affine" and kinds["dense.0.neuron"] == "LIF"
    assert not any("norm" in name for name in kinds)  # BN folded, no node of its own

    model = liafnet.load_model(ckpt)
    x = (torch.rand(8, 16, 2, 16, 16, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    with torch.no_grad():
        logits = model(x)  # the model's own forward, as in training and eval
        with record_traces(model) as traces:
            model(x)
    simulated = simulate_nir(graph, x)
    for layer, trace in traces.items():
        spikes = simulated[layer]
        assert torch.equal(spikes, trace.s.double()), f"{layer}: {int((spikes != trace.s).sum())} spikes differ"
        assert 0 < spikes.mean() < 1, f"{layer} is silent or saturated; the comparison would prove little"
    if cfg.model.classifier == "neuron":
        assert torch.equal(simulated["output"], logits.double())
        assert torch.equal(readout(simulated["output"], mode), readout(logits, mode).double())
    else:
        torch.testing.assert_close(simulated["output"].float(), logits, rtol=1e-5, atol=1e-5)
        assert torch.equal(readout(simulated["output"], mode).argmax(-1), readout(logits, mode).argmax(-1))


def test_default_out_is_next_to_the_checkpoint_and_liaf_is_refused(make_cfg, tmp_path):
    lif = train(make_cfg(*TINY, "model=lif", "model.dense_norm=none", run_dir=tmp_path / "lif")).test_ckpt
    assert export(f"ckpt_path={lif}").returncode == 0
    assert nir.read(Path(lif).with_suffix(".nir")).nodes["dense.0.neuron"].tau.shape == (64,)

    liaf = train(make_cfg(*TINY, "model=liaf", "data.time_steps=4", run_dir=tmp_path / "liaf")).test_ckpt
    result = export(f"ckpt_path={liaf}", f"out={tmp_path / 'liaf.nir'}")
    assert result.returncode == 2 and not (tmp_path / "liaf.nir").exists()
    assert "model.family=liaf cannot be exported to NIR" in result.stderr and "analog fire" in result.stderr


def test_bad_arguments_name_what_to_pass(tmp_path):
    result = export("ckpt=x.ckpt")
    assert result.returncode == 2 and "unknown argument 'ckpt=x.ckpt'" in result.stderr
    result = export(f"ckpt_path={tmp_path / 'missing.ckpt'}")
    assert result.returncode == 2 and "no such checkpoint file" in result.stderr


@pytest.mark.parametrize("options,message", [
    ({"family": "liaf"}, "model.family=liaf cannot be exported"),
    ({"fire": "ge"}, "model.fire=ge"),
    ({"reset": "soft"}, "model.reset=soft"),
    ({"beta": 0.1}, "model.beta=0.1"),
    ({}, "model.dense_norm=time"),  # the default: a per-step BatchNorm1d(T)
    ({"pool_type": "max"}, "model.pool_type=max"),
    ({"sum_frames": True}, "model.sum_frames=true"),
    ({"decay": "fixed", "decay_alpha": 1.0}, "decay alpha must be in \\[0, 1\\)"),
])
def test_options_without_an_nir_form_are_refused_by_name(options, message):
    options = {"dense_norm": "feature", **options} if options else {}
    family = options.pop("family", "lif")
    model = liafnet.build_model(family, SPEC, **options).eval()
    with pytest.raises(NIRExportError, match=message):
        to_nir(model, SPEC)


def test_membrane_bn_whose_scale_lifts_the_decay_to_1_is_refused():
    model = liafnet.build_model("lif", SPEC, norm="membrane").eval()
    model.convs[1].norm.running_var.fill_(0.25)  # scale 2: decay 2 sigmoid(0.5) = 1.25
    with pytest.raises(NIRExportError, match=r"convs.1: model.norm=membrane .* outside NIR's LIF range"):
        to_nir(model, SPEC)


def test_text_models_are_refused():
    spec = DataSpec("text", 30, vocab_size=40, story_len=20, query_len=5)
    with pytest.raises(NIRExportError, match="covers event-frame LIF-SNNs; got a model for text data"):
        to_nir(liafnet.build_model("lif", spec).eval(), spec)
