"""The one LightningModule: readout, loss, accuracy, optimiser, logging.

Models stay free of Lightning: they map time-first inputs to per-step logits ``[T', B, K]``; this
module turns them into a prediction (mean over time or last step), a loss and metrics.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_warn
from torchmetrics.classification import MulticlassAccuracy

from liafnet.trained import CONFIG_KEY, SPEC_KEY
from liafnet.models.options import READOUTS
from liafnet.run_options import LOSSES



class NonFiniteLossError(FloatingPointError):
    """Raised when the training loss becomes NaN or inf; the last good checkpoint is kept."""


def readout(step_logits: torch.Tensor, mode: str) -> torch.Tensor:
    """Reduce per-step logits ``[T', B, K]`` to ``[B, K]``."""
    if step_logits.dim() != 3:
        raise ValueError(f"a model must return logits [T', B, K], got shape {tuple(step_logits.shape)}")
    if mode == "mean":
        return step_logits.mean(dim=0)
    if mode == "last":
        return step_logits[-1]
    raise ValueError(f"model.readout must be one of {READOUTS}, got {mode!r}")


def classification_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """``ce``: cross-entropy on the readout. ``mse``: MSE between the readout and one-hot targets,
    as in several of the authors' scripts (the readout is used as is, no softmax)."""
    if kind == "ce":
        return F.cross_entropy(logits, target)
    if kind == "mse":
        return F.mse_loss(logits, F.one_hot(target, logits.shape[-1]).to(logits.dtype))
    raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")


class ClassificationTask(LightningModule):
    """Trains any liafnet model on ``(inputs, target)`` batches.

    ``optimizer`` and ``scheduler`` are partials (Hydra ``_partial_: true``) that receive the
    parameters / optimiser later, so the config decides them without knowing the model.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., object] | None = None,
        loss: str = "ce",
        readout: str = "mean",
        stop_on_nonfinite_loss: bool = True,
        skip_nonfinite_grads: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.loss_kind = loss
        self.readout_mode = readout
        self.stop_on_nonfinite_loss = stop_on_nonfinite_loss
        self.skip_nonfinite_grads = skip_nonfinite_grads
        self.skipped_steps = 0
        self.seed = seed
        self.train_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        # The resolved run config and the data spec, stored in every checkpoint so `eval.py` and
        # `liafnet.load_model` can rebuild the model (liafnet.build sets them).
        self.run_config: dict | None = None
        self.run_spec = None
        # Throughput bookkeeping for metrics.json (samples per second of training).
        self.train_samples = 0
        self.train_seconds = 0.0
        self._batch_start = 0.0

    def forward(self, inputs):
        step_logits = self.model(*inputs) if isinstance(inputs, (tuple, list)) else self.model(inputs)
        return readout(step_logits, self.readout_mode)

    def _shared_step(self, batch):
        inputs, target = batch
        logits = self(inputs)
        loss = classification_loss(logits, target, self.loss_kind)
        return loss, logits.argmax(dim=-1), target

    def on_train_epoch_start(self) -> None:
        # Dropout and augmentation randomness depends only on (seed, epoch): resuming from an
        # epoch-end checkpoint then reproduces the uninterrupted run exactly.
        seed_everything((self.seed * 100_003 + self.current_epoch) % 2**32, workers=True, verbose=False)

    def on_train_batch_start(self, batch, batch_idx):
        self._batch_start = time.perf_counter()

    def training_step(self, batch, batch_idx):
        loss, pred, target = self._shared_step(batch)
        if self.stop_on_nonfinite_loss and not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss became {loss.item()} at epoch {self.current_epoch}, batch {batch_idx}; "
                "stopped before the optimiser step, so the last checkpoint holds the last good weights. "
                "Lower optimizer.lr, set trainer.gradient_clip_val, or set stop_on_nonfinite_loss=false."
            )
        self.train_acc(pred, target)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=target.numel())
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        """With ``skip_nonfinite_grads``, a step whose gradient holds inf/NaN is dropped whole.

        Backpropagation through hundreds of steps of a recurrence with gain > 1 can overflow even
        when the forward pass is finite; clipping cannot rescue an inf (it turns it into NaN).
        Setting the gradients to None makes the optimiser skip every parameter, momentum included.
        """
        if not self.skip_nonfinite_grads:
            return
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if all(torch.isfinite(g).all() for g in grads):
            return
        self.skipped_steps += 1
        for p in self.parameters():
            p.grad = None
        if self.skipped_steps == 1:
            rank_zero_warn(f"non-finite gradient at epoch {self.current_epoch}: optimiser step skipped "
                           "(skip_nonfinite_grads=true); later skips are counted in train/skipped_steps")

    def on_train_epoch_end(self) -> None:
        if self.skip_nonfinite_grads:
            self.log("train/skipped_steps", float(self.skipped_steps))

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.train_samples += int(batch[1].numel())
        self.train_seconds += time.perf_counter() - self._batch_start

    def validation_step(self, batch, batch_idx):
        loss, pred, target = self._shared_step(batch)
        self.val_acc(pred, target)
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=target.numel())
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)

    def test_step(self, batch, batch_idx):
        loss, pred, target = self._shared_step(batch)
        self.test_acc(pred, target)
        self.log("test/loss", loss, on_epoch=True, sync_dist=True, batch_size=target.numel())
        self.log("test/acc", self.test_acc, on_epoch=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = self.run_config
        if self.run_spec is not None:
            checkpoint[SPEC_KEY] = dataclasses.asdict(self.run_spec)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer=optimizer)}}

    @property
    def samples_per_second(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds > 0 else math.nan
