"""Aggregation: group runs into the cells of a table, classify them (ok, failed, unfinished,
missing, duplicate) and compute each cell's statistics. A pure function of the runs."""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from liafnet.report.runs import Run
from liafnet.report.spec import PAPER_UNKNOWN, TableSpec, norm

# Why a cell has no number.
MISSING = "missing"
FAILED = "failed"
UNFINISHED = "unfinished"


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
    # Scaled values of the secondary protocols' metrics, over the ok runs that recorded them.
    extra: dict[str, list[float]] = field(default_factory=dict)

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

    def stat(self, metric: str) -> tuple[float | None, float | None, int]:
        """``(mean, sample std, n)`` of a protocol's metric: the primary's is :attr:`values`; a
        secondary one counts only the ok runs that recorded it (``(None, None, 0)`` if none did)."""
        values = self.extra.get(metric, self.values)
        mean = statistics.fmean(values) if values else None
        return mean, (statistics.stdev(values) if len(values) > 1 else None), len(values)

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

    @property
    def title(self) -> str:
        """The spec's title with each ``{run.key}`` replaced by the values the runs recorded (all
        distinct ones, in order), so a smoke run at T = 4 never reads as the paper's T = 60."""

        def ran(match: re.Match) -> str:
            values = {norm(v): None for v in (run.lookup(match.group(1)) for run in self.runs) if v is not None}
            return ", ".join(sorted(values, key=_natural_key)) or PAPER_UNKNOWN

        return _PLACEHOLDER.sub(ran, self.spec.title)


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w./-]*)\}")


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
    column_seeds = spec.columns.seeds if spec.columns else {}
    cells = {}
    for row in rows:
        for col in cols:
            cells[(row, col)] = _make_cell(spec, row, col, grouped.get((row, col), []),
                                           column_seeds.get(col, expected_seeds))

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
                for protocol in spec.secondary:
                    other = run.number(protocol.metric)
                    extra = cell.extra.setdefault(protocol.metric, [])
                    if other is not None:
                        extra.append(other * spec.scale)
        elif status == "failed":
            cell.n_failed += 1
            error = str(run.record.error or "no error message").strip().splitlines() or [""]
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

