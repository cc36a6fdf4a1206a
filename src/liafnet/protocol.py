"""The authors' evaluation protocol: the best test accuracy seen during training.

The authors' DVS scripts evaluate on the test split at a fixed cadence while training (DVS128
Gesture: every 20 iterations; MNIST-DVS: every epoch) and report the best accuracy seen, with no
validation split (docs/paper.md §5, docs/tables.md). That number selects the model on the test set,
so liafnet reports it only beside the primary one (``test/acc``: the checkpoint chosen on a
validation split, tested once) and labels it ``test/acc_authors``.

:class:`BestTestAccuracy` is a Lightning callback that runs the test loader every ``every_n_steps``
optimiser steps or every ``every_n_epochs`` epochs, in eval mode without gradients, and keeps the
best accuracy and the step it was seen at. Its state is saved in checkpoints, so a resumed run
continues the running best.
"""

from __future__ import annotations

import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch import Callback, LightningModule, Trainer

METRIC = "test/acc_authors"


class BestTestAccuracy(Callback):
    """Test accuracy every ``every_n_steps`` steps or ``every_n_epochs`` epochs (exactly one set);
    the best so far is logged as ``test/acc_authors`` and kept in ``best`` / ``best_step``.

    ``test/acc_periodic`` logs each evaluation's own accuracy (the curve). Under DDP each rank
    tests its shard of the test split and the counts are summed, so every sample counts once.
    Raises ``ValueError`` unless exactly one cadence is a positive integer.
    """

    def __init__(self, every_n_steps: int | None = None, every_n_epochs: int | None = None):
        cadences = [c for c in (every_n_steps, every_n_epochs) if c is not None]
        if len(cadences) != 1 or int(cadences[0]) != cadences[0] or cadences[0] < 1:
            raise ValueError(
                "authors_protocol: set exactly one of every_n_steps / every_n_epochs to a positive "
                f"integer, got every_n_steps={every_n_steps}, every_n_epochs={every_n_epochs}")
        self.every_n_steps = every_n_steps
        self.every_n_epochs = every_n_epochs
        self.best: float | None = None
        self.best_step: int | None = None
        self.evaluations = 0
        self._loader = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is None:
            raise ValueError("authors_protocol needs a datamodule with a test_dataloader()")
        datamodule.setup("test")
        self._loader = datamodule.test_dataloader()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx) -> None:
        # global_step already counts this batch's optimiser step: evaluations at steps N, 2N, ...
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._evaluate(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._evaluate(trainer, pl_module)

    @torch.no_grad()
    def _evaluate(self, trainer: Trainer, pl_module: LightningModule) -> None:
        was_training = pl_module.training
        pl_module.eval()
        counts = torch.zeros(2, dtype=torch.long, device=pl_module.device)
        try:
            with trainer.precision_plugin.forward_context():
                for inputs, target in self._loader:
                    inputs, target = move_data_to_device((inputs, target), pl_module.device)
                    counts[0] += (pl_module(inputs).argmax(dim=-1) == target).sum()
                    counts[1] += target.numel()
        finally:
            pl_module.train(was_training)
        counts = trainer.strategy.reduce(counts, reduce_op="sum")
        if int(counts[1]) == 0:
            return
        accuracy = float(counts[0]) / float(counts[1])
        self.evaluations += 1
        if self.best is None or accuracy > self.best:
            self.best, self.best_step = accuracy, int(trainer.global_step)
        # Straight to the loggers: self.log would drop evaluations that miss log_every_n_steps.
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics({"test/acc_periodic": accuracy, METRIC: self.best}, step=trainer.global_step)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_step": self.best_step, "evaluations": self.evaluations}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")
        self.best_step = state_dict.get("best_step")
        self.evaluations = int(state_dict.get("evaluations", 0))
