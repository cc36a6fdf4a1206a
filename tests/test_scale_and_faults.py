"""Scaling out: DDP on CPU, submitit (kill + resume: tests/test_resume_faults.py)."""

from __future__ import annotations

import json
import subprocess
import sys
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
    # It says what it is doing while the jobs run (their own output goes to files).
    assert "liafnet sweep: 2 job(s) through LocalLauncher" in result.stdout
    assert "tail -f " in result.stdout and "liafnet sweep: 2/2 done" in result.stdout


def test_sweep_progress_counts_the_jobs_of_config_and_command_line_sweeps():
    from liafnet import config
    from liafnet.cli.sweep_progress import count_jobs

    assert count_jobs(config.compose(["table=babi"], hydra_config=True, check=False)) == 20 * 4 * 3
    assert count_jobs(config.compose(["table=babi", "seed=0"], hydra_config=True, check=False)) == 20 * 4


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
