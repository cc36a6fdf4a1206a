"""Plots: non-empty PNGs of the expected pixel size, built from hand-made runs and datasets."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from liafnet import viz
from liafnet.report import TableSpec, TableSpecError, aggregate, build_table, collect_runs, plots
from tests.helpers import cli, gesture_spec, text_outside_figure, write_run


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def distinct_colours(path: Path) -> int:
    """How many colours the image has: a blank figure has very few."""
    from matplotlib.image import imread

    pixels = imread(path).reshape(-1, 4)
    return len(np.unique(pixels, axis=0))


def write_csv_log(run_dir: Path, epochs: int = 3) -> None:
    log = run_dir / "csv" / "metrics.csv"
    log.parent.mkdir(parents=True)
    lines = ["epoch,step,train/loss_step,train/loss_epoch,val/acc,val/loss"]
    for epoch in range(epochs):
        for step in range(2):
            lines.append(f"{epoch},{epoch * 2 + step},{1.0 / (1 + epoch * 2 + step)},,,")
        lines.append(f"{epoch},{epoch * 2 + 1},,0.5,{0.5 + 0.1 * epoch},0.7")
    log.write_text("\n".join(lines) + "\n")


@pytest.fixture
def table(tmp_path):
    root = tmp_path / "sweep"
    for model, params in (("liaf", 2.3e6), ("lstm", 9.1e6), ("conv3d", 3.0e7)):
        for seed in range(2):
            run_dir = write_run(root, f"{model}{seed}", model=model, seed=seed, params=params, macs=params * 60,
                                csv_log="csv/metrics.csv", **{"test/acc": 0.8 + 0.05 * seed})
            write_csv_log(run_dir)
    return aggregate(TableSpec.from_dict(gesture_spec()), collect_runs(root))


@pytest.mark.parametrize("cost", ["params", "ops", "macs"])
def test_accuracy_vs_cost(table, tmp_path, cost):
    path = plots.plot_accuracy_vs_cost(table, cost, tmp_path / f"{cost}.png")
    assert png_size(path) == (640, 480)
    assert distinct_colours(path) > 50


def test_learning_curves_from_csv_logs(table, tmp_path):
    runs = [run for cell in table.cells.values() for run in cell.runs]
    path = plots.plot_learning_curves(runs, tmp_path / "curves.png", names={"liaf": "LIAF-Net"})
    assert png_size(path) == (1000, 400)
    assert distinct_colours(path) > 50


def test_csv_log_reading(table):
    run = table.cell("liaf").runs[0]
    assert plots.csv_log_path(run) == run.run_dir / "csv" / "metrics.csv"
    rows = plots.read_csv_log(plots.csv_log_path(run))
    assert rows[2] == {"epoch": 0.0, "step": 1.0, "train/loss_epoch": 0.5, "val/acc": 0.5, "val/loss": 0.7}


def test_csv_log_found_without_metrics_json_naming_it(tmp_path):
    run_dir = write_run(tmp_path, "r")
    write_csv_log(run_dir)
    assert plots.csv_log_path(collect_runs(tmp_path)[0]) == run_dir / "csv" / "metrics.csv"


def test_plots_beside_the_table_and_empty_sweeps(tmp_path):
    _, paths = build_table(gesture_spec(), tmp_path / "nothing_yet", tmp_path / "out")
    assert {p.name for p in paths.values()} >= {
        "gesture_acc_vs_params.png", "gesture_acc_vs_ops.png", "gesture_curves.png"}
    for key in ("params", "ops"):
        assert png_size(paths[key]) == (640, 480)
    assert png_size(paths["curves"]) == (1000, 400)


class TinyEventDataset:
    """Items ``(frames [T, 2, H, W], label)`` like the event datasets; class k's ON events sit at
    column k, OFF events at row k."""

    classes = ["left_swipe", "right_swipe", "up"]

    def __init__(self, time_steps: int = 12):
        self.items = []
        for label in (2, 0, 1, 0):
            frames = np.zeros((time_steps, 2, 8, 8), dtype=np.float32)
            frames[:, 1, :, label] = 1.0
            frames[:, 0, label, :] = 2.0
            self.items.append((frames, label))
        self.targets = [label for _, label in self.items]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def test_frames_to_rgb_colours():
    frames = np.zeros((1, 2, 2, 2), dtype=np.float32)
    frames[0, 1, 0, 0] = 4.0  # ON
    frames[0, 0, 1, 1] = 2.0  # OFF
    rgb = viz.frames_to_rgb(frames)
    assert rgb.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(rgb[0, 0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(rgb[0, 1, 1], [0.0, 0.0, 0.5])  # one scale for both polarities
    np.testing.assert_allclose(rgb[0, 0, 1], [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"\[T, 2, H, W\]"):
        viz.frames_to_rgb(np.zeros((4, 3, 8, 8)))


def test_class_frames_strip(tmp_path):
    dataset = TinyEventDataset()
    path = viz.plot_class_frames(dataset, tmp_path / "frames.png", n_frames=5)
    width, height = viz.class_frames_figsize(n_classes=3, n_frames=5)
    assert png_size(path) == (round(width * viz.DPI), round(height * viz.DPI))
    assert distinct_colours(path) > 20


def test_class_frames_without_targets_and_empty(tmp_path):
    dataset = TinyEventDataset(time_steps=3)
    del dataset.targets
    path = viz.plot_class_frames(dataset, tmp_path / "frames.png", n_frames=4)  # T < n_frames
    width, height = viz.class_frames_figsize(n_classes=3, n_frames=3)
    assert png_size(path) == (round(width * viz.DPI), round(height * viz.DPI))
    dataset.items = []
    with pytest.raises(ValueError, match="empty"):
        viz.plot_class_frames(dataset, tmp_path / "empty.png")


def test_sample_frames(tmp_path):
    frames, _ = TinyEventDataset(time_steps=13)[0]
    path = viz.plot_sample_frames(frames, tmp_path / "sample.png", title="up", per_row=5)
    width, height = viz.sample_frames_figsize(13, per_row=5)
    assert png_size(path) == (round(width * viz.DPI), round(height * viz.DPI))


def test_frames_plot_from_table_spec(tmp_path):
    spec = gesture_spec(plots=["frames"])
    _, paths = build_table(spec, tmp_path / "sweep", tmp_path / "out", dataset=TinyEventDataset())
    assert paths["frames"].name == "gesture_frames.png" and png_size(paths["frames"])[0] > 0


def test_record_membrane_follows_the_liaf_equations():
    """U^t = I^t + alpha (1 - S^{t-1}) U^{t-1}, S^t = [U^t > theta] (hard reset to 0, paper.md §3.2)."""
    import torch

    from liafnet.layers import DenseLIAF

    torch.manual_seed(0)
    layer = DenseLIAF(4, 6, norm="none")
    inputs = torch.randn(9, 2, 4)
    record = viz.record_membrane(layer, inputs)
    assert record.name == "neuron" and record.u.shape == (9, 6) and not record.spiking
    with torch.no_grad():
        synaptic = layer.linear(inputs)[:, 0].numpy()
        alpha = float(layer.neuron.alpha())
    expected = np.zeros_like(synaptic)
    expected[0] = synaptic[0]
    for t in range(1, 9):
        expected[t] = synaptic[t] + alpha * (expected[t - 1] <= 0.5) * expected[t - 1]
    np.testing.assert_allclose(record.u, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(record.spikes, (expected > 0.5).astype(np.float32))
    assert 0 < record.spikes.sum() < record.spikes.size  # the example does fire, and not always


def test_record_membrane_layer_choice_and_errors():
    import torch

    from liafnet.layers import ConvLIF

    model = torch.nn.Sequential(ConvLIF(2, 3, 3, padding=1), ConvLIF(3, 2, 3, padding=1))
    inputs = (torch.rand(5, 1, 2, 6, 6) < 0.3).float()
    record = viz.record_membrane(model, inputs, layer="1.neuron")
    assert record.spiking and record.u.shape == (5, 2 * 6 * 6) and record.unit_shape == (2, 6, 6)
    assert record.unit_name(37) == "channel 1 at (0, 1)"
    assert model.training  # the mode is restored
    with pytest.raises(ValueError, match=r"no LIAF neuron layer named 'head'.*0.neuron"):
        viz.record_membrane(model, inputs, layer="head")
    with pytest.raises(ValueError, match="no LIAF/LIF neuron layer"):
        viz.record_membrane(torch.nn.Linear(2, 2), torch.zeros(1, 2))


def test_membrane_traces_plot(tmp_path):
    import torch

    from liafnet.layers import DenseLIAF

    torch.manual_seed(1)
    record = viz.record_membrane(DenseLIAF(4, 6, norm="none"), torch.randn(12, 1, 4))
    path = viz.plot_membrane_traces(record, tmp_path / "membrane.png", units=3)
    assert png_size(path) == (800, 550)
    assert distinct_colours(path) > 50


def test_ops_are_macs_plus_acs(tmp_path):
    """Spiking models do accumulates only: on the ops axis they still get a point."""
    write_run(tmp_path, "lif", model="lif", macs=0, acs=5_000)
    write_run(tmp_path, "liaf", model="liaf", macs=1_000, acs=200)
    write_run(tmp_path, "conv3d", model="conv3d", macs=None, acs=None)
    table = aggregate(TableSpec.from_dict(gesture_spec()), collect_runs(tmp_path))
    assert plots.cell_cost(table.cell("lif"), "ops") == 5_000
    assert plots.cell_cost(table.cell("liaf"), "ops") == 1_200
    assert plots.cell_cost(table.cell("lif"), "macs") == 0
    assert plots.cell_cost(table.cell("conv3d"), "ops") is None


@pytest.mark.slow
def test_viz_command_line(tmp_path, data_dir):
    """``python -m liafnet.viz`` on the synthetic data: frames of a sample, a strip per class and
    the membrane traces of a named LIF layer; then the same with a trained checkpoint, whose plot
    is written beside the untrained one instead of over it."""
    common = [f"paths.data_dir={data_dir}", f"paths.output_dir={tmp_path}", "model=lif", "data.time_steps=4"]
    result = cli(["-m", "liafnet.viz"], [*common, "--index", "2", "--layer", "dense.0.neuron"])
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted(p.name for p in (tmp_path / "viz").iterdir())
    assert written == ["lif_synthetic_membrane_untrained.png", "synthetic_class_frames.png",
                       "synthetic_sample2_frames.png"]
    assert png_size(tmp_path / "viz" / "lif_synthetic_membrane_untrained.png") == (800, 550)
    untrained = (tmp_path / "viz" / "lif_synthetic_membrane_untrained.png").read_bytes()

    run_dir = tmp_path / "run"
    train = cli(["train.py"], [*common, f"paths.run_dir={run_dir}", "trainer=debug", "logger=none",
                               "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false"])
    assert train.returncode == 0, train.stderr[-3000:]
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    result = cli(["-m", "liafnet.viz"], [*common, "--index", "2", "--ckpt", str(ckpt)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "viz" / "lif_synthetic_membrane_last.png").is_file()
    assert (tmp_path / "viz" / "lif_synthetic_membrane_untrained.png").read_bytes() == untrained
    wrong = cli(["-m", "liafnet.viz"], [f"paths.data_dir={data_dir}", f"paths.output_dir={tmp_path}",
                                       "--ckpt", str(ckpt)])  # composed T = 16, trained at T = 4
    assert wrong.returncode != 0 and "time_steps: trained 4, composed 16" in wrong.stderr


# ----------------------------------------------------------------------------- what the plots show (issue 16)


def test_accuracy_plot_keeps_a_long_title_and_edge_labels_inside(table):
    """A smoke table's long title wraps and the rightmost point's name goes on its left: no text
    is cut off at the figure's fixed size."""
    long = TableSpec.from_dict(gesture_spec(smoke=True, title="DVS128 Gesture (T = {data.time_steps}): "
                                            "test accuracy (%) of every model with the authors' recipe"))
    table.spec = long
    for cost in ("params", "ops"):
        fig = plots.accuracy_vs_cost_figure(table, cost)
        assert text_outside_figure(fig) == []
        assert "Conv3D" in [t.get_text() for t in fig.axes[0].texts]  # the single-point model is named


