"""The embedded default dataset: synthetic DVS recordings in the DVS128 Gesture original layout.

``ensure_dataset(root)`` writes, once and deterministically from a seed, a tree that looks exactly like
the IBM DVS128 Gesture release: ``userNN_synthetic.aedat`` (AEDAT 3.1, written by
:func:`liafnet.data.aedat.write_aedat`), ``userNN_synthetic_labels.csv``, ``trials_to_train.txt``,
``trials_to_test.txt`` and ``gesture_mapping.csv``. It is then read by the same
:class:`liafnet.data.dvs_gesture.DVSGesture` code as the real data.

Why the classes need time: every gesture is a textured object whose events have *random polarity*
(so ON/OFF edges do not reveal the direction of motion), and the classes come in pairs that sweep the
same region — left/right, up/down, clockwise/counter-clockwise — from start positions drawn from the
same distribution. Summing all frames of a sample gives the same picture for both members of a pair,
so a frame-summing model can do no better than 50 %; the order of the frames separates them.

Beyond the six default classes the generator has six more motions (the four diagonal moves, expand,
contract), so it can stand in for any of the real DVS datasets: :func:`ensure_standin` writes a tree
in the original layout of DVS128 Gesture (AEDAT 3.1), CIFAR10-DVS or MNIST-DVS (AEDAT 2.0) with that
dataset's class count and train/test sizes, read back by the real dataset classes. A stand-in times a
paper table's recipe end to end and checks that it learns; its accuracies say nothing about the paper.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from liafnet.data.aedat import EVENT_DTYPE, write_aedat
from liafnet.data.errors import check_choice

CLASSES = ("move_left", "move_right", "move_up", "move_down", "rotate_cw", "rotate_ccw",
           "move_up_left", "move_up_right", "move_down_left", "move_down_right", "expand", "contract")
DEFAULT_CLASSES = 6  # the embedded dataset (data=synthetic)
SENSOR = 128
GENERATOR_VERSION = 1
_STAMP = "synthetic.json"


def _gesture_events(rng: np.random.Generator, label: int, t0: int, duration_us: int, n_events: int,
                    noise_fraction: float) -> np.ndarray:
    """Events of one gesture starting at ``t0``: a textured square moving, or a bar rotating."""
    t = np.sort(rng.integers(0, duration_us, n_events)).astype(np.int64)
    phase = t / duration_us  # 0..1 over the gesture
    if label < 4:
        side, travel = 28, 64
        lo, hi = 8, SENSOR - 8 - side
        # Start positions with the same swept band for both members of a pair.
        band = rng.integers(lo, hi - travel + 1)
        cross = rng.integers(lo, hi + 1)
        forward = label in (1, 3)  # right, down
        along = band + (phase if forward else 1.0 - phase) * travel
        u = along + rng.uniform(0, side, n_events)
        v = cross + rng.uniform(0, side, n_events)
        x, y = (u, v) if label < 2 else (v, u)
    elif label < 6:
        centre = rng.uniform(48, SENSOR - 48, 2)
        direction = -1.0 if label == 4 else 1.0  # image y points down: clockwise is decreasing angle
        angle = rng.uniform(0, 2 * np.pi) + direction * np.pi * phase
        radius = rng.uniform(-30, 30, n_events)
        width = rng.uniform(-4, 4, n_events)
        x = centre[0] + radius * np.cos(angle) - width * np.sin(angle)
        y = centre[1] + radius * np.sin(angle) + width * np.cos(angle)
    elif label < 10:
        # Diagonal moves: up-left, up-right, down-left, down-right (image y points down).
        side, travel = 28, 48
        sx = 1.0 if label in (7, 9) else -1.0
        sy = 1.0 if label in (8, 9) else -1.0
        start = rng.integers(8, SENSOR - 8 - side - travel + 1, 2)
        x = start[0] + (phase if sx > 0 else 1.0 - phase) * travel + rng.uniform(0, side, n_events)
        y = start[1] + (phase if sy > 0 else 1.0 - phase) * travel + rng.uniform(0, side, n_events)
    elif label < 12:
        # A ring that expands (10) or contracts (11) around a random centre.
        centre = rng.uniform(40, SENSOR - 40, 2)
        grow = phase if label == 10 else 1.0 - phase
        radius = 6 + 28 * grow + rng.uniform(-2, 2, n_events)
        angle = rng.uniform(0, 2 * np.pi, n_events)
        x = centre[0] + radius * np.cos(angle)
        y = centre[1] + radius * np.sin(angle)
    else:
        raise ValueError(f"synthetic generator: label {label} outside 0..{len(CLASSES) - 1}")
    n_noise = int(n_events * noise_fraction)
    x = np.concatenate([x, rng.uniform(0, SENSOR, n_noise)])
    y = np.concatenate([y, rng.uniform(0, SENSOR, n_noise)])
    t = np.concatenate([t, rng.integers(0, duration_us, n_noise)])
    order = np.argsort(t, kind="stable")
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["x"] = np.clip(x[order], 0, SENSOR - 1).astype(np.int16)
    events["y"] = np.clip(y[order], 0, SENSOR - 1).astype(np.int16)
    events["p"] = rng.random(len(t)) < 0.5
    events["t"] = t0 + t[order]
    return events


def _write_trial(path: Path, rng: np.random.Generator, num_classes: int, gestures_per_class: int,
                 extra_per_trial: int, duration_us: int, gap_us: int, events_per_gesture: int,
                 noise_fraction: float) -> None:
    labels = rng.permutation(np.repeat(np.arange(num_classes), gestures_per_class))
    if extra_per_trial:
        # Real trials repeat a class (user01_natural has arm_roll twice): 11 classes, 12 gestures.
        labels = np.concatenate([labels, rng.integers(0, num_classes, extra_per_trial)])
    chunks, rows = [], []
    t = gap_us
    for label in labels:
        chunks.append(_gesture_events(rng, int(label), t, duration_us, events_per_gesture, noise_fraction))
        rows.append(f"{label + 1},{t},{t + duration_us}")
        t += duration_us + gap_us
    write_aedat(path.with_suffix(".aedat"), np.concatenate(chunks), version="3.1")
    csv = path.parent / f"{path.name}_labels.csv"
    csv.write_text("class,startTime_usec,endTime_usec\n" + "\n".join(rows) + "\n")


def ensure_dataset(
    root: str | os.PathLike,
    seed: int = 1234,
    train_trials: int = 20,
    test_trials: int = 6,
    gestures_per_class: int = 5,
    duration_us: int = 500_000,
    gap_us: int = 100_000,
    events_per_gesture: int = 3000,
    noise_fraction: float = 0.1,
    num_classes: int = DEFAULT_CLASSES,
    extra_per_trial: int = 0,
) -> Path:
    """Generate the synthetic Gesture-layout tree under ``root`` unless an identical one exists.

    ``num_classes`` (2..12) takes the first motions of ``CLASSES``; every trial holds
    ``gestures_per_class`` gestures of each class plus ``extra_per_trial`` of random classes, each
    ``duration_us`` long. The defaults are the embedded dataset (data=synthetic). Raises
    ``ValueError`` for an out-of-range ``num_classes``.
    """
    if not 2 <= num_classes <= len(CLASSES):
        raise ValueError(f"synthetic num_classes must lie in 2..{len(CLASSES)}, got {num_classes}")
    params = dict(version=GENERATOR_VERSION, seed=seed, train_trials=train_trials, test_trials=test_trials,
                  gestures_per_class=gestures_per_class, duration_us=duration_us, gap_us=gap_us,
                  events_per_gesture=events_per_gesture, noise_fraction=noise_fraction)
    if (num_classes, extra_per_trial) != (DEFAULT_CLASSES, 0):
        # Only then part of the stamp, so that trees generated before these options stay valid.
        params.update(num_classes=num_classes, extra_per_trial=extra_per_trial)

    def write(tmp: Path) -> None:
        rng = np.random.default_rng(seed)
        names = [f"user{i:02d}_synthetic" for i in range(1, train_trials + test_trials + 1)]
        for name in names:
            _write_trial(tmp / name, rng, num_classes, gestures_per_class, extra_per_trial, duration_us,
                         gap_us, events_per_gesture, noise_fraction)
        (tmp / "trials_to_train.txt").write_text("".join(f"{n}.aedat\n" for n in names[:train_trials]))
        (tmp / "trials_to_test.txt").write_text("".join(f"{n}.aedat\n" for n in names[train_trials:]))
        (tmp / "gesture_mapping.csv").write_text(
            "action,label\n" + "".join(f"{c},{i + 1}\n" for i, c in enumerate(CLASSES[:num_classes])))

    return _build_tree(Path(root), params, write)


# ---------------------------------------------------------------------------------------- stand-ins
STANDIN_LAYOUTS = ("dvs_gesture", "cifar10_dvs", "mnist_dvs")
_CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def ensure_standin(
    root: str | os.PathLike,
    layout: str,
    train_size: int,
    test_size: int,
    num_classes: int = 10,
    seed: int = 1234,
    duration_us: int = 2_000_000,
    events_per_sample: int = 3000,
    noise_fraction: float = 0.1,
) -> Path:
    """A synthetic stand-in for a real DVS dataset, in that dataset's original file layout.

    ``layout``:

    - ``dvs_gesture``: AEDAT 3.1 trials with label CSVs and trial lists; every trial holds each class
      once plus one repeated class (as the real trials: 11 classes, 12 gestures), so ``train_size``
      and ``test_size`` must be multiples of ``num_classes + 1`` (real: 1,176 and 288 of 11 classes).
    - ``cifar10_dvs``: ``<class>/cifar10_<class>_<i>.aedat`` (AEDAT 2.0), test ids 0.. and train ids
      100.. per class, as the default split reads them (real: 9,000 / 1,000).
    - ``mnist_dvs``: ``grabbed_data<d>/scale4/mnist_<d>_scale04_<NNNN>.aedat`` (AEDAT 2.0), train ids
      1.. and test ids 801.. per digit (real: 8,000 / 2,000).

    The two AEDAT 2.0 layouts need ``num_classes == 10`` and sizes divisible by 10. Each sample is one
    motion of ``duration_us`` with ``events_per_sample`` events on the 128x128 sensor; the same
    arguments always give the same events. Raises
    ``ValueError`` naming the argument when the sizes do not fit the layout.
    """
    check_choice("stand-in layout", layout, STANDIN_LAYOUTS)
    if layout == "dvs_gesture":
        per_trial = num_classes + 1
        for name, size in (("train_size", train_size), ("test_size", test_size)):
            if size < per_trial or size % per_trial:
                raise ValueError(f"stand-in dvs_gesture: {name}={size} must be a positive multiple of "
                                 f"num_classes + 1 = {per_trial} (gestures per trial)")
        return ensure_dataset(root, seed=seed, train_trials=train_size // per_trial,
                              test_trials=test_size // per_trial, gestures_per_class=1, extra_per_trial=1,
                              num_classes=num_classes, duration_us=duration_us, gap_us=100_000,
                              events_per_gesture=events_per_sample, noise_fraction=noise_fraction)
    if num_classes != 10:
        raise ValueError(f"stand-in {layout}: num_classes must be 10 (the reader expects 10 class folders), "
                         f"got {num_classes}")
    test_cap = 100 if layout == "cifar10_dvs" else 200
    for name, size, cap in (("train_size", train_size, 900 if layout == "cifar10_dvs" else 800),
                            ("test_size", test_size, test_cap)):
        if size < 10 or size % 10 or size // 10 > cap:
            raise ValueError(f"stand-in {layout}: {name}={size} must be a multiple of 10 with at most "
                             f"{cap} per class (the default split's id ranges)")
    if duration_us >= 2**32:
        raise ValueError(f"stand-in {layout}: duration_us={duration_us} does not fit AEDAT 2.0 timestamps")
    params = dict(version=GENERATOR_VERSION, layout=layout, seed=seed, train_size=train_size,
                  test_size=test_size, duration_us=duration_us, events_per_sample=events_per_sample,
                  noise_fraction=noise_fraction)
    if layout == "cifar10_dvs":
        ids = [*range(100, 100 + train_size // 10), *range(test_size // 10)]
        def path_of(tmp: Path, label: int, rec_id: int) -> Path:
            name = _CIFAR_CLASSES[label]
            return tmp / name / f"cifar10_{name}_{rec_id}.aedat"
    else:
        ids = [*range(1, 1 + train_size // 10), *range(801, 801 + test_size // 10)]
        def path_of(tmp: Path, label: int, rec_id: int) -> Path:
            return tmp / f"grabbed_data{label}" / "scale4" / f"mnist_{label}_scale04_{rec_id:04d}.aedat"

    def write(tmp: Path) -> None:
        rng = np.random.default_rng(seed)
        for label in range(10):
            path_of(tmp, label, 0).parent.mkdir(parents=True, exist_ok=True)
            for rec_id in ids:
                events = _gesture_events(rng, label, 0, duration_us, events_per_sample, noise_fraction)
                write_aedat(path_of(tmp, label, rec_id), events, version="2.0")

    return _build_tree(Path(root), params, write)


def _build_tree(root: Path, params: dict, write) -> Path:
    """Run ``write(tmp)`` into a temporary sibling of ``root`` and rename it into place, unless
    ``root`` already holds a tree stamped with the same ``params``. An interrupted generation never
    leaves a half-written tree behind."""
    stamp = root / _STAMP
    if _matches(stamp, params):
        return root
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    (tmp / _STAMP).write_text(json.dumps(params, indent=1))
    if root.exists() and not _matches(stamp, params):
        shutil.rmtree(root)  # stale tree from other generator settings
    try:
        os.replace(tmp, root)
    except OSError:
        # Another process (a parallel sweep job) finished the same tree first.
        shutil.rmtree(tmp, ignore_errors=True)
        if not _matches(stamp, params):
            raise
    return root


def _matches(stamp: Path, params: dict) -> bool:
    try:
        return json.loads(stamp.read_text()) == params
    except (OSError, ValueError):
        return False
