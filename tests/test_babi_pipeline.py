"""bAbI configs end to end: data/experiment/table configs compose, a training run on a tiny bAbI tree
writes metrics.json, the table spec validates against its paper file, and the table renders."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import hydra
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from liafnet.cli.tables import sweep_grid
from liafnet.cli.train import train
from liafnet.config import CONF_DIR
from liafnet.report import PAPER_UNKNOWN, TableSpec, build_table
from tests.helpers import REPO
from tests.test_babi import SAMPLE

TINY = ("trainer.max_epochs=2", "trainer.enable_progress_bar=false", "logger=csv", "trainer.accelerator=cpu")
FB_LSTM_MEAN, KERAS_MEAN = 49.2, 60.8  # paper.md §9


@pytest.fixture
def babi_root(tmp_path) -> Path:
    folder = tmp_path / "babi" / "en"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        (folder / f"qa2_two-supporting-facts_{split}.txt").write_text(SAMPLE * 8)
    return folder.parent


def test_data_config_builds_the_datamodule(make_cfg, babi_root):
    cfg = make_cfg("data=babi", f"data.root={babi_root}", "data.task=2", "data.batch_size=4")
    assert cfg.data.spec.kind == "text"
    datamodule = hydra.utils.instantiate(cfg.data.datamodule, seed=3)
    datamodule.setup("fit")
    assert datamodule.seed == 3 and datamodule.batch_size == 4 and datamodule.tasks == [2]
    assert datamodule.spec.vocab_size > 2
    default = make_cfg("data=babi")
    assert default.data.root.endswith("babi/tasks_1-20_v1-2")


@pytest.mark.parametrize("family", ["liaf", "lstm"])
def test_experiment_run_writes_metrics(make_cfg, babi_root, family):
    cfg = make_cfg("experiment=babi", f"model={family}", f"data.root={babi_root}", "data.task=2", *TINY)
    assert cfg.model.text_hidden == 100 and cfg.early_stopping.patience == 20
    metrics = train(cfg)
    written = json.loads((Path(cfg.paths.run_dir) / "metrics.json").read_text())
    assert written["status"] == metrics.status == "ok"
    assert written["data"] == "babi" and written["model"] == family and written["config"]["data"]["task"] == 2
    assert 0.0 <= written["test/acc"] <= 1.0 and written["params"] > 0


def test_missing_data_fails_the_run_naming_make_data_babi(make_cfg, tmp_path):
    cfg = make_cfg("experiment=babi", "model=gru", f"data.root={tmp_path / 'none'}", *TINY)
    with pytest.raises(FileNotFoundError, match="make data-babi"):
        train(cfg)
    assert json.loads((Path(cfg.paths.run_dir) / "metrics.json").read_text())["status"] == "failed"


def test_table_config_grid_launcher_and_dirs():
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose("train", overrides=["table=babi"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert cfg.data.name == "babi" and cfg.trainer.max_epochs == 40 and list(cfg.logger) == ["csv"]
    grid = sweep_grid(dict(cfg.hydra.sweeper.params), [])
    assert grid == {"data.task": list(range(1, 21)), "model": ["liaf", "lif", "lstm", "gru"], "seed": [0, 1, 2]}
    assert sweep_grid(dict(cfg.hydra.sweeper.params), ["seed=range(0,1)"])["seed"] == [0]
    assert cfg.hydra.launcher.n_jobs == 2 and "joblib" in cfg.hydra.launcher._target_
    assert cfg.hydra.sweep.dir.endswith("sweeps/babi")
    # A path in data.root would otherwise become nested folders in every cell's name.
    assert "data.root" in cfg.hydra.job.config.override_dirname.exclude_keys


def test_paper_file_holds_the_published_anchors():
    paper = yaml.safe_load((REPO / "src" / "liafnet" / "conf" / "paper" / "babi.yaml").read_text())
    assert sorted(paper["values"]) == list(range(1, 21))
    assert all(e["value"] is None and e["source"] for task in paper["values"].values() for e in task.values())
    references = {r["name"]: r["values"] for r in paper["references"]}
    assert round(statistics.fmean(references["FB LSTM"].values()), 1) == FB_LSTM_MEAN
    assert round(statistics.fmean(references["Keras"].values()), 1) == KERAS_MEAN
    assert references["FB LSTM"][19] == 8 and references["Keras"][3] == 20.5


def test_table_renders_tasks_by_models_with_references(tmp_path):
    config = yaml.safe_load((REPO / "src" / "liafnet" / "conf" / "table" / "babi.yaml").read_text())
    grid = {"data.task": ["1", "2"], "model": ["liaf", "lif", "lstm", "gru"], "seed": ["0", "1"]}
    spec = TableSpec.from_dict(config["table_spec"], paper_dir=REPO / "src" / "liafnet" / "conf" / "paper", grid=grid)
    sweep = tmp_path / "sweep"
    for task in (1, 2):
        for model in ("liaf", "lif", "lstm", "gru"):
            for seed in (0, 1):
                run = sweep / f"{task}-{model}-{seed}"
                run.mkdir(parents=True)
                acc = 0.96 if task == 1 else 0.3 + 0.1 * seed
                metrics = {"model": model, "data": "babi", "seed": seed, "status": "ok", "test/acc": acc,
                           "train_time_s": 10.0 * task, "config": {"data": {"task": task}}}
                (run / "metrics.json").write_text(json.dumps(metrics))
    table, paths = build_table(spec, sweep, tmp_path / "tables", plots=False)
    text = paths["md"].read_text()
    assert "FB LSTM" in text and "Keras" in text and PAPER_UNKNOWN in text
    assert "1 single supporting fact" in text and "passed (≥ 95%)" in text
    assert table.cell("2", "lstm").mean == pytest.approx(35.0) and table.cell("2", "lstm").n == 2
    assert table.cell("1", "gru").mean == pytest.approx(96.0)
