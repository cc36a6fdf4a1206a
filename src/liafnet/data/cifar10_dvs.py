"""CIFAR10-DVS (Li et al., 2017) from the original AEDAT 2.0 files.

Layout under ``root``: ``<class>/cifar10_<class>_<i>.aedat``, i = 0..999, classes in alphabetical
order (label 0 airplane ... 9 truck). No official split; ``split_scheme``:

- ``default``: ids 0-99 test, 100-999 train per class (spikingjelly's public 9:1 split);
- ``random``: a seeded 90/10 shuffle of each class's ids, seed ``seed + label``.

Frames: ``time_steps`` (default 10) equal-duration bins over the whole recording, 2 polarities.
Spatial size ``resolution`` (default 42, the authors' code): 128 is not a multiple of 42 or 48, so
coordinates are scaled as ``x * resolution // 128`` (every sensor pixel maps to exactly one frame
pixel; frame pixels gather 3 or 4 sensor columns at 42). Passing ``downsample=k`` instead gives
integer division by k (``128 / k`` must then be whole).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from liafnet.data.errors import DatasetNotFoundError, check_choice
from liafnet.data.event_dataset import Sample, WholeRecordingDataset, split_ids
from liafnet.data.frames import frame_shape
from liafnet.data.layout import missing_files, missing_root

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLIT_SCHEMES = {"default": range(100, 1000), "random": None}
SPLITS = ("train", "test")
SOURCES = ("original", "tonic")
SENSOR = 128
RECORDINGS_PER_CLASS = 1000  # ids 0..999 in each class folder of the release


def check_layout(root: str | PathLike) -> list[str]:
    """What keeps ``root`` from being the full original release; ``[]`` when complete.

    Expected: the ten class folders ``<class>/`` each holding ``cifar10_<class>_<i>.aedat`` for
    i = 0..999, non-empty (10,000 recordings). Other files are ignored.
    """
    root = Path(root)
    problems = missing_root(root, "the ten class folders airplane/ ... truck/")
    for name in CLASSES if not problems else ():
        problems += check_class(root, name)
    return problems


def check_class(root: str | PathLike, name: str) -> list[str]:
    """Problems with one class folder ``root/<name>/`` (``[]`` when its 1,000 recordings are there)."""
    expected = (f"cifar10_{name}_{i}.aedat" for i in range(RECORDINGS_PER_CLASS))
    return missing_files(Path(root) / name, expected, "recordings")


class CIFAR10DVS(WholeRecordingDataset):
    """CIFAR10-DVS samples ``(float32 [T, 2, R, R], label)``; see the module docstring.

    ``source="tonic"`` reads tonic's AEDAT4 re-encoding under ``root`` instead (needs
    ``pip install 'liafnet[tonic]'``, which brings tonic and the ``aedat`` decoder).
    """

    name = "cifar10_dvs"
    CLASSES = CLASSES

    def __init__(
        self,
        root: str | PathLike,
        split: str = "train",
        time_steps: int = 10,
        resolution: int | None = None,
        downsample: int | None = None,
        split_scheme: str = "default",
        seed: int = 0,
        binary: bool = True,
        on_bad_file: str = "raise",
        cache_dir: str | PathLike | None = None,
        sensor_size: Sequence[int] = (SENSOR, SENSOR, 2),
        source: str = "original",
        on_time_jump: str = "drop",
    ):
        check_choice("cifar10_dvs split", split, SPLITS)
        check_choice("data.split_scheme", split_scheme, SPLIT_SCHEMES)
        check_choice("data.source", source, SOURCES)
        factor, out_size = self._scaling(resolution, downsample, sensor_size)
        super().__init__(time_steps, sensor_size, factor, out_size, binary, on_bad_file, cache_dir, on_time_jump)
        self.root = Path(root)
        self.split = split
        self.source = source
        self.classes = list(CLASSES)
        self._discover(split_scheme, seed)
        self._prepare()

    @staticmethod
    def _scaling(resolution: int | None, downsample: int | None,
                 sensor_size: Sequence[int]) -> tuple[int, tuple[int, int] | None]:
        """``(downsample factor, out_size)`` for ``data.resolution`` (default 42) or ``data.downsample``."""
        width = int(sensor_size[0])
        if downsample is not None:
            if resolution is not None:
                raise ValueError("cifar10_dvs: set data.resolution or data.downsample, not both")
            if int(downsample) != downsample or downsample < 1 or width % downsample:
                raise ValueError(f"data.downsample must be a positive divisor of {width}, got {downsample}")
            return int(downsample), None
        resolution = 42 if resolution is None else resolution
        if int(resolution) != resolution or not 1 <= resolution <= width:
            raise ValueError(f"data.resolution must be an integer in 1..{width} for cifar10_dvs, got {resolution!r}")
        return 1, (int(resolution), int(resolution))

    @classmethod
    def _geometry(cls, options: dict) -> tuple[int, tuple[int, int, int]]:
        factor, out_size = cls._scaling(options["resolution"], options["downsample"], options["sensor_size"])
        return int(options["time_steps"]), frame_shape(tuple(options["sensor_size"]), factor, out_size)

    def _discover(self, split_scheme: str, seed: int) -> None:
        """Fill sources and samples from ``(path, label, id)`` per recording, split per class."""
        if self.source == "tonic":
            from liafnet.data.tonic_source import tonic_cifar10_files

            recordings = tonic_cifar10_files(self.root)
        else:
            recordings = self._original_recordings()
        for label in range(len(CLASSES)):
            files = {rec_id: path for path, rec_label, rec_id in recordings if rec_label == label}
            for rec_id in split_ids(files, self.split, split_scheme, SPLIT_SCHEMES[split_scheme], seed + label, 0.9):
                self.sources.append(files[rec_id])
                self.samples.append(Sample(len(self.sources) - 1, (), label))
        if not self.samples:
            raise DatasetNotFoundError(self.name, self.root, f"no recordings fall in the {self.split!r} split")

    def _original_recordings(self) -> list[tuple[Path, int, int]]:
        folders = [self.root / name for name in CLASSES]
        missing = [folder.name for folder in folders if not folder.is_dir()]
        if missing:
            raise DatasetNotFoundError(self.name, self.root, f"class folders are missing ({', '.join(missing)})")
        recordings = []
        for label, folder in enumerate(folders):
            pattern = re.compile(rf"cifar10_{folder.name}_(\d+)\.aedat")
            for path in folder.iterdir():
                if match := pattern.fullmatch(path.name):
                    recordings.append((path, label, int(match.group(1))))
        return recordings

    def _config(self) -> dict:
        return {**super()._config(), "source": self.source}

    def _read(self, path: Path):
        if self.source == "tonic":
            from liafnet.data.tonic_source import read_aedat4

            return read_aedat4(path, self.on_time_jump)
        return super()._read(path)
