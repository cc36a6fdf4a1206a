"""LightningDataModule for event datasets: splits, time-first batches, the DataSpec from the dataset."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

from liafnet.data.errors import check_choice
from liafnet.data.spec import DataSpec
from liafnet.data.transforms import TransformedDataset

VAL_SPLITS = ("random", "groups")


def collate_time_first(batch):
    """Stack ``(frames [T, C, H, W], label)`` items into ``([T, B, C, H, W], [B])``."""
    frames = torch.stack([torch.as_tensor(item[0]) for item in batch], dim=1)
    target = torch.as_tensor([int(item[1]) for item in batch], dtype=torch.long)
    return frames, target


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random train/validation split of ``range(n)``; validation gets ``round(n * f)`` items."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"data.datamodule.val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def split_groups(groups, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation split that keeps each group (e.g. a DVS Gesture user) on one side:
    whole groups, in a seeded random order, go to validation until it holds at least
    ``round(n * val_fraction)`` items."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"data.datamodule.val_fraction must be in [0, 1), got {val_fraction}")
    groups = np.asarray([str(g) for g in groups])
    names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    wanted = int(round(len(groups) * val_fraction))
    chosen, held = [], 0
    for g in np.random.default_rng(seed).permutation(len(names)):
        if held >= wanted:
            break
        chosen.append(g)
        held += counts[g]
    if wanted and len(chosen) == len(names):
        raise ValueError(f"val_split=groups: validation would take all {len(names)} groups; lower "
                         f"data.datamodule.val_fraction ({val_fraction})")
    is_val = np.isin(inverse, chosen)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


class EvalShardSampler(DistributedSampler):
    """Rank ``r`` of ``w`` evaluates items ``r, r + w, ...``: every item exactly once.

    A plain DistributedSampler pads the last batch by repeating items, which would bias validation
    and test accuracy under DDP whenever the split size is not a multiple of ``w``. Subclassing it
    tells Lightning the loader is already sharded, so it does not wrap it again.
    """

    def __init__(self, dataset: Dataset, rank: int, world_size: int):
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=False)
        self.indices = list(range(rank, len(dataset), world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class EventDataModule(LightningDataModule):
    """Train/val/test loaders over one event dataset class.

    ``dataset`` is a partial of the dataset class, called as ``dataset(split="train", **train_kwargs)``
    for training (augmentation on), ``dataset(split="train")`` for the validation subset (no
    augmentation) and ``dataset(split="test")``. Validation is a seeded split of the training set, so
    model selection never sees the test split. ``prepare`` (optional) makes the files first, e.g. the
    embedded synthetic dataset; it runs once per node.

    ``spec`` (a :class:`DataSpec`) comes from the dataset class and its options
    (``EventFileDataset.frame_spec``: frame shape ``[T, C, H, W]`` and class count), so it is known
    before any file is read; ``layout`` names the models' channel plan (``liafnet.models.vision.LAYOUTS``).
    ``val_split``: ``random`` (seeded items) or ``groups`` (whole groups of the dataset's ``groups``
    attribute, e.g. DVS Gesture users, so validation sees unseen users like the test split does).
    ``transform`` (optional) maps each item's frames ``[T, C, H, W]`` in every split, e.g.
    :class:`liafnet.data.transforms.InputSampling`.
    """

    def __init__(
        self,
        layout: str,
        dataset: Callable[..., Dataset],
        batch_size: int = 32,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        seed: int = 0,
        train_kwargs: Mapping | None = None,
        prepare: Callable[[], object] | None = None,
        pin_memory: bool = False,
        val_split: str = "random",
        transform: Callable | None = None,
    ):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
        self.dataset_factory = dataset
        self.spec = DataSpec(kind="events", layout=layout, **self._frame_spec(dataset))
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.seed = seed
        self.train_kwargs = dict(train_kwargs or {})
        self.prepare = prepare
        self.pin_memory = pin_memory
        check_choice("data.datamodule.val_split", val_split, VAL_SPLITS)
        self.val_split = val_split
        self.transform = transform
        self.train_set = self.val_set = self.test_set = None
        self._datasets: list[Dataset] = []

    def prepare_data(self) -> None:
        if self.prepare is not None:
            self.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.test_set is not None:  # Lightning calls setup once per stage; build once.
            return
        train_full = self.dataset_factory(split="train", **self.train_kwargs)
        train_plain = self.dataset_factory(split="train") if self.train_kwargs else train_full
        test = self.dataset_factory(split="test")
        self._datasets = [train_full, train_plain, test]
        if self.val_split == "groups":
            if not hasattr(train_full, "groups"):
                raise ValueError(f"data.datamodule.val_split=groups: {type(train_full).__name__} has no "
                                 "groups; use val_split=random")
            train_idx, val_idx = split_groups(train_full.groups, self.val_fraction, self.seed)
        else:
            train_idx, val_idx = split_indices(len(train_full), self.val_fraction, self.seed)
        if self.transform is not None:
            train_full, train_plain, test = (TransformedDataset(d, self.transform)
                                             for d in (train_full, train_plain, test))
        self.train_set = Subset(train_full, train_idx.tolist())
        self.val_set = Subset(train_plain, val_idx.tolist())
        self.test_set = test

    @staticmethod
    def _frame_spec(dataset: Callable[..., Dataset]) -> dict[str, int]:
        """The dataset class's ``frame_spec`` for the partial's options (see the class docstring)."""
        func, keywords = getattr(dataset, "func", dataset), dict(getattr(dataset, "keywords", {}) or {})
        if not hasattr(func, "frame_spec"):
            raise TypeError(f"data.datamodule.dataset: {func!r} has no frame_spec(**options); event datasets "
                            "derive from liafnet.data.event_dataset.EventFileDataset")
        keywords.pop("split", None)
        return func.frame_spec(**keywords)

    @property
    def bad_files(self) -> list[str]:
        """Files skipped under ``data.on_bad_file=skip`` (reported in metrics.json)."""
        seen: dict[str, None] = {}
        for ds in self._datasets:
            for path in getattr(ds, "bad_files", []):
                seen[str(path)] = None
        return list(seen)

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        distributed = dist.is_available() and dist.is_initialized()
        rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
        if shuffle:
            # Shuffle order depends only on (seed, epoch) -- Lightning calls set_epoch -- so a run
            # resumed from a checkpoint sees the same batches as an uninterrupted one.
            sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=self.seed)
        else:
            sampler = EvalShardSampler(dataset, rank, world)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate_time_first,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
