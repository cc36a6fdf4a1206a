"""Runs on disk: every run record (``metrics.json``, :class:`liafnet.record.RunRecord`) under a
sweep dir, with the job's ``.hydra/`` files beside it.

Runs are identified by their contents, never by folder names. A run attribute is looked up in the
record, then in its stored config, then in the job's ``.hydra/config.yaml``, then in the
config-group choices Hydra recorded (:meth:`Run.lookup`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import yaml

from liafnet.record import METRICS_FILE, RunRecord


def dotted(tree: Any, key: str) -> Any:
    """``tree['a']['b']`` for key ``a.b``; ``None`` when any part is absent."""
    for part in key.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _is_scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, (Mapping, list, tuple))


def _as_omegaconf(tree: Mapping):
    from omegaconf import OmegaConf

    try:
        return OmegaConf.create(dict(tree))
    except Exception:  # omegaconf rejects some keys/values; such a tree is just not searchable
        return None


def _select(tree, key: str) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if tree is None:
        return None
    try:
        value = OmegaConf.select(tree, key, default=None, throw_on_resolution_failure=False)
    except Exception:  # a malformed key or an interpolation error inside omegaconf
        return None
    return None if isinstance(value, (DictConfig, ListConfig)) else value


@dataclass
class Run:
    """One job: its run record plus, on demand, the ``.hydra/`` files beside it."""

    path: Path  # the metrics.json file
    record: RunRecord | None  # None when the file could not be read as a run record
    read_error: str | None = None  # why it could not (a job killed while writing, say)
    label: str = ""  # the run dir relative to the sweep dir, for notes

    def __post_init__(self) -> None:
        self.label = self.label or str(self.path.parent)

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @cached_property
    def _config_trees(self) -> tuple:
        stored = self.record.config if self.record is not None else None
        trees = [stored, _load_yaml_quietly(self.run_dir / ".hydra" / "config.yaml")]
        return tuple(_as_omegaconf(tree) for tree in trees if isinstance(tree, Mapping))

    @cached_property
    def _hydra_choices(self) -> Mapping:
        hydra_yaml = _load_yaml_quietly(self.run_dir / ".hydra" / "hydra.yaml") or {}
        return dotted(hydra_yaml, "hydra.runtime.choices") or {}

    def lookup(self, key: str) -> Any:
        """A run attribute: the record's own key (``test/acc``, ``params``, or a key a newer writer
        or a callback added), else its ``config``, else the job's
        ``.hydra/config.yaml``, else the config-group choice Hydra recorded (``model`` -> ``liaf``).
        Only scalars count, so ``model`` never resolves to the model's config node; interpolations
        that cannot be resolved outside the run (``${hydra:...}``) count as absent."""
        own = self.record.get(key) if self.record is not None else None
        if _is_scalar(own):
            return own
        for tree in self._config_trees:
            value = _select(tree, key)
            if _is_scalar(value):
                return value
        choice = self._hydra_choices.get(key)
        return choice if _is_scalar(choice) else None

    @property
    def status(self) -> str:
        if self.record is None:
            return "unreadable"
        return str(self.record.status)

    def number(self, key: str) -> float | None:
        """A finite numeric value of ``key`` or ``None``."""
        value = self.lookup(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value) if math.isfinite(value) else None


def _load_yaml_quietly(path: Path) -> Mapping | None:
    """Hydra's saved configs keep ``${...}`` interpolations; plain YAML reading leaves them as
    text, which is fine because only scalar, already-concrete keys are looked up."""
    if not path.is_file():
        return None
    try:
        with path.open() as handle:
            loaded = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError):
        return None
    return loaded if isinstance(loaded, Mapping) else None


def collect_runs(sweep_dir: str | os.PathLike) -> list[Run]:
    """Every run record below ``sweep_dir``, in path order. Unreadable files (a job killed while
    writing, or not a run record) become runs with ``read_error`` set, so they show up as unfinished."""
    sweep_dir = Path(sweep_dir)
    runs = []
    for path in sorted(sweep_dir.rglob(METRICS_FILE)):
        label = path.parent.relative_to(sweep_dir).as_posix()
        try:
            runs.append(Run(path, RunRecord.read(path), label=label))
        except (OSError, ValueError, TypeError, AttributeError) as error:  # TypeError etc.: not an object
            runs.append(Run(path, None, read_error=f"{type(error).__name__}: {error}", label=label))
    return runs

