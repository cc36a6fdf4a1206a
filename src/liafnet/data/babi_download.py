"""``make data-babi``: fetch bAbI v1.2 (tasks_1-20_v1-2.tar.gz) and check the English 1k files.

``python -m liafnet.data.babi_download [--root data/babi]`` tries the S3 copy used by Keras, then the
Hugging Face copy (or uses ``<root>/tasks_1-20_v1-2.tar.gz`` when it is already there), unpacks the
archive into ``<root>/tasks_1-20_v1-2/`` and checks the SHA-256 of the 40 ``en/`` files against the
values below (computed from two independent copies of the release; none is published). When the
download fails it prints both URLs, that no checksum is published, and the exact layout to unpack
into, and exits with status 1. An existing complete ``en/`` folder is only checked. The data is
CC BY 3.0, Facebook, Inc.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tarfile
import tempfile
from pathlib import Path

from liafnet.data.download import download
from liafnet.data.layout import missing_files

URLS = (
    "https://s3.amazonaws.com/text-datasets/babi_tasks_1-20_v1-2.tar.gz",
    "https://huggingface.co/datasets/facebook/babi_qa/resolve/main/data/tasks_1-20_v1-2.tar.gz",
)
TOP = "tasks_1-20_v1-2"
EN_SHA256 = {
    "qa10_indefinite-knowledge_test.txt": "fde8f20ed0b3ba979058ed391a566af34653f23baab5b2793ee37f87ef4e88b7",
    "qa10_indefinite-knowledge_train.txt": "0b7691689447bab05476c5b48c44999b41e747c3978df69c18fdd87b60d6e8b3",
    "qa11_basic-coreference_test.txt": "46f3290d0158ce1285a40cd2d793f5a65f86ae5000226e165cbc85a3dfeb2f6f",
    "qa11_basic-coreference_train.txt": "9468de9a1f256f43dfda693a5d07182d21149a82b65f7c2451c64e9cff5eb138",
    "qa12_conjunction_test.txt": "6437718f8f9801ce345869e910b896836cdc6fd2d01dc7b4d2df49730703b4b1",
    "qa12_conjunction_train.txt": "45c2764bb2d3c8f699d35e9d9aa7958fcd96379c6e907116cdf74526c108bb25",
    "qa13_compound-coreference_test.txt": "76a25b684f23c9cc473d8cd1465506168b9a1ec8891cfc59d0bbd87e6a064990",
    "qa13_compound-coreference_train.txt": "533a391edbda743e4c99504de88b40cdded5b1d5ef454d1390f0863f748a4cc9",
    "qa14_time-reasoning_test.txt": "e3f0b19858ffbec3ed1e49076cc4d1295a89ce146c50318b862f13f202b3caf2",
    "qa14_time-reasoning_train.txt": "b7561cbc624205c9c2fdbb8c843cfa8ad90edd65e78bb223fc6dea8113662df8",
    "qa15_basic-deduction_test.txt": "32b77e117fe9acf5f94906684e3b5206de0108e646c76e1da3e022896ec7ee94",
    "qa15_basic-deduction_train.txt": "e856ebfdcce4dd7d617c1d10f985e96a0850c0ca18e9a19a017cb710d135ed3d",
    "qa16_basic-induction_test.txt": "4a11e55366f2a5a859b5a81f683ee23801bdbe71ef984e51adb976bd053e8dcf",
    "qa16_basic-induction_train.txt": "20121005137e3d4b061a086eb177a456303d5742b764eb8da2d0e480b6af4d28",
    "qa17_positional-reasoning_test.txt": "9e1e0250ed4ec1831757fab26c04138f81ea557ebf6976a220db879cbed04bac",
    "qa17_positional-reasoning_train.txt": "20083bf56ff74f0e7cf5e3e2f8c3905cdb8ef09293c3e8cf7a96ed8b45ae2277",
    "qa18_size-reasoning_test.txt": "d34f70eb7228a276fcb3a7854174fe562c5634f4fb454a39fc3d1ad9934be3ef",
    "qa18_size-reasoning_train.txt": "18b7dcf52c9a0e87e4e7dd3d65b7e5a630de039645f52a1294197af7481d739d",
    "qa19_path-finding_test.txt": "023e391f0d7f79c9e6ae1c46c093e2d0dbd50ab8fbd8965e037a75e3614c20e5",
    "qa19_path-finding_train.txt": "dcb788352a56effb7bea1449128f31cc9c342c8c327b6df2caeee0e379e6ad3a",
    "qa1_single-supporting-fact_test.txt": "55acf66cef2f6d798e2aa1d056e1ec8f24e910ea9215b639450574321132959b",
    "qa1_single-supporting-fact_train.txt": "c64ba9b1a49bbb111ffc4cd2ae4f129d25c012399dd7ade9679eea464b9afb05",
    "qa20_agents-motivations_test.txt": "bd3bde3788ac14ba0ae095078f7b820fbd2bfa6a34dba9d1d46a34afde9c2729",
    "qa20_agents-motivations_train.txt": "29580ad55fb7b4b29ba014696056cc68f8f347dac3be88470fd692ad60150398",
    "qa2_two-supporting-facts_test.txt": "eff93fb9cd81ba02eb765772cf7cc269769ed44ec71cbbbc19cfb16ee5eba0f6",
    "qa2_two-supporting-facts_train.txt": "a4978af5bc0dc30191810e7c9949aaa6eae939ed0f6beb9fcb5f4330c2a27860",
    "qa3_three-supporting-facts_test.txt": "17795c977100baf8188f386522ae301b62d6c1a13efc01b3aea781e588b4d57f",
    "qa3_three-supporting-facts_train.txt": "a6e78019f36a02a7ed71fe6aaded0b563ff09c8deec392931801fcd9c6af4d60",
    "qa4_two-arg-relations_test.txt": "07f0ca18ddeea9eed4ba6d59e162adcb0ce44815721114b3540d92825509331e",
    "qa4_two-arg-relations_train.txt": "c9370502d85fa382f32d1fea2111e817f81ae9e3e79eb2924a1a5392a90417fa",
    "qa5_three-arg-relations_test.txt": "ec825c1c8a76e63a31f0d7a7763cd63740e98332fa9bdf246a19068949bd5f97",
    "qa5_three-arg-relations_train.txt": "086cd59c3ca9677bfac3d6a22ca5853c76a5c1fbae3159c7c4a6aef759a74ec0",
    "qa6_yes-no-questions_test.txt": "b108b16f1eccbd1c24df6dca2649079a7b2f10af7fd12d4c45a3393802de59e3",
    "qa6_yes-no-questions_train.txt": "5a133115ee35d475776df703ff605d145b11effbcdbf7e74861f9d5639246a5a",
    "qa7_counting_test.txt": "a74d1f2b91329b2bae814d41cdac2fbdfdf0328562b7d8afa9a0fa576d461e27",
    "qa7_counting_train.txt": "dca03bd91876951c49f1c971c83c9dd55404de60201b7b6435451cf7ddb4751c",
    "qa8_lists-sets_test.txt": "362a653c821a580fa315a85243b4f03bfa06fa7e0269b6f8e596f8fe6911646a",
    "qa8_lists-sets_train.txt": "058604df6f9440458317e8ae685d2b7b84261e1a80b4d6410a9140d16f81bf06",
    "qa9_simple-negation_test.txt": "63590aff3f89993db409f0e9a9eb39c2a5b9d5efff99b255d800a891b0044d9f",
    "qa9_simple-negation_train.txt": "0c3b89921af0caea1c4059ee3f7b7f2a88869f924195a428da37820446b8c49f",
}

ARCHIVE = "tasks_1-20_v1-2.tar.gz"
INSTRUCTIONS = """\
Could not download bAbI ({reason}). To get it by hand:
  1. Download {archive} (bAbI v1.2, CC BY 3.0) from one of
       {urls}
     or the release page https://research.facebook.com/downloads/babi/ .
     No checksum is published for the archive; step 3 checks the 40 en/ files against SHA-256
     values recorded in liafnet.data.babi_download (taken from two independent copies).
  2. Put it at {root}/{archive} and rerun this command (it unpacks and checks it), or unpack it
     yourself:  tar -xzf {archive} -C {root}
     giving exactly this layout (40 files; the archive's other folders are not needed):
       {root}/{top}/en/qa<N>_<name>_train.txt and qa<N>_<name>_test.txt, N = 1..20,
       e.g. {root}/{top}/en/qa1_single-supporting-fact_train.txt
  3. Check it:   python -m liafnet.data.check babi --root {root}
Or point data.root at any folder holding a complete en/ (python train.py data=babi data.root=DIR)."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_en(folder: Path) -> list[str]:
    """Problems with ``folder`` (an ``en/`` folder): missing or empty files, SHA-256 mismatches."""
    problems = missing_files(folder, EN_SHA256, "task files")
    for name, digest in EN_SHA256.items():
        path = folder / name
        if path.is_file() and path.stat().st_size and (actual := sha256(path)) != digest:
            problems.append(f"{path}: sha256 {actual} differs from the release's {digest}")
    return problems


def find_en(root: str | os.PathLike) -> Path | None:
    """The ``en/`` folder under ``root``: ``root/en`` or ``root/tasks_1-20_v1-2/en`` (the configs'
    ``data.root`` may name either the archive's top folder or the folder it was unpacked into)."""
    root = Path(root)
    return next((p for p in (root / TOP / "en", root / "en") if p.is_dir()), None)


def check_layout(root: str | os.PathLike) -> list[str]:
    """What keeps ``root`` from holding the full English 1k release; ``[]`` when complete.

    Expected: ``en/`` (directly under ``root`` or under ``root/tasks_1-20_v1-2/``) with the 40 files
    ``qa<N>_<name>_{train,test}.txt``, each matching the release's SHA-256 (``EN_SHA256``).
    """
    en = find_en(root)
    if en is None:
        return [f"{root}/: no en/ folder (expected {Path(root) / TOP / 'en'}/ or {Path(root) / 'en'}/)"]
    return check_en(en)


def fetch(root: Path) -> Path:
    """Unpack ``root/tasks_1-20_v1-2.tar.gz`` into ``root``, downloading it first when it is not
    there; returns the ``en/`` folder. ``ConnectionError`` lists every URL tried and its error."""
    local = root / ARCHIVE
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        archive = local if local.is_file() else _download_any(Path(tmp) / ARCHIVE)
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    return root / TOP / "en"


def _download_any(target: Path) -> Path:
    errors = []
    for url in URLS:
        try:
            return download(url, target)
        except OSError as error:  # URLError, HTTPError, timeouts
            errors.append(f"{url}: {error}")
    raise ConnectionError("; ".join(errors))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m liafnet.data.babi_download", description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="data/babi", help="folder to unpack into (default: %(default)s)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    en = find_en(root)
    if en is None or check_en(en):
        root.mkdir(parents=True, exist_ok=True)
        try:
            en = fetch(root)
        except (ConnectionError, OSError, tarfile.TarError) as error:
            print(INSTRUCTIONS.format(reason=error, urls="\n       ".join(URLS), root=root, top=TOP, archive=ARCHIVE),
                  file=sys.stderr)
            return 1
    problems = check_en(en)
    if problems:
        print("bAbI files do not match the v1.2 release:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"bAbI en/: all 40 files present and verified in {en}\nTrain with: python train.py data=babi "
          f"data.root={en.parent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
