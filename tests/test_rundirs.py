"""Run, sweep-job and table-cell folder names: a readable part plus a stable hash of the overrides
that define the run; never a path, never too long, one definition for every table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from liafnet import config
from liafnet.rundirs import identity, run_name
from tests.helpers import REPO, subprocess_env

TABLES = config.group_options("table")


def test_run_name_is_readable_stable_and_free_of_paths():
    name = run_name(["model=lif", "seed=1", "data.root=/big/disk/DvsGesture", "paths.data_dir=/x"])
    assert name.startswith("model-lif+seed-1_") and "/" not in name
    assert name == run_name(["seed=1", "+model=lif", "data.root=../elsewhere", "logger=csv"])  # order, paths
    assert run_name(["model=lif", "seed=2"]) != name                                            # identity
    assert run_name(["model=lif", "seed=1", "trainer.max_epochs=40"]) != name                  # budget counts
    assert identity(["ckpt_path=last", "hydra.launcher.n_jobs=4", "callbacks.x._target_=a.B"]) == []


def test_many_long_overrides_still_give_a_short_name_that_hydra_accepts_in_a_path():
    overrides = [f"tags=[{'x' * 300}]", "optimizer.lr=0.02", "scheduler={step_size:2}",
                 *(f"model.option_{i}={'y' * 40}" for i in range(30))]
    name = run_name(overrides, prefix="liaf_synthetic")
    assert len(name) < 80
    # A checkpoint path into the folder goes back on the command line unquoted (eval, ckpt_path=).
    (parsed,) = OverridesParser.create().parse_overrides([f"ckpt_path=/out/{name}/checkpoints/best.ckpt"])
    assert parsed.value() == f"/out/{name}/checkpoints/best.ckpt"
    assert name != run_name(overrides[:-1], prefix="liaf_synthetic")  # the hash sees what the text cuts


@pytest.mark.parametrize("table", TABLES)
def test_every_table_names_its_cells_by_identity_so_moved_data_finds_finished_cells(table):
    def cell(*overrides):
        cfg = config.compose([f"table={table}", *overrides], hydra_config=True, check=False)
        return OmegaConf.select(cfg, "hydra.sweep.dir"), OmegaConf.select(cfg, "hydra.sweep.subdir")

    sweep, here = cell("model=liaf", "seed=0", "data.root=/data/v1/original")
    moved = cell("model=liaf", "seed=0", "data.root=/mnt/archive/original", "paths.data_dir=/mnt")
    assert moved == (sweep, here) and "/" not in here
    assert here == run_name([f"table={table}", "model=liaf", "seed=0"])  # the one shared definition
    assert cell("model=lif", "seed=0", "data.root=/data/v1/original")[1] != here


@pytest.mark.slow
def test_sweep_with_a_path_override_and_many_long_overrides_gets_flat_short_job_folders(tmp_path, data_dir):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "train.py", "-m", "seed=0,1", f"data.root={data_dir}/synthetic_gesture",
         f"tags=[{'a' * 120},{'b' * 120},{'c' * 120}]", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
         "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false",
         "logger=csv", "trainer.accelerator=cpu", f"paths.output_dir={out}", f"paths.data_dir={data_dir}"],
        cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sweep,) = (out / "multirun").iterdir()
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(jobs) == 2 and all(len(job.name) < 80 for job in jobs)
    assert sorted(json.loads((job / "metrics.json").read_text())["seed"] for job in jobs) == [0, 1]
