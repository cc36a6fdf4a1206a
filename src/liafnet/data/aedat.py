"""Vectorised readers and writers for the AEDAT containers of our datasets.

Supported: AEDAT 2.0 with DVS128 addresses (MNIST-DVS, CIFAR10-DVS) and AEDAT 3.1 polarity packets
(DVS128 Gesture). Events come back in tonic's structured dtype ``EVENT_DTYPE`` (x, y int16; p bool,
True = ON; t int64 µs as recorded, never decreasing) with a top-left origin; see docs/datasets.md for
the bit layouts and why polarity/orientation are decoded this way. Time that is not monotonic (the
32-bit wrap of 2.0, backward jumps) is handled by ``liafnet.data.timestamps``.

Bodies are memory-mapped and decoded with numpy; the only Python loops run over header lines and
3.1 packet headers (thousands per file), never over events.
"""

from __future__ import annotations

import logging
import struct
import warnings
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path

import numpy as np

from liafnet.data.errors import CorruptFileError
from liafnet.data.timestamps import WRAP_32, check_policy, ordered, unwrap
from liafnet.io import atomic_write_bytes

log = logging.getLogger(__name__)

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "?"), ("t", "<i8")])
SUPPORTED_VERSIONS = ("2.0", "3.1")

_VERSION_PREFIX = b"#!AER-DAT"
_END_HEADER = b"#!END-HEADER"
# A header line longer than this is not text: stop instead of reading a binary body as one "line".
_MAX_HEADER_LINE = 1 << 20

# AEDAT 2.0, DVS128 address word (jAER): bit 0 raw polarity (0 = ON), bits 1-7 x, bits 8-14 y,
# bit 15 external event, bit 31 jAER special event; bits 16-30 are always 0 for a DVS128.
_DVS128_SIZE = 128
_DVS128_SPECIAL = np.uint32(0x8000_8000)
_DVS128_FOREIGN_BITS = np.uint32(0x7FFF_0000)

# AEDAT 3.1 packet header: int16 type, int16 source, then int32 size, tsOffset, tsOverflow,
# capacity, number, valid; all little-endian.
_PACKET_HEADER = struct.Struct("<hhiiiiii")
_POLARITY_TYPE = 1
_POLARITY_EVENT_SIZE = 8
_POLARITY_TS_OFFSET = 4
_MAX_COORD_31 = 0x7FFF  # 15-bit x and y fields


def read_aedat(path: str | PathLike, on_time_jump: str = "drop") -> np.ndarray:
    """Read an AEDAT 2.0 (DVS128) or 3.1 (polarity) file into a structured ``EVENT_DTYPE`` array.

    ``t`` never decreases: 2.0's 32-bit µs counter is unwrapped (2**32 added after each wrap, as
    jAER does), and events whose time jumps back are dropped with a ``TimestampWarning``
    (``on_time_jump="drop"``) or refused (``"raise"``); rules in ``liafnet.data.timestamps``.

    Raises ``ValueError`` for a missing version line or an unsupported version/layout, and
    ``liafnet.data.errors.CorruptFileError`` (a ``ValueError``) naming the file and byte offset when
    the body cannot be decoded. A trailing partial 2.0 event is dropped with a warning.
    """
    path = Path(path)
    check_policy(on_time_jump)
    version, header_end, size = _parse_header(path)
    if version == "2.0":
        events = _read_v2(path, header_end, size)
    else:
        events = _read_v31(path, header_end, size)
    return ordered(events, path, on_time_jump)


def aedat_version(path: str | PathLike) -> str:
    """The version string of an AEDAT file's first header line (e.g. ``"3.1"``)."""
    return _parse_header(Path(path))[0]


def _parse_header(path: Path) -> tuple[str, int, int]:
    """Return (version, byte offset of the body, file size); validate the header lines."""
    size = path.stat().st_size
    with path.open("rb") as f:
        first = f.readline(_MAX_HEADER_LINE)
        if not first:
            raise CorruptFileError(path, 0, "empty file (no AEDAT header, no events)")
        if not first.startswith(_VERSION_PREFIX):
            raise ValueError(
                f"{path}: no '#!AER-DATx.y' version line; headerless AEDAT 1.0 is not supported "
                f"(supported: AEDAT {' and '.join(SUPPORTED_VERSIONS)})"
            )
        version = first[len(_VERSION_PREFIX) :].strip().decode("ascii", errors="replace")
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(
                f"{path}: AEDAT version {version!r} is not supported (supported: {', '.join(SUPPORTED_VERSIONS)})"
            )
        while True:
            offset = f.tell()
            # A 2.0 header ends at the first line not starting with '#': peek one byte so a binary
            # body is never read as a text line.
            if f.read(1) != b"#":
                if version == "3.1":
                    raise CorruptFileError(path, offset, "AEDAT 3.1 header has no '#!END-HEADER' line")
                return version, offset, size
            line = b"#" + f.readline(_MAX_HEADER_LINE)
            if len(line) > _MAX_HEADER_LINE and not line.endswith(b"\n"):
                raise CorruptFileError(path, offset, f"header line longer than {_MAX_HEADER_LINE} bytes")
            if version == "3.1" and line.rstrip(b"\r\n") == _END_HEADER:
                return version, f.tell(), size
            if version == "2.0" and not line.endswith(b"\n"):
                return version, size, size  # header-only file without a final newline


