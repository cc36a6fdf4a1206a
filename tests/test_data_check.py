"""Completeness of each dataset's original layout and the plan of `make tables` (issue 13, item 9):
a failed or partial download is not data, and the bAbI table runs only when asked for."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from liafnet.data import babi_download, check, cifar10_dvs, dvs_gesture, mnist_dvs
from liafnet.data.dvs_gesture import RELEASE_TRIALS


def _touch(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _cifar_tree(root: Path, per_class: int) -> None:
    for name in cifar10_dvs.CLASSES:
        for i in range(per_class):
            _touch(root / name / f"cifar10_{name}_{i}.aedat")


def _gesture_tree(root: Path) -> list[str]:
    """IBM's layout with the release's 98 + 24 trials (files are placeholders: only presence counts)."""
    trials = {"train": [f"user{u:02d}_lab_{k}.aedat" for u in range(1, 24) for k in range(5)][:98],
              "test": [f"user{u:02d}_led_{k}.aedat" for u in range(24, 30) for k in range(4)]}
    for split, names in trials.items():
        _touch(root / f"trials_to_{split}.txt", "".join(f"{n}\n" for n in names).encode() + b"\n")
        for name in names:
            _touch(root / name)
            _touch(root / name.replace(".aedat", "_labels.csv"))
    return trials["train"] + trials["test"]


def _babi_tree(root: Path, monkeypatch) -> Path:
    """40 small task files under root/tasks_1-20_v1-2/en, registered as the release's hashes."""
    en = root / babi_download.TOP / "en"
    hashes = {}
    for name in babi_download.EN_SHA256:
        data = f"1 {name} story.\n".encode()
        _touch(en / name, data)
        hashes[name] = hashlib.sha256(data).hexdigest()
    monkeypatch.setattr(babi_download, "EN_SHA256", hashes)
    return root / babi_download.TOP


# ---- one dataset ------------------------------------------------------------------------------


