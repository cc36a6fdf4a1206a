"""The run record: the ``metrics.json`` contract as a typed object.

Every training run writes one :class:`RunRecord` to ``<run_dir>/metrics.json`` (:data:`METRICS_FILE`)
when it starts (``status: running``), and again when it ends (``ok`` or ``failed``), atomically and
from rank 0 only (:meth:`RunRecord.write`). Tables and plots read runs back with
:meth:`RunRecord.read` and use its attributes, or :meth:`RunRecord.get` for a key named in a table
config (``"test/acc"``); no other module reads metrics.json by string keys.

JSON keys are the attribute names, except the metric keys with a slash (``test/acc``, ``val/acc``;
:data:`JSON_KEYS`). Keys this version does not know (written by a newer liafnet, or added by a
callback through :attr:`RunRecord.extra`) are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liafnet.io import atomic_write_json

METRICS_FILE = "metrics.json"
STATUSES = ("running", "ok", "failed")
# Attribute name -> JSON key, where they differ.
JSON_KEYS = {"test_acc": "test/acc", "val_acc": "val/acc"}


@dataclass
class RunRecord:
    """One run's results and provenance (the contract of docs/architecture.md).

    Units: accuracies are fractions in [0, 1]; ``params`` a count; ``macs``/``acs`` per sample over
    the whole sequence; ``train_time_s`` seconds of wall clock from start to end of training;
    ``samples_per_s`` training samples per second of step time.
    """

    model: str
    data: str
    seed: int
    status: str = "running"
    test_acc: float | None = None
    val_acc: float | None = None
    params: int | None = None
    macs: float | None = None
    acs: float | None = None
    train_time_s: float | None = None
    samples_per_s: float | None = None
    epochs: int | None = None
    error: str | None = None
    traceback: str | None = None
    table: str | None = None
    overrides: list[str] = field(default_factory=list)
    run_dir: str | None = None
    csv_log: str | None = "csv/metrics.csv"
    test_ckpt: str | None = None
    resumed_from: str | None = None
    bad_files: list[str] = field(default_factory=list)
    skipped_steps: int | None = None
    # provenance
    git_rev: str | None = None
    git_dirty: bool | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    device: str | None = None
    cuda: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        """The JSON object written to metrics.json (``extra`` merged in at the top level)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name != "extra":
                out[JSON_KEYS.get(f.name, f.name)] = getattr(self, f.name)
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """A record from a metrics.json object; unknown keys go to ``extra``. Raises ``ValueError``
        if ``model``, ``data`` or ``seed`` is missing."""
        names = {JSON_KEYS.get(f.name, f.name): f.name for f in dataclasses.fields(cls) if f.name != "extra"}
        missing = [key for key in ("model", "data", "seed") if key not in data]
        if missing:
            raise ValueError(f"not a liafnet run record: keys {missing} missing")
        known = {names[k]: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        return cls(**known, extra=extra)

    @classmethod
    def read(cls, path: str | os.PathLike) -> RunRecord:
        """Read ``path`` (a metrics.json file, or a run folder holding one). Raises ``OSError`` if
        it cannot be read and ``ValueError`` (naming the file) if it is not a run record."""
        path = Path(path)
        if path.is_dir():
            path = path / METRICS_FILE
        try:
            return cls.from_json(json.loads(path.read_text()))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None

    def write(self, path: str | os.PathLike, rank: int = 0) -> Path | None:
        """Write atomically to ``path`` (a file, or a run folder) when ``rank`` is 0; other ranks
        write nothing and get ``None``."""
        if rank != 0:
            return None
        path = Path(path)
        if path.is_dir() or path.suffix != ".json":
            path = path / METRICS_FILE
        return atomic_write_json(path, self.to_json())

    # ------------------------------------------------------------------ access
    def get(self, key: str, default: Any = None) -> Any:
        """The value of a JSON key (``"test/acc"``, ``"params"``, or an ``extra`` key)."""
        for f in dataclasses.fields(self):
            if JSON_KEYS.get(f.name, f.name) == key and f.name != "extra":
                return getattr(self, f.name)
        return self.extra.get(key, default)

    @property
    def finished(self) -> bool:
        """True when the run ended with ``status == "ok"``."""
        return self.status == "ok"


def read_finished(path: str | os.PathLike) -> RunRecord | None:
    """The record at ``path`` if it exists, parses and says ``ok``; else ``None``."""
    try:
        record = RunRecord.read(path)
    except (OSError, ValueError):
        return None
    return record if record.finished else None


# ---------------------------------------------------------------------- provenance
def git_state(where: str | os.PathLike | None = None) -> tuple[str | None, bool | None]:
    """``(short revision, dirty)`` of the git tree holding ``where`` (default: this package), or
    ``(None, None)`` outside a git checkout (an installed wheel) or without git."""
    cwd = Path(where) if where is not None else Path(__file__).parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5)
        if rev.returncode != 0:
            return None, None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() or None, bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None, None


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries a result depends on (``None`` for one that is not installed)."""
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("liafnet", "torch", "lightning", "hydra-core", "omegaconf", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info(accelerator: str | None = None) -> tuple[str, str | None]:
    """``(device description, CUDA version)``: the GPU name when CUDA is available and the run
    is not forced onto the CPU, else the CPU; the CUDA version torch was built with (``None`` for a
    CPU build)."""
    import torch

    cuda = torch.version.cuda
    if torch.cuda.is_available() and accelerator not in ("cpu",):
        return f"cuda:{torch.cuda.get_device_name(0)}", cuda
    return f"cpu:{platform.processor() or platform.machine()}", cuda
