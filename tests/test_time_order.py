"""Time that is not monotonic (issue 13, item 4): the AEDAT 2.0 32-bit wrap is unwrapped, backward
jumps follow data.on_time_jump, for every format and dataset. Files are written by liafnet's own
write_aedat (raw, wrapped or jumping timestamps) and read through the datasets as training does."""

from __future__ import annotations

import contextlib
import re
import warnings

import numpy as np
import pytest
from event_fixtures import SHARED_EVENTS, random_events, write_cifar_tree, write_gesture_tree, write_mnist_tree
from hydra.utils import instantiate

from liafnet.data.aedat import read_aedat, write_aedat
from liafnet.data.cifar10_dvs import CIFAR10DVS
from liafnet.data.dvs_gesture import DVSGesture
from liafnet.data.errors import CorruptFileError
from liafnet.data.mnist_dvs import MNISTDVS
from liafnet.data.timestamps import TimestampWarning
from liafnet.data.tonic_source import read_tonic_gesture

MNIST_FILE = SHARED_EVENTS / "mnist_dvs" / "mnist_0_scale04_0001.aedat"
WRAP = 1 << 32


@contextlib.contextmanager
def _no_time_warning():
    """A context in which a TimestampWarning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimestampWarning)
        yield


def _two_halves(n: int, t_start: int, span: int) -> np.ndarray:
    """``n`` events over ``[t_start, t_start + span]``: the first half in the first 40 % of the span at
    pixel (0, 0) ON, the second half in the last 40 % at (127, 127) OFF (two equal bins split them)."""
    events = random_events(np.random.default_rng(0), n)
    half = n // 2
    events["t"][:half] = t_start + np.linspace(0, 0.4 * span, half).astype(np.int64)
    events["t"][half:] = t_start + np.linspace(0.6 * span, span, n - half).astype(np.int64)
    events["x"][:half], events["y"][:half], events["p"][:half] = 0, 0, True
    events["x"][half:], events["y"][half:], events["p"][half:] = 127, 127, False
    return events


# ---- the 32-bit wrap of AEDAT 2.0 ---------------------------------------------------------------


def test_real_recording_across_the_wrap_reads_and_frames_as_the_original(tmp_path):
    """The real MNIST-DVS recording shifted so its 32-bit µs counter wraps mid-recording: read_aedat
    unwraps it (2**32 added after the wrap) and the dataset's frames equal the original's."""
    if not MNIST_FILE.is_file():
        pytest.skip(f"real sample {MNIST_FILE} is absent")
    original = read_aedat(MNIST_FILE)
    shift = WRAP - int(np.median(original["t"]))  # the wrap falls in the middle of the recording
    wrapped = original.copy()
    wrapped["t"] = (original["t"] + shift) % WRAP  # what a jAER file holds
    assert np.any(np.diff(wrapped["t"]) < 0)
    write_aedat(tmp_path / "wrapped.aedat", wrapped)
    with _no_time_warning():
        back = read_aedat(tmp_path / "wrapped.aedat")
    np.testing.assert_array_equal(back["t"], original["t"] + shift)
    np.testing.assert_array_equal(back[["x", "y", "p"]], original[["x", "y", "p"]])

    frames = {}
    for name, events in (("original", original), ("wrapped", wrapped)):
        root = tmp_path / name
        write_mnist_tree(root, np.random.default_rng(1), ids=(801,))
        write_aedat(root / "grabbed_data0" / "scale4" / "mnist_0_scale04_0801.aedat", events)
        data = MNISTDVS(root, split="test", time_steps=8, binary=False)
        frames[name] = data[0][0]
    assert frames["original"].sum() == len(original)
    assert np.array_equal(frames["wrapped"].numpy(), frames["original"].numpy())


def test_cifar10_dvs_frames_keep_time_order_across_the_wrap(tmp_path):
    """Events before the wrap land in the first frame, events after it in the last: never reversed."""
    events = _two_halves(400, t_start=WRAP - 500_000, span=1_000_000)
    assert events["t"].max() >= WRAP  # the second half lies after the wrap
    raw = events.copy()
    raw["t"] %= WRAP
    write_cifar_tree(tmp_path, np.random.default_rng(2), ids=(0,))
    write_aedat(tmp_path / "airplane" / "cifar10_airplane_0.aedat", raw)
    with _no_time_warning():
        data = CIFAR10DVS(tmp_path, split="test", time_steps=2, resolution=128, binary=False)
    frames, label = data[0]
    assert label == 0 and frames.shape == (2, 2, 128, 128)
    assert frames[0, 1, 0, 0] == 200 and frames[0].sum() == 200  # first half, ON, top-left
    assert frames[1, 0, 127, 127] == 200 and frames[1].sum() == 200  # second half, OFF, bottom-right


# ---- backward jumps: drop (default) -------------------------------------------------------------


def test_stale_high_timestamps_after_a_reset_are_dropped_with_a_warning(tmp_path):
    """A few stale events with old, high timestamps before the reset recording: without the policy
    the frames would span to them and squeeze every real event into the first bin."""
    clean = _two_halves(400, t_start=0, span=2_000_000)
    stale = random_events(np.random.default_rng(3), 3, t_start=900_000_000, t_span=1_000)
    dirty = np.concatenate([stale, clean])
    frames = {}
    for name, events in (("clean", clean), ("dirty", dirty)):
        root = tmp_path / name
        write_mnist_tree(root, np.random.default_rng(4), ids=(801,))
        path = root / "grabbed_data0" / "scale4" / "mnist_0_scale04_0801.aedat"
        write_aedat(path, events)
        if name == "dirty":
            with pytest.warns(TimestampWarning, match=rf"{re.escape(str(path))}: .*dropped 3 of 403 events"):
                data = MNISTDVS(root, split="test", time_steps=2, binary=False)
        else:
            with _no_time_warning():
                data = MNISTDVS(root, split="test", time_steps=2, binary=False)
        frames[name] = data[0][0].numpy()
    assert frames["clean"][0].sum() == 200 and frames["clean"][1].sum() == 200
    np.testing.assert_array_equal(frames["dirty"], frames["clean"])


def test_stray_low_timestamp_drops_only_itself(tmp_path):
    """One event whose time lies before its predecessors is dropped alone (the smaller of the two
    ways to restore order), not every event before it."""
    events = random_events(np.random.default_rng(5), 300, t_start=1_000_000, t_span=1_000_000)
    events["t"][150] = 10
    write_aedat(tmp_path / "low.aedat", events)
    with pytest.warns(TimestampWarning, match=r"low\.aedat: timestamps go backwards at 1 places .*dropped 1 of 300"):
        back = read_aedat(tmp_path / "low.aedat")
    np.testing.assert_array_equal(back, np.delete(events, 150))


def test_gesture_stale_events_are_dropped_not_framed_into_a_later_gesture(tmp_path):
    """AEDAT 3.1: stale events whose high timestamps fall in a later gesture's window, written among
    the first gesture's events, are dropped; every sample equals the one without them."""
    trials = {"train_trials": ("user01_natural",), "test_trials": ()}
    clean_root, dirty_root = tmp_path / "clean", tmp_path / "dirty"
    written = write_gesture_tree(clean_root, np.random.default_rng(6), **trials)
    write_gesture_tree(dirty_root, np.random.default_rng(6), **trials)
    clean = written["user01_natural"]
    at = int(np.searchsorted(clean["t"], 200_000))
    stale = random_events(np.random.default_rng(7), 4, t_start=1_400_000, t_span=100_000)  # gesture 4's window
    path = dirty_root / "user01_natural.aedat"
    write_aedat(path, np.concatenate([clean[:at], stale, clean[at:]]), version="3.1", packet_events=256)
    kwargs = {"split": "train", "time_steps": 4, "dt_us": 100_000, "binary": False}
    with _no_time_warning():
        expected = DVSGesture(clean_root, **kwargs)
    with pytest.warns(TimestampWarning, match=rf"{re.escape(str(path))}: .*dropped 4 of {len(clean) + 4} events"):
        data = DVSGesture(dirty_root, **kwargs)
    assert len(data) == len(expected) == 4
    for i in range(4):
        np.testing.assert_array_equal(data[i][0].numpy(), expected[i][0].numpy())


