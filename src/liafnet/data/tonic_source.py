"""``source="tonic"``: tonic's own downloads of DVS Gesture and CIFAR10-DVS (optional extra).

tonic's copies differ from the originals (datasets.md §7.1): its DVS Gesture is one ``.npy`` per
gesture at 1 ms resolution (1,077 / 264 samples, the "other" class nearly absent), its CIFAR10-DVS
an AEDAT4 re-encoding read with the ``aedat`` package. tonic downloads whenever its files are
missing, so presence is checked here first and a missing copy raises ``DatasetNotFoundError``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from liafnet.data.aedat import EVENT_DTYPE
from liafnet.data.errors import DatasetNotFoundError
from liafnet.data.timestamps import ordered

INSTALL_HINT = "pip install 'liafnet[tonic]'"


def _tonic():
    try:
        import tonic
    except ImportError as err:
        raise ImportError(f"data.source=tonic needs the tonic package: {INSTALL_HINT}") from err
    return tonic


def _require_tree(name: str, folder: Path, archive: str, suffix: str, at_least: int, dataset: str) -> None:
    found = sum(1 for _ in folder.rglob(f"*{suffix}")) if folder.is_dir() else 0
    if not (folder / archive).is_file() or found < at_least:
        raise DatasetNotFoundError(
            name,
            folder,
            f"tonic's download is incomplete ({archive} present: {(folder / archive).is_file()}, "
            f"{found} {suffix} files, tonic needs >= {at_least}); with network access run "
            f"`python -c \"import tonic; tonic.datasets.{dataset}(save_to='{folder.parent}')\"`",
        )


def tonic_gesture_files(root: Path, split: str) -> tuple[list[Path], list[int]]:
    """Sorted per-gesture ``.npy`` files of tonic's DVSGesture under ``root`` and their labels."""
    tonic = _tonic()
    train = split == "train"
    folder = Path(root) / "DVSGesture"
    archive = "ibmGestureTrain.tar.gz" if train else "ibmGestureTest.tar.gz"
    _require_tree("dvs_gesture", folder, archive, ".npy", 100, "DVSGesture")
    dataset = tonic.datasets.DVSGesture(save_to=str(root), train=train)
    pairs = sorted(zip(map(Path, dataset.data), dataset.targets))
    return [p for p, _ in pairs], [int(label) for _, label in pairs]


def read_tonic_gesture(path: Path, on_time_jump: str = "drop") -> np.ndarray:
    """One tonic gesture file (N x 4: x, y, p, t in ms) as ``EVENT_DTYPE`` with t in µs, as tonic does.

    Time that jumps back is handled by ``on_time_jump`` (``liafnet.data.timestamps.ordered``).
    """
    raw = np.load(path)
    if raw.ndim != 2 or raw.shape[1] != 4:
        raise ValueError(f"{path}: expected an N x 4 array (x, y, p, t_ms), got shape {raw.shape}")
    events = np.empty(raw.shape[0], dtype=EVENT_DTYPE)
    events["x"], events["y"], events["p"] = raw[:, 0], raw[:, 1], raw[:, 2] != 0
    events["t"] = raw[:, 3].astype(np.int64) * 1000
    return ordered(events, path, on_time_jump)


def tonic_cifar10_files(root: Path) -> list[tuple[Path, int, int]]:
    """``(path, label, id)`` of tonic's CIFAR10DVS ``.aedat4`` files under ``root``; the id is the
    number ending the file name, else the file's rank in its sorted class folder."""
    tonic = _tonic()
    _require_tree("cifar10_dvs", Path(root) / "CIFAR10DVS", "CIFAR10DVS.zip", ".aedat4", 1000, "CIFAR10DVS")
    dataset = tonic.datasets.CIFAR10DVS(save_to=str(root))
    out, rank = [], {}
    for path, label in sorted(zip(map(Path, dataset.data), dataset.targets)):
        match = re.search(r"(\d+)\.aedat4$", path.name)
        rank[label] = rank.get(label, -1) + 1
        out.append((path, int(label), int(match.group(1)) if match else rank[label]))
    return out


def read_aedat4(path: Path, on_time_jump: str = "drop") -> np.ndarray:
    """Events of one AEDAT4 file through tonic's reader (needs the ``aedat`` package); time that
    jumps back is handled by ``on_time_jump`` (``liafnet.data.timestamps.ordered``)."""
    from tonic.io import read_aedat4 as tonic_read_aedat4

    raw = tonic_read_aedat4(str(path))
    events = np.empty(raw.shape[0], dtype=EVENT_DTYPE)
    names = raw.dtype.names  # tonic's AEDAT4 reader returns (t, x, y, on) or (t, x, y, p)
    events["t"] = raw[names[0]]
    events["x"], events["y"] = raw[names[1]], raw[names[2]]
    events["p"] = raw[names[3]].astype(bool)
    return ordered(events, path, on_time_jump)
