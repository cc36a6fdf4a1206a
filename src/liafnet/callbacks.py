"""The Lightning side of a run's checkpoints: ``best.ckpt``, ``last.ckpt``, atomic writes, resume
from any folder (reading a checkpoint back: :mod:`liafnet.trained`).

Each run writes into ``<run_dir>/checkpoints/``:

- ``last.ckpt``: the last finished epoch, rewritten after every epoch (after validation, or at the
  end of the training epoch when there is no validation). ``ckpt_path=last`` resumes from it.
- ``best.ckpt``: the epoch with the highest ``val/acc`` so far (written only when there is
  validation data); the final test uses it.

Why two callbacks: since Lightning 2.6, ``ModelCheckpoint(save_last=True)`` writes ``last.ckpt`` only
in an epoch in which a top-k checkpoint is written, so with ``save_top_k=1`` it is a copy of the best
epoch, not the last one (``ModelCheckpoint.on_validation_end`` in lightning 2.6).

Why :class:`BestCheckpoint` restores itself: a resume usually starts in a new run folder, and
Lightning then drops the best score and the best file ("The dirpath has changed"), so a run whose
validation accuracy peaked before the interruption would test later, worse weights. Here the resumed
run copies the best file into its own folder and keeps tracking from the stored score, so it tests
the weights an uninterrupted run would. Early-stopping state is restored by Lightning itself.

Every checkpoint is written to a temporary file in the same folder and renamed over the target
(:class:`AtomicCheckpointIO`): a run killed while writing leaves the previous file intact.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from liafnet.io import atomic_write_bytes

MONITOR = "val/acc"
BEST, LAST = "best", "last"


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into memory, then :func:`liafnet.io.atomic_write_bytes` (temp file in the same
    folder, fsync, rename). Lightning's own writer stages the file in the system temp folder, which a
    kill leaves behind and which is not atomic across file systems."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getvalue())


class LastEpochCheckpoint(ModelCheckpoint):
    """``last.ckpt``: every finished epoch, whatever its validation score."""

    def __init__(self, dirpath: str | Path):
        super().__init__(dirpath=dirpath, filename=LAST, monitor=None, save_top_k=1, save_last=False,
                         every_n_epochs=1, enable_version_counter=False)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Lightning saves after validation, so that the file holds the epoch's validation and
        early-stopping state; an epoch without validation (``trainer.check_val_every_n_epoch`` > 1)
        is saved here instead, at its end."""
        super().on_train_epoch_end(trainer, pl_module)
        every = trainer.check_val_every_n_epoch
        validates = trainer.enable_validation and every is not None and (trainer.current_epoch + 1) % every == 0
        if not validates and not self._should_skip_saving_checkpoint(trainer):
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore: the file is rewritten each epoch (and the stored path may name another
        run's folder, which this run must neither track nor delete)."""


class BestCheckpoint(ModelCheckpoint):
    """``best.ckpt``: the epoch with the best ``monitor`` value, kept across resumes from any folder."""

    def __init__(self, dirpath: str | Path, monitor: str = MONITOR, mode: str = "max"):
        super().__init__(dirpath=dirpath, filename=BEST, monitor=monitor, mode=mode, save_top_k=1,
                         save_last=False, auto_insert_metric_name=False, enable_version_counter=False)
        self._resume_path: Path | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        # Lightning restores callback state after setup; remember which file it restores from.
        self._resume_path = Path(trainer.ckpt_path) if trainer.ckpt_path else None

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        stored_dir = state_dict.get("dirpath")
        best = state_dict.get("best_model_path") or ""
        if stored_dir is None or _same_path(stored_dir, self.dirpath) or not best:
            super().load_state_dict(state_dict)
            return
        source = self._previous_best(Path(best))
        target = Path(self.dirpath) / Path(best).name
        if rank_zero_only.rank == 0 and not _same_path(source, target):
            atomic_write_bytes(target, source.read_bytes())
        score = state_dict.get("best_model_score")
        moved = dict(state_dict, dirpath=self.dirpath, best_model_path=str(target), last_model_path="",
                     kth_best_model_path=str(target),
                     best_k_models={str(target): score} if score is not None else {})
        super().load_state_dict(moved)

    def _previous_best(self, best: Path) -> Path:
        """The best file of the run being resumed: where it was written, else next to the resumed
        checkpoint (a run folder moved or copied as a whole)."""
        candidates = [best]
        if self._resume_path is not None:
            candidates.append(self._resume_path.parent / best.name)
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            f"resuming from {self._resume_path}: its best checkpoint is missing (looked for "
            f"{' and '.join(str(c) for c in candidates)}). Without it the resumed run could not test the "
            "best epoch. Put the file back, or resume from that run's best.ckpt instead.")


def _same_path(a, b) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def checkpoint_callbacks(dirpath: str | Path, validate: bool) -> tuple[ModelCheckpoint | None, ModelCheckpoint]:
    """The run's ``(best, last)`` checkpoint callbacks; ``best`` is None without validation data.

    Pass them to the Trainer in this order: Lightning runs checkpoint callbacks last and in order, so
    ``last.ckpt`` holds the early-stopping and best-tracking state of its own epoch.
    """
    best = BestCheckpoint(dirpath) if validate else None
    return best, LastEpochCheckpoint(dirpath)

