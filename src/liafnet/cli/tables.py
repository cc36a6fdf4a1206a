"""``python -m liafnet.tables table=<name> [overrides]``: aggregate a table's sweep into Markdown,
LaTeX, CSV and plots (:mod:`liafnet.report`).

Composes the same config as the sweep, so pass the same overrides::

    python -m liafnet.tables table=gesture
    python -m liafnet.tables table=gesture paths.output_dir=outputs/smoke data=synthetic seed=0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from liafnet import build, config
from liafnet.report.aggregate import FAILED, MISSING
from liafnet.report.spec import TableSpec
from liafnet.report.table import build_table


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m liafnet.tables",
        description="Aggregate a table's sweep (metrics.json files) into Markdown/LaTeX/CSV and plots. "
                    "Pass the same Hydra overrides as the sweep (at least table=<name>).")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. table=gesture seed=0")
    parser.add_argument("--sweep-dir", help="read runs here instead of the config's hydra.sweep.dir")
    parser.add_argument("--out", help="write here instead of <paths.output_dir>/tables")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    args = parser.parse_intermixed_args(argv)
    if not any(o.split("=", 1)[0].lstrip("+") == "table" for o in args.overrides):
        parser.error("name the table: python -m liafnet.tables table=<name> (see conf/table/)")

    from omegaconf import OmegaConf

    # As one job of the sweep composed it; no job runs here, so paths.run_dir gets a placeholder.
    cfg = config.compose(["paths.run_dir=.", *args.overrides], hydra_config=True)
    if OmegaConf.select(cfg, "table_spec") is None:
        print(f"config has no table_spec; is {args.overrides} selecting a conf/table file?", file=sys.stderr)
        return 2
    raw_spec = OmegaConf.to_container(cfg.table_spec, resolve=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True) or {}
    spec = TableSpec.from_dict(raw_spec, paper_dir=config.CONF_DIR / "paper",
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
    if config.data_kind(cfg) != "events":
        return None
    try:
        datamodule = build.build_datamodule(cfg)
        if build.spec_of(datamodule).kind != "events":
            return None
        datamodule.prepare_data()  # e.g. generates the synthetic dataset on first use
        return datamodule.dataset_factory(split="test")
    except FileNotFoundError as error:  # DatasetNotFoundError included
        print(f"frames plot skipped: {error}", file=sys.stderr)
        return None


if __name__ == "__main__":
    raise SystemExit(main())
