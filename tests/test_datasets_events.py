"""Event datasets on small fake trees in their original layouts (written with write_aedat)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from event_fixtures import (
    CIFAR_CLASSES,
    SHARED_EVENTS,
    random_events,
    write_cifar_tree,
    write_gesture_tree,
    write_mnist_tree,
)

from liafnet.data.aedat import write_aedat
from liafnet.data.cifar10_dvs import CIFAR10DVS
from liafnet.data.dvs_gesture import DVSGesture, read_labels
from liafnet.data.errors import CorruptFileError, DatasetNotFoundError
from liafnet.data.frames import events_to_frames
from liafnet.data.mnist_dvs import MNISTDVS

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


def test_gesture_dataset_over_the_real_label_file(tmp_path):
    if not GESTURE_LABELS.is_file():
        pytest.skip(f"real sample {GESTURE_LABELS} is absent")
    root = tmp_path / "DvsGesture"
    root.mkdir()
    rows, _ = read_labels(GESTURE_LABELS, num_classes=11)
    parts = [random_events(np.random.default_rng(i), 20, t_start=s, t_span=e - s) for i, (_, s, e) in enumerate(rows)]
    write_aedat(root / "user01_natural.aedat", np.concatenate(parts), version="3.1")
    (root / "user01_natural_labels.csv").write_bytes(GESTURE_LABELS.read_bytes())
    (root / "trials_to_train.txt").write_text("user01_natural.aedat\n")
    data = DVSGesture(tmp_path, "train", time_steps=500, dt_us=25_000, binary=False)
    assert len(data) == 12 and data.targets == [label for label, _, _ in rows]
    assert data.targets.count(7) == 2
    assert all(data[i][0].sum() == 20 for i in range(12))  # 500 x 25 ms covers every gesture (<= 10.7 s)


def test_gesture_reads_each_recording_once(gesture_tree, tmp_path, monkeypatch):
    from liafnet.data import event_dataset

    reads = []
    real_read = event_dataset.read_aedat
    monkeypatch.setattr(event_dataset, "read_aedat", lambda path, **kw: reads.append(path) or real_read(path, **kw))
    root, _ = gesture_tree
    data = DVSGesture(root, "train", time_steps=4, cache_dir=tmp_path / "cache")
    for i in range(len(data)):
        data[i]
    assert len(reads) == 2 and len(set(reads)) == 2  # 2 recordings, 8 samples


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


def test_gesture_cache_is_built_once_and_reused(gesture_tree, tmp_path, monkeypatch):
    root, _ = gesture_tree
    DVSGesture(root, "train", time_steps=6, cache_dir=tmp_path / "cache")
    from liafnet.data import event_dataset

    def fail(path):
        raise AssertionError(f"{path} was read although the cache is fresh")

    monkeypatch.setattr(event_dataset, "read_aedat", fail)
    data = DVSGesture(root, "train", time_steps=6, cache_dir=tmp_path / "cache")
    frames = [data[i][0] for i in range(len(data))]  # every item from the cache: no file is read
    assert len(frames) == 8 and all(f.shape == (6, 2, 32, 32) for f in frames)


def test_gesture_class_names_follow_gesture_mapping(gesture_tree):
    root, _ = gesture_tree
    mapping = root / "DvsGesture" / "gesture_mapping.csv"
    names = [f"g{i}" for i in range(1, 12)]
    mapping.write_text("action,label\n" + "".join(f"{n},{i}\n" for i, n in enumerate(names, start=1)))
    assert DVSGesture(root, "train", time_steps=4).classes == names
    assert DVSGesture(root, "train", time_steps=4, num_classes=11).classes[-1] == "g11"
    mapping.write_text("action,label\nbroken line\n")
    assert DVSGesture(root, "train", time_steps=4).classes[0] == "hand_clapping"


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


# ---- MNIST-DVS --------------------------------------------------------------------------------


@pytest.fixture
def mnist_tree(tmp_path):
    return tmp_path / "mnist", write_mnist_tree(tmp_path / "mnist", np.random.default_rng(1))


def test_mnist_discovery_splits_and_frames(mnist_tree, tmp_path):
    root, written = mnist_tree
    train = MNISTDVS(root, "train", time_steps=5, cache_dir=tmp_path / "cache")
    test = MNISTDVS(root, "test", time_steps=5, binary=False)
    assert (len(train), len(test)) == (20, 10)
    assert train.targets == [d for d in range(10) for _ in range(2)] and test.targets == list(range(10))
    frames, label = test[3]
    assert frames.shape == (5, 2, 128, 128) and frames.dtype == torch.float32 and label == 3
    events = written[root / "grabbed_data3" / "scale4" / "mnist_3_scale04_0801.aedat"]
    np.testing.assert_array_equal(frames.numpy(), events_to_frames(events, (128, 128, 2), n_time_bins=5))
    cached, _ = MNISTDVS(root, "test", time_steps=5, cache_dir=tmp_path / "cache", binary=False)[3]
    np.testing.assert_array_equal(cached.numpy(), frames.numpy())
    assert set(np.unique(train[0][0].numpy())) == {0.0, 1.0}
    assert MNISTDVS(root, "train", time_steps=5, downsample=4)[0][0].shape == (5, 2, 32, 32)


def test_mnist_split_schemes(mnist_tree):
    root, _ = mnist_tree
    assert len(MNISTDVS(root, "train", time_steps=2, split_scheme="dcll")) == 30  # 801 trains under dcll
    with pytest.raises(DatasetNotFoundError, match="no scale4 recordings fall in the 'test' split"):
        MNISTDVS(root, "test", time_steps=2, split_scheme="dcll")
    train = MNISTDVS(root, "train", time_steps=2, split_scheme="random", seed=3)
    test = MNISTDVS(root, "test", time_steps=2, split_scheme="random", seed=3)
    assert (len(train), len(test)) == (20, 10)  # round(0.8 * 3) = 2 per digit
    assert not {str(p) for p in train.sources} & {str(p) for p in test.sources}
    again = MNISTDVS(root, "train", time_steps=2, split_scheme="random", seed=3)
    assert again.sources == train.sources


def test_mnist_missing_and_bad_options(tmp_path, mnist_tree):
    root, _ = mnist_tree
    with pytest.raises(DatasetNotFoundError, match=r"grabbed_data0/scale8.*make data-mnist_dvs"):
        MNISTDVS(root, "train", time_steps=2, scale=8)
    with pytest.raises(ValueError, match=r"data.scale \(mnist_dvs\) must be one of"):
        MNISTDVS(root, "train", time_steps=2, scale=5)
    with pytest.raises(ValueError, match="data.split_scheme"):
        MNISTDVS(root, "train", time_steps=2, split_scheme="odd")
    with pytest.raises(DatasetNotFoundError, match="mnist_dvs"):
        MNISTDVS(tmp_path / "absent", "train", time_steps=2)


@pytest.mark.parametrize("damage", ["truncate", "empty", "no_version"])
def test_mnist_bad_files_raise_or_skip(mnist_tree, damage):
    root, _ = mnist_tree
    path = root / "grabbed_data5" / "scale4" / "mnist_5_scale04_0002.aedat"
    raw = path.read_bytes()
    path.write_bytes({"truncate": raw[:-3], "empty": b"", "no_version": raw[14:]}[damage])
    if damage == "truncate":  # a trailing partial event is dropped with a warning, not an error
        with pytest.warns(UserWarning, match="partial event"):
            assert len(MNISTDVS(root, "train", time_steps=2)) == 20
        return
    with pytest.raises(ValueError, match="mnist_5_scale04_0002.aedat"):
        MNISTDVS(root, "train", time_steps=2)
    data = MNISTDVS(root, "train", time_steps=2, on_bad_file="skip")
    assert len(data) == 19 and data.bad_files == [str(path)] and data.targets.count(5) == 1


# ---- CIFAR10-DVS ------------------------------------------------------------------------------


@pytest.fixture
def cifar_tree(tmp_path):
    return tmp_path / "cifar", write_cifar_tree(tmp_path / "cifar", np.random.default_rng(2))


def test_cifar_discovery_splits_and_resolutions(cifar_tree, tmp_path):
    root, written = cifar_tree
    train = CIFAR10DVS(root, "train", time_steps=10, cache_dir=tmp_path / "cache")
    test = CIFAR10DVS(root, "test", time_steps=10, binary=False)
    assert (len(train), len(test)) == (30, 20)
    assert train.classes[0] == "airplane" and train.classes[9] == "truck"
    assert test.targets == [c for c in range(10) for _ in range(2)]
    frames, label = test[5]
    assert frames.shape == (10, 2, 42, 42) and label == 2
    events = written[root / "bird" / "cifar10_bird_1.aedat"]
    expected = events_to_frames(events, (128, 128, 2), n_time_bins=10, out_size=(42, 42))
    np.testing.assert_array_equal(frames.numpy(), expected)
    assert frames.sum() == len(events)
    assert CIFAR10DVS(root, "test", time_steps=4, resolution=48)[0][0].shape == (4, 2, 48, 48)
    assert CIFAR10DVS(root, "test", time_steps=4, resolution=128)[0][0].shape == (4, 2, 128, 128)
    assert CIFAR10DVS(root, "test", time_steps=4, downsample=4)[0][0].shape == (4, 2, 32, 32)
    random_train = CIFAR10DVS(root, "train", time_steps=2, split_scheme="random")
    assert len(random_train) == 40  # round(0.9 * 5) = 4 per class


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"resolution": 0}, "data.resolution must be an integer in 1..128"),
        ({"resolution": 200}, "data.resolution"),
        ({"downsample": 3}, "data.downsample must be a positive divisor of 128"),
        ({"downsample": 2, "resolution": 64}, "not both"),
        ({"source": "web"}, "data.source"),
    ],
)
def test_cifar_bad_options_fail_fast(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        CIFAR10DVS(tmp_path / "not-needed", "train", time_steps=2, **kwargs)


def test_cifar_missing_class_folder(cifar_tree):
    root, _ = cifar_tree
    for path in (root / "truck").iterdir():
        path.unlink()
    (root / "truck").rmdir()
    with pytest.raises(DatasetNotFoundError, match=r"class folders are missing \(truck\).*make data-cifar10_dvs"):
        CIFAR10DVS(root, "train", time_steps=2)


def test_cifar_corrupt_cache_entry_is_rebuilt(cifar_tree, tmp_path):
    root, _ = cifar_tree
    data = CIFAR10DVS(root, "test", time_steps=3, cache_dir=tmp_path / "cache")
    expected = data[0][0]
    for entry in (tmp_path / "cache" / "cifar10_dvs").glob("cifar10_airplane_0-*.npy"):
        entry.write_bytes(b"broken")
    np.testing.assert_array_equal(data[0][0].numpy(), expected.numpy())
    fresh = CIFAR10DVS(root, "test", time_steps=3, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(fresh[0][0].numpy(), expected.numpy())


# ---- source="tonic" (tonic's own downloads; skipped without tonic) ------------------------------


def test_tonic_gesture_tree(tmp_path):
    pytest.importorskip("tonic")
    folder = tmp_path / "DVSGesture"
    train_dir = folder / "ibmGestureTrain"
    rng = np.random.default_rng(6)
    for user in range(1, 11):
        for cls in range(10):
            raw = np.zeros((40, 4), dtype=np.int64)
            raw[:, 0], raw[:, 1] = rng.integers(0, 128, 40), rng.integers(0, 128, 40)
            raw[:, 2], raw[:, 3] = rng.integers(0, 2, 40), np.sort(rng.integers(1_000, 2_500, 40))  # ms
            (train_dir / f"user{user:02d}_lab").mkdir(parents=True, exist_ok=True)
            np.save(train_dir / f"user{user:02d}_lab" / f"{cls}.npy", raw)
    (folder / "ibmGestureTrain.tar.gz").write_bytes(b"")
    data = DVSGesture(tmp_path, "train", time_steps=4, dt_us=500_000, binary=False, source="tonic")
    assert len(data) == 100 and sorted(set(data.targets)) == list(range(10))
    frames, label = data[0]
    assert frames.shape == (4, 2, 32, 32) and label == 0
    assert frames.sum() == 40  # the events span < 1.5 s (t in ms x 1000), the window 2 s
    with pytest.raises(DatasetNotFoundError, match="ibmGestureTest.tar.gz present: False"):
        DVSGesture(tmp_path, "test", time_steps=4, source="tonic")


def test_tonic_cifar10_tree(tmp_path, monkeypatch):
    pytest.importorskip("tonic")
    from liafnet.data import tonic_source

    folder = tmp_path / "CIFAR10DVS"
    for name in CIFAR_CLASSES:
        (folder / name).mkdir(parents=True)
        for i in range(100):
            (folder / name / f"cifar10_{name}_{i}.aedat4").write_bytes(b"")
    (folder / "CIFAR10DVS.zip").write_bytes(b"")
    events = random_events(np.random.default_rng(7), 50)
    monkeypatch.setattr(tonic_source, "read_aedat4", lambda path, on_time_jump: events)  # AEDAT4 is not synthesised
    data = CIFAR10DVS(tmp_path, "test", time_steps=2, resolution=128, source="tonic")
    assert len(data) == 1000 and data.targets[:100] == [0] * 100
    np.testing.assert_array_equal(data[0][0].numpy(), events_to_frames(events, (128, 128, 2), 2, binary=True))
    with pytest.raises(DatasetNotFoundError, match="no recordings fall in the 'train' split"):
        CIFAR10DVS(tmp_path, "train", time_steps=2, source="tonic")  # ids 0-99 are all test ids


# ---- configs and downloads --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, writer, root_name",
    [
        ("dvs_gesture", write_gesture_tree, "DvsGesture"),
        ("mnist_dvs", write_mnist_tree, "m"),
        ("cifar10_dvs", write_cifar_tree, "c"),
    ],
)
def test_data_configs_build_datasets_matching_their_spec(tmp_path, name, writer, root_name):
    hydra_utils = pytest.importorskip("hydra.utils")
    from omegaconf import OmegaConf

    writer(tmp_path / root_name, np.random.default_rng(8))
    data = OmegaConf.load(Path(__file__).resolve().parents[1] / "src" / "liafnet" / "conf" / "data" / f"{name}.yaml")
    cfg = OmegaConf.create({"data": data, "paths": {"data_dir": str(tmp_path), "cache_dir": str(tmp_path / "cache")}})
    cfg.data.root = str(tmp_path / root_name)
    factory = hydra_utils.instantiate(cfg.data.datamodule.dataset)
    spec = factory.func.frame_spec(**factory.keywords)  # what the datamodule tells the model, no files read
    test = factory(split="test")
    train = factory(split="train", **cfg.data.datamodule.get("train_kwargs", {}))
    assert tuple(test[0][0].shape) == (spec["time_steps"], spec["channels"], spec["height"], spec["width"])
    assert tuple(train[0][0].shape) == tuple(test[0][0].shape)
    assert max(train.targets) < spec["num_classes"] and len(train.classes) == spec["num_classes"]


def test_download_verifies_md5_and_extracts_either_zip_layout(tmp_path):
    import hashlib
    import zipfile

    from liafnet.data.download import download, extract_into

    for inner, prefix in (("flat", ""), ("nested", "bird/")):
        archive = tmp_path / f"{inner}.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr(f"{prefix}cifar10_bird_0.aedat", b"#!AER-DAT2.0\r\n")
        md5 = hashlib.md5(archive.read_bytes()).hexdigest()
        fetched = download(archive.as_uri(), tmp_path / "downloads" / f"{inner}.zip", md5)
        extract_into(fetched, tmp_path / inner, "bird")
        assert (tmp_path / inner / "bird" / "cifar10_bird_0.aedat").is_file()
    with pytest.raises(ValueError, match="does not match the published"):
        download(archive.as_uri(), tmp_path / "downloads" / "bad.zip", "0" * 32)
    assert not list((tmp_path / "downloads").glob("bad.zip*"))


def test_dvs_gesture_download_prints_instructions_until_the_copy_is_complete(tmp_path, capsys):
    from liafnet.data.download import main

    assert main(["dvs_gesture", "--root", str(tmp_path / "DvsGesture")]) == 1
    err = capsys.readouterr().err
    assert "IBM Box" in err and "8a5c71fb11e24e5ca5b11866ca6c00a1" in err and str(tmp_path / "DvsGesture") in err
    write_gesture_tree(tmp_path / "DvsGesture", np.random.default_rng(9))  # 2 + 1 trials, not the release
    assert main(["dvs_gesture", "--root", str(tmp_path / "DvsGesture")]) == 1
    err = capsys.readouterr().err
    assert "trials_to_train.txt: lists 2 recordings, the release lists 98" in err and "IBM Box" in err
