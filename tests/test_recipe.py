"""The authors' DVS recipes: transforms, schedules, validation split, stand-in data, the authors'
evaluation protocol, and the experiment/table configs that tie them together."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch

from liafnet.cli.train import train
from liafnet.data.cifar10_dvs import CIFAR10DVS
from liafnet.data.dvs_gesture import DVSGesture
from liafnet.data.mnist_dvs import MNISTDVS
from liafnet.data.module import split_groups
from liafnet.data.synthetic import ensure_standin
from liafnet.data.transforms import InputSampling, bernoulli_sample, scale_to_unit
from liafnet.protocol import BestTestAccuracy
from liafnet.schedules import exponential_with_steps
from liafnet.report import TableSpec, build_table

# ----------------------------------------------------------------------------- transforms


def test_bernoulli_sample_draws_each_value_with_its_probability():
    generator = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.0, 0.2, 0.5, 0.9, 1.0]).repeat(20_000, 1)
    drawn = bernoulli_sample(probs, generator=generator)
    assert set(drawn.unique().tolist()) <= {0.0, 1.0} and drawn.dtype == probs.dtype
    rates = drawn.mean(dim=0)
    assert rates[0] == 0 and rates[-1] == 1  # 0 never fires, 1 always does
    assert torch.allclose(rates[1:4], torch.tensor([0.2, 0.5, 0.9]), atol=0.02)
    binary = (torch.rand(3, 2, 4, 4) > 0.5).float()
    assert torch.equal(bernoulli_sample(binary), binary)  # the identity on binary frames


def test_bernoulli_sample_rejects_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\].*input_scaling"):
        bernoulli_sample(torch.tensor([0.5, 2.0]))


def test_scale_to_unit_per_sample_over_time_channels_and_pixels():
    frames = torch.zeros(3, 4, 2, 5, 5)  # [B, T, C, H, W]
    frames[0, 1, 0, 2, 2] = 4.0
    frames[0, 3, 1, 0, 0] = 2.0
    frames[1, 0, 0, 0, 0] = 7.0
    scaled = scale_to_unit(frames)
    assert scaled[0].max() == 1 and scaled[0, 3, 1, 0, 0] == 0.5
    assert scaled[1].max() == 1
    assert torch.equal(scaled[2], frames[2])  # an empty sample stays empty
    assert torch.equal(scale_to_unit(frames[0]), scaled[0])  # one sample [T, C, H, W] alike
    with pytest.raises(ValueError, match="T, C, H, W"):
        scale_to_unit(torch.ones(5, 5))


def test_input_sampling_names_the_bad_option():
    with pytest.raises(ValueError, match="data.input_sampling"):
        InputSampling(sampling="poisson")
    with pytest.raises(ValueError, match="data.input_scaling"):
        InputSampling(scaling="mean")


# ----------------------------------------------------------------------------- schedules


def lrs(scheduler, optimizer, steps: int) -> list[float]:
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_exponential_with_steps_as_the_cifar10_script_runs():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    as_run = lrs(exponential_with_steps(optimizer, 0.9, [0, 40, 80], 1e-3), optimizer, 81)
    assert as_run[0] == pytest.approx(1e-6)  # the helper fires at epoch 0
    assert as_run[39] == pytest.approx(1e-6 * 0.9**39)
    assert as_run[40] == pytest.approx(1e-9 * 0.9**40)
    assert as_run[80] == pytest.approx(1e-12 * 0.9**80)
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    intended = lrs(exponential_with_steps(optimizer, 0.9, [40, 80], 0.1), optimizer, 41)
    assert intended[0] == pytest.approx(1e-3) and intended[40] == pytest.approx(1e-4 * 0.9**40)
    with pytest.raises(ValueError, match="milestones"):
        exponential_with_steps(optimizer, 0.9, [-1])


# ----------------------------------------------------------------------------- validation split


def test_split_groups_keeps_each_group_on_one_side():
    groups = [f"user{u:02d}" for u in range(1, 24) for _ in range(12)]
    train_idx, val_idx = split_groups(groups, 0.1, seed=3)
    train_users = {groups[i] for i in train_idx}
    val_users = {groups[i] for i in val_idx}
    assert not train_users & val_users
    assert len(train_idx) + len(val_idx) == len(groups)
    assert len(val_idx) >= round(0.1 * len(groups)) and len(val_users) == 3  # 28 gestures need 3 users
    assert np.array_equal(split_groups(groups, 0.1, seed=3)[1], val_idx)  # seeded
    with pytest.raises(ValueError, match="all 1 groups"):
        split_groups(["a"] * 5, 0.5, seed=0)


def test_gesture_recipe_validates_on_held_out_users(make_cfg):
    cfg = make_cfg("experiment=gesture", "+standin=gesture_tiny")
    datamodule = hydra.utils.instantiate(cfg.data.datamodule, seed=0)
    datamodule.prepare_data()
    datamodule.setup("fit")
    groups = datamodule.train_set.dataset.groups
    train_users = {groups[i] for i in datamodule.train_set.indices}
    val_users = {groups[i] for i in datamodule.val_set.indices}
    assert val_users and train_users and not train_users & val_users


# ----------------------------------------------------------------------------- stand-in data


def test_standins_have_the_real_layouts_sizes_and_class_counts(tmp_path):
    gesture = ensure_standin(tmp_path / "g", "dvs_gesture", train_size=36, test_size=12, num_classes=11,
                             duration_us=300_000, events_per_sample=200)
    train = DVSGesture(gesture, "train", time_steps=4, dt_us=50_000, num_classes=11)
    test = DVSGesture(gesture, "test", time_steps=4, dt_us=50_000, num_classes=11)
    assert (len(train), len(test)) == (36, 12)
    assert set(train.targets) == set(range(11))  # every trial holds every class
    assert sorted(set(train.groups)) == ["user01", "user02", "user03"]
    assert train[0][0].shape == (4, 2, 32, 32)

    cifar = ensure_standin(tmp_path / "c", "cifar10_dvs", train_size=30, test_size=10, events_per_sample=100)
    data = CIFAR10DVS(cifar, "train", time_steps=5)
    assert len(data) == 30 and len(CIFAR10DVS(cifar, "test", time_steps=5)) == 10
    assert sorted(set(data.targets)) == list(range(10)) and data[0][0].shape == (5, 2, 42, 42)

    mnist = ensure_standin(tmp_path / "m", "mnist_dvs", train_size=20, test_size=10, events_per_sample=100)
    assert (len(MNISTDVS(mnist, "train", time_steps=3)), len(MNISTDVS(mnist, "test", time_steps=3))) == (20, 10)


def test_standin_sizes_must_fit_the_layout(tmp_path):
    with pytest.raises(ValueError, match="train_size=30 .* multiple of num_classes \\+ 1 = 12"):
        ensure_standin(tmp_path / "g", "dvs_gesture", train_size=30, test_size=12, num_classes=11)
    with pytest.raises(ValueError, match="test_size=1010 .* at most 100 per class"):
        ensure_standin(tmp_path / "c", "cifar10_dvs", train_size=20, test_size=1010)
    with pytest.raises(ValueError, match="layout must be one of"):
        ensure_standin(tmp_path / "x", "nmnist", train_size=20, test_size=10)


# ----------------------------------------------------------------------------- configs


def test_gesture_recipes_per_family(make_cfg):
    liaf = make_cfg("experiment=gesture")
    assert liaf.optimizer._target_ == "torch.optim.Adam" and liaf.optimizer.lr == 1e-2
    assert liaf.data.batch_size == 32 and liaf.loss == "ce" and liaf.scheduler is None
    assert liaf.trainer.max_steps == 4000 and liaf.trainer.val_check_interval == 20
    assert liaf.authors_protocol.every_n_steps == 20 and liaf.data.datamodule.val_split == "groups"
    convlstm = make_cfg("experiment=gesture", "model=convlstm")
    assert (convlstm.optimizer.lr, convlstm.optimizer.weight_decay) == (1e-4, 1e-4)
    assert convlstm.data.batch_size == 10 and convlstm.loss == "mse" and convlstm.trainer.max_steps == 4000
    assert make_cfg("experiment=gesture", "model=lif").data.batch_size == 36
    gru = make_cfg("experiment=gesture", "model=gru")
    assert gru.optimizer.lr == 1e-4 and gru.recipe.name == "gesture_gru"  # our choice: the ConvLSTM recipe
    intended = make_cfg("experiment=gesture", "recipe.lr_decay=intended")
    scheduler = hydra.utils.instantiate(intended.scheduler)(optimizer=torch.optim.SGD([torch.zeros(1)], lr=1.0))
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR) and scheduler.step_size == 1000
    # The table trains with the recipes and says so.
    table = make_cfg("table=gesture")
    assert table.optimizer.lr == 1e-2 and "lstmconv.py" in table.table_spec.recipe
    assert [p.metric for p in table.table_spec.protocols] == ["test/acc", "test/acc_authors"]


def test_cifar10_and_mnist_recipes(make_cfg):
    cifar = make_cfg("experiment=cifar10_dvs", "model=convlstm")
    assert (cifar.optimizer.lr, cifar.optimizer.weight_decay, cifar.data.batch_size) == (1e-3, 1e-3, 25)
    assert cifar.loss == "mse" and cifar.model.dropout == 0.1 and cifar.trainer.max_epochs == 100
    assert list(cifar.scheduler.milestones) == [0, 40, 80] and cifar.scheduler.milestone_factor == 1e-3
    assert cifar.data.datamodule.transform.sampling == "bernoulli"
    mnist = make_cfg("experiment=mnist_dvs")
    assert mnist.optimizer._target_ == "torch.optim.SGD" and mnist.optimizer.nesterov
    assert list(mnist.scheduler.milestones) == [10, 20] and mnist.trainer.max_epochs == 30
    assert mnist.authors_protocol.every_n_epochs == 1


def test_bernoulli_recipe_feeds_binary_draws_of_scaled_counts(make_cfg):
    cfg = make_cfg("experiment=cifar10_dvs", "+standin=cifar10_dvs_tiny")
    datamodule = hydra.utils.instantiate(cfg.data.datamodule, seed=0)
    datamodule.prepare_data()
    datamodule.setup("fit")
    frames, _ = next(iter(datamodule.train_dataloader()))
    assert frames.shape[2:] == (2, 42, 42)
    assert set(frames.unique().tolist()) <= {0.0, 1.0}
    counts = datamodule.test_set.dataset[0][0]
    assert counts.max() > 1  # count frames underneath, so the draws are not the binary frames
    draws = torch.stack([datamodule.test_set[0][0] for _ in range(5)])
    assert not all(torch.equal(draws[0], d) for d in draws[1:])


# ----------------------------------------------------------------------------- authors' protocol


def test_authors_protocol_reaches_metrics_json_through_the_fit_loop(make_cfg):
    cfg = make_cfg("experiment=gesture", "+standin=gesture_tiny", "trainer.max_steps=3", "logger=csv",
                   "trainer.enable_progress_bar=false", "trainer.accelerator=cpu")
    metrics = train(cfg)
    run = Path(cfg.paths.run_dir)
    written = json.loads((run / "metrics.json").read_text())
    assert written["status"] == "ok" and written["steps"] == 3
    rows = list(csv.DictReader((run / "csv" / "metrics.csv").open()))
    periodic = [float(r["test/acc_periodic"]) for r in rows if r.get("test/acc_periodic")]
    assert len(periodic) == 3  # every step, as the scaled-down cadence says
    assert written["test/acc_authors"] == pytest.approx(max(periodic)) == metrics.get("test/acc_authors")
    assert written["test/acc_authors_step"] == 1 + periodic.index(max(periodic))


def test_authors_protocol_needs_one_cadence():
    with pytest.raises(ValueError, match="exactly one of every_n_steps / every_n_epochs"):
        BestTestAccuracy(every_n_steps=20, every_n_epochs=1)
    with pytest.raises(ValueError, match="every_n_steps=0"):
        BestTestAccuracy(every_n_steps=0)


# ----------------------------------------------------------------------------- tables


def test_table_prints_recipe_under_title_and_the_authors_protocol_column(tmp_path):
    run = tmp_path / "sweep" / "job0"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        "model": "liaf", "data": "dvs_gesture", "seed": 0, "status": "ok", "test/acc": 0.9,
        "test/acc_authors": 0.9375, "val/acc": 0.9}))
    spec = TableSpec.from_dict({
        "name": "gesture", "title": "Gesture", "rows": {"key": "model", "label": "model", "order": ["liaf"]},
        "grid": {"model": ["liaf"], "seed": [0]}, "recipe": "Recipe: Adam\n  lr 1e-2 (authors' script).",
        "protocols": [{"metric": "test/acc", "name": "ours (val-chosen)"},
                      {"metric": "test/acc_authors", "name": "authors' protocol"}]})
    _, paths = build_table(spec, tmp_path / "sweep", tmp_path / "out", plots=False)
    lines = paths["md"].read_text().splitlines()
    assert lines[0] == "# Gesture" and lines[2] == "Recipe: Adam lr 1e-2 (authors' script)."
    header = next(line for line in lines if line.startswith("|"))
    body = next(line for line in lines if line.startswith("| LIAF") or line.startswith("| liaf"))
    names = [c.strip() for c in header.strip("|").split("|")]
    assert sum("authors" in name for name in names) == 1  # the authors' accuracy shows once
    column = names.index("authors' protocol")
    assert [c.strip() for c in body.strip("|").split("|")][column] == "93.8"
