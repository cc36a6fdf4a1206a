"""read_aedat / write_aedat: real files, round trips and every edge case of datasets.md §2 and §9."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from event_fixtures import SHARED_EVENTS, random_events

from liafnet.data.aedat import (
    EVENT_DTYPE,
    aedat_version,
    encode_polarity_packet,
    read_aedat,
    write_aedat,
)
from liafnet.data.errors import CorruptFileError

MNIST_FILE = SHARED_EVENTS / "mnist_dvs" / "mnist_0_scale04_0001.aedat"
DVS128_FILE = SHARED_EVENTS / "dvs128_aedat2" / "alex_walking_again.aedat"
V31_HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017-04-04 16:14:09 (TZ+0000)\r\n#!END-HEADER\r\n"


def _require(path):
    if not path.is_file():
        pytest.skip(f"real sample {path} is absent")


def _v2_word(x_raw, y_raw, p_raw, t):
    return struct.pack(">II", (y_raw << 8) | (x_raw << 1) | p_raw, t)


# ---- real files -------------------------------------------------------------------------------


def test_real_mnist_dvs_recording():
    _require(MNIST_FILE)
    events = read_aedat(MNIST_FILE)
    assert events.dtype == EVENT_DTYPE
    assert len(events) == 15_744
    assert events["t"][0] == 0 and events["t"][-1] == 2_210_588
    assert np.all(np.diff(events["t"]) >= 0)
    assert int(events["p"].sum()) == 7_870  # raw bit0 == 0 is ON
    assert events["x"].min() >= 0 and events["x"].max() < 128
    assert events["y"].min() >= 0 and events["y"].max() < 128


def test_real_dvs128_recording_with_xml_header():
    _require(DVS128_FILE)
    assert aedat_version(DVS128_FILE) == "2.0"
    events = read_aedat(DVS128_FILE)
    assert len(events) == 19_182
    assert (events["t"][0], events["t"][-1]) == (41_306_606, 48_193_156)
    assert np.all(np.diff(events["t"]) >= 0)
    assert (int(events["p"].sum()), int((~events["p"]).sum())) == (7_102, 12_080)
    assert events["x"].min() >= 0 and events["x"].max() < 128


def test_real_file_round_trips_through_both_versions(tmp_path):
    _require(MNIST_FILE)
    events = read_aedat(MNIST_FILE)
    for version in ("2.0", "3.1"):
        write_aedat(tmp_path / "copy.aedat", events, version=version)
        np.testing.assert_array_equal(read_aedat(tmp_path / "copy.aedat"), events)


# ---- AEDAT 2.0 --------------------------------------------------------------------------------


def test_v2_documented_example_decodes_to_top_left_on(tmp_path):
    path = tmp_path / "one.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n" + bytes.fromhex("0000400A") + struct.pack(">I", 77))
    (event,) = read_aedat(path)
    assert (event["x"], event["y"], bool(event["p"]), event["t"]) == (122, 63, True, 77)


def test_v2_round_trip_is_exact(tmp_path):
    events = random_events(np.random.default_rng(0), 5_000, t_span=2**32 - 1)
    write_aedat(tmp_path / "a.aedat", events, version="2.0")
    np.testing.assert_array_equal(read_aedat(tmp_path / "a.aedat"), events)


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_v2_drops_special_events_with_either_line_ending(tmp_path, newline):
    header = newline.join([b"#!AER-DAT2.0", b"# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128", b"#<xml/>"]) + newline
    body = _v2_word(1, 2, 1, 10) + struct.pack(">II", 0x8000 | 6, 11) + struct.pack(">II", 0x8000_0000, 12)
    body += _v2_word(3, 4, 0, 13)
    path = tmp_path / "s.aedat"
    path.write_bytes(header + body)
    events = read_aedat(path)
    assert events["t"].tolist() == [10, 13]
    assert events["x"].tolist() == [126, 124] and events["p"].tolist() == [False, True]


def test_v2_header_only_and_zero_events(tmp_path):
    for content in (b"#!AER-DAT2.0\r\n", b"#!AER-DAT2.0", b"#!AER-DAT2.0\r\n# comment\r\n"):
        path = tmp_path / "empty.aedat"
        path.write_bytes(content)
        events = read_aedat(path)
        assert events.dtype == EVENT_DTYPE and len(events) == 0


def test_v2_trailing_partial_event_is_dropped_with_warning(tmp_path):
    path = tmp_path / "partial.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n" + _v2_word(1, 1, 0, 5) + b"\x00\x00\x01")
    with pytest.warns(UserWarning, match="partial event"):
        events = read_aedat(path)
    assert events["t"].tolist() == [5]


def test_v2_foreign_address_bits_are_rejected_with_offset(tmp_path):
    path = tmp_path / "davis.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n" + _v2_word(1, 1, 0, 5) + struct.pack(">II", 0x0040_0000, 6))
    with pytest.raises(CorruptFileError, match=r"byte 22.*not a DVS128 address") as info:
        read_aedat(path)
    assert info.value.offset == 14 + 8 and str(path) in str(info.value)


def test_write_v2_rejects_out_of_range(tmp_path):
    events = random_events(np.random.default_rng(1), 3)
    events["x"][0] = 128
    with pytest.raises(ValueError, match="x must lie in"):
        write_aedat(tmp_path / "bad.aedat", events, version="2.0")


# ---- headers and versions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        (b"# no version line\r\n\x00\x00", "no '#!AER-DATx.y' version line"),
        (b"\x00\x00\x40\x0a\x00\x00\x00\x01", "no '#!AER-DATx.y' version line"),
        (b"#!AER-DAT1.0\r\n", "version '1.0' is not supported"),
        (b"#!AER-DAT3.0\r\n", "version '3.0' is not supported"),
        (b"#!AER-DAT4.0\r\n", "version '4.0' is not supported"),
    ],
)
def test_unsupported_headers_raise_value_error(tmp_path, content, message):
    path = tmp_path / "x.aedat"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_aedat(path)


def test_empty_file_is_corrupt(tmp_path):
    path = tmp_path / "empty.aedat"
    path.write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty file"):
        read_aedat(path)


def test_v31_header_without_end_line_is_corrupt(tmp_path):
    path = tmp_path / "noend.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n" + b"\x01\x00" * 14)
    with pytest.raises(CorruptFileError, match="END-HEADER"):
        read_aedat(path)


# ---- AEDAT 3.1 --------------------------------------------------------------------------------


def test_v31_round_trip_multi_packet_with_overflow(tmp_path):
    rng = np.random.default_rng(2)
    events = np.concatenate(
        [random_events(rng, 700, t_start=2**31 - 5_000, t_span=10_000), random_events(rng, 300, t_start=3 * 2**31)]
    )
    events["x"][:5] = 32_767  # the full 15-bit range survives
    write_aedat(tmp_path / "g.aedat", events, version="3.1", packet_events=128)
    np.testing.assert_array_equal(read_aedat(tmp_path / "g.aedat"), events)


def test_v31_skips_invalid_events_padding_and_other_packet_types(tmp_path):
    xs, ys = np.array([1, 2, 3]), np.array([4, 5, 6])
    ps, ts = np.array([True, False, True]), np.array([10, 20, 30])
    special = struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 2, 2, 2) + b"\xff" * 16  # type 0: skipped
    imu = struct.pack("<hhiiiiii", 3, 1, 36, 4, 0, 1, 1, 1) + b"\x07" * 36  # type 3, other size
    body = (
        encode_polarity_packet(xs, ys, ps, ts, overflow=0, valid=[True, False, True], capacity=6)
        + special
        + imu
        + encode_polarity_packet(xs[:1], ys[:1], ps[:1], ts[:1] + 5, overflow=2)
    )
    path = tmp_path / "mixed.aedat"
    path.write_bytes(V31_HEADER.replace(b"\r\n", b"\n") + body)  # LF-only header too
    events = read_aedat(path)
    assert events["x"].tolist() == [1, 3, 1]
    assert events["y"].tolist() == [4, 6, 4]
    assert events["p"].tolist() == [True, True, True]
    assert events["t"].tolist() == [10, 30, (2 << 31) | 15]


def test_v31_bit_layout_matches_the_spec(tmp_path):
    events = np.zeros(1, dtype=EVENT_DTYPE)
    events[0] = (100, 37, True, 2**31 + 9)
    write_aedat(tmp_path / "one.aedat", events, version="3.1")
    raw = (tmp_path / "one.aedat").read_bytes()
    body = raw[raw.index(b"#!END-HEADER\r\n") + 14 :]
    etype, _source, size, ts_offset, overflow, capacity, number, valid = struct.unpack_from("<hhiiiiii", body)
    assert (etype, size, ts_offset, overflow, capacity, number, valid) == (1, 8, 4, 1, 1, 1, 1)
    data, ts = struct.unpack_from("<Ii", body, 28)
    assert data == (100 << 17) | (37 << 2) | (1 << 1) | 1 and ts == 9


def test_v31_zero_packets_gives_zero_events(tmp_path):
    path = tmp_path / "none.aedat"
    path.write_bytes(V31_HEADER)
    assert len(read_aedat(path)) == 0


@pytest.mark.parametrize("cut", [10, 28 + 8 * 3 + 4])
def test_v31_truncated_body_names_the_offset(tmp_path, cut):
    events = random_events(np.random.default_rng(3), 10)
    write_aedat(tmp_path / "full.aedat", events, version="3.1")
    raw = (tmp_path / "full.aedat").read_bytes()
    path = tmp_path / "cut.aedat"
    path.write_bytes(raw[: len(V31_HEADER) + cut])
    with pytest.raises(CorruptFileError) as info:
        read_aedat(path)
    assert info.value.offset == len(V31_HEADER) and str(path) in str(info.value)


def test_v31_invalid_packet_header_is_corrupt(tmp_path):
    path = tmp_path / "neg.aedat"
    path.write_bytes(V31_HEADER + struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, -1, 0, 0))
    with pytest.raises(CorruptFileError, match="invalid packet header"):
        read_aedat(path)


def test_write_rejects_unknown_version_and_missing_fields(tmp_path):
    events = random_events(np.random.default_rng(4), 2)
    with pytest.raises(ValueError, match="version"):
        write_aedat(tmp_path / "x.aedat", events, version="4.0")
    with pytest.raises(ValueError, match="lack fields"):
        write_aedat(tmp_path / "x.aedat", np.zeros(2, dtype=[("x", "i2"), ("y", "i2")]))
