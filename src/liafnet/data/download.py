"""Fetch the event datasets' original files, or explain how to get them.

``python -m liafnet.data.download <mnist_dvs|cifar10_dvs|dvs_gesture> [--root DIR]`` (the
``make data-<name>`` targets). Archives are streamed to ``<root>/downloads/`` with a progress bar,
checked against their MD5 where one is published, unzipped into the layout the dataset classes
read, and deleted. Finished classes/digits are skipped, so an interrupted run can be repeated.
DVS Gesture sits behind IBM Box and needs a manual download: the command prints the steps and
checks an existing copy.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from liafnet.data.cifar10_dvs import CLASSES as CIFAR10_CLASSES

# figshare article 4724671 "CIFAR10-DVS_New": one zip per class; MD5s as listed in spikingjelly's
# CIFAR10-DVS loader.
CIFAR10_DVS_FILES = {
    "airplane": (7712788, "0afd5c4bf9ae06af762a77b180354fdd"),
    "automobile": (7712791, "8438dfeba3bc970c94962d995b1b9bdd"),
    "bird": (7712794, "a9c207c91c55b9dc2002dc21c684d785"),
    "cat": (7712812, "52c63c677c2b15fa5146a8daf4d56687"),
    "deer": (7712815, "b6bf21f6c04d21ba4e23fc3e36c8a4a3"),
    "dog": (7712818, "f379ebdf6703d16e0a690782e62639c3"),
    "frog": (7712842, "cad6ed91214b1c7388a5f6ee56d08803"),
    "horse": (7712851, "e7cbbf77bec584ffbf913f00e682782a"),
    "ship": (7712836, "41c7bd7d6b251be82557c6cce9a7d5c9"),
    "truck": (7712839, "89f3922fd147d9aeff89e76a2b0b70a7"),
}
CIFAR10_DVS_URL = "https://ndownloader.figshare.com/files/{}"
# IMSE-CNM's page lists no checksums for these zips; the SHA-256 of each download is printed.
MNIST_DVS_URL = "http://www2.imse-cnm.csic.es/caviar/MNIST_DVS/grabbed_data{}.zip"
DVS_GESTURE_MD5 = "8a5c71fb11e24e5ca5b11866ca6c00a1"  # DvsGesture.tar.gz

DVS_GESTURE_INSTRUCTIONS = """\
DVS128 Gesture cannot be downloaded without a browser (IBM Box). To get it:
  1. Open https://research.ibm.com/interactive/dvsgesture/ and follow the link to the IBM Box folder.
  2. Download DvsGesture.tar.gz (about 3 GB; md5 {md5}). Licence: CC BY 4.0.
  3. Check and unpack it:
       md5sum DvsGesture.tar.gz
       tar -xzf DvsGesture.tar.gz -C {parent}
     giving {root}/trials_to_train.txt, trials_to_test.txt, userNN_<light>.aedat and
     userNN_<light>_labels.csv (plus gesture_mapping.csv, LICENSE.txt, README.txt).
  4. Train with data=dvs_gesture (data.root defaults to data/DvsGesture; override data.root=...).
Alternatively use tonic's preprocessed copy (1 ms resolution, 1,077/264 samples): pip install
'liafnet[tonic]' and set data.source=tonic data.root=<folder where tonic saves DVSGesture/>."""


def download(url: str, target: Path, md5: str | None = None) -> Path:
    """Stream ``url`` to ``target`` (via a temporary file) with a progress bar; verify the MD5."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    digest_md5, digest_sha = hashlib.md5(), hashlib.sha256()
    with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest_md5.update(chunk)
                digest_sha.update(chunk)
                bar.update(len(chunk))
    if md5 is not None and digest_md5.hexdigest() != md5:
        partial.unlink()
        raise ValueError(f"{url}: MD5 {digest_md5.hexdigest()} does not match the published {md5}; try again")
    partial.replace(target)
    print(f"{target.name}: sha256 {digest_sha.hexdigest()}")
    return target


def extract_into(archive: Path, root: Path, folder: str) -> None:
    """Unzip so the files land in ``root/folder``, whether or not the zip has that top folder."""
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if not n.startswith("__MACOSX/")]
        prefixed = all(n.split("/", 1)[0] == folder for n in names)
        destination = root if prefixed else root / folder
        for name in names:
            zf.extract(name, destination)


def fetch_cifar10_dvs(root: Path, keep_archives: bool = False) -> None:
    for name in CIFAR10_CLASSES:
        if len(list((root / name).glob(f"cifar10_{name}_*.aedat"))) >= 1000:
            print(f"{name}: complete, skipped")
            continue
        file_id, md5 = CIFAR10_DVS_FILES[name]
        archive = download(CIFAR10_DVS_URL.format(file_id), root / "downloads" / f"{name}.zip", md5)
        extract_into(archive, root, name)
        if not keep_archives:
            archive.unlink()
    print(f"CIFAR10-DVS is in {root}")


def fetch_mnist_dvs(root: Path, keep_archives: bool = False) -> None:
    for digit in range(10):
        folder = f"grabbed_data{digit}"
        if all((root / folder / f"scale{s}").is_dir() for s in (4, 8, 16)):
            print(f"{folder}: present, skipped")
            continue
        archive = download(MNIST_DVS_URL.format(digit), root / "downloads" / f"{folder}.zip")
        extract_into(archive, root, folder)
        if not keep_archives:
            archive.unlink()
    print(f"MNIST-DVS is in {root}")


def explain_dvs_gesture(root: Path) -> bool:
    """Print the manual steps; return whether a copy is already in place."""
    from liafnet.data.dvs_gesture import find_root

    try:
        found = find_root(root)
    except FileNotFoundError:
        print(DVS_GESTURE_INSTRUCTIONS.format(md5=DVS_GESTURE_MD5, root=root, parent=root.parent))
        return False
    n_recordings = len(list(found.glob("user*.aedat")))
    print(f"DVS Gesture found in {found}: {n_recordings} recordings (the full release has 122).")
    return True


FETCHERS = {"mnist_dvs": fetch_mnist_dvs, "cifar10_dvs": fetch_cifar10_dvs}
DEFAULT_ROOTS = {"mnist_dvs": "data/mnist_dvs", "cifar10_dvs": "data/cifar10_dvs", "dvs_gesture": "data/DvsGesture"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(DEFAULT_ROOTS))
    parser.add_argument("--root", type=Path, help="target folder (default: data/<name>, the configs' data.root)")
    parser.add_argument("--keep-archives", action="store_true", help="keep the downloaded zips")
    args = parser.parse_args(argv)
    root = args.root or Path(DEFAULT_ROOTS[args.dataset])
    if args.dataset == "dvs_gesture":
        explain_dvs_gesture(root)
        return 0
    if shutil.disk_usage(root.parent if root.parent.exists() else Path.cwd()).free < 10 << 30:
        print("warning: less than 10 GB free; the archives plus their contents may not fit", file=sys.stderr)
    try:
        FETCHERS[args.dataset](root, args.keep_archives)
    except OSError as err:  # URLError is an OSError
        print(
            f"download failed: {err}\nRetry later, or fetch the archives by hand into {root}/downloads/.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
