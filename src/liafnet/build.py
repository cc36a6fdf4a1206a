"""The one place where a composed config turns into objects.

train, eval, profile, viz and tables call these functions; none of them instantiates anything
from a config itself. Each takes a composed ``train`` config (:func:`liafnet.config.compose`, or
the one ``@hydra.main`` hands over, or :func:`liafnet.config.from_plain` of a stored one):

- :func:`build_datamodule` -- the data config's datamodule (seeded split);
- :func:`spec_of` -- the :class:`~liafnet.data.spec.DataSpec` a model is built for (frame shape from
  the dataset, vocabulary from the text files);
- :func:`build_model_from_config` -- the network (``trainer.compile=true``: ``torch.compile`` d);
- :func:`build_task` -- the LightningModule (loss, readout, optimiser, scheduler);
- :func:`build_loggers`, :func:`build_callbacks`, :func:`build_trainer` -- Lightning's side;
- :func:`resolve_checkpoint`, :func:`find_last_checkpoint`, :func:`load_checkpoint`,
  :func:`run_config_of` -- checkpoints: which file to resume, reading one safely
  (``weights_only=True``), the plain config stored in it.

Only ``_target_`` s of the package's own config tree are instantiated; a checkpoint's stored config
is checked against the schemas first (:func:`liafnet.config.from_plain`), so eval never calls
an arbitrary callable named in a file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import hydra
from hydra.errors import InstantiationException
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from liafnet.trained import CONFIG_KEY, model_state, read_checkpoint, spec_of_checkpoint
from liafnet.trained import model_options_of as _options_of_model_node
from liafnet.config import data_kind, to_plain
from liafnet.data.spec import DataSpec

log = logging.getLogger("liafnet")



def instantiate(node, **kwargs):
    """``hydra.utils.instantiate`` that raises the target's own error (a ``ValueError`` naming the
    key, a ``FileNotFoundError`` naming the path) instead of Hydra's wrapper around it."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as error:
        if error.__cause__ is not None:
            raise error.__cause__ from None
        raise


# ------------------------------------------------------------------------------------ data and model
def build_datamodule(cfg: DictConfig):
    """``cfg.data.datamodule`` instantiated with the run's seed (not yet prepared or set up).

    Returns a ``LightningDataModule`` with a ``spec`` attribute (complete after ``setup()`` for text
    data; for event data known at once, from the dataset class and its options).
    """
    return instantiate(cfg.data.datamodule, seed=int(cfg.seed))


def spec_of(datamodule) -> DataSpec:
    """The :class:`DataSpec` of a datamodule (after ``setup()`` for text data, whose vocabulary
    comes from the files)."""
    return datamodule.spec


def model_options_of(cfg: DictConfig) -> dict[str, Any]:
    """The ``model`` node as the flat keyword options of :func:`liafnet.models.build_model`."""
    return _options_of_model_node(to_plain(cfg.model))


def build_model_from_config(cfg: DictConfig, spec: DataSpec, compile: bool | None = None) -> nn.Module:
    """The ``cfg.model.family`` network for ``spec``; ``torch.compile`` d (backend
    ``cfg.trainer.compile_backend``) when ``compile`` (default: ``cfg.trainer.compile``) is true.
    Raises ``ValueError`` naming ``model.<key>`` for a bad option."""
    from liafnet.models import build_model

    model = build_model(cfg.model.family, spec, **model_options_of(cfg))
    if compile is None:
        compile = bool(OmegaConf.select(cfg, "trainer.compile", default=False))
    if compile:
        # In place (nn.Module.compile): the module and its state_dict keys stay the same, so
        # checkpoints of compiled runs load anywhere. Static shapes: one graph per input shape (the
        # last, smaller batch compiles once more); with dynamic shapes torch 2.13's inductor fails on
        # the fused neuron's shape guards.
        model.compile(dynamic=False, backend=OmegaConf.select(cfg, "trainer.compile_backend", default="inductor"))
    return model


def build_optimizer_factories(cfg: DictConfig) -> tuple[Any, Any]:
    """``(optimizer, scheduler)`` partials from ``cfg.optimizer`` / ``cfg.scheduler`` (``None``
    when no scheduler is chosen); the task calls them with the parameters / the optimiser."""
    optimizer = instantiate(cfg.optimizer)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    return optimizer, scheduler


