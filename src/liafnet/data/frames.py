"""Events -> dense frames, and the on-disk cache of preprocessed samples.

Binning (``events_to_frames``), with ``t0`` the start and ``T`` the number of bins:

- ``n_time_bins=T`` alone: equal-duration bins over the events' own span, ``t0 = t.min()``,
  ``t_end = t.max()``; ``bin = floor((t - t0) * T / (t_end - t0))`` with the last event (``bin == T``)
  clipped into bin ``T - 1``, so every event is kept. All events share bin 0 when ``t_end == t0``.
- ``time_window_us=W``: ``bin = floor((t - t0) / W)`` with ``t0 = start_time_us`` (default ``t.min()``).
  With ``n_time_bins=T`` as well the sample is exactly ``[t0, t0 + T*W)``: events outside it are not
  part of the sample. Without ``n_time_bins``, ``T = floor((t.max() - t0) / W) + 1`` covers every
  event at or after ``t0``.

Space: channel = ``int(p)`` (0 = OFF, 1 = ON) when the sensor has 2 polarities, 0 when it has 1.
``downsample=k`` integer-divides coordinates (frame size ``ceil(W / k)``); ``out_size=(W', H')``
scales them as ``x * W' // W`` (for sizes that do not divide the sensor, e.g. 128 -> 42).
Frames are counts, or 0/1 with ``binary=True``, as float32 ``[T, P, H, W]``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import numpy as np

from liafnet.io import atomic_write

log = logging.getLogger(__name__)


def frame_shape(
    sensor_size: tuple[int, int, int], downsample: int = 1, out_size: tuple[int, int] | None = None
) -> tuple[int, int, int]:
    """(P, H, W) of frames built from a sensor of tonic size (W, H, P)."""
    width, height, polarities = (int(v) for v in sensor_size)
    if polarities not in (1, 2) or width < 1 or height < 1:
        raise ValueError(f"sensor_size must be (W, H, P) with W, H >= 1 and P in (1, 2), got {sensor_size}")
    if out_size is not None:
        if downsample != 1:
            raise ValueError("give either downsample or out_size, not both")
        out_w, out_h = (int(v) for v in out_size)
        if not (1 <= out_w <= width and 1 <= out_h <= height):
            raise ValueError(f"out_size {out_size} must lie between (1, 1) and the sensor's ({width}, {height})")
        return polarities, out_h, out_w
    if int(downsample) != downsample or downsample < 1:
        raise ValueError(f"downsample must be a positive integer, got {downsample}")
    return polarities, -(-height // downsample), -(-width // downsample)


def event_pixels(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    downsample: int = 1,
    out_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Flat int32 index ``(channel * H + y) * W + x`` of each event in a ``[P, H, W]`` frame, and (P, H, W).

    Raises ``ValueError`` when an event lies outside ``sensor_size``.
    """
    width, height, _ = (int(v) for v in sensor_size)
    polarities, out_h, out_w = shape = frame_shape(sensor_size, downsample, out_size)
    x, y = events["x"], events["y"]
    if not _coordinates_fit(events, width, height):
        for name, values, upper in (("x", x, width), ("y", y, height)):
            if values.size and (values.min() < 0 or values.max() >= upper):
                raise ValueError(
                    f"event {name} coordinates span [{values.min()}, {values.max()}], outside the sensor's "
                    f"[0, {upper}); check sensor_size (W, H, P) = {tuple(sensor_size)}"
                )
    if out_size is not None:
        x = np.multiply(x, out_w, dtype=np.int32) // width
        y = np.multiply(y, out_h, dtype=np.int32) // height
    elif downsample > 1:
        x = np.floor_divide(x, downsample, dtype=np.int32)
        y = np.floor_divide(y, downsample, dtype=np.int32)
    # pix = (channel * H + y) * W + x in one int32 buffer, reading the (strided) fields directly.
    if polarities == 2:
        pix = np.multiply(events["p"], out_h, dtype=np.int32)
        np.add(pix, y, out=pix, casting="unsafe")
    else:
        pix = y.astype(np.int32)
    np.multiply(pix, out_w, out=pix)
    np.add(pix, x, out=pix, casting="unsafe")
    return pix, shape


def _coordinates_fit(events: np.ndarray, width: int, height: int) -> bool:
    """Cheap sufficient test that 0 <= x < width and 0 <= y < height for all events (False means
    "check exactly"). For ``EVENT_DTYPE`` (x and y adjacent little-endian int16) one OR-reduction of
    the packed 32-bit (x, y) word bounds both maxima; negative values set bit 15 and fail it."""
    if events.size == 0:
        return True
    if events.dtype.fields is None or events.dtype.descr[:2] != [("x", "<i2"), ("y", "<i2")]:
        return False
    packed = events.view(np.uint8).reshape(events.size, events.dtype.itemsize)[:, :4].view("<u4")[:, 0]
    bits = int(np.bitwise_or.reduce(packed))
    return (bits & 0xFFFF) < width and (bits >> 16) < height


