"""Firing-rate telemetry: per-layer rates measured without changing outputs, logged through Trainer.fit."""

from __future__ import annotations

import csv
import functools

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from liafnet.data.spec import DataSpec
from liafnet.layers import DenseLIAF, DenseLIF, record_traces
from liafnet.models import build_model
from liafnet.task import ClassificationTask
from liafnet.telemetry import FiringRates

SPEC = DataSpec("events", 3, "synthetic", 4, 2, 16, 16)
LAYERS = ("convs.0", "convs.1", "dense.0", "dense.1")


def _time_first(batch):
    frames, target = zip(*batch)
    return torch.stack(frames, dim=1), torch.stack(target)


def _loader(seed: int, samples: int, batch_size: int = 4) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    frames = (torch.rand(samples, SPEC.time_steps, 2, 16, 16, generator=generator) < 0.3).float()
    target = torch.randint(0, SPEC.num_classes, (samples,), generator=generator)
    return DataLoader(TensorDataset(frames, target), batch_size=batch_size, collate_fn=_time_first)


def test_csv_log_has_per_layer_firing_rates_for_every_validation_epoch(tmp_path):
    torch.manual_seed(0)
    task = ClassificationTask(build_model("liaf", SPEC), num_classes=SPEC.num_classes,
                              optimizer=functools.partial(torch.optim.Adam, lr=1e-3))
    rates = FiringRates()
    trainer = Trainer(max_epochs=3, accelerator="cpu", logger=CSVLogger(tmp_path, name="csv"),
                      callbacks=[rates], enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=1, default_root_dir=tmp_path)
    val = _loader(1, 8, batch_size=8)  # one batch, so one recorded forward covers it
    trainer.fit(task, _loader(0, 8), val)
    with open(next(tmp_path.rglob("metrics.csv")), newline="") as file:
        rows = [row for row in csv.DictReader(file) if row.get("val/acc")]
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]  # every validation epoch, no sanity row
    for row in rows:
        for layer in LAYERS:
            assert 0.0 <= float(row[f"val/rate/{layer}"]) <= 1.0
            float(row[f"val/activity/{layer}"])
    # The logged rate is the one measured independently on the final weights with the recording loop.
    task.eval()
    with torch.no_grad(), record_traces(task.model) as traces:
        for frames, _ in val:
            task.model(frames)
    for layer in LAYERS:
        trace = traces[f"{layer}.neuron"]
        assert float(rows[-1][f"val/rate/{layer}"]) == pytest.approx(trace.s.mean().item(), rel=1e-5)
        assert rates.last[f"val/rate/{layer}"] == pytest.approx(trace.s.mean().item(), rel=1e-5)
        assert rates.last[f"val/activity/{layer}"] == pytest.approx(trace.y.mean().item(), rel=1e-4, abs=1e-6)
    assert 0 < rates.last["val/rate/convs.0"] < 1
    assert not any(n.measure for n in task.model.modules() if hasattr(n, "measure"))  # off after validation


@pytest.mark.parametrize("norm", ("none", "membrane"))
def test_measuring_does_not_change_outputs_and_counts_spikes(norm):
    torch.manual_seed(0)
    model = torch.nn.Sequential(DenseLIAF(5, 8, norm=norm, dense_norm="feature"), DenseLIF(8, 4, norm="none"))
    x = torch.randn(6, 3, 5) + 0.2
    expected = model(x)
    for layer in model:
        layer.neuron.measure = True
    torch.testing.assert_close(model(x), expected, rtol=0, atol=0)
    hidden = model[0].linear(x).detach()
    with record_traces(model) as traces:
        model(x)  # recording measures too: the counts now cover two forwards of the same input
    liaf, lif = model[0].neuron.firing_stats(), model[1].neuron.firing_stats()
    assert liaf["rate"] == pytest.approx(traces["0.neuron"].s.mean().item())
    assert liaf["activity"] == pytest.approx(traces["0.neuron"].y.mean().item(), abs=1e-6)
    assert lif["rate"] == pytest.approx(expected.mean().item())  # LIF: the rate is the output's mean
    if norm == "none":  # by hand: S = [U > 0.5] with U^t = I^t + alpha U^{t-1} (1 - S^{t-1})
        alpha, u, spikes = torch.sigmoid(torch.tensor(0.5)), torch.zeros(3, 8), []
        for t in range(6):
            u = hidden[t] + (alpha * u * (u <= 0.5) if t else 0)
            spikes.append((u > 0.5).float())
        assert liaf["rate"] == pytest.approx(torch.stack(spikes).mean().item())
    model[0].neuron.reset_firing_stats()
    assert model[0].neuron.firing_stats() is None
