"""Entry points: ``python train.py [overrides]`` / ``liafnet-train`` and ``python eval.py ckpt_path=...``.

``train(cfg)`` is a plain function (tests call it with a composed config); ``train_main`` wraps it in
``@hydra.main`` and returns the metric named by ``optimized_metric`` for sweepers. Every run writes
``metrics.json`` into its output dir, also when it fails, and always closes its wandb run so the jobs
of a sequential multirun never share one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import subprocess
import time
import traceback
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch import seed_everything
from omegaconf import DictConfig, OmegaConf

from liafnet.io import atomic_write_json

log = logging.getLogger("liafnet")

CONF_DIR = str(Path(__file__).resolve().parent / "conf")
FAMILIES = ("liaf", "lif", "lstm", "gru", "convlstm", "conv3d")
WANDB_MODES = ("auto", "online", "offline", "disabled")

# Cached like Hydra's own `now`: the value travels with the config (pickled into submitit jobs),
# so every job of a sweep agrees on the sweep dir.
OmegaConf.register_new_resolver("liafnet.unique", lambda: secrets.token_hex(2), use_cache=True, replace=True)


# ----------------------------------------------------------------------------------- config checks
def validate_config(cfg: DictConfig) -> None:
    """Fail at startup, naming the key, instead of minutes into a run."""
    family = cfg.model.get("family")
    if family not in FAMILIES:
        raise ValueError(f"model.family must be one of {FAMILIES}, got {family!r} (choose with model=<family>)")
    spec = cfg.data.get("spec")
    if spec is None:
        raise ValueError("data.spec is missing: every data config must describe its input (see docs/architecture.md)")
    if spec.kind == "events":
        for key in ("time_steps", "channels", "height", "width"):
            if int(spec[key]) < 1:
                raise ValueError(f"data.spec.{key} must be >= 1, got {spec[key]}")
        dataset = cfg.data.datamodule.get("dataset", {})
        downsample = dataset.get("downsample")
        sensor = dataset.get("sensor_size", (128, 128, 2))
        if downsample is not None:
            if int(downsample) < 1 or sensor[0] % int(downsample) or sensor[1] % int(downsample):
                raise ValueError(
                    f"data.datamodule.dataset.downsample={downsample} must be a positive divisor of the "
                    f"sensor size {tuple(sensor[:2])}")
            if (sensor[0] // downsample, sensor[1] // downsample) != (spec.width, spec.height):
                raise ValueError(
                    f"data.spec.height/width = {spec.height}x{spec.width} do not match the sensor "
                    f"{sensor[1]}x{sensor[0]} downsampled by data.datamodule.dataset.downsample={downsample}")
    if int(cfg.data.get("batch_size", 1)) < 1:
        raise ValueError(f"data.batch_size must be >= 1, got {cfg.data.batch_size}")
    if cfg.trainer.get("max_epochs") is not None and int(cfg.trainer.max_epochs) < 1:
        raise ValueError(f"trainer.max_epochs must be >= 1, got {cfg.trainer.max_epochs}")
    if cfg.model.get("readout", "mean") not in ("mean", "last"):
        raise ValueError(f"model.readout must be 'mean' or 'last', got {cfg.model.readout!r}")
    if cfg.get("loss", "ce") not in ("ce", "mse"):
        raise ValueError(f"loss must be 'ce' or 'mse', got {cfg.loss!r}")
    wandb_cfg = cfg.get("logger", {}).get("wandb")
    if wandb_cfg is not None and wandb_cfg.get("mode", "auto") not in WANDB_MODES:
        raise ValueError(f"logger.wandb.mode must be one of {WANDB_MODES}, got {wandb_cfg.mode!r}")


# ----------------------------------------------------------------------------------- helpers
def wandb_mode(requested: str) -> str:
    """The one place that decides how wandb runs: WANDB_MODE wins, then the config; ``auto`` means
    online if the user has logged in (API key in the environment or ~/.netrc), else offline."""
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
    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        node = OmegaConf.to_container(node, resolve=True)
        if name == "wandb":
            node["mode"] = wandb_mode(node.pop("mode", "auto"))
            Path(node["save_dir"]).mkdir(parents=True, exist_ok=True)
        loggers.append(hydra.utils.instantiate(node))
    return loggers


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def find_last_checkpoint(run_dir: Path, output_dir: Path, overrides: list[str]) -> Path:
    """Resolve ``ckpt_path=last``: this run dir's last checkpoint, else the newest earlier run of
    the same command (same overrides apart from ``ckpt_path``) under ``output_dir``."""
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


def _finished_metrics(path: Path) -> dict | None:
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return metrics if metrics.get("status") == "ok" else None


def _resolved(cfg: DictConfig) -> dict:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation only Hydra's runtime can resolve: keep the raw form
        return OmegaConf.to_container(cfg, resolve=False)


def _metric(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


# ----------------------------------------------------------------------------------- train
def train(cfg: DictConfig) -> dict:
    """Train, validate and test one model; return the metrics written to ``metrics.json``."""
    run_dir = Path(cfg.paths.run_dir)
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    is_zero = rank_zero_only.rank == 0
    metrics: dict = {
        "model": cfg.model.family, "data": cfg.data.name, "seed": int(cfg.seed), "status": "running",
        "test/acc": None, "test/acc_authors": None, "val/acc": None, "params": None, "macs": None, "acs": None,
        "train_time_s": None, "samples_per_s": None, "error": None, "git_rev": git_revision(),
        "table": cfg.get("table_spec", {}).get("name") if cfg.get("table_spec") else None,
        "overrides": overrides, "run_dir": str(run_dir), "csv_log": "csv/metrics.csv",
        "config": _resolved(cfg),
    }
    metrics_path = run_dir / "metrics.json"
    done = _finished_metrics(metrics_path)
    if done is not None and not cfg.get("force", False) and cfg.get("ckpt_path") is None:
        # A table cell that already finished (fixed run dir): re-running a table resumes it.
        print(f"liafnet: {metrics_path} already says status ok; skipping (force=true reruns)", flush=True)
        return done

    def save() -> None:
        if is_zero:
            atomic_write_json(metrics_path, metrics)

    save()
    start = time.perf_counter()
    try:
        # Imported here so that even an import failure ends in a metrics.json saying "failed".
        from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

        from liafnet.models import build_model
        from liafnet.profile import profile_model
        from liafnet.protocol import BestTestAccuracy
        from liafnet.task import ClassificationTask

        validate_config(cfg)
        seed_everything(int(cfg.seed), workers=True)
        datamodule = hydra.utils.instantiate(cfg.data.datamodule, seed=int(cfg.seed))
        datamodule.prepare_data()
        datamodule.setup("fit")
        spec = datamodule.spec
        options = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()
                   if k not in ("family", "readout")}
        model = build_model(cfg.model.family, spec, **options)
        stats = profile_model(model, spec)  # analytic spike rate; replaced by measured rates after fit
        metrics.update(params=stats["params"], macs=stats["macs"], acs=stats["acs"])
        task = ClassificationTask(
            model=model, num_classes=spec.num_classes,
            optimizer=hydra.utils.instantiate(cfg.optimizer),
            scheduler=hydra.utils.instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
            scheduler_interval=cfg.get("scheduler_interval", "epoch"),
            loss=cfg.loss, readout=cfg.model.get("readout", "mean"),
            stop_on_nonfinite_loss=bool(cfg.get("stop_on_nonfinite_loss", True)),
            skip_nonfinite_grads=bool(cfg.get("skip_nonfinite_grads", False)), seed=int(cfg.seed),
        )
        task.run_config = OmegaConf.to_container(cfg, resolve=True)
        checkpoint = ModelCheckpoint(
            dirpath=run_dir / "checkpoints", filename="best", monitor="val/acc", mode="max",
            save_top_k=1, save_last=True, auto_insert_metric_name=False)
        callbacks = [checkpoint]
        patience = cfg.get("early_stopping", {}).get("patience")
        if patience:
            callbacks.append(EarlyStopping(monitor="val/acc", mode="max", patience=int(patience)))
        # The authors' protocol (liafnet.protocol): best test accuracy at their evaluation cadence.
        authors = cfg.get("authors_protocol") or {}
        protocol = None
        if authors.get("every_n_steps") or authors.get("every_n_epochs"):
            protocol = BestTestAccuracy(every_n_steps=authors.get("every_n_steps"),
                                        every_n_epochs=authors.get("every_n_epochs"))
            callbacks.append(protocol)
        trainer = hydra.utils.instantiate(cfg.trainer, logger=build_loggers(cfg), callbacks=callbacks)
        ckpt_path = cfg.get("ckpt_path")
        if ckpt_path == "last":
            ckpt_path = str(find_last_checkpoint(run_dir, Path(cfg.paths.output_dir), overrides))
            log.info("resuming from %s", ckpt_path)
            metrics["resumed_from"] = ckpt_path
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics["train_time_s"] = time.perf_counter() - start
        metrics["samples_per_s"] = _metric(task.samples_per_second)
        metrics["val/acc"] = _metric(checkpoint.best_model_score)
        metrics["epochs"] = int(trainer.current_epoch)
        metrics["steps"] = int(trainer.global_step)
        if protocol is not None:
            metrics["test/acc_authors"] = _metric(protocol.best)
            metrics["test/acc_authors_step"] = protocol.best_step
        if task.skip_nonfinite_grads:
            metrics["skipped_steps"] = task.skipped_steps
        # ACs from spike rates measured on one validation batch with the trained weights.
        batch = move_data_to_device(next(iter(datamodule.val_dataloader()))[0], task.device)
        measured = profile_model(model, spec, inputs=batch)
        metrics.update(macs=measured["macs"], acs=measured["acs"])
        if cfg.get("test", True):
            best = checkpoint.best_model_path or None
            results = trainer.test(task, datamodule=datamodule, ckpt_path=best or "last", verbose=False)
            metrics["test/acc"] = _metric(results[0].get("test/acc")) if results else None
            metrics["test_ckpt"] = best
        metrics["bad_files"] = datamodule.bad_files if hasattr(datamodule, "bad_files") else []
        metrics["status"] = "ok"
        is_zero = trainer.is_global_zero
        return metrics
    except BaseException as error:  # KeyboardInterrupt too: record it, then let it propagate
        metrics["status"] = "failed"
        metrics["error"] = f"{type(error).__name__}: {error}"
        metrics["traceback"] = traceback.format_exc(limit=20)
        raise
    finally:
        if metrics["train_time_s"] is None:
            metrics["train_time_s"] = time.perf_counter() - start
        save()
        _close_wandb()
        if is_zero:
            _print_summary(run_dir, metrics)


def _close_wandb() -> None:
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish()


def _print_summary(run_dir: Path, metrics: dict) -> None:
    lines = [f"liafnet: {metrics['model']} on {metrics['data']} (seed {metrics['seed']}): {metrics['status']}"]
    if metrics["status"] == "ok":
        lines.append(f"  test/acc {metrics['test/acc']}  val/acc {metrics['val/acc']}  "
                     f"train {metrics['train_time_s']:.1f} s")
    else:
        lines.append(f"  error: {metrics['error']}")
    lines.append(f"  metrics.json : {run_dir / 'metrics.json'}")
    lines.append(f"  csv logs     : {run_dir / 'csv' / 'metrics.csv'}")
    lines.append(f"  checkpoints  : {run_dir / 'checkpoints'} (best.ckpt, last.ckpt)")
    wandb_dir = run_dir / "wandb"
    if wandb_dir.exists():
        lines.append(f"  wandb        : {wandb_dir} (offline runs: `wandb sync {wandb_dir}/offline-run-*`)")
    print("\n".join(lines), flush=True)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def train_main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric") or "val/acc")


# ----------------------------------------------------------------------------------- eval
def evaluate(cfg: DictConfig) -> dict:
    """Re-test a checkpoint with the configuration stored in it (``data.*`` keys may be overridden)."""
    from lightning.pytorch import Trainer

    from liafnet.models import build_model
    from liafnet.task import ClassificationTask

    ckpt_file = Path(cfg.ckpt_path)
    if not ckpt_file.is_file():
        raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint file")
    checkpoint = torch.load(ckpt_file, map_location="cpu", weights_only=False)
    if "liafnet_config" not in checkpoint:
        raise ValueError(f"{ckpt_file} was not written by liafnet train (no stored config)")
    run_cfg = OmegaConf.create(checkpoint["liafnet_config"])
    if cfg.get("data"):
        run_cfg = OmegaConf.merge(run_cfg, {"data": cfg.data})
    seed_everything(int(run_cfg.seed), workers=True)
    datamodule = hydra.utils.instantiate(run_cfg.data.datamodule, seed=int(run_cfg.seed))
    datamodule.prepare_data()
    datamodule.setup("test")
    options = {k: v for k, v in OmegaConf.to_container(run_cfg.model).items() if k not in ("family", "readout")}
    model = build_model(run_cfg.model.family, datamodule.spec, **options)
    task = ClassificationTask(model=model, num_classes=datamodule.spec.num_classes,
                              optimizer=hydra.utils.instantiate(run_cfg.optimizer),
                              loss=run_cfg.loss, readout=run_cfg.model.get("readout", "mean"))
    task.load_state_dict(checkpoint["state_dict"])
    trainer = Trainer(accelerator=cfg.get("accelerator", "auto"), devices=1, logger=False,
                      enable_progress_bar=bool(cfg.get("progress_bar", True)))
    results = trainer.test(task, datamodule=datamodule, verbose=False)[0]
    out = {"ckpt_path": str(ckpt_file), "model": run_cfg.model.family, "data": run_cfg.data.name,
           "seed": int(run_cfg.seed), "test/acc": _metric(results.get("test/acc")),
           "test/loss": _metric(results.get("test/loss"))}
    out_dir = Path(cfg.paths.run_dir)
    atomic_write_json(out_dir / "eval_metrics.json", out)
    print(f"liafnet eval: test/acc {out['test/acc']} -> {out_dir / 'eval_metrics.json'}", flush=True)
    return out


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def eval_main(cfg: DictConfig) -> float | None:
    return evaluate(cfg)["test/acc"]
