"""Builders of small event files and original-layout dataset trees for the event-data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from liafnet.data.aedat import EVENT_DTYPE, write_aedat

SHARED_EVENTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "events"


def random_events(rng: np.random.Generator, n: int, size: int = 128, t_start: int = 0, t_span: int = 1_000_000):
    """``n`` events with sorted timestamps in [t_start, t_start + t_span) on a size x size sensor."""
    events = np.empty(n, dtype=EVENT_DTYPE)
    events["x"] = rng.integers(0, size, n)
    events["y"] = rng.integers(0, size, n)
    events["p"] = rng.integers(0, 2, n).astype(bool)
    events["t"] = np.sort(rng.integers(t_start, t_start + t_span, n))
    return events


def write_gesture_tree(
    root: Path,
    rng: np.random.Generator,
    train_trials=("user01_natural", "user02_lab"),
    test_trials=("user24_led",),
    segments=((1, 100_000, 400_000), (8, 500_000, 900_000), (8, 950_000, 1_300_000), (11, 1_350_000, 1_600_000)),
    events_per_segment: int = 300,
) -> dict[str, np.ndarray]:
    """A DVS Gesture tree in the original layout; returns the events written per trial."""
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for trial in (*train_trials, *test_trials):
        parts = [
            random_events(rng, events_per_segment, t_start=start, t_span=end - start) for _, start, end in segments
        ]
        parts.append(random_events(rng, 50, t_start=0, t_span=100_000))  # before the first gesture
        events = np.concatenate(parts)
        events = events[np.argsort(events["t"], kind="stable")]
        write_aedat(root / f"{trial}.aedat", events, version="3.1", packet_events=256)
        rows = "".join(f"{c},{s},{e}\r\n" for c, s, e in segments)
        (root / f"{trial}_labels.csv").write_text("class,startTime_usec,endTime_usec\r\n" + rows)
        written[trial] = events
    (root / "trials_to_train.txt").write_text("".join(f"{t}.aedat\n" for t in train_trials) + "\n")
    (root / "trials_to_test.txt").write_text("".join(f"{t}.aedat\n" for t in test_trials))
    return written


def write_mnist_tree(root: Path, rng: np.random.Generator, ids=(1, 2, 801), scale: int = 4, n_events: int = 200):
    """MNIST-DVS original layout with the given recording ids for every digit; returns path -> events."""
    written = {}
    for digit in range(10):
        folder = root / f"grabbed_data{digit}" / f"scale{scale}"
        folder.mkdir(parents=True, exist_ok=True)
        for rec_id in ids:
            events = random_events(rng, n_events, t_span=2_000_000)
            path = folder / f"mnist_{digit}_scale{scale:02d}_{rec_id:04d}.aedat"
            write_aedat(path, events, version="2.0")
            written[path] = events
        (folder / "notes.txt").write_text("ignored")
    return written


CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_cifar_tree(root: Path, rng: np.random.Generator, ids=(0, 1, 100, 101, 102), n_events: int = 300):
    """CIFAR10-DVS original layout with the given ids per class; returns path -> events."""
    written = {}
    for name in CIFAR_CLASSES:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for rec_id in ids:
            events = random_events(rng, n_events, t_start=10_000, t_span=1_300_000)
            path = folder / f"cifar10_{name}_{rec_id}.aedat"
            write_aedat(path, events, version="2.0")
            written[path] = events
    return written
