"""Paper tables from sweeps: gather every ``metrics.json`` under a sweep dir and render Markdown,
LaTeX and CSV beside the paper's numbers.

Aggregation is a pure function of the files on disk: run it mid-sweep, after a crash or twice; the
outputs have fixed names and are replaced atomically. Runs are identified by their contents (and
their job's ``.hydra/`` files), never by folder names. The table layout comes from a ``table_spec``
mapping, usually ``conf/table/<name>.yaml``; see docs/tables.md for its schema.

Command line (composes the same config as the sweep, so pass the same overrides)::

    python -m liafnet.tables table=gesture
    python -m liafnet.tables table=gesture paths.output_dir=outputs/smoke data=synthetic seed=0
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import statistics
import sys
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml
from tabulate import tabulate

from liafnet.io import atomic_write_text

# docs/paper.md §7: wherever the paper's value is unknown, tables say so; they never invent one.
PAPER_UNKNOWN = "not available"
MISSING = "missing"
FAILED = "failed"
UNFINISHED = "unfinished"

CONF_DIR = Path(__file__).resolve().parent / "conf"

_DEFAULT_FIELDS = (
    {"key": "params", "name": "params", "format": "count"},
    {"key": "macs", "name": "MACs", "format": "count"},
    {"key": "acs", "name": "ACs", "format": "count"},
    {"key": "train_time_s", "name": "train time", "format": "seconds"},
)
_FORMATS = ("count", "seconds", "float", "percent")  # percent: a fraction shown x 100, one decimal
_AGGREGATIONS = ("mean", "sum")


class TableSpecError(ValueError):
    """A table spec or paper file is malformed; the message names the key and what to write."""


def norm(value: Any) -> str:
    """Key values are compared as strings, so ``1`` (YAML int) matches ``"1"`` (CLI string)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


# --------------------------------------------------------------------------------------------
# Runs on disk


def _dotted(tree: Any, key: str) -> Any:
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
    """One job: its ``metrics.json`` plus, on demand, the ``.hydra/`` files beside it."""

    path: Path  # the metrics.json file
    metrics: dict
    read_error: str | None = None  # set when metrics.json could not be parsed
    label: str = ""  # the run dir relative to the sweep dir, for notes

    def __post_init__(self) -> None:
        self.label = self.label or str(self.path.parent)

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @cached_property
    def _config_trees(self) -> tuple:
        trees = [self.metrics.get("config"), _load_yaml_quietly(self.run_dir / ".hydra" / "config.yaml")]
        return tuple(_as_omegaconf(tree) for tree in trees if isinstance(tree, Mapping))

    @cached_property
    def _hydra_choices(self) -> Mapping:
        hydra_yaml = _load_yaml_quietly(self.run_dir / ".hydra" / "hydra.yaml") or {}
        return _dotted(hydra_yaml, "hydra.runtime.choices") or {}

    def lookup(self, key: str) -> Any:
        """A run attribute: metrics.json's own key, else its ``config``, else the job's
        ``.hydra/config.yaml``, else the config-group choice Hydra recorded (``model`` -> ``liaf``).
        Only scalars count, so ``model`` never resolves to the model's config node; interpolations
        that cannot be resolved outside the run (``${hydra:...}``) count as absent."""
        if key in self.metrics and _is_scalar(self.metrics[key]):
            return self.metrics[key]
        for tree in self._config_trees:
            value = _select(tree, key)
            if _is_scalar(value):
                return value
        choice = self._hydra_choices.get(key)
        return choice if _is_scalar(choice) else None

    @property
    def status(self) -> str:
        if self.read_error is not None:
            return "unreadable"
        return str(self.metrics.get("status", "missing status"))

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
    """Every ``metrics.json`` below ``sweep_dir``, in path order. Unreadable files (a job killed
    while writing) become runs with ``read_error`` set, so they show up as unfinished."""
    sweep_dir = Path(sweep_dir)
    runs = []
    for path in sorted(sweep_dir.rglob("metrics.json")):
        label = path.parent.relative_to(sweep_dir).as_posix()
        try:
            with path.open() as handle:
                metrics = json.load(handle)
            if not isinstance(metrics, dict):
                raise ValueError("top level is not a JSON object")
            runs.append(Run(path, metrics, label=label))
        except (OSError, ValueError) as error:
            runs.append(Run(path, {}, read_error=f"{type(error).__name__}: {error}", label=label))
    return runs


# --------------------------------------------------------------------------------------------
# Spec


@dataclass(frozen=True)
class Axis:
    """Rows or columns of a table: which run key they group by, their order and display names."""

    key: str
    label: str
    order: tuple[str, ...] = ()
    names: Mapping[str, str] = field(default_factory=dict)

    def display(self, value: str) -> str:
        return self.names.get(value, value)


@dataclass(frozen=True)
class FieldSpec:
    key: str
    name: str
    format: str = "float"
    agg: str = "mean"


