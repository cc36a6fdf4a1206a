"""Paths and subprocess settings shared by the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def subprocess_env(**extra) -> dict:
    """Environment for CLI subprocess tests: wandb off, few threads, unbuffered output."""
    env = dict(os.environ, WANDB_MODE="disabled", WANDB_SILENT="true", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(extra)
    return env


def cli(module_or_script: list[str], args: list[str], timeout: int = 600, **kwargs):
    """Run ``python <module_or_script> <args>`` from the repo root; returns the CompletedProcess."""
    return subprocess.run([sys.executable, *module_or_script, *args], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


# ---- hand-made sweeps for the report tests

MODELS = ["liaf", "lif", "lstm", "gru", "convlstm", "conv3d"]
NAMES = {"liaf": "LIAF-Net", "lif": "LIF-SNN", "lstm": "LSTM", "gru": "GRU", "convlstm": "ConvLSTM",
         "conv3d": "Conv3D"}


def write_run(root: Path, subdir: str, **fields) -> Path:
    """One job dir with a metrics.json; the dir name is deliberately not what the table reads."""
    metrics = {"model": "liaf", "data": "dvs_gesture", "seed": 0, "status": "ok", "test/acc": 0.9,
               "val/acc": 0.9, "params": 2_322_891, "macs": 6_991_549_440, "acs": 0, "train_time_s": 60.0,
               "samples_per_s": 100.0, "error": None}
    metrics.update(fields)
    run_dir = root / subdir
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


def gesture_spec(**extra) -> dict:
    spec = {
        "name": "gesture", "title": "Gesture test accuracy (%)",
        "rows": {"key": "model", "label": "model", "order": MODELS, "names": NAMES},
        "grid": {"model": MODELS, "seed": [0, 1, 2]},
        "paper": {"values": {"liaf": {"value": 97.6, "source": "third-party table"},
                             "lif": {"value": None, "source": "unknown"}}},
    }
    spec.update(extra)
    return spec