def test_learning_curves_have_a_title_and_whole_epochs(tmp_path):
    """A one-epoch smoke run: the figure says what it shows, and epochs and steps tick as whole
    numbers (no 0.96, 0.98, ...)."""
    for model in ("liaf", "lif"):
        run_dir = write_run(tmp_path / "sweep", model, model=model, csv_log="csv/metrics.csv")
        write_csv_log(run_dir, epochs=1)
    fig = plots.learning_curves_figure(collect_runs(tmp_path / "sweep"), title="gesture: learning curves")
    assert fig.get_suptitle() == "gesture: learning curves"
    assert text_outside_figure(fig) == []
    for ax in fig.axes:
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_membrane_plot_legend_beside_the_data_and_one_spike_row_per_unit():
    """The legend does not cover the traces, and spikes of different units at the same step are
    drawn on separate rows of a raster."""
    import torch
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from liafnet.layers import ConvLIF
    from liafnet.neurons import neuron_config

    torch.manual_seed(0)
    model = ConvLIF(2, 4, 3, padding=1, neuron=neuron_config(spiking=True, threshold=0.3))
    record = viz.record_membrane(model, (torch.rand(20, 1, 2, 8, 8) < 0.4).float())
    fig = viz.membrane_figure(record, units=4)
    FigureCanvasAgg(fig).draw()
    u_ax, raster = fig.axes
    renderer = fig.canvas.get_renderer()
    assert not u_ax.get_legend().get_window_extent(renderer).overlaps(u_ax.get_window_extent(renderer))
    assert text_outside_figure(fig) == []
    rows = [collection.get_segments() for collection in raster.collections]
    assert len(rows) == 4 and sum(len(r) for r in rows) > 4  # four units, and they fire
    for row, segments in enumerate(rows):  # each unit's spikes sit on its own row only
        assert all(row - 0.5 < y < row + 0.5 for segment in segments for _, y in segment)
    same_step = [set(int(seg[0][0]) for seg in segments) for segments in rows]
    assert any(a & b for i, a in enumerate(same_step) for b in same_step[i + 1:])  # overlap in time: told apart


