"""Table specs: the validated form of a ``table_spec`` mapping (usually ``conf/table/<name>.yaml``)
and the paper numbers it is compared with. Schema: docs/tables.md."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

# Wherever the paper's value (or a run's metric) is unknown, tables say so; they never invent one.
PAPER_UNKNOWN = "not available"
# Plots a spec may ask for (liafnet.report.plots): accuracy against a cost, learning curves, the
# dataset's frames, and one line per row with every column's mean ± std (wide tables).
PLOTS = ("params", "ops", "macs", "acs", "curves", "frames", "rows")

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


@dataclass(frozen=True)
class Axis:
    """Rows or columns of a table: which run key they group by, their order and display names."""

    key: str
    label: str
    order: tuple[str, ...] = ()
    names: Mapping[str, str] = field(default_factory=dict)
    # Columns only: the seeds a column expects when they differ from the grid's (an extra column
    # run at fewer seeds), so that its cells say n=1 rather than "2 missing".
    seeds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

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
class Protocol:
    """An evaluation protocol: the run metric it reads, its column name and what it means."""

    metric: str
    name: str
    note: str = ""


@dataclass(frozen=True)
class TableSpec:
    """A validated ``table_spec``. ``title`` may name run keys in braces, e.g. ``(T = {data.time_steps})``:
    the rendered title shows the values the runs recorded (:attr:`Table.title`), so it states what ran."""

    name: str
    title: str
    metric: str  # the primary protocol's metric
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
    # Extra summary lines: (run key, label); each metric column gets the key's mean over rows (scaled).
    summary_fields: tuple[tuple[str, str], ...] = ()
    # A smoke run (tiny data and budget): the paper column stays for orientation, no "ours - paper".
    smoke: bool = False
    claim: Claim | None = None
    # Every protocol shown, the primary (``metric``) first; the paper's numbers follow ``paper_protocol``.
    protocols: tuple[Protocol, ...] = ()
    paper_protocol: str = ""
    recipe: str | None = None  # one line under the title, as written: which training recipe ran, and its source

    def __post_init__(self) -> None:
        if not self.protocols:
            object.__setattr__(self, "protocols", (Protocol(self.metric, "ours"),))
        if not self.paper_protocol:
            object.__setattr__(self, "paper_protocol", self.metric)

    @property
    def secondary(self) -> tuple[Protocol, ...]:
        """The protocols after the primary one."""
        return self.protocols[1:]

    def protocol(self, metric: str) -> Protocol:
        return next(p for p in self.protocols if p.metric == metric)

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
            "paper", "paper_key", "fields", "summary", "plots", "smoke", "claim", "protocols",
            "paper_protocol", "recipe",
        }
        if unknown:
            raise TableSpecError(f"{where}: unknown keys {sorted(unknown)}; see docs/tables.md")
        rows = _axis(spec["rows"], f"{where}.rows")
        if isinstance(spec["rows"], Mapping) and spec["rows"].get("seeds"):
            raise TableSpecError(f"{where}.rows.seeds: seeds per value are for columns only")
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
        summary_fields = summary.get("fields") or {}
        if not isinstance(summary_fields, Mapping) or not all(isinstance(v, str) for v in summary_fields.values()):
            raise TableSpecError(f"{where}.summary.fields: expected a mapping of run key -> label, "
                                 f"got {summary_fields!r}")
        plots = tuple(spec.get("plots", ("params", "ops", "curves")))
        bad_plots = set(plots) - set(PLOTS)
        if bad_plots:
            raise TableSpecError(f"{where}.plots: unknown {sorted(bad_plots)}; choose from {' '.join(PLOTS)}")
        if "rows" in plots and columns is None:
            raise TableSpecError(f"{where}.plots: 'rows' needs a wide table (columns: ...)")
        smoke = spec.get("smoke", False)
        if not isinstance(smoke, bool):
            raise TableSpecError(f"{where}.smoke: expected true or false, got {smoke!r}")
        title = str(spec.get("title", spec["name"]))
        protocols = _protocols(spec, where)
        paper_protocol = str(spec.get("paper_protocol", protocols[0].metric))
        if paper_protocol not in [p.metric for p in protocols]:
            raise TableSpecError(f"{where}.paper_protocol: {paper_protocol!r} is not the metric of one of the "
                                 f"protocols {[p.metric for p in protocols]}")
        recipe = spec.get("recipe")
        if recipe is not None and not isinstance(recipe, str):
            raise TableSpecError(f"{where}.recipe: expected one line of text, got {recipe!r}")
        return cls(
            name=str(spec["name"]),
            # A smoke run names the data it ran on (often a synthetic stand-in), filled from the runs.
            title=f"SMOKE RUN on {{data}} data, not comparable with the paper: {title}" if smoke else title,
            metric=protocols[0].metric,
            protocols=protocols,
            paper_protocol=paper_protocol,
            recipe=None if recipe is None else " ".join(recipe.split()),  # YAML folds lines; one line
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
            summary_fields=tuple((str(k), v) for k, v in summary_fields.items()),
            smoke=smoke,
            claim=None if spec.get("claim") is None else _claim(spec["claim"], columns, f"{where}.claim"),
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


def _protocols(spec: Mapping[str, Any], where: str) -> tuple[Protocol, ...]:
    """``protocols: [{metric, name, note}, ...]`` (primary first), else one unnamed ``metric``."""
    raw = spec.get("protocols")
    if raw is None:
        return (Protocol(str(spec.get("metric", "test/acc")), "ours"),)
    if not isinstance(raw, (list, tuple)) or not raw:
        raise TableSpecError(f"{where}.protocols: expected a non-empty list of {{metric, name, note}}")
    protocols = []
    for index, entry in enumerate(raw):
        _require(entry, ("metric", "name"), f"{where}.protocols[{index}]")
        protocols.append(Protocol(str(entry["metric"]), str(entry["name"]), str(entry.get("note", ""))))
    if spec.get("metric") is not None and str(spec["metric"]) != protocols[0].metric:
        raise TableSpecError(f"{where}.metric: {spec['metric']!r} differs from the first (primary) protocol's "
                             f"metric {protocols[0].metric!r}; drop metric or make them agree")
    metrics = [p.metric for p in protocols]
    if len(set(metrics)) < len(metrics):
        raise TableSpecError(f"{where}.protocols: a metric appears twice in {metrics}")
    return tuple(protocols)


def _axis(raw: Any, where: str) -> Axis:
    if isinstance(raw, str):
        raw = {"key": raw}
    _require(raw, ("key",), where)
    order = raw.get("order") or ()
    names = raw.get("names") or {}
    seeds = raw.get("seeds") or {}
    if not isinstance(order, (list, tuple)) or not isinstance(names, Mapping):
        raise TableSpecError(f"{where}: order must be a list and names a mapping")
    if not isinstance(seeds, Mapping) or not all(isinstance(v, (list, tuple)) for v in seeds.values()):
        raise TableSpecError(f"{where}.seeds: expected a mapping of value -> list of seeds, got {seeds!r}")
    return Axis(
        key=str(raw["key"]),
        label=str(raw.get("label", raw["key"])),
        order=tuple(norm(v) for v in order),
        names={norm(k): str(v) for k, v in names.items()},
        seeds={norm(k): tuple(norm(s) for s in v) for k, v in seeds.items()},
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
    if paper_dir is None:
        from liafnet.config import CONF_DIR  # the one conf location; imported only when needed

        paper_dir = CONF_DIR / "paper"
    paper_dir = Path(paper_dir)
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

