"""Shared fixtures: wandb off, Hydra configs composed with every path under pytest's tmp dirs."""

from __future__ import annotations

from pathlib import Path

import pytest
from liafnet import config

from tests.helpers import SHARED_DATA


@pytest.fixture(autouse=True)
def _wandb_disabled(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """One data dir per test session, so the synthetic dataset and frame caches are built once."""
    return tmp_path_factory.mktemp("data")


def compose_config(overrides, run_dir: Path, data_dir: Path, config_name: str = "train"):
    """Compose a config as the CLI would, with paths pointing at test folders (no Hydra run dir).
    Not checked here: tests of bad values check through ``config.validate`` or ``train``."""
    return config.compose([
        f"paths.output_dir={run_dir.parent}",
        f"paths.data_dir={data_dir}",
        f"paths.run_dir={run_dir}",
        *overrides,
    ], config_name, check=False)


@pytest.fixture
def make_cfg(tmp_path, data_dir):
    def _make(*overrides, run_dir: Path | None = None, config_name: str = "train"):
        return compose_config(list(overrides), run_dir or tmp_path / "run", data_dir, config_name)
    return _make


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not present at {SHARED_DATA}")
    return SHARED_DATA
