"""Every file liafnet writes is readable by colleagues: mode 0o666 minus the user's umask, as a
plain ``open`` gives, not the 0o600 of a bare temporary file renamed into place (issue 13, item 6)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from event_fixtures import random_events, write_mnist_tree

from liafnet.data.aedat import write_aedat
from liafnet.data.mnist_dvs import MNISTDVS
from liafnet.io import atomic_write_bytes, atomic_write_json, atomic_write_text, current_umask

UMASKS = (0o022, 0o027, 0o002)


@pytest.fixture(params=UMASKS, ids=[f"umask{m:03o}" for m in UMASKS])
def umask(request):
    """Run the test under a set umask; restore the previous one afterwards."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask


def test_atomic_writers_apply_the_umask(tmp_path, umask):
    expected = 0o666 & ~umask
    for path, write in (
        (tmp_path / "metrics.json", lambda p: atomic_write_json(p, {"test/acc": 0.5})),
        (tmp_path / "tables" / "gesture.md", lambda p: atomic_write_text(p, "| a |\n")),
        (tmp_path / "plot.png", lambda p: atomic_write_bytes(p, b"\x89PNG")),
    ):
        write(path)
        assert _mode(path) == expected, f"{path.name}: mode {_mode(path):o}, expected {expected:o}"
    # Rewriting keeps readable modes and leaves no temporary file behind.
    atomic_write_json(tmp_path / "metrics.json", {"test/acc": 0.6})
    assert _mode(tmp_path / "metrics.json") == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "plot.png", "tables"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, umask):
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"ok": 1})

    def explode(handle):
        handle.write(b"half")
        raise RuntimeError("killed")

    from liafnet.io import atomic_write

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert target.read_text().strip().startswith("{") and list(tmp_path.iterdir()) == [target]


def test_frame_cache_and_aedat_files_apply_the_umask(tmp_path, umask):
    rng = np.random.default_rng(0)
    write_mnist_tree(tmp_path / "mnist", rng, ids=(1, 801))
    MNISTDVS(tmp_path / "mnist", split="test", time_steps=4, cache_dir=tmp_path / "cache")
    cached = sorted((tmp_path / "cache" / "mnist_dvs").iterdir())
    assert {p.suffix for p in cached} == {".npy", ".json"} and len(cached) == 20
    expected = 0o666 & ~umask
    assert {p.name: _mode(p) for p in cached} == {p.name: expected for p in cached}
    write_aedat(tmp_path / "one.aedat", random_events(rng, 10), version="3.1")
    assert _mode(tmp_path / "one.aedat") == expected
