"""Property-based tests of the event readers and events_to_frames (hypothesis).

Readers get random, truncated and corrupted inputs: each call returns a valid ``EVENT_DTYPE`` array
or raises one of the documented errors (``ValueError``, of which ``CorruptFileError`` is one), and
never hangs (pytest-timeout bounds every test).
"""

from __future__ import annotations

import itertools
import struct
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liafnet.data.aedat import EVENT_DTYPE, read_aedat, write_aedat
from liafnet.data.errors import CorruptFileError
from liafnet.data.frames import events_to_frames

READER_SETTINGS = settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
V2_HEADER = b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n"
V31_HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
_names = itertools.count()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A module-wide folder (hypothesis reruns a test body many times within one fixture scope)."""
    folder = tmp_path_factory.mktemp("props")

    def write(content: bytes):
        path = folder / f"f{next(_names)}.aedat"
        path.write_bytes(content)
        return path

    return write


def read_checked(path):
    """read_aedat's result when it succeeds, after checking the contract; None for a documented error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # trailing partial 2.0 events
            events = read_aedat(path)
    except ValueError:  # includes CorruptFileError
        return None
    assert isinstance(events, np.ndarray) and events.dtype == EVENT_DTYPE and events.ndim == 1
    if events.size:
        assert events["x"].min() >= 0 and events["y"].min() >= 0 and events["t"].min() >= 0
    return events


@st.composite
def event_arrays(draw, max_size=40, coord_max=127, t_max=2**32 - 1):
    n = draw(st.integers(0, max_size))
    coords = st.integers(0, coord_max)
    events = np.empty(n, dtype=EVENT_DTYPE)
    events["x"] = draw(st.lists(coords, min_size=n, max_size=n))
    events["y"] = draw(st.lists(coords, min_size=n, max_size=n))
    events["p"] = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    events["t"] = sorted(draw(st.lists(st.integers(0, t_max), min_size=n, max_size=n)))
    return events


# ---- readers ----------------------------------------------------------------------------------


