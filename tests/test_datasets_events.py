"""Event datasets on small fake trees in their original layouts (written with write_aedat)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from event_fixtures import SHARED_EVENTS, random_events, write_gesture_tree

from liafnet.data.aedat import write_aedat
from liafnet.data.dvs_gesture import DVSGesture, read_labels
from liafnet.data.errors import CorruptFileError, DatasetNotFoundError
from liafnet.data.frames import events_to_frames

GESTURE_LABELS = SHARED_EVENTS / "dvs_gesture" / "user01_natural_labels.csv"


# ---- DVS Gesture ------------------------------------------------------------------------------


def test_real_gesture_label_file():
    if not GESTURE_LABELS.is_file():
        pytest.skip(f"real sample {GESTURE_LABELS} is absent")
    rows, skipped = read_labels(GESTURE_LABELS, num_classes=11)
    assert len(rows) == 12 and not skipped
    labels = [label for label, _, _ in rows]
    assert sorted(set(labels)) == list(range(11)) and labels.count(7) == 2  # CSV class 8 twice
    assert rows[0][1:] == (53_036_986, 59_508_469) and rows[-1] == (10, 171_367_247, 177_991_967)


@pytest.fixture
def gesture_tree(tmp_path):
    written = write_gesture_tree(tmp_path / "DvsGesture", np.random.default_rng(0))
    return tmp_path, written


@pytest.mark.parametrize("use_cache", [False, True])
def test_gesture_discovery_labels_and_frames(gesture_tree, tmp_path, use_cache):
    root, written = gesture_tree
    cache_dir = tmp_path / "cache" if use_cache else None
    train = DVSGesture(root, "train", time_steps=6, dt_us=50_000, downsample=4, binary=False, cache_dir=cache_dir)
    test = DVSGesture(root / "DvsGesture", "test", time_steps=6, dt_us=50_000, cache_dir=cache_dir)
    assert (len(train), len(test)) == (8, 4)
    assert train.targets == [0, 7, 7, 10] * 2 and train.classes[7] == "arm_roll"
    frames, label = train[1]
    assert frames.dtype == torch.float32 and frames.shape == (6, 2, 32, 32) and label == 7
    # The sample is [start, start + T*dt) of the segment, framed exactly like events_to_frames.
    events = written["user01_natural"]
    start, end = 500_000, 900_000
    segment = events[(events["t"] >= start) & (events["t"] < end)]
    expected = events_to_frames(segment, (128, 128, 2), 6, 50_000, start_time_us=start, downsample=4)
    np.testing.assert_array_equal(frames.numpy(), expected)
    assert 0 < frames.sum() < len(segment)  # the window ends before the segment does
    test_frames, _ = test[0]
    assert set(np.unique(test_frames.numpy())) <= {0.0, 1.0}


def test_gesture_random_crop_stays_inside_the_segment(gesture_tree):
    root, written = gesture_tree
    data = DVSGesture(root, "train", time_steps=4, dt_us=50_000, binary=False, random_crop=True)
    torch.manual_seed(0)
    totals = {data[1][0].sum().item() for _ in range(20)}
    events = written["user01_natural"]
    segment = events[(events["t"] >= 500_000) & (events["t"] < 900_000)]
    assert len(totals) > 1  # different offsets
    assert max(totals) <= len(segment)


def test_gesture_cache_is_built_once_and_loads_fast(gesture_tree, tmp_path, monkeypatch):
    root, _ = gesture_tree
    DVSGesture(root, "train", time_steps=6, cache_dir=tmp_path / "cache")
    import liafnet.data.event_dataset as event_dataset

    def fail(path):
        raise AssertionError(f"{path} was read although the cache is fresh")

    monkeypatch.setattr(event_dataset, "read_aedat", fail)
    started = time.perf_counter()
    data = DVSGesture(root, "train", time_steps=6, cache_dir=tmp_path / "cache")
    frames = [data[i][0] for i in range(len(data))]
    assert time.perf_counter() - started < 2.0 and len(frames) == 8


def test_gesture_missing_data_names_path_and_target(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"make data-dvs_gesture") as info:
        DVSGesture(tmp_path / "nowhere", "train", time_steps=4)
    assert "trials_to_train.txt" in str(info.value)


def test_gesture_missing_recording_is_listed(gesture_tree):
    root, _ = gesture_tree
    (root / "DvsGesture" / "user02_lab.aedat").unlink()
    with pytest.raises(DatasetNotFoundError, match="user02_lab.aedat"):
        DVSGesture(root, "train", time_steps=4)


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_gesture_bad_recording_raise_or_skip(gesture_tree, damage):
    root, _ = gesture_tree
    path = root / "DvsGesture" / "user02_lab.aedat"
    raw = path.read_bytes()
    path.write_bytes({"truncate": raw[: len(raw) - 100], "empty": b"", "garbage": b"#!AER-DAT3.1\r\n\x01\x02"}[damage])
    with pytest.raises(CorruptFileError, match="user02_lab.aedat"):
        DVSGesture(root, "train", time_steps=4)
    data = DVSGesture(root, "train", time_steps=4, on_bad_file="skip")
    assert len(data) == 4 and data.bad_files == [str(path)]


def test_gesture_label_csv_overlap_allowed_inverted_rejected(gesture_tree):
    root, _ = gesture_tree
    labels = root / "DvsGesture" / "user01_natural_labels.csv"
    labels.write_text("class,startTime_usec,endTime_usec\n1,100000,600000\n2,500000,900000\n")
    assert DVSGesture(root, "train", time_steps=4).targets[:2] == [0, 1]
    labels.write_text("class,startTime_usec,endTime_usec\n1,100000,600000\n2,900000,900000\n")
    with pytest.raises(CorruptFileError, match=r"line 3: end time 900000 <= start time 900000") as info:
        DVSGesture(root, "train", time_steps=4)
    assert "user01_natural_labels.csv" in str(info.value)
    data = DVSGesture(root, "train", time_steps=4, on_bad_file="skip")
    assert data.targets[:1] == [0] and len(data) == 5 and data.bad_files == [f"{labels}:3"]


def test_gesture_label_errors(gesture_tree):
    root, _ = gesture_tree
    labels = root / "DvsGesture" / "user01_natural_labels.csv"
    labels.write_text("class,startTime_usec,endTime_usec\n12,1,2\n")
    with pytest.raises(CorruptFileError, match="class id 12 outside 1..11"):
        DVSGesture(root, "train", time_steps=4)
    labels.write_text("class,startTime_usec,endTime_usec\n1;2;3\n")
    with pytest.raises(CorruptFileError, match="line 2"):
        DVSGesture(root, "train", time_steps=4)


def test_gesture_events_outside_sensor_name_the_file(gesture_tree):
    root, _ = gesture_tree
    events = random_events(np.random.default_rng(5), 10, size=200, t_start=100_000, t_span=100_000)
    write_aedat(root / "DvsGesture" / "user02_lab.aedat", events, version="3.1")
    with pytest.raises(ValueError, match=r"user02_lab.aedat: event x coordinates"):
        DVSGesture(root, "train", time_steps=4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split": "val"}, "split must be one of"),
        ({"on_bad_file": "ignore"}, "on_bad_file must be one of"),
        ({"downsample": 0}, "downsample must be a positive integer"),
        ({"num_classes": 12}, "num_classes"),
        ({"dt_us": 0}, "dt_us must be a positive integer"),
    ],
)
def test_gesture_bad_options(gesture_tree, kwargs, message):
    root, _ = gesture_tree
    with pytest.raises(ValueError, match=message):
        DVSGesture(root, **{"split": "train", "time_steps": 4, **kwargs})
