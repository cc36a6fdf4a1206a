"""Paths and subprocess settings shared by the tests."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from lightning.pytorch.callbacks import Callback

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def subprocess_env(**extra) -> dict:
    """Environment for CLI subprocess tests: wandb off, few threads, unbuffered output."""
    env = dict(os.environ, WANDB_MODE="disabled", WANDB_SILENT="true", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(extra)
    return env



class KillAt(Callback):
    """A Lightning callback that SIGKILLs its own process at one point of training: fault injection
    through the real CLI (``+callbacks.kill._target_=tests.helpers.KillAt +callbacks.kill.point=...``).

    ``point``: ``train`` (after training batch ``batch`` of ``epoch``), ``validation`` (after
    validation batch ``batch`` of ``epoch``, not in the sanity check) or ``checkpoint`` (while the
    first checkpoint of ``epoch`` is written: its bytes are in the temporary file and the rename has
    not happened, because the next ``os.fsync`` is the one liafnet.io makes just before renaming).
    """

    POINTS = ("train", "validation", "checkpoint")

    def __init__(self, point: str, epoch: int, batch: int = 0):
        if point not in self.POINTS:
            raise ValueError(f"KillAt point must be one of {self.POINTS}, got {point!r}")
        self.point, self.epoch, self.batch = point, epoch, batch

    @staticmethod
    def _die(*_args) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.point == "train" and (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            self._die()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if (self.point == "validation" and not trainer.sanity_checking
                and (trainer.current_epoch, batch_idx) == (self.epoch, self.batch)):
            self._die()

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        if self.point == "checkpoint" and trainer.current_epoch == self.epoch:
            os.fsync = self._die
