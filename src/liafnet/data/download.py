"""Fetch the event datasets' original files, or explain how to get them.

``python -m liafnet.data.download <mnist_dvs|cifar10_dvs|dvs_gesture> [--root DIR]`` (the
``make data-<name>`` targets). Archives are streamed to ``<root>/downloads/`` with a progress bar,
checked against their MD5 where one is published, unzipped into the layout the dataset classes
read, and deleted. Finished classes/digits are skipped, so an interrupted run can be repeated, and
an archive already in ``<root>/downloads/`` (fetched by hand) is used instead of downloading it.
When a download fails (offline, a dead link, a wrong checksum) the command prints, for every
archive still missing, its URL, its published checksum (or that none is published) and the exact
layout to unpack into, and exits with status 1. DVS Gesture sits behind IBM Box and needs a manual
download: the command prints the steps, checks an existing copy, and exits with status 1 until the
copy is complete.
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

from liafnet.data import cifar10_dvs, dvs_gesture, mnist_dvs
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
CIFAR10_DVS_PAGE = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671"
# IMSE-CNM's page lists no checksums for these zips; the SHA-256 of each download is printed.
MNIST_DVS_URL = "http://www2.imse-cnm.csic.es/caviar/MNIST_DVS/grabbed_data{}.zip"
MNIST_DVS_PAGE = "http://www2.imse-cnm.csic.es/caviar/MNISTDVS.html"
DVS_GESTURE_PAGE = "https://research.ibm.com/interactive/dvsgesture/"
DVS_GESTURE_MD5 = "8a5c71fb11e24e5ca5b11866ca6c00a1"  # DvsGesture.tar.gz

DVS_GESTURE_INSTRUCTIONS = """DVS128 Gesture cannot be downloaded without a browser (IBM Box). To get it:
  1. Open {page} and follow the link to the IBM Box folder.
  2. Download DvsGesture.tar.gz (about 3 GB; published md5 {md5}). Licence: CC BY 4.0.
  3. Check and unpack it (the archive's top folder is DvsGesture/):
       md5sum DvsGesture.tar.gz
       mkdir -p {unpack_dir} && tar -xzf DvsGesture.tar.gz -C {unpack_dir}
     giving exactly this layout:
       {layout}/trials_to_train.txt   (98 recording names, users 01-23)
       {layout}/trials_to_test.txt    (24 recording names, users 24-29)
       {layout}/userNN_<light>.aedat and userNN_<light>_labels.csv, for each of the 122 names
       (plus gesture_mapping.csv, LICENSE.txt, README.txt)
  4. Check it: python -m liafnet.data.check dvs_gesture --root {root}
     Train with data=dvs_gesture (data.root defaults to data/DvsGesture; override data.root=...).
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


def _archive(url: str, target: Path, md5: str | None) -> Path:
    """``target`` when it is already there (fetched by hand; its MD5 checked when one is
    published), else a fresh download of ``url``."""
    if not target.is_file():
        return download(url, target, md5)
    if md5 is not None and (actual := _md5(target)) != md5:
        raise ValueError(f"{target}: MD5 {actual} does not match the published {md5}; delete it and fetch it again")
    print(f"{target.name}: using the archive already in {target.parent}")
    return target


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _cifar10_missing(root: Path) -> list[str]:
    """Classes whose folder under ``root`` is incomplete (their zip is still needed)."""
    return [name for name in CIFAR10_CLASSES if cifar10_dvs.check_class(root, name)]


def _mnist_missing(root: Path) -> list[int]:
    """Digits whose ``grabbed_data<d>/`` under ``root`` is incomplete (their zip is still needed)."""
    return [digit for digit in range(10) if mnist_dvs.check_digit(root, digit)]


def fetch_cifar10_dvs(root: Path, keep_archives: bool = False) -> None:
    missing = _cifar10_missing(root)
    for name in CIFAR10_CLASSES:
        if name not in missing:
            print(f"{name}: complete, skipped")
            continue
        file_id, md5 = CIFAR10_DVS_FILES[name]
        archive = _archive(CIFAR10_DVS_URL.format(file_id), root / "downloads" / f"{name}.zip", md5)
        extract_into(archive, root, name)
        if not keep_archives:
            archive.unlink()
    print(f"CIFAR10-DVS is in {root}")


def fetch_mnist_dvs(root: Path, keep_archives: bool = False) -> None:
    missing = _mnist_missing(root)
    for digit in range(10):
        folder = f"grabbed_data{digit}"
        if digit not in missing:
            print(f"{folder}: complete, skipped")
            continue
        archive = _archive(MNIST_DVS_URL.format(digit), root / "downloads" / f"{folder}.zip", None)
        extract_into(archive, root, folder)
        if not keep_archives:
            archive.unlink()
    print(f"MNIST-DVS is in {root}")


def manual_cifar10_dvs(root: Path) -> str:
    """How to fetch the CIFAR10-DVS class zips still missing under ``root`` by hand."""
    lines = [f"CIFAR10-DVS by hand (figshare article 4724671, \"CIFAR10-DVS_New\", {CIFAR10_DVS_PAGE}):",
             "  archive          URL                                          published md5"]
    for name in _cifar10_missing(root):
        file_id, md5 = CIFAR10_DVS_FILES[name]
        lines.append(f"  {name + '.zip':<16} {CIFAR10_DVS_URL.format(file_id):<44} {md5}")
    lines += [
        f"Put the zips, named as above, in {root / 'downloads'}/ and rerun this command: it checks each",
        "MD5 and unpacks it. Or unpack them yourself into exactly this layout (10,000 recordings):",
        f"  {root}/<class>/cifar10_<class>_<i>.aedat   for each class above and i = 0..999,",
        f"  e.g. {root / 'airplane' / 'cifar10_airplane_0.aedat'}",
        f"Check it: python -m liafnet.data.check cifar10_dvs --root {root}",
    ]
    return "\n".join(lines)


def manual_mnist_dvs(root: Path) -> str:
    """How to fetch the MNIST-DVS digit zips still missing under ``root`` by hand."""
    lines = [f"MNIST-DVS by hand (IMSE-CNM, {MNIST_DVS_PAGE}); no checksum is published for these zips:"]
    lines += [f"  grabbed_data{d}.zip   {MNIST_DVS_URL.format(d)}" for d in _mnist_missing(root)]
    lines += [
        f"Put the zips, named as above, in {root / 'downloads'}/ and rerun this command: it unpacks them",
        "and prints each one's SHA-256. Or unpack them yourself into exactly this layout (30,000 recordings):",
        f"  {root}/grabbed_data<d>/scale4/mnist_<d>_scale04_<NNNN>.aedat   NNNN = 0001..1000",
        f"  {root}/grabbed_data<d>/scale8/mnist_<d>_scale08_<NNNN>.aedat",
        f"  {root}/grabbed_data<d>/scale16/mnist_<d>_scale16_<NNNN>.aedat   for each digit d above",
        f"Check it: python -m liafnet.data.check mnist_dvs --root {root}",
    ]
    return "\n".join(lines)


def explain_dvs_gesture(root: Path) -> bool:
    """Print the manual steps unless a complete copy is in place; return whether it is."""
    problems = dvs_gesture.check_layout(root)
    if not problems:
        found = dvs_gesture.find_root(root)
        print(f"DVS Gesture is complete in {found}: {sum(dvs_gesture.RELEASE_TRIALS.values())} recordings.")
        return True
    print(f"DVS Gesture is not complete at {root}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    # data.root may name DvsGesture/ itself or the folder holding it (find_root accepts both).
    unpack_dir = root.parent if root.name == "DvsGesture" else root
    print(DVS_GESTURE_INSTRUCTIONS.format(page=DVS_GESTURE_PAGE, md5=DVS_GESTURE_MD5, root=root,
                                          unpack_dir=unpack_dir, layout=unpack_dir / "DvsGesture"), file=sys.stderr)
    return False


FETCHERS = {"mnist_dvs": (fetch_mnist_dvs, manual_mnist_dvs), "cifar10_dvs": (fetch_cifar10_dvs, manual_cifar10_dvs)}
DEFAULT_ROOTS = {"mnist_dvs": "data/mnist_dvs", "cifar10_dvs": "data/cifar10_dvs", "dvs_gesture": "data/DvsGesture"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(DEFAULT_ROOTS))
    parser.add_argument("--root", type=Path, help="target folder (default: data/<name>, the configs' data.root)")
    parser.add_argument("--keep-archives", action="store_true", help="keep the downloaded zips")
    args = parser.parse_args(argv)
    root = args.root or Path(DEFAULT_ROOTS[args.dataset])
    if args.dataset == "dvs_gesture":
        return 0 if explain_dvs_gesture(root) else 1
    if shutil.disk_usage(root.parent if root.parent.exists() else Path.cwd()).free < 10 << 30:
        print("warning: less than 10 GB free; the archives plus their contents may not fit", file=sys.stderr)
    fetch, manual = FETCHERS[args.dataset]
    try:
        fetch(root, args.keep_archives)
    except (OSError, ValueError, zipfile.BadZipFile) as err:  # URLError is an OSError; MD5 mismatch a ValueError
        print(f"download failed: {err}\n{manual(root)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