@dataclass(frozen=True)
class Reference:
    """A column of published anchor numbers that are not the paper's (e.g. bAbI's FB LSTM)."""

    name: str
    source: str
    values: Mapping[str, float | None]


@dataclass(frozen=True)
class Claim:
    """A comparison the table checks: ``column``'s mean over rows against the best of ``against``."""

    text: str
    column: str
    against: tuple[str, ...]
    tolerance: float  # points the column may trail the best and still count as met


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    metric: str
    scale: float
    digits: int
    rows: Axis
    columns: Axis | None
    seed_key: str
    grid: Mapping[str, tuple[str, ...]]
    paper: Mapping[str, Any] | None  # row -> {value, source} or row -> col -> {value, source}
    paper_name: str | None
    references: tuple[Reference, ...]
    fields: tuple[FieldSpec, ...]
    summary_mean: bool
    pass_threshold: float | None
    plots: tuple[str, ...]
    # A smoke run (tiny data and budget): the paper column stays for orientation, no "ours - paper".
    smoke: bool = False
    claim: Claim | None = None
    # The training recipe of the table's runs and its source, printed under the title.
    recipe: str | None = None

    @property
    def identity_keys(self) -> tuple[str, ...]:
        """Keys that make two runs the same experiment (duplicates if they agree on all)."""
        keys = [self.rows.key] + ([self.columns.key] if self.columns else [])
        keys += ["model", "data", self.seed_key]
        return tuple(dict.fromkeys(keys))

    @classmethod
    def from_dict(
        cls,
        spec: Mapping[str, Any],
        paper_dir: str | os.PathLike | None = None,
        grid: Mapping[str, Sequence[Any]] | None = None,
    ) -> "TableSpec":
        """Validate a ``table_spec`` mapping. ``grid`` (e.g. from the sweeper) fills keys that the
        spec's own ``grid`` does not set. Paper numbers: ``paper: <name>`` reads
        ``<paper_dir>/<name>.yaml``; a mapping is used as the paper file's contents."""
        where = f"table_spec {spec.get('name', '?')!r}"
        _require(spec, ("name", "rows"), where)
        unknown = set(spec) - {
            "name", "title", "metric", "scale", "digits", "rows", "columns", "seed_key", "grid",
            "paper", "paper_key", "fields", "summary", "plots", "smoke", "claim", "recipe",
        }
        if unknown:
            raise TableSpecError(f"{where}: unknown keys {sorted(unknown)}; see docs/tables.md")
        rows = _axis(spec["rows"], f"{where}.rows")
        columns = _axis(spec["columns"], f"{where}.columns") if spec.get("columns") else None
        merged_grid = {key: tuple(norm(v) for v in values) for key, values in (grid or {}).items()}
        for key, values in (spec.get("grid") or {}).items():
            if not isinstance(values, (list, tuple)):
                raise TableSpecError(f"{where}.grid.{key}: expected a list of values, got {values!r}")
            merged_grid[key] = tuple(norm(v) for v in values)

        paper, paper_name, references = None, None, ()
        if spec.get("paper") is not None:
            paper_file, paper_name = _load_paper(spec["paper"], paper_dir, where)
            paper_key = spec.get("paper_key", "values")
            paper = paper_file.get(paper_key)
            if not isinstance(paper, Mapping):
                raise TableSpecError(
                    f"paper file {paper_name!r}: key {paper_key!r} must map row values to "
                    f"{{value, source}} entries"
                )
            paper = {norm(k): v for k, v in paper.items()}
            references = tuple(_reference(r, f"paper file {paper_name!r}")
                               for r in paper_file.get("references") or ())

        summary = spec.get("summary") or {}
        if not isinstance(summary, Mapping):
            raise TableSpecError(f"{where}.summary: expected a mapping with mean/pass_threshold")
        fields = tuple(_field(f, f"{where}.fields") for f in spec.get("fields", _DEFAULT_FIELDS))
        plots = tuple(spec.get("plots", ("params", "ops", "curves")))
        bad_plots = set(plots) - {"params", "ops", "macs", "acs", "curves", "frames"}
        if bad_plots:
            raise TableSpecError(
                f"{where}.plots: unknown {sorted(bad_plots)}; choose from params ops macs acs curves frames"
            )
        smoke = spec.get("smoke", False)
        if not isinstance(smoke, bool):
            raise TableSpecError(f"{where}.smoke: expected true or false, got {smoke!r}")
        title = str(spec.get("title", spec["name"]))
        return cls(
            name=str(spec["name"]),
            title=f"SMOKE RUN, not comparable with the paper: {title}" if smoke else title,
            metric=str(spec.get("metric", "test/acc")),
            scale=float(spec.get("scale", 100.0)),
            digits=int(spec.get("digits", 1)),
            rows=rows,
            columns=columns,
            seed_key=str(spec.get("seed_key", "seed")),
            grid=merged_grid,
            paper=paper,
            paper_name=paper_name,
            references=references,
            fields=fields,
            summary_mean=bool(summary.get("mean", False)),
            pass_threshold=(None if summary.get("pass_threshold") is None
                            else float(summary["pass_threshold"])),
            plots=plots,
            smoke=smoke,
            claim=None if spec.get("claim") is None else _claim(spec["claim"], columns, f"{where}.claim"),
            recipe=None if spec.get("recipe") is None else " ".join(str(spec["recipe"]).split()),
        )

    def paper_entry(self, row: str, col: str | None) -> tuple[float | None, str | None]:
        """The paper's number for a cell and its source; ``(None, source)`` when unknown."""
        if self.paper is None:
            return None, None
        entry = self.paper.get(row)
        if self.columns is not None and isinstance(entry, Mapping) and "value" not in entry:
            entry = {norm(k): v for k, v in entry.items()}.get(col)
        if entry is None:
            return None, None
        if not isinstance(entry, Mapping) or "value" not in entry:
            raise TableSpecError(
                f"paper file {self.paper_name!r}, entry {row!r}: expected {{value: <number or null>, "
                f"source: <text>}}, got {entry!r}"
            )
        value = entry["value"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TableSpecError(f"paper file {self.paper_name!r}, entry {row!r}: value {value!r} "
                                 "is not a number or null")
        return (None if value is None else float(value)), entry.get("source")


def _require(mapping: Mapping, keys: Iterable[str], where: str) -> None:
    if not isinstance(mapping, Mapping):
        raise TableSpecError(f"{where}: expected a mapping, got {type(mapping).__name__}")
    for key in keys:
        if mapping.get(key) is None:
            raise TableSpecError(f"{where}: missing required key {key!r}; see docs/tables.md")


def _axis(raw: Any, where: str) -> Axis:
    if isinstance(raw, str):
        raw = {"key": raw}
    _require(raw, ("key",), where)
    order = raw.get("order") or ()
    names = raw.get("names") or {}
    if not isinstance(order, (list, tuple)) or not isinstance(names, Mapping):
        raise TableSpecError(f"{where}: order must be a list and names a mapping")
    return Axis(
        key=str(raw["key"]),
        label=str(raw.get("label", raw["key"])),
        order=tuple(norm(v) for v in order),
        names={norm(k): str(v) for k, v in names.items()},
    )


def _field(raw: Any, where: str) -> FieldSpec:
    if isinstance(raw, str):
        raw = {"key": raw}
    _require(raw, ("key",), where)
    spec = FieldSpec(key=str(raw["key"]), name=str(raw.get("name", raw["key"])),
                     format=str(raw.get("format", "float")), agg=str(raw.get("agg", "mean")))
    if spec.format not in _FORMATS:
        raise TableSpecError(f"{where}.{spec.key}.format: {spec.format!r} not in {_FORMATS}")
    if spec.agg not in _AGGREGATIONS:
        raise TableSpecError(f"{where}.{spec.key}.agg: {spec.agg!r} not in {_AGGREGATIONS}")
    return spec


def _claim(raw: Any, columns: Axis | None, where: str) -> Claim:
    _require(raw, ("text", "column", "against"), where)
    if columns is None:
        raise TableSpecError(f"{where}: a claim compares columns; the table has none")
    against = raw["against"]
    if not isinstance(against, (list, tuple)) or not against:
        raise TableSpecError(f"{where}.against: expected a non-empty list of column values, got {against!r}")
    named = [norm(raw["column"])] + [norm(v) for v in against]
    unknown = [v for v in named if columns.order and v not in columns.order]
    if unknown:
        raise TableSpecError(f"{where}: {unknown} are not columns of the table ({list(columns.order)})")
    tolerance = raw.get("tolerance", 0)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise TableSpecError(f"{where}.tolerance: expected a number >= 0, got {tolerance!r}")
    return Claim(text=str(raw["text"]), column=named[0], against=tuple(named[1:]), tolerance=float(tolerance))


def _reference(raw: Any, where: str) -> Reference:
    _require(raw, ("name", "source", "values"), f"{where}.references")
    values = {}
    for key, value in raw["values"].items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TableSpecError(f"{where}.references[{raw['name']}].{key}: {value!r} is not a number")
        values[norm(key)] = None if value is None else float(value)
    return Reference(name=str(raw["name"]), source=str(raw["source"]), values=values)


def _load_paper(paper: Any, paper_dir: str | os.PathLike | None, where: str) -> tuple[Mapping, str]:
    if isinstance(paper, Mapping):
        return paper, str(paper.get("title", "inline"))
    paper_dir = Path(paper_dir) if paper_dir is not None else CONF_DIR / "paper"
    path = paper_dir / f"{paper}.yaml"
    if not path.is_file():
        raise TableSpecError(f"{where}.paper: {path} does not exist; create it (see docs/tables.md) "
                             "or set paper: null")
    try:
        with path.open() as handle:
            loaded = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise TableSpecError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(loaded, Mapping):
        raise TableSpecError(f"{path}: expected a mapping at the top level")
    return loaded, str(paper)


# --------------------------------------------------------------------------------------------
# Aggregation


@dataclass
class Cell:
    """All runs of one (row, column) cell and what they add up to."""

    row: str
    col: str | None
    runs: list[Run] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # scaled metric of every ok run
    n_failed: int = 0
    n_unfinished: int = 0
    n_missing: int = 0
    n_duplicates: int = 0
    problems: list[str] = field(default_factory=list)  # one line per failed/unfinished run
    ok_runs: list[Run] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n - 1); ``None`` for fewer than two runs."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def field_value(self, key: str, agg: str = "mean") -> float | None:
        """``key`` (e.g. params) over the finished runs: their mean or sum."""
        return field_value(self.ok_runs, key, agg)

    @property
    def state(self) -> str | None:
        """Why there is no number: failed beats unfinished beats missing."""
        if self.values:
            return None
        if self.n_failed:
            return FAILED
        if self.n_unfinished:
            return UNFINISHED
        return MISSING