@pytest.mark.timeout(120)
@READER_SETTINGS
@given(content=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(scratch, content):
    read_checked(scratch(content))


@pytest.mark.timeout(120)
@READER_SETTINGS
@given(body=st.binary(max_size=400), header=st.sampled_from([V2_HEADER, V31_HEADER, V31_HEADER.replace(b"\r", b"")]))
def test_valid_header_random_body(scratch, header, body):
    events = read_checked(scratch(header + body))
    if header == V2_HEADER and events is not None:
        assert len(events) <= len(body) // 8  # special events vanish, nothing is invented


@pytest.mark.timeout(120)
@READER_SETTINGS
@given(events=event_arrays(), cut=st.integers(0, 10_000))
def test_v2_round_trip_and_truncation(scratch, events, cut):
    path = scratch(b"")
    write_aedat(path, events, version="2.0")
    np.testing.assert_array_equal(read_checked(path), events)
    raw = path.read_bytes()
    header_len = len(raw) - 8 * len(events)
    cut = min(cut, len(raw))
    truncated = read_checked(scratch(raw[:cut]))
    if cut >= header_len:  # whole events survive, a partial one is dropped
        np.testing.assert_array_equal(truncated, events[: (cut - header_len) // 8])


@pytest.mark.timeout(120)
@READER_SETTINGS
@given(
    events=event_arrays(coord_max=2**15 - 1, t_max=2**40),
    packet_events=st.integers(1, 16),
    cut=st.integers(0, 10_000),
)
def test_v31_round_trip_and_truncation(scratch, events, packet_events, cut):
    path = scratch(b"")
    write_aedat(path, events, version="3.1", packet_events=packet_events)
    np.testing.assert_array_equal(read_checked(path), events)
    raw = path.read_bytes()
    cut = min(cut, len(raw))
    truncated = scratch(raw[:cut])
    result = read_checked(truncated)
    if result is not None and cut > raw.index(b"#!END-HEADER"):
        np.testing.assert_array_equal(result, events[: len(result)])  # only whole packets survive
    elif result is None and cut > raw.index(b"#!END-HEADER\r\n") + 14:
        with pytest.raises(CorruptFileError) as info:
            read_aedat(truncated)
        assert info.value.offset <= cut


@pytest.mark.timeout(120)
@READER_SETTINGS
@given(
    events=event_arrays(max_size=20),
    version=st.sampled_from(["2.0", "3.1"]),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_corrupted_bytes_give_events_or_documented_errors(scratch, events, version, flips):
    path = scratch(b"")
    write_aedat(path, events, version=version, packet_events=5)
    raw = bytearray(path.read_bytes())
    for position, mask in flips:
        raw[position % len(raw)] ^= mask
    read_checked(scratch(bytes(raw)))


@pytest.mark.timeout(120)
@READER_SETTINGS
@given(
    packets=st.lists(
        st.tuples(
            st.integers(-2, 4),  # type
            st.sampled_from([8, 8, 8, 1, 0, -8, 36]),  # eventSize
            st.integers(-1, 3),  # tsOverflow
            st.integers(-1, 4),  # capacity
            st.integers(-1, 5),  # number
            st.binary(min_size=0, max_size=40),
        ),
        max_size=5,
    )
)
def test_v31_random_packet_headers(scratch, packets):
    body = b"".join(
        struct.pack("<hhiiiiii", etype, 1, size, 4, overflow, capacity, number, 0) + payload
        for etype, size, overflow, capacity, number, payload in packets
    )
    read_checked(scratch(V31_HEADER + body))


# ---- events_to_frames -------------------------------------------------------------------------


def reference_frames(events, sensor, n_bins, window, start, downsample, binary):
    """Per-event Python version of the documented binning rule, for comparison."""
    width, height, _ = sensor
    h, w = -(-height // downsample), -(-width // downsample)
    t = [int(v) for v in events["t"]]
    if window is None:
        t0, span = min(t, default=0), max(t, default=0) - min(t, default=0)
        n = n_bins
    else:
        t0 = min(t, default=0) if start is None else start
        n = n_bins if n_bins is not None else (max(0, (max(t, default=t0) - t0) // window + 1) if t else 0)
    frames = np.zeros((n, 2, h, w), dtype=np.float32)
    for event, ts in zip(events, t, strict=True):
        if window is None:
            b = 0 if span == 0 else min((ts - t0) * n // span, n - 1)
        else:
            b = (ts - t0) // window
            if not 0 <= b < n:
                continue
        frames[b, int(event["p"]), event["y"] // downsample, event["x"] // downsample] += 1
    return np.minimum(frames, 1) if binary else frames


@pytest.mark.timeout(120)
@settings(max_examples=500, deadline=None)
@given(
    events=event_arrays(max_size=30, coord_max=31, t_max=5_000),
    mode=st.sampled_from(["bins", "window", "window+bins", "window+bins+start"]),
    n_bins=st.integers(1, 7),
    window=st.integers(1, 2_000),
    start=st.integers(-1_000, 5_000),
    downsample=st.integers(1, 5),
    binary=st.booleans(),
)
def test_events_to_frames_matches_the_documented_rule(events, mode, n_bins, window, start, downsample, binary):
    sensor = (32, 32, 2)
    kwargs = {
        "bins": {"n_time_bins": n_bins},
        "window": {"time_window_us": window},
        "window+bins": {"n_time_bins": n_bins, "time_window_us": window},
        "window+bins+start": {"n_time_bins": n_bins, "time_window_us": window, "start_time_us": start},
    }[mode]
    frames = events_to_frames(events, sensor, downsample=downsample, binary=binary, **kwargs)
    expected = reference_frames(
        events,
        sensor,
        kwargs.get("n_time_bins"),
        kwargs.get("time_window_us"),
        kwargs.get("start_time_us"),
        downsample,
        binary,
    )
    assert frames.dtype == np.float32
    np.testing.assert_array_equal(frames, expected)
    if mode in ("bins", "window") and not binary:
        assert frames.sum() == len(events)  # every event is kept


@pytest.mark.timeout(120)
@settings(max_examples=200, deadline=None)
@given(
    x=st.integers(-5, 140),
    y=st.integers(-5, 140),
    n_bins=st.one_of(st.none(), st.integers(-2, 3)),
    window=st.one_of(st.none(), st.integers(-2, 3)),
)
def test_events_to_frames_bad_input_raises_value_error(x, y, n_bins, window):
    events = np.array([(x, y, True, 0)], dtype=EVENT_DTYPE)
    try:
        frames = events_to_frames(events, (128, 128, 2), n_time_bins=n_bins, time_window_us=window)
    except ValueError:
        return
    assert 0 <= x < 128 and 0 <= y < 128 and frames.sum() == 1
