"""DVS128 Gesture (Amir et al., CVPR 2017) from IBM's original AEDAT 3.1 files.

Layout (``root`` or ``root/DvsGesture``): ``userNN_<light>.aedat``, ``userNN_<light>_labels.csv``,
``trials_to_train.txt``, ``trials_to_test.txt``. One sample per label-CSV row: the events with
``start <= t < end``, label = CSV class id - 1. Frames: ``time_steps`` bins of ``dt_us`` from the
segment start (test), or from a random offset inside the segment (``random_crop``, the authors'
training augmentation); coordinates integer-divided by ``downsample``; binary or count.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import torch

from liafnet.data.errors import CorruptFileError, DatasetNotFoundError, check_choice
from liafnet.data.event_dataset import EventFileDataset, Sample
from liafnet.data.frames import accumulate, event_pixels, frame_shape, time_bins
from liafnet.data.layout import missing_files

log = logging.getLogger(__name__)

CLASSES = (
    "hand_clapping",
    "right_hand_wave",
    "left_hand_wave",
    "right_arm_clockwise",
    "right_arm_counter_clockwise",
    "left_arm_clockwise",
    "left_arm_counter_clockwise",
    "arm_roll",
    "air_drums",
    "air_guitar",
    "other_gestures",
)
SPLITS = ("train", "test")
SOURCES = ("original", "tonic")
# Recordings per trial list in IBM's release (users 1-23 train, 24-29 test: 122 trials).
RELEASE_TRIALS = {"train": 98, "test": 24}


def find_root(root: str | PathLike) -> Path:
    """The folder holding the trial lists: ``root`` itself or ``root/DvsGesture``."""
    root = Path(root)
    for candidate in (root, root / "DvsGesture"):
        if (candidate / "trials_to_train.txt").is_file() or (candidate / "trials_to_test.txt").is_file():
            return candidate
    raise DatasetNotFoundError(
        "dvs_gesture", root, "neither it nor its DvsGesture/ subfolder holds trials_to_train.txt / trials_to_test.txt"
    )


def check_layout(root: str | PathLike) -> list[str]:
    """What keeps ``root`` (or ``root/DvsGesture``) from being IBM's full release; ``[]`` when complete.

    Expected: ``trials_to_train.txt`` listing 98 recordings and ``trials_to_test.txt`` listing 24,
    and for every listed ``userNN_<light>.aedat`` the file itself and its ``_labels.csv``, both
    non-empty. Other files (``gesture_mapping.csv``, ``README.txt``) are not required.
    """
    try:
        folder = find_root(root)
    except DatasetNotFoundError:
        return [f"{root}/: neither it nor DvsGesture/ holds trials_to_train.txt or trials_to_test.txt"]
    problems = []
    for split, expected in RELEASE_TRIALS.items():
        listing = folder / f"trials_to_{split}.txt"
        if not listing.is_file():
            problems.append(f"{listing}: missing (lists the {expected} {split} recordings)")
            continue
        trials = read_trial_list(listing)
        if len(trials) != expected:
            problems.append(f"{listing}: lists {len(trials)} recordings, the release lists {expected}")
        names = [name for trial in trials for name in (trial, _labels_name(trial))]
        problems += missing_files(folder, names, f"files listed in {listing.name}")
    return problems


def read_trial_list(path: Path) -> list[str]:
    """Recording names listed one per line (blank lines ignored)."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_class_names(path: Path) -> list[str]:
    """Class names ordered by CSV id from ``gesture_mapping.csv`` (``action,label`` rows); the IBM
    names when the file is absent or unreadable (it only names classes, labels come from the CSVs)."""
    try:
        lines = [line.split(",") for line in path.read_text().splitlines()[1:] if line.strip()]
        by_id = {int(label): name.strip() for name, label in lines}
        return [by_id[i] for i in range(1, len(by_id) + 1)]
    except FileNotFoundError:
        return list(CLASSES)
    except (OSError, ValueError, KeyError) as err:
        log.warning("%s is unreadable (%s); using the IBM class names", path, err)
        return list(CLASSES)


