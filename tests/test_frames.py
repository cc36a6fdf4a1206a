"""events_to_frames binning rules and the on-disk frame cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from event_fixtures import random_events

from liafnet.data.aedat import EVENT_DTYPE
from liafnet.data.frames import FrameCache, events_to_frames

SENSOR = (128, 128, 2)


def _events(*rows):
    return np.array(list(rows), dtype=EVENT_DTYPE)


def test_n_time_bins_keeps_every_event_including_the_last():
    events = random_events(np.random.default_rng(0), 10_000, t_span=1_234_567)
    frames = events_to_frames(events, SENSOR, n_time_bins=7)
    assert frames.shape == (7, 2, 128, 128) and frames.dtype == np.float32
    assert frames.sum() == len(events)


def test_n_time_bins_rule_and_channel_order():
    # span 100, T 4: bins [0,25) [25,50) [50,75) [75,100], last event clipped into bin 3
    events = _events((0, 0, False, 0), (1, 0, True, 24), (2, 0, True, 25), (3, 1, False, 99), (4, 2, True, 100))
    frames = events_to_frames(events, SENSOR, n_time_bins=4)
    assert frames[0, 0, 0, 0] == 1 and frames[0, 1, 0, 1] == 1  # OFF -> channel 0, ON -> channel 1
    assert frames[1, 1, 0, 2] == 1
    assert frames[3, 0, 1, 3] == 1 and frames[3, 1, 2, 4] == 1
    assert frames.sum() == 5


def test_single_timestamp_goes_to_bin_zero():
    events = _events((5, 5, True, 42), (6, 5, True, 42))
    frames = events_to_frames(events, SENSOR, n_time_bins=3)
    assert frames[0].sum() == 2 and frames[1:].sum() == 0


def test_time_window_with_start_defines_the_sample():
    events = _events((0, 0, True, 99), (0, 0, True, 100), (1, 0, True, 149), (2, 0, True, 150), (3, 0, True, 400))
    frames = events_to_frames(events, SENSOR, n_time_bins=3, time_window_us=50, start_time_us=100)
    assert frames.shape[0] == 3
    assert frames[0, 1, 0, :2].tolist() == [1, 1] and frames[1, 1, 0, 2] == 1
    assert frames.sum() == 3  # t=99 precedes and t=400 follows [100, 250)


def test_time_window_alone_covers_all_events():
    events = random_events(np.random.default_rng(1), 1_000, t_start=500, t_span=10_001)
    frames = events_to_frames(events, SENSOR, time_window_us=1_000)
    last = int(events["t"].max() - events["t"].min()) // 1_000
    assert frames.shape[0] == last + 1 and frames.sum() == 1_000


def test_binary_and_counts():
    events = _events((1, 1, True, 0), (1, 1, True, 1), (1, 1, True, 2))
    assert events_to_frames(events, SENSOR, n_time_bins=1)[0, 1, 1, 1] == 3
    assert events_to_frames(events, SENSOR, n_time_bins=1, binary=True)[0, 1, 1, 1] == 1


def test_downsample_integer_divides_coordinates():
    events = _events((127, 0, True, 0), (126, 3, True, 1), (3, 127, False, 2))
    frames = events_to_frames(events, SENSOR, n_time_bins=1, downsample=4)
    assert frames.shape == (1, 2, 32, 32)
    assert frames[0, 1, 0, 31] == 2 and frames[0, 0, 31, 0] == 1
    assert events_to_frames(events, SENSOR, n_time_bins=1, downsample=3).shape == (1, 2, 43, 43)


def test_out_size_scales_coordinates():
    events = _events((127, 127, True, 0), (0, 0, False, 0), (64, 3, True, 0))
    frames = events_to_frames(events, SENSOR, n_time_bins=1, out_size=(42, 42))
    assert frames.shape == (1, 2, 42, 42)
    assert frames[0, 1, 41, 41] == 1 and frames[0, 0, 0, 0] == 1 and frames[0, 1, 0, 21] == 1


def test_single_polarity_sensor_merges_channels():
    events = _events((1, 1, True, 0), (1, 1, False, 0))
    frames = events_to_frames(events, (4, 4, 1), n_time_bins=1)
    assert frames.shape == (1, 1, 4, 4) and frames[0, 0, 1, 1] == 2


def test_empty_events():
    empty = np.empty(0, dtype=EVENT_DTYPE)
    assert events_to_frames(empty, SENSOR, n_time_bins=5).shape == (5, 2, 128, 128)
    assert events_to_frames(empty, SENSOR, n_time_bins=2, time_window_us=10, start_time_us=0).sum() == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "give n_time_bins, time_window_us, or both"),
        ({"n_time_bins": 0}, "n_time_bins must be a positive integer"),
        ({"time_window_us": -5}, "time_window_us must be a positive integer"),
        ({"n_time_bins": 2, "start_time_us": 3}, "start_time_us needs time_window_us"),
        ({"n_time_bins": 2, "downsample": 0}, "downsample must be a positive integer"),
        ({"n_time_bins": 2, "downsample": 2, "out_size": (4, 4)}, "either downsample or out_size"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        events_to_frames(_events((1, 1, True, 0)), SENSOR, **kwargs)


def test_events_outside_sensor_raise():
    with pytest.raises(ValueError, match="x coordinates span"):
        events_to_frames(_events((200, 1, True, 0)), SENSOR, n_time_bins=1)


# ---- FrameCache -------------------------------------------------------------------------------


def test_cache_round_trip_stale_and_corrupt(tmp_path):
    source = tmp_path / "rec.aedat"
    source.write_bytes(b"v1")
    cache = FrameCache(tmp_path / "cache", "demo")
    config = {"downsample": 4}
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert cache.load(source, config) is None
    cache.save(source, config, array, {"parts": [1, 2]})
    loaded, meta = cache.load(source, config)
    np.testing.assert_array_equal(loaded, array)
    assert meta["parts"] == [1, 2] and isinstance(loaded, np.memmap)
    assert cache.meta(source, {"downsample": 2}) is None  # another config, another entry
    assert not list(cache.dir.glob("*.tmp"))

    source.write_bytes(b"v2 longer")  # size and mtime change: stale
    os.utime(source, ns=(1, 1))
    assert cache.meta(source, config) is None and cache.load(source, config) is None

    cache.save(source, config, array, {})
    entry = cache.entry_path(source, config)
    entry.write_bytes(b"garbage")
    assert cache.load(source, config) is None
    cache.save(source, config, array, {})
    np.save(entry, array[:1])  # right format, wrong content
    assert cache.load(source, config) is None
    with open(entry.with_suffix(".json")) as f:
        assert json.load(f)["config"] == config


def test_data_benchmark_quick_mode_runs(tmp_path):
    # A subprocess: the benchmark may stub torchvision/torchaudio in sys.modules for spikingjelly.
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_data.py"
    out = tmp_path / "results.json"
    command = [sys.executable, str(script), "--quick", "--out", str(out), "--markdown", str(tmp_path / "r.md")]
    subprocess.run(command, check=True, timeout=300, capture_output=True)
    results = json.loads(out.read_text())
    assert results["events_to_frames"]["ours_total"] == results["events_to_frames"]["events"]
    assert results["cache"]["samples"] == 24 and "## Data pipeline" in (tmp_path / "r.md").read_text()
