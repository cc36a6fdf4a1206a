"""MNIST-DVS (Serrano-Gotarredona & Linares-Barranco, 2015) from the original AEDAT 2.0 files.

Layout under ``root``: ``grabbed_data<d>/scale<4|8|16>/mnist_<d>_scale<04|08|16>_<NNNN>.aedat``,
NNNN = 0001..1000, label d. There is no official split; ``split_scheme`` picks one per digit:

- ``default``: ids 1-800 train, 801-1000 test (the authors' 800/200, made deterministic);
- ``dcll``: ids 1-900 train, 901-1000 test;
- ``random``: a seeded 80/20 shuffle of each digit's ids (BIDL style), seed ``seed + digit``.

Frames: ``time_steps`` (default 50) equal-duration bins over the whole recording, 128x128 divided by
``downsample``, binary by default.
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

CLASSES = tuple(str(d) for d in range(10))
SCALES = (4, 8, 16)
SPLIT_SCHEMES = {"default": range(1, 801), "dcll": range(1, 901), "random": None}
SPLITS = ("train", "test")
RECORDINGS_PER_SCALE = 1000  # ids 0001..1000 per digit and scale in the release


def check_layout(root: str | PathLike, scales: Sequence[int] = SCALES) -> list[str]:
    """What keeps ``root`` from being the full original release; ``[]`` when complete.

    Expected: ``grabbed_data<d>/scale<s>/mnist_<d>_scale<ss>_<NNNN>.aedat`` for every digit d,
    every scale s in ``scales`` (all three by default: each zip holds them) and NNNN = 0001..1000,
    non-empty (30,000 recordings). Other files are ignored.
    """
    root = Path(root)
    problems = missing_root(root, "grabbed_data0/ ... grabbed_data9/")
    for digit in range(10) if not problems else ():
        problems += check_digit(root, digit, scales)
    return problems


def check_digit(root: str | PathLike, digit: int, scales: Sequence[int] = SCALES) -> list[str]:
    """Problems with one digit's folder ``root/grabbed_data<d>/`` (``[]`` when complete)."""
    problems = []
    for scale in scales:
        expected = (f"mnist_{digit}_scale{scale:02d}_{i:04d}.aedat" for i in range(1, RECORDINGS_PER_SCALE + 1))
        problems += missing_files(Path(root) / f"grabbed_data{digit}" / f"scale{scale}", expected, "recordings")
    return problems


def recording_ids(folder: Path, digit: int, scale: int) -> dict[int, Path]:
    """Recording id -> path of the digit's files in one scale folder (other names are ignored)."""
    pattern = re.compile(rf"mnist_{digit}_scale{scale:02d}_(\d+)\.aedat")
    found = {}
    for path in folder.iterdir():
        match = pattern.fullmatch(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


class MNISTDVS(WholeRecordingDataset):
    """MNIST-DVS samples ``(float32 [T, 2, H, W], digit)``; see the module docstring."""

    name = "mnist_dvs"
    CLASSES = CLASSES

    @classmethod
    def _geometry(cls, options: dict) -> tuple[int, tuple[int, int, int]]:
        return int(options["time_steps"]), frame_shape(tuple(options["sensor_size"]), options["downsample"])

    def __init__(
        self,
        root: str | PathLike,
        split: str = "train",
        time_steps: int = 50,
        downsample: int = 1,
        scale: int = 4,
        split_scheme: str = "default",
        seed: int = 0,
        binary: bool = True,
        on_bad_file: str = "raise",
        cache_dir: str | PathLike | None = None,
        sensor_size: Sequence[int] = (128, 128, 2),
        on_time_jump: str = "drop",
    ):
        check_choice("mnist_dvs split", split, SPLITS)
        check_choice("data.scale (mnist_dvs)", scale, SCALES)
        check_choice("data.split_scheme", split_scheme, SPLIT_SCHEMES)
        super().__init__(time_steps, sensor_size, downsample, None, binary, on_bad_file, cache_dir, on_time_jump)
        self.root = Path(root)
        self.split = split
        self.scale = scale
        self.classes = list(CLASSES)
        folders = {d: self.root / f"grabbed_data{d}" / f"scale{scale}" for d in range(10)}
        missing = [str(folder.relative_to(self.root)) for folder in folders.values() if not folder.is_dir()]
        if missing:
            raise DatasetNotFoundError(
                self.name, self.root, f"{len(missing)} digit folders are missing ({', '.join(missing)})"
            )
        for digit, folder in folders.items():
            files = recording_ids(folder, digit, scale)
            for rec_id in split_ids(files, split, split_scheme, SPLIT_SCHEMES[split_scheme], seed + digit, 0.8):
                self.sources.append(files[rec_id])
                self.samples.append(Sample(len(self.sources) - 1, (), digit))
        if not self.samples:
            raise DatasetNotFoundError(
                self.name,
                self.root,
                f"no scale{scale} recordings fall in the {split!r} split ({split_scheme!r} scheme)",
            )
        self._prepare()
