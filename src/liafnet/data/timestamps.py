"""Event time that is not monotonic: the counter wrap and backward jumps, one policy for every reader.

Every event reader (AEDAT 2.0 and 3.1 in ``liafnet.data.aedat``, tonic's DVS Gesture ``.npy`` and
CIFAR10-DVS AEDAT4 copies in ``liafnet.data.tonic_source``) returns events whose ``t`` never
decreases, so frames can neither run backwards nor squeeze a recording into one bin. Two faults in
recorded files break that order (docs/datasets.md, "Time that goes backwards"):

- **Counter wrap (AEDAT 2.0).** jAER stores a 32-bit µs timestamp, which wraps to 0 after 2**32 µs
  (71.6 min). As jAER does when it reads a file, ``unwrap`` adds 2**32 to every timestamp after
  a wrap. A wrap is a step back by more than half the counter range (2**31 µs); any smaller step
  back is a jump. AEDAT 3.1 carries its own high part (the packets' ``tsOverflow``), so it does
  not wrap; tonic's copies hold 64-bit times.
- **Backward jumps.** After a camera's timestamp reset, a few stale events with the old, high
  timestamps can still follow (and a reader can see the reverse: a few stray low ones). The policy
  ``on_time_jump`` (config key ``data.on_time_jump``) decides:

  - ``"drop"`` (default): keep the larger of two non-decreasing subsequences of the events, in
    file order: (a) drop every event that a later event undercuts (``t`` greater than some later
    ``t``: stale high timestamps), or (b) drop every event that comes after a larger timestamp
    (stray low ones). Ties keep (a). A ``TimestampWarning`` names the file, how many places step
    back and how many events were dropped. Vectorised: a running minimum from the end and a
    running maximum from the start, no loop over events.
  - ``"raise"``: ``CorruptFileError`` naming the file and the first backward step (with
    ``data.on_bad_file=skip`` the dataset then skips the file).

Our choice (no dataset paper specifies one); equal timestamps are in order.
"""

from __future__ import annotations

import warnings
from os import PathLike

import numpy as np

from liafnet.data.errors import CorruptFileError, check_choice

TIME_JUMP_POLICIES = ("drop", "raise")
WRAP_32 = 1 << 32  # AEDAT 2.0 (jAER): uint32 µs


class TimestampWarning(UserWarning):
    """Events were dropped because their timestamps went backwards (see ``ordered``)."""


def check_policy(on_time_jump: str) -> str:
    """``on_time_jump`` itself; ``ValueError`` naming ``data.on_time_jump`` when it is unknown."""
    check_choice("data.on_time_jump", on_time_jump, TIME_JUMP_POLICIES)
    return on_time_jump


def unwrap(t: np.ndarray, period: int = WRAP_32) -> np.ndarray:
    """int64 timestamps with ``period`` added after every wrap (a step back by more than ``period / 2``).

    ``t``: raw counter values (any integer dtype), in file order. Returns ``t`` converted to int64,
    unchanged when it does not wrap.
    """
    t = t.astype(np.int64)
    if t.size < 2:
        return t
    wraps = np.diff(t) < -(period // 2)
    if not wraps.any():
        return t
    t[1:] += np.cumsum(wraps, dtype=np.int64) * period
    return t


def ordered(events: np.ndarray, source: str | PathLike, on_time_jump: str = "drop") -> np.ndarray:
    """``events`` (structured, field ``t``) with non-decreasing ``t``, by the policy in the module doc.

    ``source`` names the file in the warning or error. Returns ``events`` itself when ``t`` never
    decreases (the usual case: one vectorised comparison), else a copy without the dropped events.
    """
    check_policy(on_time_jump)
    t = events["t"]
    if t.size < 2:
        return events
    back = np.flatnonzero(t[1:] < t[:-1])
    if back.size == 0:
        return events
    first = int(back[0])
    where = f"t goes from {int(t[first])} to {int(t[first + 1])} µs at event {first + 1}"
    if on_time_jump == "raise":
        raise CorruptFileError(
            source,
            None,
            f"timestamps go backwards at {back.size} places ({where}); set data.on_time_jump=drop to drop "
            f"the stale events, or data.on_bad_file=skip to skip the file",
        )
    # (a) keep t[i] <= min(t[i+1:]); (b) keep t[i] >= max(t[:i]). Both keep non-decreasing sequences.
    later_min = np.minimum.accumulate(t[::-1])[::-1]
    keep_a = np.ones(t.size, dtype=bool)
    np.less_equal(t[:-1], later_min[1:], out=keep_a[:-1])
    earlier_max = np.maximum.accumulate(t)
    keep_b = np.ones(t.size, dtype=bool)
    np.greater_equal(t[1:], earlier_max[:-1], out=keep_b[1:])
    n_a, n_b = int(keep_a.sum()), int(keep_b.sum())
    keep, kind = (keep_a, "stale high") if n_a >= n_b else (keep_b, "stray low")
    dropped = t.size - max(n_a, n_b)
    warnings.warn(
        f"{source}: timestamps go backwards at {back.size} places ({where}); dropped {dropped} of {t.size} "
        f"events with {kind} timestamps so that time never decreases (data.on_time_jump=drop; 'raise' "
        f"refuses such files)",
        TimestampWarning,
        stacklevel=3,
    )
    return events[keep]
