"""End-to-end runs of the training entry point on the embedded synthetic dataset (tiny budgets)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from liafnet.build import find_last_checkpoint, wandb_mode
from liafnet.cli.train import train
from tests.helpers import REPO, subprocess_env

TINY = ("trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false", "logger=csv",
        "trainer.accelerator=cpu")
CONTRACT_KEYS = {"model", "data", "seed", "test/acc", "val/acc", "params", "macs", "acs",
                 "train_time_s", "samples_per_s", "status"}


def test_train_writes_metrics_logs_and_checkpoints(make_cfg, tmp_path):
    cfg = make_cfg(*TINY)
    metrics = train(cfg)
    run = Path(cfg.paths.run_dir)
    written = json.loads((run / "metrics.json").read_text())
    assert CONTRACT_KEYS <= set(written)
    assert written["status"] == "ok" and metrics.status == "ok"
    assert written["model"] == "liaf" and written["data"] == "synthetic"
    assert 0.0 <= written["test/acc"] <= 1.0 and 0.0 <= written["val/acc"] <= 1.0
    assert written["params"] > 0 and written["macs"] > 0
    assert written["samples_per_s"] > 0
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    header = (run / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss_epoch" in header and "val/acc" in header and "test/acc" in header
    # Firing telemetry (liafnet.telemetry) of every LIAF layer, last validation epoch and test.
    firing = written["firing"]
    assert {key.split("/")[0] for key in firing} == {"val", "test"}
    assert "val/rate/convs.0" in firing and "val/activity/convs.0" in firing and "val/rate/convs.0" in header
    assert all(0.0 <= value <= 1.0 for key, value in firing.items() if "/rate/" in key)
    # Running the same cell again (fixed run dir, as in a paper table) skips the finished run.
    before = (run / "metrics.json").stat().st_mtime_ns
    assert train(cfg).test_acc == written["test/acc"]
    assert (run / "metrics.json").stat().st_mtime_ns == before


def test_tensorboard_logger_and_provenance_in_metrics(make_cfg):
    """``logger=tensorboard`` (extra ``liafnet[tensorboard]``) writes event files, and metrics.json
    records the library versions, the device, the CUDA version and whether the git tree was dirty."""
    pytest.importorskip("tensorboard")
    cfg = make_cfg(*[o for o in TINY if not o.startswith("logger=")], "logger=tensorboard")
    assert train(cfg).status == "ok"
    run = Path(cfg.paths.run_dir)
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    written = json.loads((run / "metrics.json").read_text())
    assert written["versions"]["torch"] == torch.__version__
    assert {"lightning", "hydra-core", "numpy"} <= set(written["versions"])
    assert written["device"].startswith("cpu") and written["cuda"] == torch.version.cuda
    assert written["git_dirty"] in (True, False, None)  # None only outside a git checkout


def test_failed_run_records_status_and_error(make_cfg, tmp_path):
    cfg = make_cfg(*TINY, f"data.root={tmp_path / 'nowhere'}", "data.datamodule.prepare=null")
    with pytest.raises(FileNotFoundError):
        train(cfg)
    written = json.loads((Path(cfg.paths.run_dir) / "metrics.json").read_text())
    assert written["status"] == "failed"
    assert "nowhere" in written["error"]


def test_nonfinite_loss_stops_with_clear_message(make_cfg):
    cfg = make_cfg(*TINY, "optimizer.lr=1e30", "trainer.limit_train_batches=6")
    with pytest.raises(FloatingPointError, match="last good weights"):
        train(cfg)
    written = json.loads((Path(cfg.paths.run_dir) / "metrics.json").read_text())
    assert written["status"] == "failed" and "NonFiniteLossError" in written["error"]


def test_seeded_deterministic_runs_are_bit_identical(make_cfg, tmp_path):
    results = []
    for name in ("a", "b"):
        cfg = make_cfg(*TINY, "seed=3", "trainer.deterministic=true", run_dir=tmp_path / name)
        results.append(train(cfg))
    keys = ("test_acc", "val_acc", "params", "macs")
    assert [getattr(results[0], k) for k in keys] == [getattr(results[1], k) for k in keys]
    first = (tmp_path / "a" / "csv" / "metrics.csv").read_text()
    second = (tmp_path / "b" / "csv" / "metrics.csv").read_text()
    assert first == second  # every logged loss value, bit for bit


def test_wandb_mode_policy(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode("auto") == "online"
    assert wandb_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode("online") == "offline"


def test_wandb_offline_run_is_written_and_closed(make_cfg, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = make_cfg(*TINY[:-2], "trainer.accelerator=cpu")
    train(cfg)
    import wandb

    assert wandb.run is None  # closed, so the next job of a sweep gets its own run
    runs = list((Path(cfg.paths.run_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1


def test_ckpt_last_finds_the_newest_matching_run(tmp_path):
    def fake_run(name, overrides, age):
        run = tmp_path / "runs" / name
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(overrides))
        ckpt = run / "checkpoints" / "last.ckpt"
        ckpt.parent.mkdir()
        ckpt.write_bytes(b"x")
        import os
        os.utime(ckpt, (age, age))
        return ckpt

    old = fake_run("old", ["model=lif"], 1_000)
    new = fake_run("new", ["model=lif", "ckpt_path=last"], 2_000)
    fake_run("other", ["model=liaf"], 3_000)
    current = tmp_path / "runs" / "current"
    assert find_last_checkpoint(current, tmp_path, ["model=lif", "ckpt_path=last"]) == new
    assert old.exists()
    with pytest.raises(FileNotFoundError, match="ckpt_path=last"):
        find_last_checkpoint(current, tmp_path, ["model=gru"])
    # "Train longer": a larger budget, other paths and logging still find the run; other settings do not.
    short = fake_run("short", ["model=gru", "trainer.max_epochs=3", "paths.data_dir=/a", "data.root=/a/x"], 4_000)
    fake_run("other_lr", ["model=gru", "trainer.max_epochs=3", "optimizer.lr=0.1"], 5_000)
    longer = ["model=gru", "trainer.max_epochs=30", "ckpt_path=last", "paths.data_dir=/b", "data.root=/b/x",
              "logger=csv", "trainer.enable_progress_bar=false"]
    assert find_last_checkpoint(current, tmp_path, longer) == short


def test_last_ckpt_is_the_last_epoch_and_a_resume_in_another_folder_tests_the_best_epoch(make_cfg, tmp_path):
    """The lr jumps 100-fold after epoch 1, so val/acc peaks at epoch 1 and falls after it: last.ckpt
    (epoch 2) differs from best.ckpt (epoch 1), and a resumed run must still test epoch 1."""
    peak_first = ("seed=7", "trainer.deterministic=true", "trainer.limit_train_batches=8", "optimizer.lr=0.02",
                  "scheduler=step", "scheduler.step_size=2", "scheduler.gamma=100",
                  "trainer.enable_progress_bar=false", "logger=csv", "trainer.accelerator=cpu")
    first = train(make_cfg(*peak_first, "trainer.max_epochs=3", run_dir=tmp_path / "first"))
    folder = tmp_path / "first" / "checkpoints"
    assert torch.load(folder / "last.ckpt", weights_only=True)["epoch"] == 2
    assert torch.load(folder / "best.ckpt", weights_only=True)["epoch"] == 1
    assert first.test_ckpt == str(folder / "best.ckpt")

    resumed = train(make_cfg(*peak_first, "trainer.max_epochs=4", f"ckpt_path={folder / 'last.ckpt'}",
                             run_dir=tmp_path / "resumed"))
    assert resumed.resumed_from == str(folder / "last.ckpt") and resumed.epochs == 4
    assert resumed.val_acc == first.val_acc and resumed.test_acc == first.test_acc
    assert resumed.test_ckpt == str(tmp_path / "resumed" / "checkpoints" / "best.ckpt")
    tested = torch.load(resumed.test_ckpt, weights_only=True)
    expected = torch.load(folder / "best.ckpt", weights_only=True)
    assert tested["epoch"] == 1
    assert all(torch.equal(tested["state_dict"][k], v) for k, v in expected["state_dict"].items())


def test_last_ckpt_is_the_last_epoch_also_when_validation_skips_epochs(make_cfg):
    cfg = make_cfg(*TINY, "trainer.max_epochs=3", "trainer.check_val_every_n_epoch=2")
    record = train(cfg)
    folder = Path(cfg.paths.run_dir) / "checkpoints"
    assert torch.load(folder / "last.ckpt", weights_only=True)["epoch"] == 2  # not validated, still saved
    assert torch.load(folder / "best.ckpt", weights_only=True)["epoch"] == 1  # the one validated epoch
    assert record.test_ckpt == str(folder / "best.ckpt")


def test_empty_validation_split_trains_without_validation_and_tests_the_last_epoch(make_cfg, tmp_path):
    cfg = make_cfg(*TINY, "trainer.max_epochs=2", "data.datamodule.val_fraction=0")
    record = train(cfg)
    assert record.status == "ok" and record.val_acc is None and 0.0 <= record.test_acc <= 1.0
    folder = Path(cfg.paths.run_dir) / "checkpoints"
    assert record.test_ckpt == str(folder / "last.ckpt") and not (folder / "best.ckpt").exists()
    assert torch.load(folder / "last.ckpt", weights_only=True)["epoch"] == 1
    # Early stopping watches validation: refused before training, naming both keys.
    refused = make_cfg(*TINY, "data.datamodule.val_fraction=0", "early_stopping.patience=3", run_dir=tmp_path / "es")
    with pytest.raises(ValueError, match=r"early_stopping.patience=3 .*data.datamodule.val_fraction=0"):
        train(refused)
    assert not (tmp_path / "es" / "checkpoints").exists()


def test_failed_run_prints_its_error_first_and_last_and_lists_only_files_that_exist(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    result = _cli(*TINY, "optimizer.lr=1e30", "trainer.limit_train_batches=6", f"paths.data_dir={data_dir}",
                  f"hydra.run.dir={run_dir}")
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    error = "liafnet: error: NonFiniteLossError: training loss became"
    assert lines[-1].startswith(error)                                # last
    first = next(i for i, line in enumerate(lines) if line.startswith(error))
    assert first < lines.index(next(x for x in lines if x.startswith("liafnet: liaf on synthetic")))  # and first
    assert "Traceback" not in result.stdout + result.stderr           # the long part went to the log
    listed = [line.split(" : ", 1)[1].split(" (")[0] for line in lines if " : " in line]
    assert listed and all(Path(p).exists() for p in listed)
    assert not (run_dir / "checkpoints").exists() and "checkpoints" not in result.stdout
    record = json.loads((run_dir / "metrics.json").read_text())
    log = Path(record["log"])
    assert log.parent == run_dir and str(log) in result.stdout
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "NonFiniteLossError" in text


def _cli(*args, cwd=REPO, timeout=900):
    return subprocess.run([sys.executable, "train.py", *args], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_multirun_sweep_makes_one_dir_per_job(tmp_path, data_dir):
    out = tmp_path / "out"
    result = _cli("-m", "model=liaf,lif", "seed=0,1", *TINY, f"paths.output_dir={out}", f"paths.data_dir={data_dir}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(out.glob("multirun/*/*/metrics.json"))
    assert len(files) == 4
    runs = {(m["model"], m["seed"], m["status"]) for m in (json.loads(f.read_text()) for f in files)}
    assert runs == {("liaf", 0, "ok"), ("liaf", 1, "ok"), ("lif", 0, "ok"), ("lif", 1, "ok")}


@pytest.mark.slow
def test_a_failing_sweep_job_does_not_stop_the_others(tmp_path, data_dir):
    out = tmp_path / "out"
    # The first job raises (negative learning rate); the second must still run.
    result = _cli("-m", "optimizer.lr=-1,0.001", *TINY, f"paths.output_dir={out}", f"paths.data_dir={data_dir}")
    status = {}
    for f in out.glob("multirun/*/*/metrics.json"):
        m = json.loads(f.read_text())
        status[m["config"]["optimizer"]["lr"]] = (m["status"], m["error"])
    assert status[-1][0] == "failed" and "optimizer.lr" in status[-1][1]
    assert status[0.001] == ("ok", None)
    assert result.returncode != 0  # the sweep still reports that a job failed


def test_train_py_runs_dvs_gesture_end_to_end_on_a_fake_original_tree(tmp_path):
    import numpy as np

    from tests.event_fixtures import write_gesture_tree

    tree = tmp_path / "DvsGesture"
    write_gesture_tree(tree, np.random.default_rng(0))
    out = tmp_path / "out"
    result = _cli("data=dvs_gesture", f"data.root={tree}", "data.time_steps=4", "data.batch_size=2",
                  *TINY, f"paths.output_dir={out}", f"paths.data_dir={tmp_path / 'data'}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads(next(out.glob("runs/*/metrics.json")).read_text())
    assert (metrics["status"], metrics["data"], metrics["params"]) == ("ok", "dvs_gesture", 2_322_891)
    assert metrics["test/acc"] is not None


def test_nonfinite_gradient_step_is_skipped_whole():
    """skip_nonfinite_grads drops a step whose gradient overflowed: no parameter moves, momentum
    included, and the skip is counted; without it the gradient reaches the optimiser."""
    import torch

    from liafnet.task import ClassificationTask

    for skip in (True, False):
        torch.manual_seed(0)
        task = ClassificationTask(torch.nn.Linear(3, 2), num_classes=2, optimizer=torch.optim.Adam,
                                  skip_nonfinite_grads=skip)
        optimizer = torch.optim.Adam(task.parameters(), lr=0.1)
        before = [p.detach().clone() for p in task.parameters()]
        task.model.weight.grad = torch.tensor([[float("inf"), 0.0, 1.0], [0.0, 1.0, 0.0]])
        task.model.bias.grad = torch.ones(2)
        task.on_before_optimizer_step(optimizer)
        optimizer.step()
        moved = [not torch.equal(b, p) for b, p in zip(before, task.parameters())]
        if skip:
            assert task.skipped_steps == 1 and not any(moved)
            assert all(p.grad is None for p in task.parameters())
        else:
            assert task.skipped_steps == 0 and all(moved)
            assert not torch.isfinite(task.model.weight).all()  # what the skip prevents


def test_eval_rebuilds_the_run_from_the_package_config_not_from_the_file(make_cfg, tmp_path):
    """eval reads the checkpoint weights-only and rebuilds data and model through the package's own
    config tree: a ``_target_`` planted in the stored config is never called."""
    import torch

    from liafnet.cli.eval import evaluate

    record = train(make_cfg(*TINY, "trainer.limit_test_batches=null", run_dir=tmp_path / "run"))
    checkpoint = torch.load(record.test_ckpt, map_location="cpu", weights_only=True)
    checkpoint["liafnet_config"]["data"]["datamodule"]["_target_"] = "builtins.exit"
    checkpoint["liafnet_config"]["optimizer"]["_target_"] = "torch.optim.Adam"  # a known one still maps
    planted = tmp_path / "planted.ckpt"
    torch.save(checkpoint, planted)
    result = evaluate(make_cfg(f"ckpt_path={planted}", "accelerator=cpu", "progress_bar=false",
                               run_dir=tmp_path / "eval", config_name="eval"))
    assert result["test/acc"] == pytest.approx(record.test_acc, abs=1e-9)
    assert json.loads((tmp_path / "eval" / "eval_metrics.json").read_text())["test/acc"] == result["test/acc"]


def test_trainer_compile_trains_the_compiled_model(make_cfg):
    """``trainer.compile=true``: the task's model is compiled in place and Lightning's fit loop trains
    it (aot_eager backend: the same graph capture as inductor without code generation)."""
    import torch

    from liafnet import build

    cfg = make_cfg(*TINY, "trainer.compile=true", "trainer.compile_backend=aot_eager", "data.time_steps=4")
    model = build.build_model_from_config(cfg, build.build_datamodule(cfg).spec)
    assert model._compiled_call_impl is not None  # nn.Module.compile: same module, compiled __call__
    record = train(cfg)
    assert record.status == "ok" and 0.0 <= record.test_acc <= 1.0
    state = torch.load(record.test_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in key for key in state)  # the checkpoint loads into a plain model
