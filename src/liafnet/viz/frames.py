"""Event frames as pictures: ON events red, OFF events blue, on one scale."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from liafnet.viz.figure import DPI, save_png  # noqa: F401  (DPI: callers size their checks by it)

def frames_to_rgb(frames: np.ndarray, scale: float | None = None) -> np.ndarray:
    """``[T, 2, H, W]`` -> ``[T, H, W, 3]`` on black: ON (channel 1) red, OFF (channel 0) blue,
    both on one scale (``scale`` or the sample's maximum) so their strengths compare."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[1] != 2:
        raise ValueError(f"expected event frames [T, 2, H, W] (OFF, ON), got shape {frames.shape}")
    top = scale if scale is not None else float(frames.max())
    top = top if top > 0 else 1.0
    rgb = np.zeros(frames.shape[:1] + frames.shape[2:] + (3,), dtype=np.float32)
    rgb[..., 0] = np.clip(frames[:, 1] / top, 0, 1)
    rgb[..., 2] = np.clip(frames[:, 0] / top, 0, 1)
    return rgb


def _frame_indices(time_steps: int, count: int) -> list[int]:
    if time_steps <= count:
        return list(range(time_steps))
    return sorted({int(round(i)) for i in np.linspace(0, time_steps - 1, count)})


def _first_index_per_class(dataset) -> dict[int, int]:
    targets = getattr(dataset, "targets", None)
    if targets is None:
        targets = [int(dataset[i][1]) for i in range(len(dataset))]
    first: dict[int, int] = {}
    for index, target in enumerate(targets):
        first.setdefault(int(target), index)
    return first


def class_frames_figsize(n_classes: int, n_frames: int) -> tuple[float, float]:
    """Figure size in inches for :func:`plot_class_frames` with ``n_frames`` columns, i.e.
    ``min(T, n_frames)`` (so callers and tests know the PNG size)."""
    return 1.6 + 1.0 * n_frames, 0.7 + 1.0 * n_classes


def plot_class_frames(dataset, path: str | Path, n_frames: int = 8) -> Path:
    """A strip of ``n_frames`` evenly spaced frames from the first sample of every class.

    ``dataset`` has items ``(frames [T, 2, H, W], label)`` and, optionally, ``classes`` (names)
    and ``targets`` (labels without loading frames)."""
    first = _first_index_per_class(dataset)
    if not first:
        raise ValueError("the dataset is empty: no frames to draw")
    classes = list(getattr(dataset, "classes", []))
    labels = sorted(first)
    samples = [np.asarray(dataset[first[label]][0]) for label in labels]
    steps = _frame_indices(samples[0].shape[0], n_frames)
    fig = Figure(figsize=class_frames_figsize(len(labels), len(steps)))
    axes = fig.subplots(len(labels), len(steps), squeeze=False)
    for row, (label, frames) in enumerate(zip(labels, samples)):
        rgb = frames_to_rgb(frames)
        for col, step in enumerate(steps):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(rgb[step], interpolation="nearest")
            if row == 0:
                ax.set_title(f"t = {step}", fontsize=8)
        name = classes[label] if label < len(classes) else str(label)
        axes[row][0].set_ylabel(name.replace("_", " "), rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("one sample per class (red: ON events, blue: OFF events, magenta: both)", fontsize=10)
    fig.set_layout_engine("constrained")
    return save_png(fig, path)


def sample_frames_figsize(time_steps: int, per_row: int = 10) -> tuple[float, float]:
    rows = math.ceil(time_steps / per_row)
    return 0.4 + 1.0 * min(time_steps, per_row), 0.7 + 1.1 * rows


def plot_sample_frames(frames, path: str | Path, title: str = "", per_row: int = 10) -> Path:
    """Every frame of one sample ``[T, 2, H, W]``, ``per_row`` to a row."""
    frames = np.asarray(frames)
    rgb = frames_to_rgb(frames)
    steps = rgb.shape[0]
    rows, cols = math.ceil(steps / per_row), min(steps, per_row)
    fig = Figure(figsize=sample_frames_figsize(steps, per_row))
    axes = fig.subplots(rows, cols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index < steps:
            ax.imshow(rgb[index], interpolation="nearest")
            ax.set_title(f"t = {index}", fontsize=8)
        else:
            ax.set_axis_off()
    fig.suptitle(f"{title} (red: ON, blue: OFF, magenta: both)".strip(), fontsize=10)
    fig.set_layout_engine("constrained")
    return save_png(fig, path)

