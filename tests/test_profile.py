"""Profiler: parameter split, dense MACs and the authors' §8 check values, measured ACs, CLI, table."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from liafnet.data.spec import DataSpec
from liafnet.layers import ConvLIF, DenseLIF
from liafnet.models import build_model
from liafnet.neurons import neuron_config
from liafnet.cli.profile import efficiency_table, main, profile_config
from liafnet.profile import ENERGY_PJ, profile_model

ROOT = Path(__file__).resolve().parents[1]
GESTURE = DataSpec("events", 11, "dvs_gesture", 60, 2, 32, 32)


def _conv_layers(stats: dict) -> list[dict]:
    return [layer for layer in stats["layers"] if layer["name"].startswith("convs.")]


def test_gesture_liaf_counts_match_paper_section_8():
    stats = profile_model(build_model("liaf", GESTURE), GESTURE)
    assert (stats["params"], stats["bn_params"], stats["neuron_params"]) == (2_322_891, 880, 5)
    assert stats["dense_macs"] == 6_991_549_440  # 116,525,824 per step x 60
    conv = _conv_layers(stats)
    assert sum(layer["paper_mults"] for layer in conv) == 6_893_076_480
    assert sum(layer["paper_adds"] for layer in conv) == 6_130_237_440
    per_layer = [round(sum(l["paper_mults"] for l in conv if l["name"].startswith(f"convs.{i}.")) / 60)
                 for i in range(3)]
    assert per_layer == [1_310_720, 75_759_616, 37_814_272]


def test_gesture_lif_multiplications_are_neuron_updates_only():
    stats = profile_model(build_model("lif", GESTURE), GESTURE)
    assert sum(layer["paper_mults"] for layer in _conv_layers(stats)) == 27_525_120
    assert stats["macs"] == 0  # every synaptic layer is driven by spikes or binary frames
    assert stats["acs"] == pytest.approx(0.1 * stats["dense_macs"], rel=1e-9)


def test_dense_macs_per_step_of_other_layouts():
    cifar = DataSpec("events", 10, "cifar10_dvs", 10, 2, 42, 42)
    mnist = DataSpec("events", 10, "mnist_dvs", 50, 2, 128, 128)
    assert profile_model(build_model("liaf", cifar), cifar)["dense_macs"] == 11_822_080 * 10
    assert profile_model(build_model("liaf", mnist), mnist)["dense_macs"] == 2_167_019_520 * 50


def test_convlstm_counts():
    stats = profile_model(build_model("convlstm", GESTURE), GESTURE)
    assert stats["params"] == 4_317_963
    # paper.md §5.1 counts 1,363,673,088 conv MACs per step; the hidden convolution of step 0 is
    # skipped here (h = 0), and the FC layers run once.
    # Hidden convolutions per step: 4*Ch gate maps x H*W x Ch*3*3 (cells at 32x32, 32x32, 16x16).
    hidden_conv_per_step = 256 * 32 * 32 * 64 * 9 + 512 * 32 * 32 * 128 * 9 + 512 * 16 * 16 * 128 * 9
    assert stats["dense_macs"] == 1_363_673_088 * 60 - hidden_conv_per_step + 2_097_152 + 2_816


def _lif_net() -> nn.Module:
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = ConvLIF(2, 4, 3, padding=1, neuron=neuron_config(spiking=True, threshold=0.2))
            self.dense = DenseLIF(4 * 6 * 6, 5, time_steps=3, neuron=neuron_config(spiking=True, threshold=0.2))

        def forward(self, x):
            return self.dense(self.conv(x).flatten(2))

    torch.manual_seed(0)
    return Net()


def test_lif_layer_acs_equal_input_spikes_times_fan_out():
    net = _lif_net()
    spec = DataSpec("events", 5, "synthetic", 3, 2, 6, 6)
    x = (torch.rand(3, 4, 2, 6, 6, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    seen = {}
    handle = net.dense.linear.register_forward_hook(lambda m, i, o: seen.update(spikes=i[0].clone()))
    stats = profile_model(net, spec, inputs=x)
    handle.remove()
    layers = {layer["name"]: layer for layer in stats["layers"]}
    spikes = seen["spikes"]
    assert set(spikes.unique().tolist()) == {0.0, 1.0}
    # Dense LIF layer: every input spike reaches all 5 outputs.
    assert layers["dense.linear"]["acs"] == pytest.approx(spikes.sum().item() * 5 / 4)
    assert layers["dense.linear"]["input_rate"] == pytest.approx(spikes.mean().item())
    # Conv layer on binary frames: each input event reaches the outputs whose 3x3 window holds it
    # (fewer at the borders), times 4 output channels. Brute force over positions:
    fan_out = torch.zeros(6, 6)
    for i in range(6):
        for j in range(6):
            fan_out[i, j] = (min(i + 1, 5) - max(i - 1, 0) + 1) * (min(j + 1, 5) - max(j - 1, 0) + 1)
    expected = ((x != 0).float() * fan_out).sum().item() * 4
    assert layers["conv.conv"]["acs"] == pytest.approx(expected / 4)
    assert stats["macs"] == 0
    assert stats["acs"] == pytest.approx(layers["dense.linear"]["acs"] + layers["conv.conv"]["acs"], abs=0.5)
    energy = stats["energy"]
    assert energy["total_uj"] == pytest.approx(
        (stats["acs"] * ENERGY_PJ["ac"] + stats["neuron_ops"]["mults"] * ENERGY_PJ["neuron_mult"]
         + stats["neuron_ops"]["adds"] * ENERGY_PJ["neuron_add"]) / 1e6, rel=1e-6)


def test_measured_liaf_counts_first_layer_as_accumulates_only_for_binary_frames():
    spec = DataSpec("events", 6, "synthetic", 4, 2, 16, 16)
    model = build_model("liaf", spec)
    binary = (torch.rand(4, 2, 2, 16, 16) < 0.25).float()
    stats = profile_model(model, spec, inputs=binary)
    first = stats["layers"][0]
    assert first["name"] == "convs.0.conv" and first["spike_driven"]
    assert 0.15 < first["input_rate"] < 0.35
    assert stats["macs"] == stats["dense_macs"] - first["dense_macs"]
    counts = profile_model(model, spec, inputs=binary * 3)  # event counts: analog input
    assert counts["acs"] == 0 and counts["macs"] == counts["dense_macs"]
    assert model.training  # profiling restores the mode


def test_sum_frames_input_is_not_spike_driven():
    spec = DataSpec("events", 6, "synthetic", 16, 2, 16, 16)
    stats = profile_model(build_model("liaf", spec, sum_frames=True), spec)
    assert stats["acs"] == 0
    assert stats["dense_macs"] * 16 == profile_model(build_model("liaf", spec), spec)["dense_macs"]


def test_profile_config_composes_hydra():
    stats = profile_config(["model=convlstm", "data=dvs_gesture"])
    assert stats["model"] == "convlstm" and stats["data"] == "dvs_gesture"
    assert stats["params"] == 4_317_963


def test_cli_prints_one_json_object():
    result = subprocess.run([sys.executable, "-m", "liafnet.profile", "model=liaf", "data=dvs_gesture"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300, check=True)
    stats = json.loads(result.stdout)
    assert stats["params"] == 2_322_891 and stats["bn_params"] == 880 and stats["neuron_params"] == 5
    for key in ("macs", "acs", "synops", "energy", "layers", "paper_convention", "rates"):
        assert key in stats
    assert stats["rates"]["mode"] == "analytic" and stats["rates"]["spike_rate"] == 0.1


def test_cli_errors(capsys):
    with pytest.raises(SystemExit):
        main(["--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(ValueError, match="spike_rate"):
        main(["model=liaf", "data=synthetic", "--spike-rate", "2"])
    with pytest.raises(SystemExit):
        main(["model=liaf", "--energy", "mac"])
    assert "expected OP=PJ" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"unknown operation 'flop'.*'mac'"):
        main(["model=liaf", "--energy", "flop=1"])


def test_energy_per_operation_is_configurable_on_the_command_line(capsys):
    """``--energy ac=0.03``: the AC energy changes by exactly that factor, the rest stays, and the
    output names what was set beside the documented defaults."""
    args = ["model=lif", "data=dvs_gesture"]
    assert main(args) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["energy"]["pj_per_op"] == {"mac": 4.6, "ac": 0.9, "neuron_mult": 3.7, "neuron_add": 0.9}
    assert "Horowitz" in default["energy"]["source"] and "ISSCC 2014" in default["energy"]["source"]
    assert main([*args, "--energy", "ac=0.03"]) == 0
    cheap = json.loads(capsys.readouterr().out)
    parts, cheap_parts = default["energy"]["parts_uj"], cheap["energy"]["parts_uj"]
    assert cheap_parts["synaptic_ac"] == pytest.approx(parts["synaptic_ac"] * 0.03 / 0.9)
    assert cheap_parts["neuron"] == parts["neuron"] and cheap_parts["synaptic_mac"] == parts["synaptic_mac"]
    assert cheap["energy"]["source"].startswith("user-set {'ac': 0.03}")


def test_given_firing_rates_scale_the_accumulates(tmp_path, capsys):
    """Measured rates per neuron layer replace the assumed rate for the layers they drive: a layer fed
    by a neuron firing at 0.3 does 3x the ACs of the 0.1 assumption; other layers keep 0.1."""
    args = ["model=lif", "data=dvs_gesture"]
    main(args)
    assumed = {layer["name"]: layer for layer in json.loads(capsys.readouterr().out)["layers"]}
    rates = tmp_path / "rates.json"
    rates.write_text(json.dumps({"convs.0.neuron": 0.3, "input": 0.05}))
    main([*args, "--rates", str(rates)])
    given = json.loads(capsys.readouterr().out)
    layers = {layer["name"]: layer for layer in given["layers"]}
    assert layers["convs.1.conv"]["acs"] == pytest.approx(3 * assumed["convs.1.conv"]["acs"])
    assert layers["convs.0.conv"]["acs"] == pytest.approx(0.5 * assumed["convs.0.conv"]["acs"])
    assert layers["convs.2.conv"]["acs"] == pytest.approx(assumed["convs.2.conv"]["acs"])
    assert given["rates"]["mode"] == "given rates" and given["rates"]["given"]["convs.0.neuron"] == 0.3
    # A run record's telemetry keys (val/rate/<layer>, the layer named without ".neuron") work too.
    rates.write_text(json.dumps({"model": "lif", "data": "dvs_gesture", "seed": 0, "val/rate/convs.0": 0.3}))
    main([*args, "--rates", str(rates)])
    from_record = {layer["name"]: layer for layer in json.loads(capsys.readouterr().out)["layers"]}
    assert from_record["convs.1.conv"]["acs"] == pytest.approx(layers["convs.1.conv"]["acs"])
    rates.write_text(json.dumps({"convs.9.neuron": 0.3}))
    with pytest.raises(ValueError, match=r"'convs.9.neuron' is not a neuron layer.*convs.0.neuron"):
        main([*args, "--rates", str(rates)])
    rates.write_text(json.dumps({"input": 1.5}))
    with pytest.raises(ValueError, match=r"rates\['input'\] = 1.5"):
        main([*args, "--rates", str(rates)])


@pytest.mark.slow
def test_efficiency_table(tmp_path):
    rows = efficiency_table(tmp_path / "efficiency")
    datasets = {row["data"] for row in rows}
    assert {"synthetic", "dvs_gesture", "cifar10_dvs", "mnist_dvs"} <= datasets
    assert len(rows) == 6 * len(datasets)
    markdown = (tmp_path / "efficiency.md").read_text()
    assert "2,322,891" in markdown and "Horowitz" in markdown
    with open(tmp_path / "efficiency.csv") as handle:
        table = list(csv.DictReader(handle))
    gesture_convlstm = next(r for r in table if r["data"] == "dvs_gesture" and r["model"] == "convlstm")
    assert int(gesture_convlstm["params"]) == 4_317_963