def read_labels(
    path: Path, num_classes: int, on_bad_row: str = "raise"
) -> tuple[list[tuple[int, int, int]], list[str]]:
    """Rows ``(label, start_us, end_us)`` of a ``*_labels.csv`` (label = class id - 1), and the rows
    skipped as ``"<file>:<line>"`` when ``on_bad_row == "skip"``.

    Overlapping intervals are allowed (user22_led has one); an inverted interval (end <= start), a
    malformed line or a class id outside 1..num_classes raises ``CorruptFileError`` naming the line,
    except that ``on_bad_row="skip"`` skips inverted intervals.
    """
    rows, skipped = [], []
    offset = 0
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            line = raw.decode("utf-8", errors="replace").strip()
            line_offset, offset = offset, offset + len(raw)
            if not line or (number == 1 and line.lower().startswith("class")):
                continue
            fields = line.split(",")
            try:
                class_id, start, end = (int(v) for v in fields)
            except ValueError:
                raise CorruptFileError(
                    path, line_offset, f"line {number}: expected 'class,startTime_usec,endTime_usec', got {line!r}"
                ) from None
            if not 1 <= class_id <= num_classes:
                raise CorruptFileError(
                    path, line_offset, f"line {number}: class id {class_id} outside 1..{num_classes}"
                )
            if end <= start:
                if on_bad_row == "skip":
                    skipped.append(f"{path}:{number}")
                    log.warning("%s line %d: end %d <= start %d; skipping this row", path, number, end, start)
                    continue
                raise CorruptFileError(path, line_offset, f"line {number}: end time {end} <= start time {start}")
            rows.append((class_id - 1, start, end))
    return rows, skipped