def test_partial_cifar10_dvs_download_is_reported_not_taken_for_data(tmp_path, capsys):
    """A download that stopped after three airplane recordings (with its .part archive left over):
    the folder is not empty, but the check names every missing folder and file count."""
    root = tmp_path / "cifar10_dvs"
    _touch(root / "downloads" / "automobile.zip.part")
    _cifar_tree(root, per_class=0)
    for i in range(3):
        _touch(root / "airplane" / f"cifar10_airplane_{i}.aedat")
    assert check.main(["cifar10_dvs", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert f"cifar10_dvs: incomplete at {root}" in err
    assert f"{root / 'airplane'}/: 997 of 1000 recordings missing (cifar10_airplane_3.aedat," in err
    assert f"{root / 'truck'}/: folder missing (1000 recordings expected)" in err
    assert "make data-cifar10_dvs" in err


def test_complete_cifar10_dvs_tree_passes_and_an_empty_file_does_not(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cifar10_dvs, "RECORDINGS_PER_CLASS", 3)  # the release's 1000 files take too long to write
    _cifar_tree(tmp_path, per_class=3)
    assert check.main(["cifar10_dvs", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"cifar10_dvs: complete at {tmp_path}\n"
    (tmp_path / "dog" / "cifar10_dog_1.aedat").write_bytes(b"")
    assert check.check("cifar10_dvs", tmp_path) == [f"{tmp_path / 'dog'}/: 1 recordings empty (cifar10_dog_1.aedat)"]


def test_mnist_dvs_needs_every_digit_and_scale(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_dvs, "RECORDINGS_PER_SCALE", 2)
    for digit in range(10):
        for scale in mnist_dvs.SCALES:
            for i in (1, 2):
                _touch(tmp_path / f"grabbed_data{digit}" / f"scale{scale}" / f"mnist_{digit}_scale{scale:02d}_{i:04d}.aedat")
    assert mnist_dvs.check_layout(tmp_path) == []
    shutil.rmtree(tmp_path / "grabbed_data5" / "scale16")
    (tmp_path / "grabbed_data2" / "scale4" / "mnist_2_scale04_0002.aedat").unlink()
    assert mnist_dvs.check_layout(tmp_path) == [
        f"{tmp_path / 'grabbed_data2' / 'scale4'}/: 1 of 2 recordings missing (mnist_2_scale04_0002.aedat)",
        f"{tmp_path / 'grabbed_data5' / 'scale16'}/: folder missing (2 recordings expected)",
    ]
    assert mnist_dvs.check_layout(tmp_path / "absent") == [
        f"{tmp_path / 'absent'}/: folder missing (expected grabbed_data0/ ... grabbed_data9/)"
    ]


def test_dvs_gesture_needs_the_release_trial_lists_and_their_files(tmp_path, capsys):
    names = _gesture_tree(tmp_path / "DvsGesture")
    assert len(names) == sum(RELEASE_TRIALS.values()) == 122
    assert check.main(["dvs_gesture", "--root", str(tmp_path)]) == 0  # root/DvsGesture is found
    folder = tmp_path / "DvsGesture"
    (folder / names[0].replace(".aedat", "_labels.csv")).unlink()
    (folder / names[-1]).write_bytes(b"")
    (folder / "trials_to_test.txt").write_text("".join(f"{n}\n" for n in names[98:-1]))
    problems = dvs_gesture.check_layout(tmp_path)
    assert problems == [
        f"{folder}/: 1 of 196 files listed in trials_to_train.txt missing (user01_lab_0_labels.csv)",
        f"{folder / 'trials_to_test.txt'}: lists 23 recordings, the release lists 24",
    ]
    (folder / "trials_to_test.txt").write_text("".join(f"{n}\n" for n in names[98:]))
    assert dvs_gesture.check_layout(tmp_path)[1] == f"{folder}/: 1 files listed in trials_to_test.txt empty ({names[-1]})"
    assert check.main(["dvs_gesture", "--root", str(tmp_path / "nothing")]) == 1
    assert "neither it nor DvsGesture/ holds trials_to_train.txt" in capsys.readouterr().err


def test_babi_check_on_the_real_copy_and_a_damaged_one(shared_data, tmp_path):
    real = shared_data / "babi"
    assert babi_download.check_layout(real) == []
    en = tmp_path / "en"
    shutil.copytree(real / "en", en)
    (en / "qa7_counting_test.txt").unlink()
    (en / "qa3_three-supporting-facts_train.txt").write_text("1 Mary moved.\n")
    problems = babi_download.check_layout(tmp_path)
    assert problems[0] == f"{en}/: 1 of 40 task files missing (qa7_counting_test.txt)"
    assert problems[1].startswith(f"{en / 'qa3_three-supporting-facts_train.txt'}: sha256 ")
    assert len(problems) == 2


def test_unknown_dataset_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        check.main(["mnist"])
    assert exit_info.value.code == 2
    assert "name one dataset: babi, cifar10_dvs, dvs_gesture, mnist_dvs (got mnist)" in capsys.readouterr().err


# ---- the plan of `make tables` ---------------------------------------------------------------------


def test_plan_runs_only_complete_data_and_babi_only_when_asked(tmp_path, capsys, monkeypatch):
    """paths.data_dir holds a complete CIFAR10-DVS, a partial DVS Gesture download (a non-empty
    folder), no MNIST-DVS, and a complete bAbI copy elsewhere."""
    monkeypatch.setattr(cifar10_dvs, "RECORDINGS_PER_CLASS", 2)
    data = tmp_path / "data"
    _cifar_tree(data / "cifar10_dvs", per_class=2)
    _touch(data / "DvsGesture" / "DvsGesture.tar.gz.part")
    babi_root = _babi_tree(tmp_path / "babi", monkeypatch)
    common = ["--plan", f"paths.data_dir={data}", f"paths.output_dir={tmp_path / 'out'}",
              "--babi-arg", f"data.root={babi_root}", "--babi-arg", "seed=range(0,1)"]

    assert check.main(common) == 0
    out, err = capsys.readouterr()
    assert out == "cifar10_dvs\n"
    lines = {line.split()[0]: line for line in err.splitlines() if line.startswith("  ") and not line.startswith("   ")}
    assert lines["cifar10_dvs"].split()[1:5] == ["runs", "18", "runs,", "about"]
    assert lines["gesture"].split()[1:3] == ["skipped", "18"]
    assert f"dvs_gesture at {data / 'DvsGesture'} is incomplete" in lines["gesture"]
    assert f"mnist_dvs at {data / 'mnist_dvs'} is incomplete" in lines["mnist_dvs"]
    assert lines["babi"].split()[1:3] == ["skipped", "80"]  # 20 tasks x 4 models x 1 seed
    assert "runs only when asked for: make tables BABI=1" in lines["babi"]
    assert "babi_two_tower" not in lines  # `make table-babi` builds both settings, and only when asked
    assert "make tables: 1 paper tables, 18 runs, about " in err

    assert check.main([*common, "--babi", "model=liaf"]) == 0
    out, err = capsys.readouterr()
    assert out == "cifar10_dvs babi\n"
    assert "make tables: 2 paper tables, 23 runs, about " in err  # 3 seeds + 20 tasks, liaf only
    assert "time per run for babi: results/README.md" in err