def build_task(cfg: DictConfig, model: nn.Module, spec: DataSpec):
    """The :class:`liafnet.task.ClassificationTask` around ``model``; stores the resolved run config
    and ``spec`` so every checkpoint can rebuild the model (:func:`liafnet.load_model`)."""
    from liafnet.task import ClassificationTask

    optimizer, scheduler = build_optimizer_factories(cfg)
    task = ClassificationTask(
        model=model, num_classes=spec.num_classes, optimizer=optimizer, scheduler=scheduler,
        loss=cfg.get("loss", "ce"), readout=cfg.model.get("readout", "mean"),
        stop_on_nonfinite_loss=bool(cfg.get("stop_on_nonfinite_loss", True)),
        skip_nonfinite_grads=bool(cfg.get("skip_nonfinite_grads", False)), seed=int(cfg.seed),
    )
    task.run_config = to_plain(cfg)
    task.run_spec = spec
    return task


# ------------------------------------------------------------------------------------ Lightning side
def wandb_mode(requested: str) -> str:
    """How wandb runs: ``WANDB_MODE`` wins, then the config; ``auto`` means online if the user has
    logged in (API key in the environment or ~/.netrc), else offline."""
    env = os.environ.get("WANDB_MODE")
    if env:
        return env
    if requested != "auto":
        return requested
    netrc = Path.home() / ".netrc"
    logged_in = bool(os.environ.get("WANDB_API_KEY")) or (
        netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore"))
    return "online" if logged_in else "offline"


def build_loggers(cfg: DictConfig) -> list:
    """The Lightning loggers of ``cfg.logger`` (``logger=none``: an empty list). A missing optional
    package (``logger=tensorboard`` without ``pip install 'liafnet[tensorboard]'``) raises
    ``ImportError`` naming the extra."""
    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        node = OmegaConf.to_container(node, resolve=True)
        if name == "wandb":
            node["mode"] = wandb_mode(node.pop("mode", "auto"))
            Path(node["save_dir"]).mkdir(parents=True, exist_ok=True)
        try:
            loggers.append(hydra.utils.instantiate(node))
        except Exception as error:  # Hydra wraps the ImportError of a missing package
            cause = error.__cause__ or error
            if isinstance(cause, (ImportError, ModuleNotFoundError)) or "not installed" in str(cause) \
                    or "requires" in str(cause):
                raise ImportError(f"logger={name} needs an optional package: pip install 'liafnet[{name}]' "
                                  f"({cause})") from error
            raise
    return loggers


def close_loggers() -> None:
    """Finish the wandb run if one is open, so the jobs of a sequential multirun never share one."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish()


def validation_enabled(cfg: DictConfig, datamodule) -> bool:
    """Whether the run validates; call after ``datamodule.setup("fit")``.

    Without validation data (a validation fraction of 0, a split too small to hold one sample, or
    ``trainer.limit_val_batches=0``) the run trains without validation, writes only ``last.ckpt``
    and tests the last epoch's weights (a warning says so). Early stopping needs validation, so that
    combination raises ``ValueError`` here, before training, naming both keys.
    """
    limit = OmegaConf.select(cfg, "trainer.limit_val_batches")
    if (limit is None or float(limit) > 0) and len(datamodule.val_dataloader()) > 0:
        return True
    key = "data.val_fraction" if "val_fraction" in cfg.data else "data.datamodule.val_fraction"
    why = (f"trainer.limit_val_batches={limit}" if limit is not None and float(limit) == 0
           else f"{key}={OmegaConf.select(cfg, key)} leaves no validation data")
    patience = OmegaConf.select(cfg, "early_stopping.patience")
    if patience:
        raise ValueError(f"early_stopping.patience={patience} needs validation data, but {why}: "
                         f"set {key} > 0 or early_stopping.patience=null")
    log.warning("%s: training without validation; the test uses the last epoch's weights (last.ckpt)", why)
    return False


def build_callbacks(cfg: DictConfig, run_dir: str | os.PathLike, validate: bool = True) -> tuple[Any, Any, list]:
    """``(best, last, callbacks)``: the checkpoint callbacks of :mod:`liafnet.callbacks`
    (``<run_dir>/checkpoints/best.ckpt`` by ``val/acc``, ``None`` when ``validate`` is false, and
    ``last.ckpt``, every epoch) and the full callback list: the extra callbacks of
    ``cfg.callbacks`` (each from its ``_target_``), ``EarlyStopping`` on ``val/acc`` when
    ``early_stopping.patience`` is set, then the checkpoints (Lightning runs checkpoint callbacks
    last, in this order, so ``last.ckpt`` holds the early-stopping and best state of its epoch)."""
    from lightning.pytorch.callbacks import EarlyStopping

    from liafnet.callbacks import checkpoint_callbacks

    best, last = checkpoint_callbacks(Path(run_dir) / "checkpoints", validate)
    callbacks: list = [instantiate(node) for node in (cfg.get("callbacks") or {}).values()]
    patience = OmegaConf.select(cfg, "early_stopping.patience")
    if patience:
        callbacks.append(EarlyStopping(monitor="val/acc", mode="max", patience=int(patience)))
    callbacks += [c for c in (best, last) if c is not None]
    return best, last, callbacks


def build_trainer(cfg: DictConfig, loggers: list | bool, callbacks: list):
    """``lightning.pytorch.Trainer`` from ``cfg.trainer`` (minus liafnet's own ``compile*`` keys),
    writing checkpoints atomically (:class:`liafnet.callbacks.AtomicCheckpointIO`)."""
    from liafnet.callbacks import AtomicCheckpointIO

    node = OmegaConf.to_container(cfg.trainer, resolve=True)
    for key in ("compile", "compile_backend"):
        node.pop(key, None)
    return instantiate(node, logger=loggers, callbacks=callbacks, plugins=[AtomicCheckpointIO()])


# ------------------------------------------------------------------------------------ checkpoints
def find_last_checkpoint(run_dir: Path, output_dir: Path, overrides: list[str]) -> Path:
    """Resolve ``ckpt_path=last``: ``run_dir``'s own ``checkpoints/last.ckpt``, else the newest
    ``last.ckpt`` of an earlier run under ``output_dir`` with the same identity
    (:func:`liafnet.rundirs.identity`), where a longer budget (``trainer.max_epochs`` and the other
    :data:`~liafnet.rundirs.RESUMABLE_CHANGES`) still counts as the same run ("train longer").
    Raises ``FileNotFoundError`` saying what was searched."""
    from liafnet.rundirs import RESUMABLE_CHANGES, identity

    own = run_dir / "checkpoints" / "last.ckpt"
    if own.exists():
        return own
    wanted = identity(overrides, RESUMABLE_CHANGES)
    candidates = []
    for overrides_file in output_dir.glob("**/.hydra/overrides.yaml"):
        previous = overrides_file.parent.parent
        ckpt = previous / "checkpoints" / "last.ckpt"
        if previous == run_dir or not ckpt.exists():
            continue
        if identity(map(str, OmegaConf.load(overrides_file)), RESUMABLE_CHANGES) == wanted:
            candidates.append(ckpt)
    if not candidates:
        raise FileNotFoundError(
            f"ckpt_path=last: no checkpoints/last.ckpt in {run_dir} nor in an earlier run under {output_dir} "
            f"with the same overrides {wanted} (paths, logging and {', '.join(RESUMABLE_CHANGES)} may "
            "differ); pass ckpt_path=<path/to/file.ckpt> instead.")
    return max(candidates, key=lambda p: p.stat().st_mtime)


def resolve_checkpoint(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> str | None:
    """The checkpoint ``trainer.fit`` resumes from: ``None`` (fresh run), ``cfg.ckpt_path`` as
    given, or for ``ckpt_path=last`` the file :func:`find_last_checkpoint` finds."""
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last":
        ckpt_path = str(find_last_checkpoint(run_dir, Path(cfg.paths.output_dir), overrides))
        log.info("resuming from %s", ckpt_path)
    return ckpt_path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """:func:`liafnet.trained.read_checkpoint`: the file as plain containers
    (``weights_only=True``); ``FileNotFoundError``/``ValueError`` for a missing or foreign file."""
    return read_checkpoint(path)


def run_config_of(checkpoint: dict, data_overrides: DictConfig | dict | None = None) -> DictConfig:
    """The run config stored in ``checkpoint`` rebuilt through the package's config tree and schemas
    (:func:`liafnet.config.from_plain`: no ``_target_`` is taken from the file), with
    ``data_overrides`` (e.g. ``{"root": ...}``) merged into ``data``."""
    from liafnet.config import from_plain

    tree = dict(checkpoint[CONFIG_KEY])
    if data_overrides:
        data = OmegaConf.merge(OmegaConf.create(tree["data"]), OmegaConf.create(to_plain(data_overrides)))
        tree["data"] = OmegaConf.to_container(data)
    return from_plain(tree)


def spec_from_checkpoint(checkpoint: dict) -> DataSpec | None:
    """The :class:`DataSpec` the checkpoint's model was built for; ``None`` when an older checkpoint
    does not record it."""
    try:
        return spec_of_checkpoint(checkpoint)
    except ValueError:
        return None


__all__ = [
    "build_callbacks", "build_datamodule", "build_loggers", "build_model_from_config",
    "build_optimizer_factories", "build_task", "build_trainer", "close_loggers", "data_kind",
    "find_last_checkpoint", "load_checkpoint", "model_options_of", "model_state", "resolve_checkpoint",
    "run_config_of", "spec_from_checkpoint", "spec_of", "validation_enabled", "wandb_mode",
]
