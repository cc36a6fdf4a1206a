"""``liafnet-eval`` / ``python eval.py ckpt_path=<run>/checkpoints/best.ckpt [data.root=...]``.

Re-tests a checkpoint with the run config stored in it (``data.*`` keys may be overridden). The
checkpoint is read with ``weights_only=True`` and its config checked against the schemas; the
objects are rebuilt by :mod:`liafnet.build` from the package's own config tree.
"""

from __future__ import annotations

import math
from pathlib import Path

import hydra
from lightning.pytorch import Trainer, seed_everything
from omegaconf import DictConfig

from liafnet import config
from liafnet.io import atomic_write_json


def _metric(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def evaluate(cfg: DictConfig) -> dict:
    """Test ``cfg.ckpt_path``; write and return ``{"ckpt_path", "model", "data", "seed", "test/acc",
    "test/loss"}`` (``eval_metrics.json`` in the eval run folder)."""
    from liafnet import build

    checkpoint = build.load_checkpoint(cfg.ckpt_path)
    run_cfg = build.run_config_of(checkpoint, cfg.get("data") or None)
    seed_everything(int(run_cfg.seed), workers=True)
    datamodule = build.build_datamodule(run_cfg)
    datamodule.prepare_data()
    datamodule.setup("test")
    spec = build.spec_of(datamodule)
    model = build.build_model_from_config(run_cfg, spec, compile=False)
    task = build.build_task(run_cfg, model, spec)
    task.load_state_dict(checkpoint["state_dict"])
    trainer = Trainer(accelerator=cfg.get("accelerator", "auto"), devices=1, logger=False,
                      enable_progress_bar=bool(cfg.get("progress_bar", True)))
    results = trainer.test(task, datamodule=datamodule, verbose=False)[0]
    out = {"ckpt_path": str(cfg.ckpt_path), "model": run_cfg.model.family, "data": run_cfg.data.name,
           "seed": int(run_cfg.seed), "test/acc": _metric(results.get("test/acc")),
           "test/loss": _metric(results.get("test/loss"))}
    out_dir = Path(cfg.paths.run_dir)
    atomic_write_json(out_dir / "eval_metrics.json", out)
    print(f"liafnet eval: test/acc {out['test/acc']} -> {out_dir / 'eval_metrics.json'}", flush=True)
    return out


@hydra.main(version_base="1.3", config_path=str(config.CONF_DIR), config_name="eval")
def main(cfg: DictConfig) -> float | None:
    """Entry point of ``liafnet-eval`` and ``python eval.py``."""
    return evaluate(cfg)["test/acc"]


if __name__ == "__main__":
    main()