def field_value(runs: Iterable[Run], key: str, agg: str = "mean") -> float | None:
    values = [v for v in (run.number(key) for run in runs) if v is not None]
    if not values:
        return None
    return statistics.fmean(values) if agg == "mean" else math.fsum(values)


@dataclass
class Table:
    spec: TableSpec
    rows: list[str]
    cols: list[str | None]
    cells: dict[tuple[str, str | None], Cell]
    runs: list[Run]
    notes: list[str]
    duplicates: list[tuple[tuple[str, ...], list[str]]]  # identity, run labels

    def cell(self, row: str, col: str | None = None) -> Cell:
        return self.cells[(row, col)]


def _ordered(order: Sequence[str], expected: Sequence[str] | None, observed: Iterable[str]) -> list[str]:
    """Values to show: the expected ones (the grid's, else the spec's order) and every observed one;
    the spec's order first, then the grid's, then runs outside the grid, sorted."""
    observed = sorted(set(observed), key=_natural_key)
    expected = list(order) if expected is None else list(expected)
    shown = set(expected) | set(observed)
    return list(dict.fromkeys(v for v in [*order, *expected, *observed] if v in shown))


def _natural_key(value: str) -> tuple:
    """Sort 2 before 10 when values are numbers."""
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def aggregate(spec: TableSpec, runs: Sequence[Run]) -> Table:
    """Group runs into cells, classify them and compute the statistics."""
    notes: list[str] = []
    grouped: dict[tuple[str, str | None], list[Run]] = {}
    for run in runs:
        row_value = run.lookup(spec.rows.key)
        col_value = run.lookup(spec.columns.key) if spec.columns else None
        if row_value is None or (spec.columns and col_value is None):
            if run.read_error is not None:
                notes.append(f"unreadable, not placed in the table: {run.label} ({run.read_error})")
            else:
                keys = spec.rows.key + (f", {spec.columns.key}" if spec.columns else "")
                notes.append(f"run without {keys}, not placed in the table: {run.label}")
            continue
        key = (norm(row_value), None if col_value is None else norm(col_value))
        grouped.setdefault(key, []).append(run)

    expected_rows = spec.grid.get(spec.rows.key)
    rows = _ordered(spec.rows.order, expected_rows, (k[0] for k in grouped))
    if spec.columns:
        expected_cols = spec.grid.get(spec.columns.key)
        cols: list[str | None] = list(
            _ordered(spec.columns.order, expected_cols, (k[1] for k in grouped)))
    else:
        expected_cols, cols = None, [None]

    outside = sorted({k for k in grouped
                      if (expected_rows is not None and k[0] not in expected_rows)
                      or (expected_cols is not None and k[1] not in expected_cols)},
                     key=lambda k: (_natural_key(k[0]), _natural_key(k[1] or "")))
    for row, col in outside:
        where = spec.rows.display(row) + (f" / {spec.columns.display(col)}" if col else "")
        notes.append(f"{where}: runs outside the sweep grid ({len(grouped[(row, col)])})")

    expected_seeds = spec.grid.get(spec.seed_key)
    cells = {}
    for row in rows:
        for col in cols:
            cells[(row, col)] = _make_cell(spec, row, col, grouped.get((row, col), []), expected_seeds)

    duplicates = _find_duplicates(spec, runs)
    return Table(spec, rows, cols, cells, list(runs), notes, duplicates)