def test_tonic_gesture_copy_follows_the_same_policy(tmp_path):
    raw = np.zeros((6, 4), dtype=np.int64)
    raw[:, 3] = [5, 6, 900, 7, 8, 9]  # ms; one stale high time
    np.save(tmp_path / "0.npy", raw)
    with pytest.warns(TimestampWarning, match=r"0\.npy: .*dropped 1 of 6"):
        events = read_tonic_gesture(tmp_path / "0.npy")
    assert events["t"].tolist() == [5_000, 6_000, 7_000, 8_000, 9_000]
    with pytest.raises(CorruptFileError, match=r"0\.npy: corrupt: timestamps go backwards"):
        read_tonic_gesture(tmp_path / "0.npy", on_time_jump="raise")


# ---- backward jumps: raise, and the config key ------------------------------------------------


def test_raise_policy_names_the_file_and_skip_lists_it(tmp_path):
    write_mnist_tree(tmp_path, np.random.default_rng(8), ids=(801,))
    path = tmp_path / "grabbed_data3" / "scale4" / "mnist_3_scale04_0801.aedat"
    events = random_events(np.random.default_rng(9), 50)
    events["t"][[10, 11]] = events["t"][[11, 10]] + np.array([0, 1])  # one step back
    events["t"][10] += 5
    write_aedat(path, events)
    with pytest.raises(CorruptFileError, match=rf"{re.escape(str(path))}: corrupt: timestamps go backwards at 1 "):
        MNISTDVS(tmp_path, split="test", time_steps=2, on_time_jump="raise")
    data = MNISTDVS(tmp_path, split="test", time_steps=2, on_time_jump="raise", on_bad_file="skip")
    assert data.bad_files == [str(path)] and len(data) == 9
    with pytest.raises(ValueError, match=r"data\.on_time_jump must be one of \('drop', 'raise'\), got 'sort'"):
        MNISTDVS(tmp_path, split="test", time_steps=2, on_time_jump="sort")


@pytest.mark.parametrize("dataset", ["mnist_dvs", "cifar10_dvs", "dvs_gesture"])
def test_config_key_reaches_the_dataset(make_cfg, tmp_path, dataset):
    cfg = make_cfg(f"data={dataset}", "data.on_time_jump=raise", f"data.root={tmp_path}")
    assert cfg.data.on_time_jump == "raise"
    build = instantiate(cfg.data.datamodule.dataset)
    assert build.keywords["on_time_jump"] == "raise"
    assert make_cfg(f"data={dataset}").data.datamodule.dataset.on_time_jump == "drop"