def test_rows_plot_shows_every_row_and_column_with_references_last(tmp_path):
    """The per-row plot of a wide table (the bAbI tables): one tick per row in the table's order,
    one marker per finished cell (its std as an error bar), a column without a finished cell named
    as such, the reference columns after ours, and no text cut off."""
    root = tmp_path / "sweep"
    for task, accs in ((1, {"gru": [0.9, 0.8], "liaf": [0.5]}), (2, {"gru": [0.4], "liaf": [0.45]})):
        for model, values in accs.items():
            for seed, acc in enumerate(values):
                write_run(root, f"{task}-{model}-{seed}", model=model, data="babi", seed=seed,
                          config={"data": {"task": task}}, **{"test/acc": acc})
    spec = {"name": "babi", "title": "bAbI 1k, a long title that must wrap inside the figure: test accuracy (%) per task",
            "rows": {"key": "data.task", "label": "task", "order": [1, 2, 3], "names": {1: "1 single fact"}},
            "columns": {"key": "model", "order": ["liaf", "gru", "lstm"], "names": {"liaf": "LIAF"}},
            "grid": {"data.task": [1, 2, 3], "model": ["liaf", "gru", "lstm"]},
            "paper": {"values": {}, "references": [{"name": "FB LSTM", "source": "Weston et al. 2015",
                                                    "values": {1: 50, 2: 20}}]},
            "summary": {"mean": True, "pass_threshold": 95}, "plots": ["rows"]}
    table, paths = build_table(spec, root, tmp_path / "out")
    assert paths["rows"] == tmp_path / "out" / "babi_rows.png" and paths["rows"].is_file()
    fig = plots.rows_figure(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1 single fact", "2", "3"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["LIAF", "gru", "lstm (no finished cell)", "FB LSTM"]
    gru = ax.containers[1]  # errorbar containers in column order: liaf, gru
    xs, ys = gru.lines[0].get_data()
    assert list(xs) == pytest.approx([85.0, 40.0]) and ys[0] < ys[1] < 2  # task 1 above task 2, row 3 empty
    assert len(gru.lines[2][0].get_segments()) == 2  # an x error bar per cell (0 wide for one seed)
    assert text_outside_figure(fig) == []


def test_rows_plot_needs_a_wide_table():
    with pytest.raises(TableSpecError, match="'rows' needs a wide table"):
        TableSpec.from_dict(gesture_spec(plots=["rows"]))
