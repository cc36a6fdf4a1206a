"""Config composition through Hydra's compose API, for every data and model option that exists."""

from __future__ import annotations

import importlib.util

import pytest
from omegaconf import OmegaConf

from liafnet import build, config
from liafnet.models import FAMILIES

DATA_OPTIONS = config.group_options("data")
MODEL_OPTIONS = config.group_options("model")
TRAINER_OPTIONS = config.group_options("trainer")
LOGGER_OPTIONS = config.group_options("logger")


def test_default_config_is_liaf_on_synthetic(make_cfg):
    cfg = make_cfg()
    assert cfg.data.name == "synthetic"
    assert cfg.model.family == "liaf"
    assert set(cfg.logger) == {"csv", "wandb"}
    assert cfg.logger.wandb.mode == "auto"
    config.validate(cfg)


def test_every_model_family_has_a_config():
    assert sorted(FAMILIES) == MODEL_OPTIONS


@pytest.mark.parametrize("data", DATA_OPTIONS)
@pytest.mark.parametrize("model", MODEL_OPTIONS)
def test_every_data_model_pair_composes_and_validates(make_cfg, data, model):
    if data == "babi" and model in ("convlstm", "conv3d"):  # no text model: refused, naming the key
        with pytest.raises(ValueError, match="model.family"):
            config.validate(make_cfg(f"data={data}", f"model={model}"))
        return
    cfg = make_cfg(f"data={data}", f"model={model}")
    assert cfg.data.name == data
    assert cfg.model.family == model
    config.validate(cfg)
    OmegaConf.resolve(cfg)  # every interpolation resolves
    if cfg.data.kind == "events":  # text specs are completed from the vocabulary at setup()
        spec = build.build_datamodule(cfg).spec  # from the dataset class and its options, no files read
        assert spec.num_classes >= 2 and spec.time_steps == cfg.data.time_steps


@pytest.mark.parametrize("trainer", TRAINER_OPTIONS)
def test_every_trainer_composes(make_cfg, trainer):
    cfg = make_cfg(f"trainer={trainer}")
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    if trainer == "ddp":
        assert cfg.trainer.strategy == "ddp"


@pytest.mark.parametrize("logger", LOGGER_OPTIONS)
def test_every_logger_composes_and_builds(make_cfg, logger):
    cfg = make_cfg(f"logger={logger}")
    OmegaConf.resolve(cfg)
    expected = {"none": set(), "default": {"csv", "wandb"}}.get(logger, {logger})
    assert set(cfg.logger) == expected  # logger=none: no logger at all
    for node in cfg.logger.values():
        assert node._target_.startswith("lightning.pytorch.loggers.")
    if logger != "tensorboard" or importlib.util.find_spec("tensorboard"):  # extra: liafnet[tensorboard]
        assert len(build.build_loggers(cfg)) == len(expected)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.time_steps=-3", "time_steps"),
        ("model.family=transformer", "model.family"),
        ("data.datamodule.dataset.downsample=0", "downsample"),
        ("trainer.max_epochs=0", "trainer.max_epochs"),
        ("model.readout=max", "model.readout"),
        ("loss=hinge", "loss"),
        ("logger.wandb.mode=sometimes", "logger.wandb.mode"),
        ("model.act=tanh", "model.act"),
        ("model.dropout=1.5", "model.dropout"),
        ("optimizer.lr=-1", "optimizer.lr"),
        ("data.batch_size=0", "data.batch_size"),
        ("early_stopping.patience=0", "early_stopping.patience"),
    ],
)
def test_bad_values_fail_fast_naming_the_key(make_cfg, override, key):
    """Refused before any data is read: at composition (the schemas) or when the datamodule derives
    the frame shape from the dataset options."""
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        cfg = config.compose([override, "paths.run_dir=."])
        build.build_datamodule(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optimizer.lr=abc"], "optimizer.lr"),  # wrong type: Hydra names the key
        (["model.hidden_size=64"], "model.hidden_size"),  # not a LIAF-Net option
        (["model=lif", "model.act=relu"], "model.act"),  # LIF outputs spikes: no activation
        (["data=babi", "model=lstm", "model.hidden_size=64"], "model.hidden_size applies to events data only"),
        (["scheduler=cosin"], "Available options in 'scheduler'"),  # the group and its choices
    ],
)
def test_unknown_ignored_and_mistyped_keys_are_refused_at_composition(overrides, message):
    with pytest.raises(Exception) as error:
        config.compose([*overrides, "paths.run_dir=."])
    chain, cause = [], error.value
    while cause is not None:
        chain.append(str(cause))
        cause = cause.__cause__
    assert message in "\n".join(chain)


def test_scheduler_choices_compose_and_build(make_cfg):
    assert config.group_options("scheduler") == ["cosine", "exponential", "exponential_steps", "multistep", "step"]
    cfg = make_cfg("scheduler=cosine", "trainer.max_epochs=7")
    optimizer, scheduler = build.build_optimizer_factories(cfg)
    import torch

    sgd = optimizer(params=[torch.nn.Parameter(torch.zeros(1))])
    assert scheduler(optimizer=sgd).T_max == 7
    assert build.build_optimizer_factories(make_cfg())[1] is None  # no scheduler by default


def test_frame_shape_follows_the_dataset_options(make_cfg):
    spec = build.build_datamodule(make_cfg("data=dvs_gesture", "data.downsample=2", "data.time_steps=8")).spec
    assert (spec.time_steps, spec.channels, spec.height, spec.width, spec.num_classes) == (8, 2, 64, 64, 11)
    spec = build.build_datamodule(make_cfg("data=cifar10_dvs", "data.resolution=48")).spec
    assert (spec.height, spec.width, spec.num_classes) == (48, 48, 10)
