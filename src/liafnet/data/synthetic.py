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
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from liafnet.data.aedat import EVENT_DTYPE, write_aedat

CLASSES = ("move_left", "move_right", "move_up", "move_down", "rotate_cw", "rotate_ccw")
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
    else:
        centre = rng.uniform(48, SENSOR - 48, 2)
        direction = -1.0 if label == 4 else 1.0  # image y points down: clockwise is decreasing angle
        angle = rng.uniform(0, 2 * np.pi) + direction * np.pi * phase
        radius = rng.uniform(-30, 30, n_events)
        width = rng.uniform(-4, 4, n_events)
        x = centre[0] + radius * np.cos(angle) - width * np.sin(angle)
        y = centre[1] + radius * np.sin(angle) + width * np.cos(angle)
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


def _write_trial(path: Path, rng: np.random.Generator, gestures_per_class: int, duration_us: int,
                 gap_us: int, events_per_gesture: int, noise_fraction: float) -> None:
    labels = rng.permutation(np.repeat(np.arange(len(CLASSES)), gestures_per_class))
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
) -> Path:
    """Generate the synthetic Gesture-layout tree under ``root`` unless an identical one exists.

    The tree is written into a temporary sibling folder and renamed into place, so an interrupted
    generation never leaves a half-written dataset behind.
    """
    root = Path(root)
    params = dict(version=GENERATOR_VERSION, seed=seed, train_trials=train_trials, test_trials=test_trials,
                  gestures_per_class=gestures_per_class, duration_us=duration_us, gap_us=gap_us,
                  events_per_gesture=events_per_gesture, noise_fraction=noise_fraction)
    stamp = root / _STAMP
    if _matches(stamp, params):
        return root
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    names = [f"user{i:02d}_synthetic" for i in range(1, train_trials + test_trials + 1)]
    for name in names:
        _write_trial(tmp / name, rng, gestures_per_class, duration_us, gap_us, events_per_gesture, noise_fraction)
    (tmp / "trials_to_train.txt").write_text("".join(f"{n}.aedat\n" for n in names[:train_trials]))
    (tmp / "trials_to_test.txt").write_text("".join(f"{n}.aedat\n" for n in names[train_trials:]))
    (tmp / "gesture_mapping.csv").write_text(
        "action,label\n" + "".join(f"{c},{i + 1}\n" for i, c in enumerate(CLASSES)))
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