def _body_words(path: Path, offset: int, n_words: int, dtype: str) -> np.ndarray:
    """Memory-map ``n_words`` words of ``dtype`` starting at ``offset`` (empty array for none)."""
    if n_words == 0:
        return np.empty(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(n_words,))


def _read_v2(path: Path, header_end: int, size: int) -> np.ndarray:
    body = size - header_end
    n_events, remainder = divmod(body, 8)
    if remainder:
        warnings.warn(
            f"{path}: body is {body} bytes, not a multiple of 8; dropping the trailing "
            f"{remainder}-byte partial event at byte {header_end + 8 * n_events}",
            stacklevel=3,
        )
    # One byte-swapping copy to native order; every later operation is on contiguous native words.
    words = _body_words(path, header_end, 2 * n_events, ">u4").astype("<u4")
    address, ts = words[0::2], words[1::2]
    if np.any(address & _DVS128_FOREIGN_BITS):
        first = int(np.flatnonzero(address & _DVS128_FOREIGN_BITS)[0])
        raise CorruptFileError(
            path,
            header_end + 8 * first,
            f"address 0x{int(address[first]):08x} has bits 16-30 set: not a DVS128 address "
            f"(DAVIS and other AEDAT 2.0 layouts are not supported) or a corrupt body",
        )
    if np.any(address & _DVS128_SPECIAL):
        keep = np.flatnonzero((address & _DVS128_SPECIAL) == 0)
        address, ts = address[keep], ts[keep]
    # jAER's DVS128 origin is bottom-left with x mirrored: flip both axes for a top-left origin.
    # 127 - v == v ^ 127 for 7-bit v. Decoded straight into the output fields through one buffer.
    events = np.empty(address.shape[0], dtype=EVENT_DTYPE)
    scratch = np.right_shift(address, 1)
    np.bitwise_and(scratch, 0x7F, out=scratch)
    np.bitwise_xor(scratch, 0x7F, out=events["x"], casting="unsafe")
    np.right_shift(address, 8, out=scratch)
    np.bitwise_and(scratch, 0x7F, out=scratch)
    np.bitwise_xor(scratch, 0x7F, out=events["y"], casting="unsafe")
    np.bitwise_and(address, 1, out=scratch)
    np.equal(scratch, 0, out=events["p"])
    events["t"] = unwrap(ts, WRAP_32)
    return events


def _read_v31(path: Path, header_end: int, size: int) -> np.ndarray:
    raw = _body_words(path, 0, size, "u1")
    starts, counts, overflows = [], [], []
    offset = header_end
    while offset < size:
        if size - offset < _PACKET_HEADER.size:
            raise CorruptFileError(
                path, offset, f"truncated packet header ({size - offset} of {_PACKET_HEADER.size} bytes)"
            )
        etype, _source, esize, ts_offset, overflow, capacity, number, _valid = _PACKET_HEADER.unpack_from(raw, offset)
        if esize <= 0 or capacity < 0 or not 0 <= number <= capacity or overflow < 0:
            raise CorruptFileError(
                path,
                offset,
                f"invalid packet header (type {etype}, eventSize {esize}, capacity {capacity}, "
                f"number {number}, tsOverflow {overflow})",
            )
        payload = offset + _PACKET_HEADER.size
        end = payload + capacity * esize
        if end > size:
            raise CorruptFileError(
                path, offset, f"packet declares {capacity * esize} event bytes but only {size - payload} remain"
            )
        if etype == _POLARITY_TYPE:
            if esize != _POLARITY_EVENT_SIZE or ts_offset != _POLARITY_TS_OFFSET:
                raise CorruptFileError(
                    path, offset, f"polarity packet with eventSize {esize} / eventTSOffset {ts_offset} (expected 8 / 4)"
                )
            if number:
                starts.append(payload)
                counts.append(number)
                overflows.append(overflow)
        offset = end
    if not starts:
        return np.empty(0, dtype=EVENT_DTYPE)
    words = np.concatenate([raw[s : s + 8 * n] for s, n in zip(starts, counts, strict=True)]).view("<u4")
    data, ts = words[0::2], words[1::2]
    keep = None if np.all(data & 1) else np.flatnonzero(data & 1)  # files from cAER are all valid
    if keep is not None:
        data, ts = data[keep], ts[keep]
    # Decode straight into the output fields (out=): no full-size temporaries besides one buffer.
    events = np.empty(data.shape[0], dtype=EVENT_DTYPE)
    np.right_shift(data, 17, out=events["x"], casting="unsafe")  # exactly the 15 x bits remain
    scratch = np.right_shift(data, 2)
    np.bitwise_and(scratch, _MAX_COORD_31, out=events["y"], casting="unsafe")
    np.bitwise_and(data, 2, out=events["p"], casting="unsafe")
    np.bitwise_and(ts, 0x7FFF_FFFF, out=events["t"], casting="unsafe")
    if any(overflows):  # t beyond 2**31 µs (~36 min): add each packet's high part
        high = np.repeat(np.asarray(overflows, dtype=np.int64) << 31, counts)
        events["t"] |= high if keep is None else high[keep]
    return events


