"""Reports from runs: paper tables (Markdown, LaTeX, CSV), their plots and the efficiency table.

Data flows one way: ``metrics.json`` files -> :mod:`.runs` -> :mod:`.aggregate` (with a
:mod:`.spec`) -> :mod:`.render` / :mod:`.plots`; :mod:`.table` ties them together for a sweep dir.
Nothing here trains or builds models except :mod:`.efficiency`, which profiles every model config.
"""

from liafnet.report.aggregate import FAILED, MISSING, UNFINISHED, Cell, Table, aggregate, field_value
from liafnet.report.render import claim_check, latex_escape, render_csv, render_latex, render_markdown
from liafnet.report.runs import Run, collect_runs
from liafnet.report.spec import PAPER_UNKNOWN, TableSpec, TableSpecError, norm
from liafnet.report.table import build_table, write_table

__all__ = [
    "FAILED", "MISSING", "PAPER_UNKNOWN", "UNFINISHED", "Cell", "Run", "Table", "TableSpec", "TableSpecError",
    "aggregate", "build_table", "claim_check", "collect_runs", "field_value", "latex_escape", "norm",
    "render_csv", "render_latex", "render_markdown", "write_table",
]
