"""Rendering a :class:`~liafnet.report.aggregate.Table` as Markdown, LaTeX and CSV.

Every cell is rendered once as a (markdown, latex) pair, so both formats show the same table."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass

from tabulate import tabulate

from liafnet.report.aggregate import FAILED, MISSING, UNFINISHED, Cell, Table, field_value
from liafnet.report.spec import PAPER_UNKNOWN, FieldSpec

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
    accounting rides along in the cell, e.g. ``71.2 ± 0.4 (n=2, 1 failed)``, ``52.2 (n=1)`` or ``3 failed``."""
    if cell.mean is None:
        if not wide or cell.state == MISSING:
            return Text.plain(cell.state or MISSING)
        return Text.plain(", ".join(_counts(cell)))
    stat = format_stat(cell.mean, cell.std, digits)
    extra = _counts(cell, with_n=True) if wide else []
    if not extra:
        return stat
    suffix = f" ({', '.join(extra)})"
    return Text(stat.md + suffix, stat.tex + latex_escape(suffix))


def _protocol_text(cell: Cell, metric: str, digits: int) -> Text:
    """A secondary protocol's number; ``n`` shown when fewer ok runs recorded it than the primary."""
    mean, std, n = cell.stat(metric)
    if mean is None:
        return Text.plain(PAPER_UNKNOWN)
    stat = format_stat(mean, std, digits)
    if n == cell.n:
        return stat
    suffix = f" (n={n} of {cell.n})"
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
    primary: bool = False  # ours, primary metric: summary fields read its cells' runs
    col: str | None = None  # the table column of a primary column (None in a long table)


def build_columns(table: Table) -> list[_Column]:
    spec, digits = table.spec, table.spec.digits
    rows = table.rows
    columns: list[_Column] = []
    wide = spec.columns is not None

    def paper_numbers(col: str | None) -> list[float | None]:
        return [spec.paper_entry(row, col)[0] for row in rows]

    def header(col: str | None, metric: str) -> str:
        """Wide tables: the column value, plus the protocol's name unless primary; long: the name."""
        name = spec.protocol(metric).name
        if not wide:
            return name
        return spec.columns.display(col) + ("" if metric == spec.metric else f" ({name})")

    for col in table.cols:
        cells = [table.cell(row, col) for row in rows]
        columns.append(_Column(header(col, spec.metric), [_ours(c, digits, wide) for c in cells],
                               [c.mean for c in cells], primary=True, col=col))
        if not wide:
            columns.append(_Column("n", [Text.plain(str(c.n)) for c in cells]))
        for protocol in spec.secondary:
            columns.append(_Column(header(col, protocol.metric),
                                   [_protocol_text(c, protocol.metric, digits) for c in cells],
                                   [c.stat(protocol.metric)[0] for c in cells], PAPER_UNKNOWN))
    if spec.paper is not None:
        for col in table.cols:
            if wide and all(spec.paper_entry(row, col) == (None, None) for row in rows):
                continue  # a column the paper file does not name (e.g. an extension): no paper column
            papers = paper_numbers(col)
            paper_header = f"{spec.columns.display(col)} (paper)" if wide else "paper"
            columns.append(_Column(paper_header, [_paper_text(p, digits) for p in papers], papers, PAPER_UNKNOWN))
            if any(p is not None for p in papers) and not spec.smoke:
                ours = [table.cell(row, col).stat(spec.paper_protocol)[0] for row in rows]
                columns.append(_Column(f"{header(col, spec.paper_protocol)} − paper",
                                       [_diff_text(o, p, digits) for o, p in zip(ours, papers)]))
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


def _mean_over_rows(present: list[float], rows: int, digits: int) -> Text:
    """The mean of a column's numbers, saying how many rows had one when some had none."""
    text = _number(statistics.fmean(present), digits)
    suffix = f" ({len(present)}/{rows} rows)" if len(present) < rows else ""
    return Text(text + suffix, f"${text}$" + latex_escape(suffix))


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
            line.append(_mean_over_rows(present, len(column.numbers), spec.digits))
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
    for key, label in spec.summary_fields:
        line = [Text.plain(f"{label} (mean)")]
        for column in columns:
            values = [table.cell(row, column.col).field_value(key) for row in table.rows] if column.primary else []
            present = [v * spec.scale for v in values if v is not None]
            line.append(_mean_over_rows(present, len(values), spec.digits) if present else Text("", ""))
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
    primary = spec.protocols[0]
    lines.append(f"{'Ours' if primary.name == 'ours' else primary.name}: {spec.metric} × {spec.scale:g}"
                 + (f" ({primary.note})" if primary.note else "")
                 + f", mean ± sample std (n − 1) {n_text}; a single run shows its value alone.")
    for protocol in spec.secondary:
        lines.append(f"{protocol.name}: {protocol.metric} × {spec.scale:g}"
                     + (f" ({protocol.note})" if protocol.note else "")
                     + f"; finished runs that did not record it print \"{PAPER_UNKNOWN}\".")
    if spec.paper is not None and spec.paper_protocol != spec.metric:
        lines.append(f"The paper's numbers are compared with the {spec.protocol(spec.paper_protocol).name} "
                     "column, the protocol they were obtained with.")
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
        lines.append(f'Paper values unknown to us print "{PAPER_UNKNOWN}"; none is invented.')
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
    text = f"# {table.title}\n\n"
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
    recipe = [table.spec.recipe] if table.spec.recipe else []
    comments = "".join(f"% {line}\n" for line in [table.title, *recipe, *_notes(table)])
    return comments + tabular + "\n"


def render_csv(table: Table) -> str:
    """One line per cell with raw numbers, for scripts (no formatting, no summary rows)."""
    spec = table.spec
    header = [spec.rows.key] + ([spec.columns.key] if spec.columns else [])
    header += ["mean", "std", "n", "failed", "unfinished", "missing", "duplicates",
               "paper", "paper_source", "diff"]
    header += [f"{p.metric}_{stat}" for p in spec.secondary for stat in ("mean", "std", "n")]
    header += [f.key for f in spec.fields]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        for col in table.cols:
            cell = table.cell(row, col)
            paper, source = spec.paper_entry(row, col)
            compared = cell.stat(spec.paper_protocol)[0]
            diff = None if compared is None or paper is None or spec.smoke else compared - paper
            line = [row] + ([col] if spec.columns else [])
            line += [_raw(cell.mean), _raw(cell.std), cell.n, cell.n_failed, cell.n_unfinished,
                     cell.n_missing, cell.n_duplicates, _raw(paper), source or "", _raw(diff)]
            for protocol in spec.secondary:
                mean, std, n = cell.stat(protocol.metric)
                line += [_raw(mean), _raw(std), n]
            line += [_raw(cell.field_value(f.key, f.agg)) for f in spec.fields]
            writer.writerow(line)
    return out.getvalue()


def _raw(value: float | None) -> str:
    return "" if value is None else repr(round(value, 10))