def _make_cell(spec: TableSpec, row: str, col: str | None, runs: list[Run],
               expected_seeds: Sequence[str] | None) -> Cell:
    cell = Cell(row, col, runs=runs)
    for run in runs:
        status = run.status
        if status == "ok":
            value = run.number(spec.metric)
            if value is None:
                cell.n_failed += 1
                cell.problems.append(f"{run.label}: status ok but no numeric {spec.metric!r}")
            else:
                cell.values.append(value * spec.scale)
                cell.ok_runs.append(run)
        elif status == "failed":
            cell.n_failed += 1
            error = str(run.metrics.get("error") or "no error message").strip().splitlines() or [""]
            cell.problems.append(f"{run.label}: failed: {error[-1][:200]}")
        elif status in ("running", "unreadable"):
            cell.n_unfinished += 1
            reason = run.read_error or "status running (still running, or killed)"
            cell.problems.append(f"{run.label}: unfinished: {reason}")
        else:
            cell.n_failed += 1
            cell.problems.append(f"{run.label}: unknown status {status!r}")
    seeds = {norm(s) for s in (run.lookup(spec.seed_key) for run in runs) if s is not None}
    if expected_seeds is not None:
        cell.n_missing = len(set(expected_seeds) - seeds)
    elif not runs:
        cell.n_missing = 1
    identities = [tuple(norm(run.lookup(k)) for k in spec.identity_keys) for run in runs]
    cell.n_duplicates = len(identities) - len(set(identities))
    return cell


