"""``liafnet-train`` / ``python train.py [overrides]``: train, validate and test one model.

:func:`train` is a plain function (tests call it with a composed config); :func:`main` wraps it in
``@hydra.main`` and returns the metric named by ``optimized_metric`` for sweepers. Every run writes
its :class:`~liafnet.record.RunRecord` (``metrics.json``) into its run folder, also when it fails,
and always closes its wandb run so the jobs of a sequential multirun never share one.
"""

from __future__ import annotations

import math
import time
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch import seed_everything
from omegaconf import DictConfig, OmegaConf

from liafnet import config
from liafnet.record import RunRecord, device_info, git_state, library_versions, read_finished


def _metric(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def new_record(cfg: DictConfig, overrides: list[str]) -> RunRecord:
    """The record of a run that is starting: identity, provenance and the resolved config."""
    rev, dirty = git_state()
    device, cuda = device_info(OmegaConf.select(cfg, "trainer.accelerator"))
    table = OmegaConf.select(cfg, "table_spec.name")
    return RunRecord(
        model=cfg.model.family, data=cfg.data.name, seed=int(cfg.seed), table=table, overrides=overrides,
        run_dir=str(cfg.paths.run_dir), git_rev=rev, git_dirty=dirty, versions=library_versions(),
        device=device, cuda=cuda, config=config.to_plain(cfg))


def train(cfg: DictConfig) -> RunRecord:
    """Train, validate and test one model; return the record written to ``metrics.json``.

    A run folder whose metrics.json already says ``ok`` is skipped (table cells resume) unless
    ``force=true`` or ``ckpt_path`` is set. Exceptions propagate after the record says ``failed``.
    """
    from liafnet import build

    run_dir = Path(cfg.paths.run_dir)
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    is_zero = rank_zero_only.rank == 0
    done = read_finished(run_dir)
    if done is not None and not cfg.get("force", False) and cfg.get("ckpt_path") is None:
        print(f"liafnet: {run_dir / 'metrics.json'} already says status ok; skipping (force=true reruns)",
              flush=True)
        return done
    record = new_record(cfg, overrides)

    def save() -> None:
        record.write(run_dir, rank=0 if is_zero else 1)

    save()
    start = time.perf_counter()
    try:
        config.validate(cfg)
        seed_everything(int(cfg.seed), workers=True)
        datamodule = build.build_datamodule(cfg)
        datamodule.prepare_data()
        datamodule.setup("fit")
        spec = build.spec_of(datamodule)
        model = build.build_model_from_config(cfg, spec)
        from liafnet.profile import profile_model

        stats = profile_model(model, spec)  # analytic spike rate; replaced by measured rates after fit
        record.params, record.macs, record.acs = stats["params"], stats["macs"], stats["acs"]
        task = build.build_task(cfg, model, spec)
        checkpoint, callbacks = build.build_callbacks(cfg, run_dir)
        trainer = build.build_trainer(cfg, build.build_loggers(cfg), callbacks)
        ckpt_path = build.resolve_checkpoint(cfg, run_dir, overrides)
        if ckpt_path is not None and cfg.get("ckpt_path") == "last":
            record.resumed_from = ckpt_path
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
        record.train_time_s = time.perf_counter() - start
        record.samples_per_s = _metric(task.samples_per_second)
        record.val_acc = _metric(checkpoint.best_model_score)
        record.epochs = int(trainer.current_epoch)
        if task.skip_nonfinite_grads:
            record.skipped_steps = task.skipped_steps
        # ACs from spike rates measured on one validation batch with the trained weights.
        from lightning.fabric.utilities.apply_func import move_data_to_device

        batch = move_data_to_device(next(iter(datamodule.val_dataloader()))[0], task.device)
        measured = profile_model(model, spec, inputs=batch)
        record.macs, record.acs = measured["macs"], measured["acs"]
        if cfg.get("test", True):
            best = checkpoint.best_model_path or None
            results = trainer.test(task, datamodule=datamodule, ckpt_path=best or "last", verbose=False)
            record.test_acc = _metric(results[0].get("test/acc")) if results else None
            record.test_ckpt = best
        record.bad_files = list(getattr(datamodule, "bad_files", []))
        record.status = "ok"
        is_zero = trainer.is_global_zero
        return record
    except BaseException as error:  # KeyboardInterrupt too: record it, then let it propagate
        record.status = "failed"
        record.error = f"{type(error).__name__}: {error}"
        record.traceback = traceback.format_exc(limit=20)
        raise
    finally:
        if record.train_time_s is None:
            record.train_time_s = time.perf_counter() - start
        save()
        build.close_loggers()
        if is_zero:
            print_summary(run_dir, record)


def print_summary(run_dir: Path, record: RunRecord) -> None:
    """Print where the run's outputs are, and its result or error."""
    lines = [f"liafnet: {record.model} on {record.data} (seed {record.seed}): {record.status}"]
    if record.status == "ok":
        lines.append(f"  test/acc {record.test_acc}  val/acc {record.val_acc}  train {record.train_time_s:.1f} s")
    else:
        lines.append(f"  error: {record.error}")
    lines.append(f"  metrics.json : {run_dir / 'metrics.json'}")
    lines.append(f"  csv logs     : {run_dir / 'csv' / 'metrics.csv'}")
    lines.append(f"  checkpoints  : {run_dir / 'checkpoints'} (best.ckpt, last.ckpt)")
    wandb_dir = run_dir / "wandb"
    if wandb_dir.exists():
        lines.append(f"  wandb        : {wandb_dir} (offline runs: `wandb sync {wandb_dir}/offline-run-*`)")
    print("\n".join(lines), flush=True)


@hydra.main(version_base="1.3", config_path=str(config.CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Entry point of ``liafnet-train`` and ``python train.py`` (``train`` checks the config first,
    so a bad value ends as a ``failed`` record naming the key)."""
    record = train(cfg)
    return record.get(cfg.get("optimized_metric") or "val/acc")


if __name__ == "__main__":
    main()