class DVSGesture(EventFileDataset):
    """DVS128 Gesture samples ``(float32 [T, 2, H, W], label)``; see the module docstring.

    ``source="tonic"`` reads tonic's preprocessed download under ``root`` instead (one ``.npy``
    per gesture, 1 ms resolution, 1,077/264 samples; needs ``pip install 'liafnet[tonic]'``).
    """

    name = "dvs_gesture"

    def __init__(
        self,
        root: str | PathLike,
        split: str = "train",
        time_steps: int = 60,
        dt_us: int = 25_000,
        downsample: int = 4,
        binary: bool = True,
        random_crop: bool = False,
        on_bad_file: str = "raise",
        cache_dir: str | PathLike | None = None,
        sensor_size: Sequence[int] = (128, 128, 2),
        num_classes: int = 11,
        source: str = "original",
        on_time_jump: str = "drop",
    ):
        super().__init__(on_bad_file=on_bad_file, cache_dir=cache_dir, on_time_jump=on_time_jump)
        check_choice("dvs_gesture split", split, SPLITS)
        check_choice("data.source", source, SOURCES)
        if not 2 <= num_classes <= len(CLASSES):
            raise ValueError(f"data.num_classes must lie in 2..{len(CLASSES)} for dvs_gesture, got {num_classes}")
        for key, value in (("time_steps", time_steps), ("dt_us", dt_us)):
            if int(value) != value or value < 1:
                raise ValueError(f"dvs_gesture {key} must be a positive integer, got {value}")
        self.split = split
        self.time_steps = int(time_steps)
        self.dt_us = int(dt_us)
        self.downsample = downsample
        self.binary = binary
        self.random_crop = random_crop
        self.sensor_size = tuple(int(v) for v in sensor_size)
        self.frame_shape = self._geometry(locals())[1]  # (P, H, W), validates both
        self.source = source
        if source == "original":
            self._discover_original(Path(root), num_classes)
            names = read_class_names(self.root / "gesture_mapping.csv")
            self.classes = (names if len(names) >= num_classes else list(CLASSES))[:num_classes]
        else:
            self._discover_tonic(Path(root))
            self.classes = list(CLASSES[:num_classes])
        self._prepare()

    @classmethod
    def _geometry(cls, options: dict) -> tuple[int, tuple[int, int, int]]:
        sensor = tuple(int(v) for v in options["sensor_size"])
        return int(options["time_steps"]), frame_shape(sensor, options["downsample"])

    # -- discovery -------------------------------------------------------------------------------
    def _discover_original(self, root: Path, num_classes: int) -> None:
        self.root = find_root(root)
        trial_list = self.root / f"trials_to_{self.split}.txt"
        if not trial_list.is_file():
            raise DatasetNotFoundError("dvs_gesture", self.root, f"{trial_list.name} is missing")
        trials = read_trial_list(trial_list)
        missing = [
            name for trial in trials for name in (trial, _labels_name(trial)) if not (self.root / name).is_file()
        ]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DatasetNotFoundError(
                "dvs_gesture", self.root, f"{len(missing)} files listed in {trial_list.name} are missing ({shown})"
            )
        for trial in trials:
            labels_path = self.root / _labels_name(trial)
            try:
                rows, skipped = read_labels(labels_path, num_classes, on_bad_row=self.on_bad_file)
            except CorruptFileError as err:
                if self.on_bad_file == "raise":
                    raise
                self.bad_files.append(str(labels_path))
                log.warning("dvs_gesture: skipping trial %s: %s", trial, err)
                continue
            self.bad_files.extend(skipped)
            self.sources.append(self.root / trial)
            self.samples.extend(Sample(len(self.sources) - 1, (start, end), label) for label, start, end in rows)

    def _discover_tonic(self, root: Path) -> None:
        from liafnet.data.tonic_source import tonic_gesture_files

        self.root = root
        files, labels = tonic_gesture_files(root, self.split)
        self.sources = files
        self.samples = [Sample(i, (), label) for i, label in enumerate(labels)]

    @property
    def groups(self) -> list[str]:
        """Per sample, the user who recorded it: ``userNN`` of ``userNN_<light>.aedat`` (or of the
        folder ``userNN_<light>/`` in tonic's copy), else the file name. ``val_split=groups`` then
        holds out whole users, as the test split does."""
        names = [path.name if path.name.startswith("user") else path.parent.name for path in self.sources]
        users = [name.split("_", 1)[0] if name.startswith("user") else name for name in names]
        return [users[s.source] for s in self.samples]

    # -- hooks -------------------------------------------------------------------------------------
    def _config(self) -> dict:
        return {"downsample": self.downsample, "sensor_size": list(self.sensor_size), "source": self.source,
                "on_time_jump": self.on_time_jump}

    def _read(self, path: Path) -> np.ndarray:
        if self.source == "tonic":
            from liafnet.data.tonic_source import read_tonic_gesture

            return read_tonic_gesture(path, self.on_time_jump)
        return super()._read(path)

    def _preprocess(self, events: np.ndarray, keys: Sequence[tuple]) -> tuple[np.ndarray, dict]:
        """All segments' events, concatenated: µs since the segment start and the flat pixel index."""
        pix, shape = event_pixels(events, self.sensor_size, self.downsample)
        t = events["t"]  # non-decreasing: every reader applies data.on_time_jump
        rows = np.empty(0, dtype=_row_dtype(int(np.prod(shape))))
        chunks, parts, first = [], {}, 0
        for key in keys:
            start, end = key if key else (int(t.min()) if t.size else 0, int(t.max()) + 1 if t.size else 1)
            if end - start >= 2**31:
                raise ValueError(f"segment [{start}, {end}) is longer than 2**31 µs (35 min), too long for a gesture")
            inside = np.arange(*np.searchsorted(t, [start, end]))
            chunk = np.empty(inside.size, dtype=rows.dtype)
            chunk["t"] = t[inside] - start
            chunk["pix"] = pix[inside]
            chunks.append(chunk)
            parts[key] = (first, inside.size)
            first += inside.size
        return np.concatenate([rows, *chunks]), parts

    def _frames(self, rows: np.ndarray, sample: Sample) -> np.ndarray:
        offset = 0
        if self.random_crop:
            # A random start inside the segment such that the window stays inside when it fits.
            span = sample.key[1] - sample.key[0] if sample.key else int(rows["t"].max(initial=0)) + 1
            room = span - self.time_steps * self.dt_us
            offset = int(torch.randint(0, room + 1, ()).item()) if room > 0 else 0
        bins, _, inside = time_bins(rows["t"], self.time_steps, self.dt_us, start_time_us=offset)
        pix = rows["pix"] if inside is None else rows["pix"][inside]
        return accumulate(bins, pix.astype(np.int32), self.time_steps, self.frame_shape, self.binary)


def _row_dtype(n_pixels: int) -> np.dtype:
    """Compact cached event: int32 µs since the segment start (segments < 35 min), pixel index."""
    return np.dtype([("t", "<i4"), ("pix", "<u2" if n_pixels <= 1 << 16 else "<u4")])


def _labels_name(trial: str) -> str:
    return trial.removesuffix(".aedat") + "_labels.csv"