def _find_duplicates(spec: TableSpec, runs: Sequence[Run]) -> list[tuple[tuple[str, ...], list[str]]]:
    by_identity: dict[tuple[str, ...], list[str]] = {}
    for run in runs:
        if run.read_error is None:
            identity = tuple(norm(run.lookup(k)) for k in spec.identity_keys)
            by_identity.setdefault(identity, []).append(run.label)
    return [(identity, paths) for identity, paths in sorted(by_identity.items()) if len(paths) > 1]


# --------------------------------------------------------------------------------------------
# Rendering: every cell is a (markdown, latex) pair


@dataclass(frozen=True)
class Text:
    md: str
    tex: str

    @classmethod
    def plain(cls, text: str) -> "Text":
        return cls(text, latex_escape(text))


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "−": r"$-$", "≥": r"$\geq$", "×": r"$\times$", "–": "--",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials in names (tabulate's latex_raw leaves cells untouched)."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def format_stat(mean: float, std: float | None, digits: int) -> Text:
    """``mean ± std``, or the value alone for a single run."""
    if std is None:
        text = _number(mean, digits)
        return Text(text, f"${text}$")
    return Text(f"{_number(mean, digits)} ± {_number(std, digits)}",
                f"${_number(mean, digits)} \\pm {_number(std, digits)}$")


def format_count(value: float) -> str:
    """Counts with SI suffixes, three significant digits (2,322,891 -> 2.32M)."""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.0f}"


def format_seconds(value: float) -> str:
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _format_field(value: float | None, spec: FieldSpec) -> Text:
    if value is None:
        return Text("", "")
    if spec.format == "count":
        return Text.plain(format_count(value))
    if spec.format == "seconds":
        return Text.plain(format_seconds(value))
    if spec.format == "percent":
        return Text.plain(f"{100 * value:.1f}")
    return Text.plain(f"{value:.3g}")


def _counts(cell: Cell, with_ok: bool = False, with_n: bool = False) -> list[str]:
    """Non-zero run counts of a cell: ``["2 ok", "1 failed", "1 missing"]`` (or ``n=2`` first)."""
    parts = [f"{cell.n} ok"] if with_ok and cell.n else []
    parts += [f"n={cell.n}"] if with_n and cell.n else []
    parts += [f"{count} {label}" for count, label in (
        (cell.n_failed, FAILED), (cell.n_unfinished, UNFINISHED), (cell.n_missing, MISSING),
        (cell.n_duplicates, "duplicate")) if count]
    return parts


def _runs_text(cell: Cell) -> str:
    return ", ".join(_counts(cell, with_ok=True)) or MISSING


def _ours(cell: Cell, digits: int, wide: bool) -> Text:
    """The measured number of a cell. Long tables have n and runs columns; in wide tables the run
    accounting rides along in the cell, e.g. ``71.2 ± 0.4 (n=2, 1 failed)`` or ``3 failed``."""
    if cell.mean is None:
        if not wide or cell.state == MISSING:
            return Text.plain(cell.state or MISSING)
        return Text.plain(", ".join(_counts(cell)))
    stat = format_stat(cell.mean, cell.std, digits)
    extra = _counts(cell, with_n=cell.n > 1) if wide else []
    if not extra:
        return stat
    suffix = f" ({', '.join(extra)})"
    return Text(stat.md + suffix, stat.tex + latex_escape(suffix))


def _paper_text(value: float | None, digits: int) -> Text:
    if value is None:
        return Text.plain(PAPER_UNKNOWN)
    text = _number(value, digits)
    return Text(text, f"${text}$")


def _diff_text(ours: float | None, paper: float | None, digits: int) -> Text:
    if ours is None or paper is None:
        return Text("", "")
    text = f"{ours - paper:+.{digits}f}"
    return Text(text, f"${text}$")


@dataclass
class _Column:
    """A rendered column: header, a cell per table row, and (for summary rows) its numbers."""

    header: str
    cells: list[Text]
    numbers: list[float | None] | None = None  # set for metric columns; summary rows use them
    unknown: str = MISSING  # what a summary says when the column has no number at all


