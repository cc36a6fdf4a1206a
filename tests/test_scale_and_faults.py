"""Scaling out and surviving faults: DDP on CPU, kill + resume, submitit, atomic results."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, subprocess_env

QUIET = ("trainer.enable_progress_bar=false", "logger=csv", "trainer.accelerator=cpu")


def _run(args, timeout=900, script="train.py"):
    return subprocess.run([sys.executable, script, *args], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_ddp_two_cpu_processes_write_one_run_whose_accuracy_matches_a_single_process_eval(tmp_path, data_dir):
    out = tmp_path / "out"
    result = _run(["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "trainer.max_epochs=1",
                   "trainer.enable_progress_bar=false", "logger=csv",
                   f"paths.output_dir={out}", f"paths.data_dir={data_dir}"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = list(out.glob("**/metrics.json"))
    assert len(files) == 1, files  # one run dir, written by rank 0 only
    metrics = json.loads(files[0].read_text())
    assert metrics["status"] == "ok"
    evaluation = _run(["ckpt_path=" + metrics["test_ckpt"], "accelerator=cpu", "progress_bar=false",
                       f"paths.output_dir={tmp_path / 'eval'}"], script="eval.py")
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    single = json.loads(next((tmp_path / "eval").glob("**/eval_metrics.json")).read_text())
    assert single["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-9)


@pytest.mark.slow
def test_killed_run_resumed_from_last_matches_an_uninterrupted_run(tmp_path, data_dir):
    common = ["seed=7", "trainer.deterministic=true", "trainer.max_epochs=3", *QUIET,
              f"paths.data_dir={data_dir}"]
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    reference = _run([*common, f"hydra.run.dir={full_dir}"])
    assert reference.returncode == 0, reference.stderr[-3000:]

    proc = subprocess.Popen([sys.executable, "train.py", *common, f"hydra.run.dir={killed_dir}"],
                            cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 600
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert last.exists(), "no checkpoint appeared before the run ended"
    time.sleep(0.5)  # now inside epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _metrics(killed_dir)["status"] == "running"  # killed: never marked ok

    resumed = _run([*common, f"hydra.run.dir={killed_dir}", "ckpt_path=last"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after, before = _metrics(killed_dir), _metrics(full_dir)
    assert after["resumed_from"].endswith("last.ckpt")
    for key in ("test/acc", "val/acc", "epochs"):
        assert after[key] == before[key], key


@pytest.mark.slow
def test_submitit_local_launcher_runs_the_sweep(tmp_path, data_dir):
    out = tmp_path / "out"
    result = _run(["-m", "hydra/launcher=submitit_local", "model=liaf,lif", "trainer.max_epochs=1",
                   "trainer.limit_train_batches=3", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2",
                   *QUIET, f"paths.output_dir={out}", f"paths.data_dir={data_dir}"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    statuses = sorted((m["model"], m["status"]) for m in
                      (json.loads(f.read_text()) for f in out.glob("multirun/*/*/metrics.json")))
    assert statuses == [("liaf", "ok"), ("lif", "ok")]
    assert list(out.glob("multirun/*/.submitit/*")), "jobs did not go through submitit"


def test_sbatch_script_renders_without_a_cluster(tmp_path):
    temp = tmp_path / "tmp"  # the preview's temporary folder goes here, and must be gone afterwards
    temp.mkdir()
    result = subprocess.run([sys.executable, "scripts/render_sbatch.py", "model=liaf,lif", "trainer.max_epochs=1",
                             "hydra.launcher.partition=gpu"], cwd=REPO, env=subprocess_env(TMPDIR=str(temp)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(temp.iterdir())
    script = result.stdout
    assert script.startswith("#!/bin/bash")
    assert "#SBATCH --partition=gpu" in script
    assert "#SBATCH --array=0-1%2" in script  # two jobs, both may run at once
    assert "#SBATCH --time=240" in script
    assert "srun" in script and "submitit" in script
