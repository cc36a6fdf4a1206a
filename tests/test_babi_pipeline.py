"""bAbI configs end to end: data/experiment/table configs compose, a training run on a tiny bAbI tree
writes metrics.json, the table spec validates against its paper file, and the table renders."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from collections import Counter
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import hydra
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from lightning.pytorch import Callback, Trainer, seed_everything
from omegaconf import OmegaConf

from liafnet.babi_results import column_of, restore
from liafnet.babi_results import main as babi_results_main
from liafnet.cli.train import train
from liafnet.config import CONF_DIR, sweep_grid, to_plain
from liafnet.data.babi import BabiDataModule, collate_babi
from liafnet.models import build_model
from liafnet.models.options import check_model_config
from liafnet.rundirs import run_name
from liafnet.task import ClassificationTask
from tests.helpers import BABI_SAMPLE as SAMPLE
from tests.helpers import REPO, subprocess_env, write_babi_task1

TINY = ("trainer.max_epochs=2", "trainer.enable_progress_bar=false", "logger=csv", "trainer.accelerator=cpu")
FB_LSTM_MEAN, KERAS_TWO_TOWER_MEAN = 49.2, 57.8  # Weston et al. 2015; the 2015 Keras babi_rnn run


@pytest.fixture
def babi_root(tmp_path) -> Path:
    folder = tmp_path / "babi" / "en"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        (folder / f"qa2_two-supporting-facts_{split}.txt").write_text(SAMPLE * 8)
    return folder.parent


def test_data_config_builds_the_datamodule(make_cfg, babi_root):
    cfg = make_cfg("data=babi", f"data.root={babi_root}", "data.task=2", "data.batch_size=4")
    assert cfg.data.kind == "text"
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


def test_empty_validation_split_with_early_stopping_is_refused_before_training(make_cfg, babi_root):
    cfg = make_cfg("experiment=babi", "model=lstm", f"data.root={babi_root}", "data.task=2", "data.val_fraction=0",
                   *TINY)
    with pytest.raises(ValueError, match=r"early_stopping.patience=20 .*data.val_fraction=0.*"
                                         r"set data.val_fraction > 0 or early_stopping.patience=null"):
        train(cfg)
    written = json.loads((Path(cfg.paths.run_dir) / "metrics.json").read_text())
    assert written["status"] == "failed" and written["epochs"] is None  # nothing was trained


@pytest.mark.parametrize("table, setting, epochs, main, extras", [
    ("babi", "keras1", 40, ["liaf_rnn", "lif_rnn", "lstm", "gru"], ["liaf_lstm", "liaf_lstm_rec"]),
    ("babi_two_tower", "two_tower", 20, ["dense_liaf", "dense_lif", "lstm", "gru", "dense_liaf_slow_leak"],
     ["liaf_rnn", "liaf_lstm", "liaf_lstm_rec"]),
])
def test_table_configs_grid_launcher_dirs_and_columns(table, setting, epochs, main, extras, make_cfg):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose("train", overrides=[f"table={table}"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert cfg.data.name == "babi" and cfg.trainer.max_epochs == epochs and list(cfg.logger) == ["csv"]
    assert cfg.babi_setting == setting and cfg.trainer.use_distributed_sampler is False
    grid = sweep_grid(dict(cfg.hydra.sweeper.params), [])
    assert grid == {"data.task": list(range(1, 21)), "model": ["liaf", "lif", "lstm", "gru"], "seed": [0, 1, 2]}
    assert sweep_grid(dict(cfg.hydra.sweeper.params), ["seed=range(0,1)"])["seed"] == [0]
    assert cfg.hydra.launcher.n_jobs == 2 and "joblib" in cfg.hydra.launcher._target_
    assert cfg.hydra.sweep.dir.endswith(f"sweeps/{table}")
    # Cells are named by liafnet.rundirs.run_name (tests/test_rundirs.py): no path, no hand-kept key list.
    assert "override_dirname" not in OmegaConf.to_yaml(cfg.hydra.sweep)
    # Every column's overrides compose and name one of the table's columns, main ones first.
    columns = list(cfg.table_spec.columns.order)
    found = []
    for overrides in [*cfg.babi_columns, *cfg.babi_extras]:
        column = make_cfg(f"table={table}", *overrides)
        found.append(column.babi_column or column_of(column.model.family, column.model.get("text_encoder")))
        # The column builds: its model options pass the family's checks.
        check_model_config(to_plain(column.model), data_kind="text")
    assert found == main + extras == columns
    assert cfg.table_spec.claim.column == columns[0]
    if setting == "two_tower":  # the two-tower Keras recipe
        assert (cfg.model.text_merge, cfg.model.text_embed_dim, cfg.model.text_hidden) == ("concat", 50, 100)
        assert cfg.model.text_dropout == 0 and cfg.optimizer.lr == 1e-3 and cfg.data.batch_size == 32


def test_paper_file_holds_the_published_anchors():
    paper = yaml.safe_load((REPO / "src" / "liafnet" / "conf" / "paper" / "babi.yaml").read_text())
    assert sorted(paper["values"]) == list(range(1, 21))
    assert all(e["value"] is None and e["source"] for task in paper["values"].values() for e in task.values())
    references = {r["name"]: r["values"] for r in paper["references"]}
    assert round(statistics.fmean(references["FB LSTM"].values()), 1) == FB_LSTM_MEAN
    two_tower = references["Keras GRU, two towers"]
    assert sorted(two_tower) == list(range(1, 21)) and (two_tower[1], two_tower[2]) == (52.1, 37.0)
    assert round(statistics.fmean(two_tower.values()), 1) == KERAS_TWO_TOWER_MEAN
    assert references["Keras LSTM, summed (QA1/QA2 only)"] == {1: 100.0, 2: 50.0}
    assert references["FB LSTM"][19] == 8 and two_tower[3] == 20.5


def _fake_run(sweep: Path, setting: str, family: str, encoder: str | None, task: int, seed: int,
              acc: float | None, column: str | None = None, error: str | None = None) -> None:
    """A run as train.py leaves it: metrics.json with its config, and the CSV log; with ``error``, a
    failed run (its message first, then the traceback's last line, as train.py writes it)."""
    run = sweep / f"data.task={task},model={family},seed={seed},enc={encoder},col={column}"
    (run / "csv").mkdir(parents=True, exist_ok=True)
    model = {"family": family, **({"text_encoder": encoder} if encoder else {})}
    status = {"status": "failed", "error": f"{error}\nliafnet.task.NonFiniteLossError: {error}"} if error else {"status": "ok"}
    metrics = {"model": family, "data": "babi", "seed": seed, **status, "test/acc": acc, "val/acc": acc,
               "train_time_s": 10.0 * task, "epochs": 3, "git_rev": "abc1234",
               "overrides": [f"data.task={task}", f"model={family}", f"seed={seed}", f"table=babi_{setting}",
                             *([f"model.text_encoder={encoder}"] if encoder else []),
                             *([f"babi_column={column}"] if column else [])],
               "config": {"babi_setting": setting, "babi_column": column, "model": model,
                          "data": {"task": task, "batch_size": 32}}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "csv" / "metrics.csv").write_text("epoch,train/acc,val/acc\n0,0.5,\n0,,0.4\n1,0.75,\n")


def test_finished_runs_are_filed_under_results_and_tables_built_from_there(tmp_path):
    sweep = tmp_path / "outputs" / "sweeps" / "babi_two_tower"
    for task in (1, 2):
        for family, encoder in (("liaf", "dense"), ("lif", "dense"), ("lstm", None), ("gru", None)):
            for seed in (0, 1):
                _fake_run(sweep, "two_tower", family, encoder, task, seed, 0.96 if task == 1 else 0.3 + 0.1 * seed)
        _fake_run(sweep, "two_tower", "liaf", "liaf_lstm_rec", task, 0, 0.5)
        # A variant of a family (e.g. another neuron setting) files under the column its config names.
        _fake_run(sweep, "two_tower", "liaf", "dense", task, 0, 0.7, column="dense_liaf_slow_leak")
    _fake_run(sweep, "keras1", "liaf", "rnn", 1, 0, 0.5)  # another setting's run: not filed here
    # A failed run is filed with its reason, so the table can say so; one without a task cannot be.
    nan = "NonFiniteLossError: training loss became nan at epoch 0, batch 0"
    _fake_run(sweep, "two_tower", "liaf", "liaf_lstm", 2, 0, None, error=nan)
    _fake_run(sweep, "two_tower", "liaf", "liaf_lstm", 1, 0, None, error=nan)
    failed = sweep / "failed"
    failed.mkdir()
    (failed / "metrics.json").write_text(json.dumps({"status": "failed", "config": {"babi_setting": "two_tower"}}))
    killed = sweep / "killed"  # still says running: not an ended run
    killed.mkdir()
    (killed / "metrics.json").write_text(json.dumps({"status": "running", "config": {
        "babi_setting": "two_tower", "model": {"family": "gru"}, "data": {"task": 3}}}))
    results = tmp_path / "results"
    common = ["--setting", "two_tower", "--results", str(results), f"paths.output_dir={tmp_path / 'outputs'}"]
    assert babi_results_main(["collect", *common]) == 0
    cells = sorted(p.relative_to(results / "two_tower" / "cells").parent.as_posix()
                   for p in (results / "two_tower" / "cells").rglob("metrics.json"))
    assert len(cells) == 22 and "dense_liaf/task01-seed0" in cells and "liaf_lstm_rec/task02-seed0" in cells
    failed_cell = results / "two_tower" / "cells" / "liaf_lstm" / "task02-seed0" / "metrics.json"
    assert json.loads(failed_cell.read_text())["status"] == "failed"
    assert json.loads(failed_cell.read_text())["error"] == nan  # the message, not the traceback
    assert json.loads((results / "two_tower" / "cells" / "dense_liaf_slow_leak" / "task01-seed0" /
                       "metrics.json").read_text())["test/acc"] == 0.7  # not mixed into dense_liaf
    record = json.loads((results / "two_tower" / "cells" / "gru" / "task02-seed1" / "metrics.json").read_text())
    assert record["train_acc_max"] == 0.75 and record["data.task"] == 2 and record["git_rev"] == "abc1234"
    assert "config" not in record  # one small file per run: the fields a table needs and the provenance

    # The table comes from results/ alone: delete the runs first.
    shutil.rmtree(tmp_path / "outputs")
    assert babi_results_main(["table", *common, "--seeds", "2", "data.task=1,2"]) == 0
    text = (results / "two_tower" / "babi_two_tower.md").read_text()
    assert "LIAF (DenseLIAF towers)" in text and "liafnet extension, not in the authors' code" in text
    # The paper file names LIAF's columns (values unknown: "not available") and no others: no paper
    # column for the baselines and extensions.
    assert "LIAF (DenseLIAF towers) (paper)" in text and "GRU (paper)" not in text and "LIF (DenseLIF towers) (paper)" not in text
    assert "Keras GRU, two towers" in text and "Keras LSTM, summed (QA1/QA2 only)" in text
    assert "35.0 ± 7.1 (n=2)" in text and "1 single supporting fact" in text and "passed (≥ 95%)" in text
    assert "Claim check" in text and "LIAF (DenseLIAF towers) 65.5 vs" in text
    assert "| peak training accuracy (mean) |" in text  # whether a family fits its training set
    # The failed cell says so in its row, and why below the table.
    lines = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")]
    task2 = dict(zip(lines[0], next(line for line in lines if line[0] == "2 two supporting facts")))
    assert task2["LIAF-LSTM (authors' 2020 cell)"] == "1 failed"
    # Extras expect --extra-seeds seeds (default 1), the main columns --seeds: n shown either way.
    assert task2["LIAF-LSTM + recurrent gates (liafnet extension, not in the authors' code)"] == "50.0 (n=1)"
    assert task2["LIAF-RNN towers (extra)"] == "missing" and task2["GRU"] == "35.0 ± 7.1 (n=2)"
    assert task2[lines[0][5]] == "70.0 (n=1, 1 missing)"  # the slow-leak LIAF: a main column, seed 1 not run
    assert f"liaf_lstm/task02-seed0: failed: {nan}" in text
    assert (results / "two_tower" / "babi_two_tower_rows.png").stat().st_size > 0  # every task at a glance

    # A trial run of another command in the same sweep folder never replaces a filed cell.
    _fake_run(sweep, "two_tower", "gru", None, 2, 1, 0.1)
    trial = next(sweep.glob("data.task=2,model=gru,seed=1,*")) / "metrics.json"
    trial.write_text(json.dumps({**json.loads(trial.read_text()), "overrides": ["model=gru", "trainer.max_epochs=1"]}))
    assert babi_results_main(["collect", *common]) == 0
    assert json.loads((results / "two_tower" / "cells" / "gru" / "task02-seed1" / "metrics.json").read_text()) == record
    # A failed re-run of a finished cell's command never replaces it; a finished one replaces a failure.
    _fake_run(sweep, "two_tower", "gru", None, 1, 0, None, error=nan)
    _fake_run(sweep, "two_tower", "liaf", "liaf_lstm", 1, 0, 0.45)
    assert babi_results_main(["collect", *common]) == 0
    cells = results / "two_tower" / "cells"
    assert json.loads((cells / "gru" / "task01-seed0" / "metrics.json").read_text())["test/acc"] == 0.96
    assert json.loads((cells / "liaf_lstm" / "task01-seed0" / "metrics.json").read_text())["status"] == "ok"
    shutil.rmtree(tmp_path / "outputs")

    # Another machine: the finished cells go back into the sweep folders, where train.py skips them.
    assert babi_results_main(["collect", *common]) == 0  # nothing to collect, nothing lost
    assert len(list((results / "two_tower" / "cells").rglob("metrics.json"))) == 22
    sweep_dir = tmp_path / "outputs" / "sweeps" / "babi_two_tower"
    # 21 finished cells; the failed one stays behind, so `run` tries it again.
    assert restore(results / "two_tower", sweep_dir) == 21 and restore(results / "two_tower", sweep_dir) == 0
    # Into the folder that the current naming gives the command, where train.py looks for it.
    restored = json.loads((sweep_dir / run_name(record["overrides"]) / "metrics.json").read_text())
    assert restored == record and restored["status"] == "ok"


@pytest.mark.parametrize("family, encoder, column", [
    ("lstm", "dense", "lstm"), ("gru", None, "gru"), ("liaf", "rnn", "liaf_rnn"), ("lif", "rnn", "lif_rnn"),
    ("liaf", "dense", "dense_liaf"), ("lif", "dense", "dense_lif"), ("liaf", "liaf_lstm", "liaf_lstm"),
    ("liaf", "liaf_lstm_rec", "liaf_lstm_rec"),
])
def test_column_of_each_family_and_encoder(family, encoder, column):
    assert column_of(family, encoder) == column


@pytest.mark.slow
def test_make_table_babi_runs_files_and_resumes_from_results(tmp_path):
    """The driver end to end on a tiny task-1 tree: runs, files the cells, builds the table; a
    second run on a "fresh machine" (outputs deleted) restores every cell and trains nothing."""
    write_babi_task1(tmp_path / "babi" / "en", stories=30)
    results, outputs = tmp_path / "results", tmp_path / "outputs"
    command = [sys.executable, "-m", "liafnet.babi_results", "run", "--setting", "two_tower", "--seeds", "1",
               "--extra-seeds", "0", "--results", str(results), "data.task=1", "trainer.max_epochs=1",
               f"data.root={tmp_path / 'babi'}", f"paths.output_dir={outputs}"]
    first = subprocess.run(command, cwd=tmp_path, env=subprocess_env(PYTHONPATH=str(REPO / "src")),
                           capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    cells = sorted((results / "two_tower" / "cells").rglob("metrics.json"))
    # The four main families and two_tower's slow-leak LIAF, which has its own column (babi_column).
    assert [p.parent.parent.name for p in cells] == ["dense_liaf", "dense_liaf_slow_leak", "dense_lif", "gru", "lstm"]
    text = (results / "two_tower" / "babi_two_tower.md").read_text()
    assert "| 1 single supporting fact" in text
    # --extra-seeds 0: the extras' columns are left out, not shown as missing.
    assert "LIAF-RNN towers (extra)" not in text and "missing" not in text
    # The wall time of each column's sweep and of the whole grid, as they ran.
    assert first.stdout.count(" wall\n") == 6 and "bAbI two_tower: model=gru seed=range(0,1): " in first.stdout
    assert "bAbI two_tower: all sweeps " in first.stdout
    shutil.rmtree(outputs)
    second = subprocess.run(command, cwd=tmp_path, env=subprocess_env(PYTHONPATH=str(REPO / "src")),
                            capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "restored 5 finished cells" in second.stdout and "filed 0 new or changed cells" in second.stdout
    assert second.stdout.count("already says status ok; skipping") == 5


# ------------------------------------------------------------------ batch order and DDP, via Lightning
def _examples(batch) -> list[str]:
    """Each example of a batch as text: its story tokens, question tokens and answer (padding dropped)."""
    (story, question), answer = batch
    return [f"{story[:, b][story[:, b] > 0].tolist()}|{question[:, b][question[:, b] > 0].tolist()}|"
            f"{int(answer[b])}" for b in range(answer.numel())]


class RecordBatches(Callback):
    """Writes what each rank's steps received (ddp_spawn keeps no callback state, hence files):
    ``fit-rank<r>.json`` with the training batches of every epoch and the examples of the last
    validation pass, and ``test-rank<r>.json`` with the test examples and the datamodule's count."""

    def __init__(self, out: Path):
        self.out = out
        self.train: dict[str, list] = {}
        self.seen: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.train.setdefault(str(trainer.current_epoch), []).append(_examples(batch))

    def on_validation_epoch_start(self, trainer, pl_module):
        self.seen = []

    def on_test_epoch_start(self, trainer, pl_module):
        self.seen = []

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.seen += _examples(batch)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.seen += _examples(batch)

    def teardown(self, trainer, pl_module, stage):  # runs after the datamodule's teardown
        self.out.mkdir(parents=True, exist_ok=True)
        name = "fit" if stage == "fit" else "test"
        record = ({"train": self.train, "val": self.seen} if name == "fit" else
                  {"test": self.seen, "counted": trainer.datamodule.test_counted})
        (self.out / f"{name}-rank{trainer.global_rank}.json").write_text(json.dumps(record))


def _fit_and_test(root: Path, out: Path, seed: int, **trainer_kwargs) -> BabiDataModule:
    seed_everything(seed)
    datamodule = BabiDataModule(root, task=1, batch_size=4, val_fraction=0.2, seed=seed)
    datamodule.setup("fit")
    model = build_model("gru", datamodule.spec, text_hidden=8, text_embed_dim=8)
    task = ClassificationTask(model, datamodule.spec.num_classes, partial(torch.optim.Adam, lr=1e-3),
                              readout="last", seed=seed)
    trainer = Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False,
                      callbacks=[RecordBatches(out)], **trainer_kwargs)
    trainer.fit(task, datamodule=datamodule)
    trainer.test(task, datamodule=datamodule, verbose=False)
    return datamodule


def _read(out: Path, name: str) -> dict:
    return json.loads((out / f"{name}.json").read_text())


def test_fit_reshuffles_batches_every_epoch_reproducibly(tmp_path):
    write_babi_task1(tmp_path / "babi" / "en", stories=60)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        _fit_and_test(tmp_path / "babi", tmp_path / name, seed=seed)
    a, b, c = (_read(tmp_path / name, "fit-rank0")["train"] for name in "abc")
    assert len(a["0"]) > 5
    assert a["0"] != a["1"]  # Lightning's set_epoch reaches the batch sampler
    assert Counter(sum(a["0"], [])) == Counter(sum(a["1"], []))  # the same examples, reordered
    assert a == b  # the same seed gives the same batch orders
    assert a["0"] != c["0"]


@pytest.mark.slow
def test_ddp_shards_training_and_evaluates_every_example_once(tmp_path):
    """Two CPU processes (ddp_spawn): disjoint training shards of equal length, each validation
    and test example evaluated by exactly one rank, and the datamodule's count says so."""
    write_babi_task1(tmp_path / "babi" / "en", stories=61)
    out = tmp_path / "ddp"
    datamodule = _fit_and_test(tmp_path / "babi", out, seed=0, strategy="ddp_spawn", devices=2,
                               use_distributed_sampler=False)
    fit = [_read(out, f"fit-rank{r}") for r in (0, 1)]
    test = [_read(out, f"test-rank{r}") for r in (0, 1)]
    train_set = Counter(_examples(collate_babi([datamodule.train_set[i] for i in range(len(datamodule.train_set))])))
    for epoch in ("0", "1"):
        shares = [Counter(sum(rank["train"][epoch], [])) for rank in fit]
        assert len(fit[0]["train"][epoch]) == len(fit[1]["train"][epoch]) > 0
        assert shares[0] + shares[1] <= train_set  # disjoint: no example on both ranks
        assert (train_set - shares[0] - shares[1]).total() < 2 * 4  # at most one batch per rank dropped
    for seen, dataset in (([r["val"] for r in fit], datamodule.val_set), ([r["test"] for r in test], datamodule.test_set)):
        everything = Counter(_examples(collate_babi([dataset[i] for i in range(len(dataset))])))
        assert Counter(seen[0]) + Counter(seen[1]) == everything
    assert test[0]["counted"] == test[1]["counted"] == len(datamodule.test_set)


@pytest.mark.slow
def test_ddp_command_line_trains_and_tests_every_example_once(tmp_path):
    """`python train.py experiment=babi trainer=ddp trainer.devices=2 trainer.accelerator=cpu ...`"""
    write_babi_task1(tmp_path / "babi" / "en", stories=45)
    result = subprocess.run(
        [sys.executable, "train.py", "experiment=babi", "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu",
         "model=gru", "data.task=1", "trainer.max_epochs=1", "logger=csv", f"data.root={tmp_path / 'babi'}",
         f"paths.output_dir={tmp_path / 'out'}"],
        cwd=REPO, env=subprocess_env(PYTHONPATH=str(REPO / "src")), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "bAbI test split: 45 examples evaluated over 2 rank(s); the split holds 45" in result.stdout + result.stderr
    metrics = json.loads(next((tmp_path / "out").rglob("metrics.json")).read_text())
    assert metrics["status"] == "ok" and metrics["config"]["trainer"]["use_distributed_sampler"] is False


def test_ddp_without_disabling_lightnings_sampler_names_the_key(tmp_path):
    write_babi_task1(tmp_path / "babi" / "en", stories=20)
    datamodule = BabiDataModule(tmp_path / "babi", task=1, batch_size=4)
    datamodule.setup("fit")
    datamodule.trainer = SimpleNamespace(world_size=2, global_rank=0,
                                         _accelerator_connector=SimpleNamespace(use_distributed_sampler=True))
    with pytest.raises(ValueError, match="trainer.use_distributed_sampler=false"):
        datamodule.train_dataloader()