def build_columns(table: Table) -> list[_Column]:
    spec, digits = table.spec, table.spec.digits
    rows = table.rows
    columns: list[_Column] = []
    wide = spec.columns is not None

    def paper_numbers(col: str | None) -> list[float | None]:
        return [spec.paper_entry(row, col)[0] for row in rows]

    for col in table.cols:
        cells = [table.cell(row, col) for row in rows]
        header = spec.columns.display(col) if wide else "ours"
        columns.append(_Column(header, [_ours(c, digits, wide) for c in cells], [c.mean for c in cells]))
        if not wide:
            columns.append(_Column("n", [Text.plain(str(c.n)) for c in cells]))
    if spec.paper is not None:
        for col in table.cols:
            papers = paper_numbers(col)
            header = f"{spec.columns.display(col)} (paper)" if wide else "paper"
            columns.append(_Column(header, [_paper_text(p, digits) for p in papers], papers, PAPER_UNKNOWN))
            if any(p is not None for p in papers) and not spec.smoke:
                ours = [table.cell(row, col).mean for row in rows]
                header = f"{spec.columns.display(col)} − paper" if wide else "ours − paper"
                columns.append(_Column(header, [_diff_text(o, p, digits) for o, p in zip(ours, papers)]))
    for reference in spec.references:
        numbers = [reference.values.get(row) for row in rows]
        columns.append(_Column(reference.name, [_paper_text(v, digits) for v in numbers], numbers, PAPER_UNKNOWN))
    for field_spec in spec.fields:
        values = [field_value([run for col in table.cols for run in table.cell(row, col).ok_runs],
                              field_spec.key, field_spec.agg) for row in rows]
        if any(v is not None for v in values):
            columns.append(_Column(field_spec.name, [_format_field(v, field_spec) for v in values]))
    if not wide:
        columns.append(_Column("runs", [Text.plain(_runs_text(table.cell(row))) for row in rows]))
    return columns


def _summary_rows(table: Table, columns: list[_Column]) -> list[list[Text]]:
    spec, summary = table.spec, []
    if spec.summary_mean:
        line = [Text.plain("mean")]
        for column in columns:
            if column.numbers is None:
                line.append(Text("", ""))
                continue
            present = [v for v in column.numbers if v is not None]
            if not present:
                line.append(Text.plain(column.unknown))
                continue
            text = _number(statistics.fmean(present), spec.digits)
            suffix = f" ({len(present)}/{len(column.numbers)} rows)" if len(present) < len(column.numbers) else ""
            line.append(Text(text + suffix, f"${text}$" + latex_escape(suffix)))
        summary.append(line)
    if spec.pass_threshold is not None:
        unit = "%" if spec.scale == 100 else ""
        line = [Text.plain(f"passed (≥ {spec.pass_threshold:g}{unit})")]
        for column in columns:
            if column.numbers is None:
                line.append(Text("", ""))
            elif all(v is None for v in column.numbers) and column.unknown == PAPER_UNKNOWN:
                line.append(Text.plain(PAPER_UNKNOWN))
            else:
                passed = sum(1 for v in column.numbers if v is not None and v >= spec.pass_threshold)
                line.append(Text.plain(f"{passed}/{len(column.numbers)}"))
        summary.append(line)
    return summary


def _grid_rows(table: Table) -> tuple[list[Text], list[list[Text]], list[list[Text]]]:
    """Headers, one line per table row, and the summary lines."""
    columns = build_columns(table)
    first = Text.plain(table.spec.rows.label)
    headers = [first] + [Text.plain(c.header) for c in columns]
    body = [[Text.plain(table.spec.rows.display(row))] + [c.cells[i] for c in columns]
            for i, row in enumerate(table.rows)]
    return headers, body, _summary_rows(table, columns)


def claim_check(table: Table) -> str | None:
    """One line saying whether the spec's claim holds on the table's mean over rows (None: no claim)."""
    claim, spec = table.spec.claim, table.spec
    if claim is None:
        return None
    means, missing = {}, []
    for col in (claim.column,) + claim.against:
        values = [table.cell(row, col).mean for row in table.rows]
        if any(v is None for v in values):
            missing.append(spec.columns.display(col))
        else:
            means[col] = statistics.fmean(values)
    head = f"Claim check ({claim.text})"
    if missing:
        return f"{head}: not checked, {', '.join(missing)} lack results in some rows."
    best = max(claim.against, key=means.__getitem__)
    diff = means[claim.column] - means[best]
    met = diff >= -claim.tolerance
    others = " and ".join(spec.columns.display(c) for c in claim.against)
    return (f"{head}: {spec.columns.display(claim.column)} {_number(means[claim.column], spec.digits)} vs "
            f"{spec.columns.display(best)} {_number(means[best], spec.digits)}, the better of {others}: "
            f"{diff:+.{spec.digits}f} points (allowed: {-claim.tolerance:+g}), "
            + ("**met**." if met else "**NOT met**."))


