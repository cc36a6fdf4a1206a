"""A failed download tells the user how to finish by hand (issue 13, item 10): every archive's URL,
its published checksum (or that none is published) and the exact layout to unpack into. The
downloads fail offline through the real CLI: an HTTP(S) proxy on a closed local port refuses them."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from liafnet.data import babi_download, download
from liafnet.data.cifar10_dvs import CLASSES

from tests.helpers import REPO, subprocess_env

OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": "",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


def _offline_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    env = subprocess_env(**OFFLINE, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=REPO)


def test_cifar10_dvs_offline_lists_every_url_md5_and_the_layout(tmp_path):
    root = tmp_path / "cifar10_dvs"
    result = _offline_cli("liafnet.data.download", "cifar10_dvs", "--root", str(root))
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert err.startswith("download failed: <urlopen error")
    for name, (file_id, md5) in download.CIFAR10_DVS_FILES.items():
        assert f"{name}.zip" in err and f"https://ndownloader.figshare.com/files/{file_id}" in err and md5 in err
    assert "0afd5c4bf9ae06af762a77b180354fdd" in err  # airplane.zip, as published with spikingjelly's loader
    assert f"{root}/<class>/cifar10_<class>_<i>.aedat   for each class above and i = 0..999" in err
    assert f"in {root / 'downloads'}/ and rerun this command" in err
    assert f"python -m liafnet.data.check cifar10_dvs --root {root}" in err


def test_mnist_dvs_offline_lists_every_url_says_no_checksum_and_the_layout(tmp_path):
    root = tmp_path / "mnist_dvs"
    result = _offline_cli("liafnet.data.download", "mnist_dvs", "--root", str(root))
    assert result.returncode == 1, result.stderr
    err = result.stderr
    for digit in range(10):
        assert f"grabbed_data{digit}.zip   http://www2.imse-cnm.csic.es/caviar/MNIST_DVS/grabbed_data{digit}.zip" in err
    assert "no checksum is published for these zips" in err
    for scale in (4, 8, 16):
        assert f"{root}/grabbed_data<d>/scale{scale}/mnist_<d>_scale{scale:02d}_<NNNN>.aedat" in err
    assert f"python -m liafnet.data.check mnist_dvs --root {root}" in err


def test_dvs_gesture_without_a_copy_fails_with_url_md5_and_layout(tmp_path):
    root = tmp_path / "DvsGesture"
    result = _offline_cli("liafnet.data.download", "dvs_gesture", "--root", str(root))
    assert result.returncode == 1
    err = result.stderr
    assert "https://research.ibm.com/interactive/dvsgesture/" in err
    assert "published md5 8a5c71fb11e24e5ca5b11866ca6c00a1" in err
    assert f"mkdir -p {tmp_path} && tar -xzf DvsGesture.tar.gz -C {tmp_path}" in err
    assert f"{root}/trials_to_train.txt   (98 recording names" in err
    assert f"{root}/trials_to_test.txt    (24 recording names" in err


def test_babi_offline_lists_both_urls_the_checksum_situation_and_the_layout(tmp_path):
    root = tmp_path / "babi"
    result = _offline_cli("liafnet.data.babi_download", "--root", str(root))
    assert result.returncode == 1
    err = result.stderr
    for url in babi_download.URLS:
        assert f"{url}: <urlopen error" in err  # each URL tried and its error
        assert f"\n       {url}\n" in err  # listed for a manual download
    assert "No checksum is published for the archive" in err
    assert f"{root}/tasks_1-20_v1-2/en/qa<N>_<name>_train.txt and qa<N>_<name>_test.txt, N = 1..20" in err
    assert f"python -m liafnet.data.check babi --root {root}" in err


# ---- archives fetched by hand (in-process: the opener is replaced by one that fails) ---------------


@pytest.fixture
def no_network(monkeypatch):
    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError(f"offline test: {url} not fetched")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_an_archive_put_in_downloads_is_unpacked_and_only_the_rest_is_listed(tmp_path, capsys, no_network):
    root = tmp_path / "mnist_dvs"
    archive = root / "downloads" / "grabbed_data0.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for scale in (4, 8, 16):
            for i in range(1, 1001):
                zf.writestr(f"grabbed_data0/scale{scale}/mnist_0_scale{scale:02d}_{i:04d}.aedat", b"#!AER-DAT2.0\r\n")
    assert download.main(["mnist_dvs", "--root", str(root)]) == 1
    out, err = capsys.readouterr()
    assert "grabbed_data0.zip: using the archive already in" in out
    assert (root / "grabbed_data0" / "scale16" / "mnist_0_scale16_1000.aedat").is_file() and not archive.exists()
    assert "offline test: http://www2.imse-cnm.csic.es/caviar/MNIST_DVS/grabbed_data1.zip not fetched" in err
    assert "grabbed_data0.zip" not in err and all(f"grabbed_data{d}.zip" in err for d in range(1, 10))


def test_a_hand_fetched_archive_with_the_wrong_md5_is_refused(tmp_path, capsys, no_network):
    root = tmp_path / "cifar10_dvs"
    bad = root / "downloads" / "airplane.zip"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the published zip")
    assert download.main(["cifar10_dvs", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert f"download failed: {bad}: MD5 " in err and "does not match the published 0afd5c4bf9ae06af762a77b180354fdd" in err
    assert all(f"{name}.zip" in err for name in CLASSES)
    assert not (root / "airplane").exists()


def test_babi_archive_put_in_root_is_used_offline(tmp_path, capsys, no_network, monkeypatch):
    root = tmp_path / "babi"
    source = tmp_path / "src" / babi_download.TOP / "en"
    source.mkdir(parents=True)
    hashes = {}
    for name in babi_download.EN_SHA256:
        (source / name).write_text(f"1 {name}.\n")
        hashes[name] = hashlib.sha256((source / name).read_bytes()).hexdigest()
    monkeypatch.setattr(babi_download, "EN_SHA256", hashes)
    root.mkdir()
    with tarfile.open(root / babi_download.ARCHIVE, "w:gz") as tar:
        tar.add(source.parent, arcname=babi_download.TOP)
    assert babi_download.main(["--root", str(root)]) == 0
    assert f"all 40 files present and verified in {root / babi_download.TOP / 'en'}" in capsys.readouterr().out
    assert Path(root / babi_download.TOP / "en").is_dir()
