"""Typed options of a training run: the optimiser and scheduler groups and the run-level keys.

``conf/optimizer/<name>.yaml`` and ``conf/scheduler/<name>.yaml`` sit on the schemas below
(registered with Hydra by :mod:`liafnet.config` as ``schema/optimizer/<name>`` and
``schema/scheduler/<name>``), so ``optimizer.lr=abc`` fails at composition naming ``optimizer.lr``
and ``scheduler=<name>`` lists the group's choices when ``<name>`` does not exist.

Scheduler choices (``scheduler=<name>``; none by default), stepped once per epoch:

- ``cosine``: ``torch.optim.lr_scheduler.CosineAnnealingLR``, ``T_max`` = ``trainer.max_epochs``,
  ``eta_min`` 0 -- e.g. ``python train.py scheduler=cosine scheduler.eta_min=1e-5``;
- ``step``: ``torch.optim.lr_scheduler.StepLR``, ``step_size`` 10 epochs, ``gamma`` 0.1.

Optimiser choices (``optimizer=<name>``): ``adam`` (default, lr 1e-3), ``adamw``, ``sgd``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, List, Optional

from liafnet.schema import OptionError, Options, option

LOSSES = ("ce", "mse")
WANDB_MODES = ("auto", "online", "offline", "disabled")


# ------------------------------------------------------------------------------ optimisers
@dataclass
class Adam(Options):
    """``torch.optim.Adam`` (authors' choice), given the parameters by the task."""

    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = option(1.0e-3, gt=0)
    weight_decay: float = option(0.0, ge=0)
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = option(1.0e-8, gt=0)


@dataclass
class AdamW(Adam):
    """``torch.optim.AdamW``."""

    _target_: str = "torch.optim.AdamW"
    weight_decay: float = option(1.0e-2, ge=0)


@dataclass
class SGD(Options):
    """``torch.optim.SGD``."""

    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    lr: float = option(1.0e-2, gt=0)
    momentum: float = option(0.9, ge=0)
    weight_decay: float = option(0.0, ge=0)
    nesterov: bool = option(False)


OPTIMIZER_SCHEMAS: dict[str, type[Options]] = {"adam": Adam, "adamw": AdamW, "sgd": SGD}


# ------------------------------------------------------------------------------ schedulers
@dataclass
class Cosine(Options):
    """``CosineAnnealingLR`` over the whole run (``T_max`` epochs)."""

    _target_: str = "torch.optim.lr_scheduler.CosineAnnealingLR"
    _partial_: bool = True
    T_max: int = option("${trainer.max_epochs}", ge=1)
    eta_min: float = option(0.0, ge=0)


@dataclass
class Step(Options):
    """``StepLR``: multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    _target_: str = "torch.optim.lr_scheduler.StepLR"
    _partial_: bool = True
    step_size: int = option(10, ge=1)
    gamma: float = option(0.1, gt=0)


SCHEDULER_SCHEMAS: dict[str, type[Options]] = {"cosine": Cosine, "step": Step}


# ------------------------------------------------------------------------------ run-level keys
@dataclass
class RunOptions(Options):
    """Top-level keys of ``conf/train.yaml`` (the YAML holds their defaults and comments)."""

    seed: int = option(0)
    loss: str = option("ce", choices=LOSSES, doc="ce | mse (MSE on one-hot, as some authors' scripts)")
    ckpt_path: Optional[str] = option(None)
    force: bool = option(False)
    test: bool = option(True)
    stop_on_nonfinite_loss: bool = option(True)
    skip_nonfinite_grads: bool = option(False)


@dataclass
class TrainerOptions(Options):
    """The ``trainer.*`` keys liafnet itself reads (Lightning checks the rest)."""

    max_epochs: Optional[int] = option(None, ge=1)
    compile: bool = option(False, doc="torch.compile the model (liafnet.build.build_model_from_config)")


@dataclass
class EarlyStoppingOptions(Options):
    patience: Optional[int] = option(None, ge=1, doc="epochs without val/acc improvement; null = off")


@dataclass
class WandbOptions(Options):
    mode: str = option("auto", choices=WANDB_MODES, doc="auto: online if logged in, else offline")


@dataclass
class DataOptions(Options):
    """The ``data.*`` keys every data config has."""

    batch_size: int = option(1, ge=1)
    num_workers: int = option(0, ge=0)


def _subset(schema: type[Options], node: Mapping | None, prefix: str) -> None:
    """Check the keys of ``node`` that ``schema`` knows; the rest belong to someone else."""
    if node is None:
        return
    known = set(schema.keys())
    schema.parse({k: v for k, v in node.items() if k in known}, prefix=prefix)


def check_run_config(cfg: Mapping[str, Any]) -> None:
    """Check the run-level keys of a composed ``train`` config (a mapping, e.g. a resolved dict).

    Raises :class:`liafnet.schema.OptionError` naming the key: ``loss``, ``seed``, ``trainer.max_epochs``,
    ``trainer.compile``, ``data.batch_size``, ``early_stopping.patience``, ``logger.wandb.mode``, ...
    Optimiser and scheduler values are typed by their schemas at composition; their bounds are
    checked here.
    """
    _subset(RunOptions, cfg, "")
    _subset(TrainerOptions, cfg.get("trainer"), "trainer.")
    _subset(DataOptions, cfg.get("data"), "data.")
    _subset(EarlyStoppingOptions, cfg.get("early_stopping"), "early_stopping.")
    _subset(WandbOptions, (cfg.get("logger") or {}).get("wandb"), "logger.wandb.")
    for group, schemas in (("optimizer", OPTIMIZER_SCHEMAS), ("scheduler", SCHEDULER_SCHEMAS)):
        node = cfg.get(group)
        if not node:
            continue
        schema = next((s for s in schemas.values() if s._target_ == node.get("_target_")), None)
        if schema is None:
            raise OptionError(f"{group}._target_", f"{node.get('_target_')!r} has no liafnet schema; "
                                                   f"choose {group}=<{'|'.join(schemas)}>")
        _subset(schema, node, f"{group}.")