def _notes(table: Table) -> list[str]:
    spec = table.spec
    lines = []
    if spec.claim is not None:
        lines.append(claim_check(table))
    n_text = "over seeds; n = finished runs" if spec.columns is None else "over seeds (n shown when > 1)"
    if spec.smoke:
        lines.append("Smoke run: tiny data (synthetic stand-in or a few bAbI tasks) and a budget of a few "
                     "batches; it checks the pipeline end to end, its numbers say nothing about the paper.")
    lines.append(f"Ours: {spec.metric} × {spec.scale:g}, mean ± sample std (n − 1) {n_text}; "
                 "a single run shows its value alone.")
    if spec.paper is not None:
        sources = {}
        for row in table.rows:
            for col in table.cols:
                value, source = spec.paper_entry(row, col)
                if value is not None:
                    label = spec.rows.display(row) + (f" / {spec.columns.display(col)}" if col else "")
                    sources.setdefault(source or "no source given", []).append(label)
        for source, labels in sources.items():
            lines.append(f"Paper ({', '.join(labels)}): {source}")
        lines.append(f'Paper values unknown to us print "{PAPER_UNKNOWN}" (see docs/paper.md §7).')
    for reference in spec.references:
        lines.append(f"{reference.name}: {reference.source}")
    problems = [p for row in table.rows for col in table.cols for p in table.cell(row, col).problems]
    lines += problems
    for identity, paths in table.duplicates:
        described = ", ".join(f"{k}={v}" for k, v in zip(spec.identity_keys, identity))
        lines.append(f"duplicate runs ({described}), all counted: " + ", ".join(paths))
    lines += table.notes
    return lines


def render_markdown(table: Table) -> str:
    headers, body, summary = _grid_rows(table)
    text = f"# {table.spec.title}\n\n"
    if table.spec.recipe:
        text += f"{table.spec.recipe}\n\n"
    text += tabulate([[c.md for c in row] for row in body + summary], headers=[h.md for h in headers],
                     tablefmt="github", disable_numparse=True)
    text += "\n\n" + "\n".join(f"- {line}" for line in _notes(table)) + "\n"
    return text


def render_latex(table: Table) -> str:
    headers, body, summary = _grid_rows(table)
    tabular = tabulate([[c.tex for c in row] for row in body + summary], headers=[h.tex for h in headers],
                       tablefmt="latex_raw", disable_numparse=True)
    if summary:  # a rule between the rows and the summary lines (tabular: begin, rule, header, rule)
        lines = tabular.splitlines()
        tabular = "\n".join(lines[:4 + len(body)] + [r"\hline"] + lines[4 + len(body):])
    comments = "".join(f"% {line}\n" for line in [table.spec.title, table.spec.recipe or ""] + _notes(table) if line)
    return comments + tabular + "\n"


def render_csv(table: Table) -> str:
    """One line per cell with raw numbers, for scripts (no formatting, no summary rows)."""
    spec = table.spec
    header = [spec.rows.key] + ([spec.columns.key] if spec.columns else [])
    header += ["mean", "std", "n", "failed", "unfinished", "missing", "duplicates",
               "paper", "paper_source", "diff"] + [f.key for f in spec.fields]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        for col in table.cols:
            cell = table.cell(row, col)
            paper, source = spec.paper_entry(row, col)
            diff = None if cell.mean is None or paper is None or spec.smoke else cell.mean - paper
            line = [row] + ([col] if spec.columns else [])
            line += [_raw(cell.mean), _raw(cell.std), cell.n, cell.n_failed, cell.n_unfinished,
                     cell.n_missing, cell.n_duplicates, _raw(paper), source or "", _raw(diff)]
            line += [_raw(cell.field_value(f.key, f.agg)) for f in spec.fields]
            writer.writerow(line)
    return out.getvalue()


def _raw(value: float | None) -> str:
    return "" if value is None else repr(round(value, 10))


# --------------------------------------------------------------------------------------------
# Files


def write_table(table: Table, out_dir: str | os.PathLike) -> dict[str, Path]:
    """``<out_dir>/<name>.{md,tex,csv}``; returns the paths."""
    out_dir = Path(out_dir)
    paths = {}
    for suffix, render in (("md", render_markdown), ("tex", render_latex), ("csv", render_csv)):
        paths[suffix] = out_dir / f"{table.spec.name}.{suffix}"
        atomic_write_text(paths[suffix], render(table))
    return paths