def _check_binning(n_time_bins, time_window_us, start_time_us) -> None:
    if n_time_bins is not None and (int(n_time_bins) != n_time_bins or n_time_bins < 1):
        raise ValueError(f"n_time_bins must be a positive integer, got {n_time_bins}")
    if time_window_us is not None and (int(time_window_us) != time_window_us or time_window_us < 1):
        raise ValueError(f"time_window_us must be a positive integer, got {time_window_us}")
    if time_window_us is None and n_time_bins is None:
        raise ValueError("give n_time_bins, time_window_us, or both")
    if time_window_us is None and start_time_us is not None:
        raise ValueError("start_time_us needs time_window_us; n_time_bins alone spans the events")


def _is_sorted(t: np.ndarray) -> bool:
    return t.size < 2 or bool(np.all(t[1:] >= t[:-1]))


def bin_bounds(
    t: np.ndarray, n_time_bins: int | None = None, time_window_us: int | None = None, start_time_us: int | None = None
) -> tuple[np.ndarray, int]:
    """For non-decreasing ``t``: bin k holds events ``bounds[k]:bounds[k+1]``; returns (bounds, T).
    Events before ``bounds[0]`` or from ``bounds[T]`` on are outside the sample."""
    _check_binning(n_time_bins, time_window_us, start_time_us)
    if t.size == 0:
        n = n_time_bins or 0
        return np.zeros(n + 1, dtype=np.int64), n
    t_min, t_max = int(t[0]), int(t[-1])
    if time_window_us is None:
        span = t_max - t_min
        if span == 0:
            return np.array([0] + [t.size] * n_time_bins), n_time_bins
        # Bin k starts at the first t with (t - t0) * T >= k * span, i.e. t >= t0 + ceil(k * span / T).
        edges = [t_min - (-k * span // n_time_bins) for k in range(1, n_time_bins)]
        return np.concatenate([[0], np.searchsorted(t, edges), [t.size]]), n_time_bins
    t0 = t_min if start_time_us is None else int(start_time_us)
    if n_time_bins is None:
        n_time_bins = (t_max - t0) // time_window_us + 1 if t_max >= t0 else 0
    return np.searchsorted(t, t0 + time_window_us * np.arange(n_time_bins + 1, dtype=np.int64)), n_time_bins


def time_bins(
    t: np.ndarray,
    n_time_bins: int | None = None,
    time_window_us: int | None = None,
    start_time_us: int | None = None,
) -> tuple[np.ndarray, int, np.ndarray | slice | None]:
    """Bin index of each event inside the sample, the number of bins T, and which events are inside
    (a slice or boolean mask over ``t``; ``None`` when all are). See the module docstring for the rule."""
    t = np.asarray(t)
    if _is_sorted(t):
        bounds, n = bin_bounds(t, n_time_bins, time_window_us, start_time_us)
        bins = np.repeat(np.arange(n), np.diff(bounds))
        inside = None if bounds[0] == 0 and bounds[-1] == t.size else slice(int(bounds[0]), int(bounds[-1]))
        return bins, n, inside
    _check_binning(n_time_bins, time_window_us, start_time_us)
    t_min, t_max = int(t.min()), int(t.max())
    if time_window_us is None:
        span = t_max - t_min
        if span == 0:
            return np.zeros(t.shape, dtype=np.int64), n_time_bins, None
        return np.minimum((t - t_min) * n_time_bins // span, n_time_bins - 1), n_time_bins, None
    t0 = t_min if start_time_us is None else int(start_time_us)
    if n_time_bins is None:
        n_time_bins = (t_max - t0) // time_window_us + 1 if t_max >= t0 else 0
    bins = (t - t0) // time_window_us
    inside = (bins >= 0) & (bins < n_time_bins)
    return (bins, n_time_bins, None) if inside.all() else (bins[inside], n_time_bins, inside)


def accumulate(bins: np.ndarray, pix: np.ndarray, n_time_bins: int, shape, binary: bool) -> np.ndarray:
    """Dense float32 frames ``[T, *shape]`` from per-event bin and flat pixel indices."""
    size = int(np.prod(shape))
    index = bins.astype(np.int32 if n_time_bins * size < 2**31 else np.int64)
    index *= size
    index += pix
    counts = np.bincount(index, minlength=n_time_bins * size)
    frames = (counts > 0) if binary else counts
    return frames.astype(np.float32).reshape(n_time_bins, *shape)


def accumulate_runs(bounds: np.ndarray, pix: np.ndarray, shape, binary: bool) -> np.ndarray:
    """Dense float32 frames ``[T, *shape]`` where bin k holds ``pix[bounds[k]:bounds[k+1]]``
    (one small bincount per bin: no per-event bin array)."""
    size = int(np.prod(shape))
    frames = np.empty((len(bounds) - 1, size), dtype=np.float32)
    for k in range(len(bounds) - 1):
        counts = np.bincount(pix[bounds[k] : bounds[k + 1]], minlength=size)
        frames[k] = (counts > 0) if binary else counts
    return frames.reshape(len(bounds) - 1, *shape)


def events_to_frames(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    n_time_bins: int | None = None,
    time_window_us: int | None = None,
    start_time_us: int | None = None,
    downsample: int = 1,
    out_size: tuple[int, int] | None = None,
    binary: bool = False,
) -> np.ndarray:
    """Float32 frames ``[T, P, H, W]`` from structured events (x, y, p, t); binning in the module doc."""
    t = events["t"]
    if _is_sorted(t):  # the usual case: events in file order
        bounds, _ = bin_bounds(t, n_time_bins, time_window_us, start_time_us)
        pix, shape = event_pixels(events[bounds[0] : bounds[-1]], sensor_size, downsample, out_size)
        return accumulate_runs(bounds - bounds[0], pix, shape, binary)
    bins, n_bins, inside = time_bins(t, n_time_bins, time_window_us, start_time_us)
    pix, shape = event_pixels(events if inside is None else events[inside], sensor_size, downsample, out_size)
    return accumulate(bins, pix, n_bins, shape, binary)


class FrameCache:
    """Preprocessed recordings on disk: per (source file, preprocessing config) one ``.npy`` array
    (memory-mapped when read) and a ``.json`` sidecar with metadata.

    File names hash the source path and the config; the sidecar stores the source's size and mtime,
    so an entry whose source changed is stale and gets rebuilt in place. Both files are written with
    ``liafnet.io.atomic_write`` (array first, sidecar last; the user's umask applies), so a reader
    never sees a half-written entry; an unreadable entry counts as missing.
    """

    def __init__(self, cache_dir: str | PathLike, namespace: str):
        self.dir = Path(cache_dir) / namespace
        self.dir.mkdir(parents=True, exist_ok=True)

    def entry_path(self, source: str | PathLike, config: Mapping) -> Path:
        """Path of the entry's array; the sidecar is the same path with suffix ``.json``."""
        source = Path(source).resolve()
        digest = hashlib.sha256(json.dumps([str(source), config], sort_keys=True).encode()).hexdigest()
        return self.dir / f"{source.stem}-{digest[:20]}.npy"

    @staticmethod
    def _stamp(source: str | PathLike) -> list[int]:
        stat = os.stat(source)
        return [stat.st_size, stat.st_mtime_ns]

    def meta(self, source: str | PathLike, config: Mapping) -> dict | None:
        """The entry's metadata when the entry is up to date (reads only the sidecar), else ``None``."""
        entry = self.entry_path(source, config)
        try:
            stored = json.loads(entry.with_suffix(".json").read_text())
            if stored["stamp"] != self._stamp(source) or not entry.is_file():
                return None
            return stored["meta"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load(self, source: str | PathLike, config: Mapping) -> tuple[np.ndarray, dict] | None:
        """(memory-mapped array, metadata), or ``None`` when missing, stale or unreadable."""
        meta = self.meta(source, config)
        if meta is None:
            return None
        entry = self.entry_path(source, config)
        try:
            array = np.load(entry, mmap_mode="r")
        except (OSError, ValueError, EOFError) as err:
            log.warning("frame cache entry %s is unreadable (%s); rebuilding it", entry, err)
            return None
        if list(array.shape) != meta.get("_shape"):
            log.warning(
                "frame cache entry %s has shape %s, expected %s; rebuilding it", entry, array.shape, meta.get("_shape")
            )
            return None
        return array, meta

    def save(self, source: str | PathLike, config: Mapping, array: np.ndarray, meta: Mapping) -> None:
        entry = self.entry_path(source, config)
        sidecar = {
            "source": str(Path(source).resolve()),
            "stamp": self._stamp(source),
            "config": config,
            "meta": {**meta, "_shape": list(array.shape)},
        }
        atomic_write(entry, lambda f: np.save(f, array, allow_pickle=False))
        atomic_write(entry.with_suffix(".json"), lambda f: f.write(json.dumps(sidecar).encode()))
