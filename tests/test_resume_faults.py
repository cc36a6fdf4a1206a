"""Fault injection through the real CLI: runs SIGKILLed mid-epoch, during validation and while a
checkpoint is written, then resumed (same folder, another folder, ``ckpt_path=last``, a longer
budget), end with the metrics and the tested weights of an uninterrupted run.

The run is built so that validation accuracy peaks before the kill: a step schedule multiplies the
learning rate by 100 after epoch 1, which wrecks the weights, so the best epoch (1) precedes every
kill (epoch 2) and early stopping (patience 2) ends the run after epoch 3. A resumed run that forgot
its best epoch would test later, worse weights, and one that forgot the early-stopping counter would
train past epoch 3.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO, subprocess_env

pytestmark = pytest.mark.slow  # each test runs the CLI two or three times (a few seconds each)

BEST_EPOCH, KILL_EPOCH = 1, 2
COMMON = ("seed=7", "trainer.deterministic=true", "trainer.max_epochs=5", "trainer.limit_train_batches=8",
          "optimizer.lr=0.02", "scheduler=step", "scheduler.step_size=2", "scheduler.gamma=100",
          "early_stopping.patience=2", "trainer.enable_progress_bar=false",
          "logger=csv", "trainer.accelerator=cpu")


def _train(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *args], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _ckpt(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_same_result(resumed: dict, reference: dict) -> None:
    for key in ("status", "test/acc", "val/acc", "epochs"):
        assert resumed[key] == reference[key], key
    tested, expected = _ckpt(resumed["test_ckpt"]), _ckpt(reference["test_ckpt"])
    assert tested["epoch"] == expected["epoch"] == BEST_EPOCH
    assert tested["state_dict"].keys() == expected["state_dict"].keys()
    for name, value in expected["state_dict"].items():
        assert torch.equal(tested["state_dict"][name], value), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir) -> dict:
    """The uninterrupted run, and a check that it has the shape the suite relies on."""
    root = tmp_path_factory.mktemp("reference")
    run_dir = root / "run"
    result = _train(*COMMON, f"paths.data_dir={data_dir}", f"paths.output_dir={root}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(run_dir / "csv" / "metrics.csv") as handle:
        val = {int(r["epoch"]): float(r["val/acc"]) for r in csv.DictReader(handle) if r["val/acc"]}
    assert max(val, key=val.get) == BEST_EPOCH < KILL_EPOCH  # the peak precedes the kill
    assert val[max(val)] < val[BEST_EPOCH]                     # and later epochs are worse
    metrics = _metrics(run_dir)
    assert metrics["epochs"] == max(val) + 1 == BEST_EPOCH + 3  # early stopping, patience 2
    return metrics


def _kill(run_dir: Path, data_dir: Path, output_dir: Path, point: str, batch: int = 0) -> None:
    killed = _train(*COMMON, f"paths.data_dir={data_dir}", f"paths.output_dir={output_dir}",
                    f"hydra.run.dir={run_dir}", "+callbacks.kill._target_=tests.helpers.KillAt",
                    f"+callbacks.kill.point={point}", f"+callbacks.kill.epoch={KILL_EPOCH}",
                    f"+callbacks.kill.batch={batch}")
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:] + killed.stderr[-3000:]
    assert _metrics(run_dir)["status"] == "running"  # killed: never marked ok


def test_last_ckpt_is_the_last_epoch_and_best_ckpt_the_best_one(reference):
    folder = Path(reference["run_dir"]) / "checkpoints"
    assert _ckpt(folder / "last.ckpt")["epoch"] == reference["epochs"] - 1  # epochs counts from 1
    assert _ckpt(folder / "best.ckpt")["epoch"] == BEST_EPOCH
    assert reference["test_ckpt"] == str(folder / "best.ckpt")


def test_killed_mid_epoch_then_ckpt_last_in_a_new_folder_finds_the_run_and_its_best(reference, tmp_path, data_dir):
    out = tmp_path / "out"
    _kill(out / "killed", data_dir, out, "train", batch=3)
    result = _train(*COMMON, f"paths.data_dir={data_dir}", f"paths.output_dir={out}", "ckpt_path=last")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (resumed,) = (_metrics(p.parent) for p in out.glob("runs/*/metrics.json"))
    assert resumed["resumed_from"] == str(out / "killed" / "checkpoints" / "last.ckpt")
    assert Path(resumed["test_ckpt"]).parent.parent == Path(resumed["run_dir"])  # its own copy of best
    _assert_same_result(resumed, reference)


def test_killed_during_validation_then_resumed_in_the_same_folder(reference, tmp_path, data_dir):
    run_dir = tmp_path / "killed"
    _kill(run_dir, data_dir, tmp_path, "validation", batch=1)
    result = _train(*COMMON, f"paths.data_dir={data_dir}", f"paths.output_dir={tmp_path}",
                    f"hydra.run.dir={run_dir}", "ckpt_path=last")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _assert_same_result(_metrics(run_dir), reference)


def test_killed_while_writing_a_checkpoint_keeps_the_previous_file_and_resumes_elsewhere(reference, tmp_path, data_dir):
    killed = tmp_path / "killed"
    _kill(killed, data_dir, tmp_path, "checkpoint")
    last = killed / "checkpoints" / "last.ckpt"
    assert _ckpt(last)["epoch"] == KILL_EPOCH - 1  # the interrupted write left the previous epoch intact
    assert list(killed.glob("checkpoints/.last.ckpt.*.tmp"))  # the half-done write was to a temp file
    resumed_dir = tmp_path / "resumed"
    result = _train(*COMMON, f"paths.data_dir={data_dir}", f"paths.output_dir={tmp_path}",
                    f"hydra.run.dir={resumed_dir}", f"ckpt_path={last}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "dirpath has changed" not in result.stderr
    _assert_same_result(_metrics(resumed_dir), reference)


def test_train_longer_with_ckpt_last_and_a_larger_max_epochs(reference, tmp_path, data_dir):
    out = tmp_path / "out"
    short = [a for a in COMMON if not a.startswith("trainer.max_epochs")]
    first = _train(*short, "trainer.max_epochs=3", f"paths.data_dir={data_dir}", f"paths.output_dir={out}")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    longer = _train(*short, "trainer.max_epochs=5", "ckpt_path=last", f"paths.data_dir={data_dir}",
                    f"paths.output_dir={out}")
    assert longer.returncode == 0, longer.stdout[-3000:] + longer.stderr[-3000:]
    runs = [_metrics(p.parent) for p in out.glob("runs/*/metrics.json")]
    (resumed,) = (m for m in runs if m["resumed_from"])
    (shorter,) = (m for m in runs if not m["resumed_from"])
    assert resumed["resumed_from"] == str(Path(shorter["run_dir"]) / "checkpoints" / "last.ckpt")
    _assert_same_result(resumed, reference)
