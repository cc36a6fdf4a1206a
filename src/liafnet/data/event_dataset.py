"""Shared machinery of the event datasets: preprocessing once, the frame cache, bad-file policy.

A dataset lists its recordings (``sources``) and its samples (each a recording, a key naming the
part of the recording it uses, and a label). Preprocessing turns one recording into one array plus
the rows of that array each sample uses (``parts``). At construction every recording without a
fresh cache entry is read once and preprocessed; ``__getitem__`` then only slices the
(memory-mapped) cached array and turns the rows into frames.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from liafnet.data.aedat import read_aedat
from liafnet.data.errors import check_choice
from liafnet.data.frames import FrameCache, event_pixels, frame_shape, time_bins
from liafnet.data.timestamps import check_policy

log = logging.getLogger(__name__)

BAD_FILE_POLICIES = ("raise", "skip")


@dataclass(frozen=True)
class Sample:
    source: int  # index into the dataset's ``sources``
    key: tuple[Hashable, ...]  # which part of the recording, e.g. (start_us, end_us)
    label: int


class EventFileDataset(Dataset):
    """Base class; subclasses fill ``sources`` and ``samples``, call ``_prepare()`` and implement:

    - ``_config()``: JSON-able preprocessing settings (part of the cache key);
    - ``_preprocess(events, keys)``: ``(array, parts)`` for one recording, ``parts`` mapping each
      key to ``(first_row, n_rows)`` of ``array``;
    - ``_frames(rows, sample)``: float32 ``[T, P, H, W]`` from a sample's rows.
    """

    name = "events"
    CLASSES: tuple[str, ...] = ()

    @classmethod
    def frame_spec(cls, **options) -> dict[str, int]:
        """``time_steps, channels, height, width, num_classes`` of the samples ``cls(**options)``
        yields, from the options alone (no files are read): the one source of a data config's frame
        shape. Missing options take the constructor's defaults; bad ones raise ``ValueError``."""
        params = inspect.signature(cls.__init__).parameters
        values = {name: p.default for name, p in params.items() if p.default is not inspect.Parameter.empty}
        values.update(options)
        time_steps, (channels, height, width) = cls._geometry(values)
        return {"time_steps": time_steps, "channels": channels, "height": height, "width": width,
                "num_classes": cls._num_classes(values)}

    @classmethod
    def _geometry(cls, options: dict) -> tuple[int, tuple[int, int, int]]:
        """``(T, (P, H, W))`` for constructor ``options`` (all of them, defaults filled in)."""
        raise NotImplementedError

    @classmethod
    def _num_classes(cls, options: dict) -> int:
        """The ``num_classes`` option where the dataset has one, else its fixed class count."""
        return int(options["num_classes"]) if "num_classes" in options else len(cls.CLASSES)

    def __init__(
        self, on_bad_file: str = "raise", cache_dir: str | PathLike | None = None, on_time_jump: str = "drop"
    ):
        check_choice("data.on_bad_file", on_bad_file, BAD_FILE_POLICIES)
        self.on_bad_file = on_bad_file
        self.on_time_jump = check_policy(on_time_jump)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.bad_files: list[str] = []
        self.sources: list[Path] = []
        self.samples: list[Sample] = []
        self._parts: dict[int, dict[tuple, tuple[int, int]]] = {}  # source -> key -> rows
        self._arrays: dict[int, np.ndarray] = {}  # source -> array, without a disk cache

    # -- hooks ---------------------------------------------------------------------------------
    def _config(self) -> dict:
        raise NotImplementedError

    def _read(self, path: Path) -> np.ndarray:
        """Events of one recording (AEDAT by default), ``t`` non-decreasing under ``on_time_jump``."""
        return read_aedat(path, on_time_jump=self.on_time_jump)

    def _preprocess(self, events: np.ndarray, keys: Sequence[tuple]) -> tuple[np.ndarray, dict[tuple, tuple[int, int]]]:
        raise NotImplementedError

    def _frames(self, rows: np.ndarray, sample: Sample) -> np.ndarray:
        raise NotImplementedError

    # -- public --------------------------------------------------------------------------------
    @property
    def targets(self) -> list[int]:
        return [s.label for s in self.samples]

    @property
    def groups(self) -> list[str]:
        """Per sample, the recording it comes from: ``val_split=groups`` keeps each on one side."""
        return [self.sources[s.source].name for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[index]
        array = self._array(sample.source)
        first, count = self._parts[sample.source][sample.key]
        rows = np.asarray(array[first : first + count])
        return torch.from_numpy(self._frames(rows, sample)), sample.label

    # -- machinery -----------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Preprocess every recording without a fresh cache entry; apply on_bad_file."""
        self._cache = None if self.cache_dir is None else FrameCache(self.cache_dir, self.name)
        keys = self._keys_by_source()
        pending = []
        for source in keys:
            meta = None if self._cache is None else self._cache.meta(self.sources[source], self._config())
            if meta is not None and all(repr(k) in meta["parts"] for k in keys[source]):
                self._parts[source] = {k: tuple(meta["parts"][repr(k)]) for k in keys[source]}
            else:
                pending.append(source)
        bad: set[int] = set()
        for source in tqdm(pending, desc=f"{self.name}: preprocessing", unit="file", disable=not pending):
            try:
                self._build(source, keys[source])
            except (ValueError, OSError) as err:  # CorruptFileError is a ValueError
                if self.on_bad_file == "raise":
                    raise
                bad.add(source)
                self.bad_files.append(str(self.sources[source]))
                log.warning("%s: skipping bad file %s: %s", self.name, self.sources[source], err)
        if bad:
            self.samples = [s for s in self.samples if s.source not in bad]

    def _keys_by_source(self) -> dict[int, list[tuple]]:
        keys: dict[int, list[tuple]] = {}
        for s in self.samples:
            keys.setdefault(s.source, [])
            if s.key not in keys[s.source]:
                keys[s.source].append(s.key)
        return keys

    def _build(self, source: int, keys: list[tuple]) -> np.ndarray:
        """Read one recording, preprocess all its samples, store the result; return the array."""
        path = self.sources[source]
        events = self._read(path)
        try:
            array, parts = self._preprocess(events, keys)
        except ValueError as err:  # e.g. coordinates outside the sensor
            raise ValueError(f"{path}: {err}") from err
        self._parts[source] = parts
        if self._cache is None:
            self._arrays[source] = array
        else:
            self._cache.save(path, self._config(), array, {"parts": {repr(k): list(v) for k, v in parts.items()}})
        return array

    def _array(self, source: int) -> np.ndarray:
        if self._cache is None:
            return self._arrays[source]
        # Re-opened per item: keeping thousands of memory-maps open would exhaust file handles.
        loaded = self._cache.load(self.sources[source], self._config())
        if loaded is None:  # the entry vanished or got corrupt after construction
            return self._build(source, list(self._parts[source]))
        return loaded[0]


class WholeRecordingDataset(EventFileDataset):
    """One sample per recording framed into ``time_steps`` equal-duration bins over the whole
    recording (``events_to_frames`` with ``n_time_bins``, so no event is lost).

    The cache holds each recording's occupied frame cells with their event counts (sparse: a few
    KB per recording), so ``binary`` is applied at load time and not part of the cache key.
    """

    _CELL_DTYPE = np.dtype([("cell", "<u4"), ("count", "<u4")])

    def __init__(
        self,
        time_steps: int,
        sensor_size: Sequence[int],
        downsample: int = 1,
        out_size: tuple[int, int] | None = None,
        binary: bool = True,
        on_bad_file: str = "raise",
        cache_dir: str | PathLike | None = None,
        on_time_jump: str = "drop",
    ):
        super().__init__(on_bad_file=on_bad_file, cache_dir=cache_dir, on_time_jump=on_time_jump)
        if int(time_steps) != time_steps or time_steps < 1:
            raise ValueError(f"{self.name} time_steps must be a positive integer, got {time_steps}")
        self.time_steps = int(time_steps)
        self.sensor_size = tuple(int(v) for v in sensor_size)
        self.downsample = downsample
        self.out_size = None if out_size is None else tuple(int(v) for v in out_size)
        self.frame_shape = frame_shape(self.sensor_size, downsample, self.out_size)  # (P, H, W)
        self.binary = binary

    def _config(self) -> dict:
        return {
            "time_steps": self.time_steps,
            "sensor_size": list(self.sensor_size),
            "downsample": self.downsample,
            "out_size": None if self.out_size is None else list(self.out_size),
            # Part of the key so that caches built by readers that kept time out of order are rebuilt.
            "on_time_jump": self.on_time_jump,
        }

    def _preprocess(self, events: np.ndarray, keys: Sequence[tuple]) -> tuple[np.ndarray, dict]:
        pix, shape = event_pixels(events, self.sensor_size, self.downsample, self.out_size)
        bins, _, _ = time_bins(events["t"], n_time_bins=self.time_steps)
        cells, counts = np.unique(bins * int(np.prod(shape)) + pix, return_counts=True)
        rows = np.empty(cells.size, dtype=self._CELL_DTYPE)
        rows["cell"], rows["count"] = cells, counts
        return rows, {key: (0, rows.size) for key in keys}

    def _frames(self, rows: np.ndarray, sample: Sample) -> np.ndarray:
        frames = np.zeros(self.time_steps * int(np.prod(self.frame_shape)), dtype=np.float32)
        frames[rows["cell"]] = 1.0 if self.binary else rows["count"]
        return frames.reshape(self.time_steps, *self.frame_shape)


def split_ids(
    ids: Sequence[int], split: str, scheme: str, train_range: range | None, seed: int, train_fraction: float
) -> list[int]:
    """The ids of one class that fall in ``split``: by fixed id ranges (``train_range`` holds the
    training ids) or, for ``scheme == "random"``, a seeded shuffle of the sorted ids whose first
    ``train_fraction`` train."""
    ids = sorted(ids)
    if scheme == "random":
        order = np.random.default_rng(seed).permutation(len(ids))
        n_train = round(train_fraction * len(ids))
        chosen = order[:n_train] if split == "train" else order[n_train:]
        return sorted(ids[i] for i in chosen)
    return [i for i in ids if (i in train_range) == (split == "train")]
