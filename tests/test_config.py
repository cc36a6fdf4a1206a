"""Config composition through Hydra's compose API, for every data and model option that exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from liafnet.cli import CONF_DIR, FAMILIES, validate_config
from liafnet.data.spec import DataSpec

DATA_OPTIONS = sorted(p.stem for p in (Path(CONF_DIR) / "data").glob("*.yaml"))
MODEL_OPTIONS = sorted(p.stem for p in (Path(CONF_DIR) / "model").glob("*.yaml"))
TRAINER_OPTIONS = sorted(p.stem for p in (Path(CONF_DIR) / "trainer").glob("*.yaml"))
LOGGER_OPTIONS = sorted(p.stem for p in (Path(CONF_DIR) / "logger").glob("*.yaml"))


def test_default_config_is_liaf_on_synthetic(make_cfg):
    cfg = make_cfg()
    assert cfg.data.name == "synthetic"
    assert cfg.model.family == "liaf"
    assert set(cfg.logger) == {"csv", "wandb"}
    assert cfg.logger.wandb.mode == "auto"
    validate_config(cfg)


def test_every_model_family_has_a_config():
    assert sorted(FAMILIES) == MODEL_OPTIONS


@pytest.mark.parametrize("data", DATA_OPTIONS)
@pytest.mark.parametrize("model", MODEL_OPTIONS)
def test_every_data_model_pair_composes_and_validates(make_cfg, data, model):
    cfg = make_cfg(f"data={data}", f"model={model}")
    assert cfg.data.name == data
    assert cfg.model.family == model
    validate_config(cfg)
    OmegaConf.resolve(cfg)  # every interpolation resolves
    if cfg.data.spec.kind == "events":  # text specs are completed from the vocabulary at setup()
        assert DataSpec(**cfg.data.spec).num_classes >= 2


@pytest.mark.parametrize("trainer", TRAINER_OPTIONS)
def test_every_trainer_composes(make_cfg, trainer):
    cfg = make_cfg(f"trainer={trainer}")
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    if trainer == "ddp":
        assert cfg.trainer.strategy == "ddp"


@pytest.mark.parametrize("logger", LOGGER_OPTIONS)
def test_every_logger_composes(make_cfg, logger):
    cfg = make_cfg(f"logger={logger}")
    OmegaConf.resolve(cfg)
    for node in cfg.logger.values():
        assert node._target_.startswith("lightning.pytorch.loggers.")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.spec.time_steps=-3", "data.spec.time_steps"),
        ("model.family=transformer", "model.family"),
        ("data.datamodule.dataset.downsample=3", "data.datamodule.dataset.downsample"),
        ("data.spec.height=20", "data.spec.height"),
        ("trainer.max_epochs=0", "trainer.max_epochs"),
        ("model.readout=max", "model.readout"),
        ("loss=hinge", "loss"),
        ("logger.wandb.mode=sometimes", "logger.wandb.mode"),
    ],
)
def test_bad_values_fail_fast_naming_the_key(make_cfg, override, key):
    cfg = make_cfg(override)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        validate_config(cfg)