def build_table(spec: TableSpec | Mapping[str, Any], sweep_dir: str | os.PathLike,
                out_dir: str | os.PathLike, *, paper_dir: str | os.PathLike | None = None,
                plots: bool = True, dataset=None) -> tuple[Table, dict[str, Path]]:
    """Aggregate ``sweep_dir`` into ``out_dir``: tables, then the plots the spec asks for (a
    ``dataset`` object is needed for the frames strip). The hook for custom tables (e.g. bAbI)."""
    if not isinstance(spec, TableSpec):
        spec = TableSpec.from_dict(spec, paper_dir=paper_dir)
    sweep_dir = Path(sweep_dir)
    runs = collect_runs(sweep_dir) if sweep_dir.is_dir() else []
    table = aggregate(spec, runs)
    if not sweep_dir.is_dir():
        table.notes.append(f"sweep dir {sweep_dir} does not exist yet: every cell is missing")
    for duplicate, paths in table.duplicates:
        warnings.warn(f"{spec.name}: duplicate runs {duplicate} in {sweep_dir}: {paths}", stacklevel=2)
    paths = write_table(table, out_dir)
    if plots:
        from liafnet import viz  # matplotlib is only needed for plots

        paths.update(viz.plot_table(table, out_dir, dataset=dataset))
    return table, paths


# --------------------------------------------------------------------------------------------
# Command line


def sweep_grid(params: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, list[Any]]:
    """The values each key takes in a basic-sweeper multirun: ``hydra.sweeper.params`` first,
    then the command line, later entries winning (as hydra's BasicSweeper does)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    grid: dict[str, list[Any]] = {}
    parsed = parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + list(overrides))
    for override in parsed:
        key = override.get_key_element().lstrip("+~")
        if override.is_sweep_override():
            grid[key] = list(override.sweep_iterator())
        else:
            grid[key] = [override.value()]
    return grid


def compose_train_config(overrides: Sequence[str], config_dir: str | os.PathLike = CONF_DIR):
    """Compose ``train.yaml`` like the sweep did (sweeps collapsed to their first value)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    plain = []
    for text, override in zip(overrides, OverridesParser.create().parse_overrides(list(overrides))):
        if override.is_sweep_override():
            first = next(iter(override.sweep_string_iterator()))
            plain.append(f"{override.get_key_element()}={first}")
        else:
            plain.append(text)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
        return compose("train", overrides=plain, return_hydra_config=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m liafnet.tables",
        description="Aggregate a table's sweep (metrics.json files) into Markdown/LaTeX/CSV and plots. "
                    "Pass the same Hydra overrides as the sweep (at least table=<name>).")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. table=gesture seed=0")
    parser.add_argument("--sweep-dir", help="read runs here instead of the config's hydra.sweep.dir")
    parser.add_argument("--out", help="write here instead of <paths.output_dir>/tables")
    parser.add_argument("--config-dir", default=str(CONF_DIR), help="Hydra config dir (default: %(default)s)")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    parser.add_argument("--check-data", action="store_true",
                        help="only check that data.root exists; exit 1 if not (used by `make tables`)")
    args = parser.parse_intermixed_args(argv)
    if not any(o.split("=", 1)[0].lstrip("+") == "table" for o in args.overrides):
        parser.error("name the table: python -m liafnet.tables table=<name> (see conf/table/)")

    from omegaconf import OmegaConf

    cfg = compose_train_config(args.overrides, args.config_dir)
    if args.check_data:
        root = OmegaConf.select(cfg, "data.root")
        present = root is not None and Path(root).is_dir() and any(Path(root).iterdir())
        print(f"{cfg.data.name}: data {'found' if present else 'not found'} at {root}")
        return 0 if present else 1
    if OmegaConf.select(cfg, "table_spec") is None:
        print(f"config has no table_spec; is {args.overrides} selecting a conf/table file?", file=sys.stderr)
        return 2
    raw_spec = OmegaConf.to_container(cfg.table_spec, resolve=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True) or {}
    spec = TableSpec.from_dict(raw_spec, paper_dir=Path(args.config_dir) / "paper",
                               grid=sweep_grid(params, args.overrides))
    sweep_dir = Path(args.sweep_dir or cfg.hydra.sweep.dir)
    out_dir = Path(args.out or Path(cfg.paths.output_dir) / "tables")
    dataset = None
    if not args.no_plots and "frames" in spec.plots:
        dataset = _frames_dataset(cfg)
    table, paths = build_table(spec, sweep_dir, out_dir, plots=not args.no_plots, dataset=dataset)
    counts = [table.cell(r, c) for r in table.rows for c in table.cols]
    print(f"{spec.name}: {len(table.runs)} runs in {sweep_dir}; cells: "
          f"{sum(c.n > 0 for c in counts)} with results, {sum(c.state == FAILED for c in counts)} failed, "
          f"{sum(c.state == MISSING for c in counts)} missing")
    for path in paths.values():
        print(f"  wrote {path}")
    return 0


def _frames_dataset(cfg):
    """The table's test split for the frames strip; ``None`` (with a message) if it has no data."""
    from hydra.utils import instantiate

    try:
        datamodule = instantiate(cfg.data.datamodule, seed=int(cfg.seed))
        if datamodule.spec.kind != "events":
            return None
        datamodule.prepare_data()  # e.g. generates the synthetic dataset on first use
        return datamodule.dataset_factory(split="test")
    except FileNotFoundError as error:  # DatasetNotFoundError included
        print(f"frames plot skipped: {error}", file=sys.stderr)
        return None


if __name__ == "__main__":
    raise SystemExit(main())