def write_aedat(path: str | PathLike, events: np.ndarray, version: str = "2.0", packet_events: int = 4096) -> None:
    """Write events (fields x, y, p, t) as an AEDAT 2.0 DVS128 or 3.1 polarity file.

    ``read_aedat`` returns exactly the same events when their ``t`` never decreases (it unwraps 2.0's
    counter and drops backward jumps; writing raw wrapped or jumping times makes test fixtures for
    that). 2.0 needs 0 <= x, y < 128 and 0 <= t < 2**32;
    3.1 needs 0 <= x, y < 2**15 and t >= 0 and splits the events into polarity packets of at most
    ``packet_events`` events, starting a new packet whenever ``t >> 31`` (the packet's overflow)
    changes.
    """
    path = Path(path)
    events = np.asarray(events)
    missing = [name for name in EVENT_DTYPE.names if name not in (events.dtype.names or ())]
    if missing:
        raise ValueError(f"write_aedat: events lack fields {missing} (need x, y, p, t)")
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    p = events["p"].astype(bool)
    t = events["t"].astype(np.int64)
    if version == "2.0":
        body = _encode_v2(x, y, p, t)
        header = _header_lines(
            "2.0",
            "# This is a raw AE data file - do not edit",
            "# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event",
            "# Timestamps tick is 1 us",
            "# created by liafnet.data.aedat.write_aedat",
            "# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128",
        )
    elif version == "3.1":
        if packet_events < 1:
            raise ValueError(f"write_aedat: packet_events must be >= 1, got {packet_events}")
        body = _encode_v31(x, y, p, t, packet_events)
        start = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S (TZ+0000)")
        header = _header_lines("3.1", "#Format: RAW", "#Source 1: DVS128", f"#Start-Time: {start}", "#!END-HEADER")
    else:
        raise ValueError(f"write_aedat: version must be one of {SUPPORTED_VERSIONS}, got {version!r}")
    atomic_write_bytes(path, header + body)


def _header_lines(version: str, *lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in (f"#!AER-DAT{version}", *lines)).encode("ascii")


def _check_range(name: str, values: np.ndarray, upper: int) -> None:
    if values.size and (values.min() < 0 or values.max() >= upper):
        raise ValueError(f"write_aedat: {name} must lie in [0, {upper}), got [{values.min()}, {values.max()}]")


def _encode_v2(x: np.ndarray, y: np.ndarray, p: np.ndarray, t: np.ndarray) -> bytes:
    _check_range("x", x, _DVS128_SIZE)
    _check_range("y", y, _DVS128_SIZE)
    _check_range("t", t, 1 << 32)
    words = np.empty((x.shape[0], 2), dtype=">u4")
    words[:, 0] = ((_DVS128_SIZE - 1 - y) << 8) | ((_DVS128_SIZE - 1 - x) << 1) | (~p).astype(np.int64)
    words[:, 1] = t
    return words.tobytes()


def encode_polarity_packet(
    x: np.ndarray, y: np.ndarray, p: np.ndarray, ts: np.ndarray, overflow: int, valid=None, capacity=None
) -> bytes:
    """One AEDAT 3.1 polarity packet; ``ts`` are the low 31 bits, ``valid`` defaults to all valid.

    ``capacity`` > len(x) appends zeroed padding events, as cAER does for partly filled packets.
    """
    n = x.shape[0]
    capacity = n if capacity is None else capacity
    valid = np.ones(n, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    words = np.zeros((capacity, 2), dtype="<u4")
    words[:n, 0] = (x << 17) | (y << 2) | (p.astype(np.int64) << 1) | valid
    words[:n, 1] = ts
    header = _PACKET_HEADER.pack(
        _POLARITY_TYPE, 1, _POLARITY_EVENT_SIZE, _POLARITY_TS_OFFSET, overflow, capacity, n, int(valid.sum())
    )
    return header + words.tobytes()


def _encode_v31(x: np.ndarray, y: np.ndarray, p: np.ndarray, t: np.ndarray, packet_events: int) -> bytes:
    _check_range("x", x, _MAX_COORD_31 + 1)
    _check_range("y", y, _MAX_COORD_31 + 1)
    _check_range("t", t, 1 << 62)
    overflow = t >> 31
    # Packet boundaries: every overflow change, and every packet_events events within a run.
    changes = np.flatnonzero(np.diff(overflow)) + 1
    runs = np.split(np.arange(t.shape[0]), changes) if t.shape[0] else []
    packets = []
    for run in runs:
        for lo in range(run[0], run[-1] + 1, packet_events):
            sl = slice(lo, min(lo + packet_events, run[-1] + 1))
            packets.append(encode_polarity_packet(x[sl], y[sl], p[sl], t[sl] & 0x7FFF_FFFF, int(overflow[lo])))
    return b"".join(packets)
