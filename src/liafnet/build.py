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
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from liafnet.config import data_kind, to_plain
from liafnet.data.spec import DataSpec

log = logging.getLogger("liafnet")

MODEL_KEYS_NOT_OPTIONS = ("family", "readout")
CHECKPOINT_CONFIG_KEY = "liafnet_config"
CHECKPOINT_SPEC_KEY = "liafnet_spec"


# ------------------------------------------------------------------------------------ data and model
def build_datamodule(cfg: DictConfig):
    """``cfg.data.datamodule`` instantiated with the run's seed (not yet prepared or set up).

    Returns a ``LightningDataModule`` with a ``spec`` attribute (complete after ``setup()``).
    """
    return hydra.utils.instantiate(cfg.data.datamodule, seed=int(cfg.seed))


def spec_of(datamodule) -> DataSpec:
    """The :class:`DataSpec` of a datamodule (after ``setup()`` for text data, whose vocabulary
    comes from the files)."""
    return datamodule.spec


def model_options_of(cfg: DictConfig) -> dict[str, Any]:
    """The ``model`` node as the flat keyword options of :func:`liafnet.models.build_model`."""
    options = to_plain(cfg.model)
    for key in MODEL_KEYS_NOT_OPTIONS:
        options.pop(key, None)
    return options


def build_model_from_config(cfg: DictConfig, spec: DataSpec, compile: bool | None = None) -> nn.Module:
    """The ``cfg.model.family`` network for ``spec``; ``torch.compile`` d when ``compile`` (default:
    ``cfg.trainer.compile``) is true. Raises ``ValueError`` naming ``model.<key>`` for a bad option."""
    from liafnet.models import build_model

    model = build_model(cfg.model.family, spec, **model_options_of(cfg))
    if compile is None:
        compile = bool(OmegaConf.select(cfg, "trainer.compile", default=False))
    if compile:
        model = torch.compile(model)
    return model


def build_optimizer_factories(cfg: DictConfig) -> tuple[Any, Any]:
    """``(optimizer, scheduler)`` partials from ``cfg.optimizer`` / ``cfg.scheduler`` (``None``
    when no scheduler is chosen); the task calls them with the parameters / the optimiser."""
    optimizer = hydra.utils.instantiate(cfg.optimizer)
    scheduler = hydra.utils.instantiate(cfg.scheduler) if cfg.get("scheduler") else None
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


def build_callbacks(cfg: DictConfig, run_dir: str | os.PathLike) -> tuple[Any, list]:
    """``(checkpoint, callbacks)``: the ``ModelCheckpoint`` (``<run_dir>/checkpoints``, ``best.ckpt``
    by ``val/acc`` and ``last.ckpt``) and the full callback list (plus ``EarlyStopping`` on
    ``val/acc`` when ``early_stopping.patience`` is set)."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    checkpoint = ModelCheckpoint(
        dirpath=Path(run_dir) / "checkpoints", filename="best", monitor="val/acc", mode="max",
        save_top_k=1, save_last=True, auto_insert_metric_name=False)
    callbacks: list = [checkpoint]
    patience = OmegaConf.select(cfg, "early_stopping.patience")
    if patience:
        callbacks.append(EarlyStopping(monitor="val/acc", mode="max", patience=int(patience)))
    return checkpoint, callbacks


def build_trainer(cfg: DictConfig, loggers: list | bool, callbacks: list):
    """``lightning.pytorch.Trainer`` from ``cfg.trainer`` (minus liafnet's own ``compile`` key)."""
    node = OmegaConf.to_container(cfg.trainer, resolve=True)
    node.pop("compile", None)
    return hydra.utils.instantiate(node, logger=loggers, callbacks=callbacks)


# ------------------------------------------------------------------------------------ checkpoints
def find_last_checkpoint(run_dir: Path, output_dir: Path, overrides: list[str]) -> Path:
    """Resolve ``ckpt_path=last``: this run dir's last checkpoint, else the newest earlier run of
    the same command (same overrides apart from ``ckpt_path``) under ``output_dir``. Raises
    ``FileNotFoundError`` saying what was searched."""
    own = run_dir / "checkpoints" / "last.ckpt"
    if own.exists():
        return own
    wanted = sorted(o for o in overrides if not o.startswith("ckpt_path="))
    candidates = []
    for overrides_file in output_dir.glob("**/.hydra/overrides.yaml"):
        previous = overrides_file.parent.parent
        ckpt = previous / "checkpoints" / "last.ckpt"
        if previous == run_dir or not ckpt.exists():
            continue
        theirs = sorted(o for o in OmegaConf.load(overrides_file) if not str(o).startswith("ckpt_path="))
        if theirs == wanted:
            candidates.append(ckpt)
    if not candidates:
        raise FileNotFoundError(
            f"ckpt_path=last: no checkpoints/last.ckpt in {run_dir} nor in an earlier run under {output_dir} "
            f"with the same overrides {wanted}; pass ckpt_path=<path/to/file.ckpt> instead.")
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
    """Read a liafnet checkpoint with ``torch.load(..., weights_only=True)`` (tensors and plain
    containers only: nothing in the file is executed or instantiated). Raises ``FileNotFoundError``
    for a missing file and ``ValueError`` for a file that liafnet train did not write."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path}: no such checkpoint file")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if CHECKPOINT_CONFIG_KEY not in checkpoint:
        raise ValueError(f"{path} was not written by liafnet train (no stored config)")
    return checkpoint


def run_config_of(checkpoint: dict, data_overrides: DictConfig | dict | None = None) -> DictConfig:
    """The run config stored in ``checkpoint`` rebuilt through the package's config tree and schemas
    (:func:`liafnet.config.from_plain`: no ``_target_`` is taken from the file), with
    ``data_overrides`` (e.g. ``{"root": ...}``) merged into ``data``."""
    from liafnet.config import from_plain

    tree = dict(checkpoint[CHECKPOINT_CONFIG_KEY])
    if data_overrides:
        data = OmegaConf.merge(OmegaConf.create(tree["data"]), OmegaConf.create(to_plain(data_overrides)))
        tree["data"] = OmegaConf.to_container(data)
    return from_plain(tree)


def spec_from_checkpoint(checkpoint: dict) -> DataSpec | None:
    """The :class:`DataSpec` stored in ``checkpoint`` (``None`` for checkpoints written before it was
    stored)."""
    spec = checkpoint.get(CHECKPOINT_SPEC_KEY)
    return DataSpec(**spec) if spec else None


def model_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The model's own ``state_dict`` from a task checkpoint (keys without the ``model.`` prefix)."""
    return {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}


__all__ = [
    "build_callbacks", "build_datamodule", "build_loggers", "build_model_from_config",
    "build_optimizer_factories", "build_task", "build_trainer", "close_loggers", "data_kind",
    "find_last_checkpoint", "load_checkpoint", "model_options_of", "model_state", "resolve_checkpoint",
    "run_config_of", "spec_from_checkpoint", "spec_of", "wandb_mode",
]
