"""Is a dataset's original release complete? And which paper tables can ``make tables`` run?

``python -m liafnet.data.check <dataset> [--root DIR]`` checks one dataset's original layout with
its module's ``check_layout`` (every expected file present and non-empty, the counts of
docs/datasets.md) and prints what is missing; exit status 0 when complete, 1 when not.

``python -m liafnet.data.check --plan [--babi] [--babi-arg OVERRIDE]... [OVERRIDE]...`` is what
``make tables`` runs first: for every paper table (``conf/table/*.yaml``) it composes the table's
config with the overrides (``TABLE_ARGS``), checks its dataset at the resolved ``data.root``, and
prints the plan to stderr: which tables run, how many runs each, an estimated time, and why the
others do not run. The bAbI table (about two hours) runs only with ``--babi``. The names of the
tables to run go to stdout, one line, for the Makefile.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from liafnet.data import babi_download, cifar10_dvs, dvs_gesture, mnist_dvs
from liafnet.record import RunRecord

CHECKS: dict[str, Callable[[Path], list[str]]] = {
    "dvs_gesture": dvs_gesture.check_layout,
    "cifar10_dvs": cifar10_dvs.check_layout,
    "mnist_dvs": mnist_dvs.check_layout,
    "babi": babi_download.check_layout,
}
# Where ``make data-<name>`` puts each dataset (the configs' default data.root).
DEFAULT_ROOTS = {
    "dvs_gesture": "data/DvsGesture",
    "cifar10_dvs": "data/cifar10_dvs",
    "mnist_dvs": "data/mnist_dvs",
    "babi": "data/babi",
}
# Wall seconds per run when no finished run of the table is on disk to measure from, and where the
# number comes from. Event tables: docs/tables.md's per-table estimate for one GPU at the authors'
# epoch counts, divided by its 18 runs. bAbI: results/README.md, 80 runs in 35.1 min (two at a time
# on two CPU cores).
DEFAULT_RUN_S = {
    "gesture": (300, "docs/tables.md, one GPU at the authors' epochs"),
    "cifar10_dvs": (350, "docs/tables.md, one GPU at the authors' epochs"),
    "mnist_dvs": (6000, "docs/tables.md, one GPU at the authors' epochs"),
    "babi": (26, "results/README.md, measured on two CPU cores"),
}
ASK_FOR = {"babi": "BABI=1"}  # tables that run only when asked for, and how to ask
# Tables that another table's make target already builds: `make table-babi` runs both bAbI settings.
COVERED_BY = {"babi_two_tower": "babi"}


def check(dataset: str, root: str | Path) -> list[str]:
    """Problems with ``dataset``'s original layout under ``root`` (``[]`` when complete)."""
    if dataset not in CHECKS:
        raise ValueError(f"no layout check for dataset {dataset!r}; known: {', '.join(sorted(CHECKS))}")
    return CHECKS[dataset](Path(root))


# ---- the table plan -------------------------------------------------------------------------------


@dataclass
class TablePlan:
    table: str
    dataset: str
    root: str | None
    runs: int
    problems: list[str] = field(default_factory=list)
    run: bool = False
    reason: str = ""
    seconds: float = 0.0
    basis: str = ""


def plan_table(table: str, overrides: Sequence[str]) -> TablePlan:
    """Compose ``train.yaml`` with ``table=<table>`` and ``overrides`` as the sweep will; return the
    table's dataset, data.root, number of runs (the sweeper grid with the overrides applied) and
    the layout problems of its data."""
    from omegaconf import OmegaConf

    from liafnet import config

    overrides = [f"table={table}", *overrides]
    cfg = config.compose(overrides, hydra_config=True, check=False)  # sweeps collapsed to their first value
    params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=False) or {}
    grid = {key: len(values) for key, values in config.sweep_grid(params, []).items()}
    given = {key: len(values) for key, values in config.sweep_grid({}, overrides).items()}
    grid.update({key: n for key, n in given.items() if key in grid or n > 1})
    dataset = str(cfg.data.name)
    root = OmegaConf.select(cfg, "data.root")
    plan = TablePlan(table, dataset, None if root is None else str(root), math.prod(grid.values()))
    if dataset in CHECKS and root is not None:
        plan.problems = CHECKS[dataset](Path(root))
    plan.seconds, plan.basis = _estimate(table, plan.runs, cfg)
    return plan


def _estimate(table: str, runs: int, cfg) -> tuple[float, str]:
    """Estimated wall seconds for ``runs`` runs: the mean ``train_time_s`` of the table's finished
    runs on disk (divided by the launcher's parallel jobs) when there are any, else DEFAULT_RUN_S."""
    from omegaconf import OmegaConf

    jobs = int(OmegaConf.select(cfg, "hydra.launcher.n_jobs", default=1) or 1)
    sweep_dir = Path(str(cfg.hydra.sweep.dir))
    times = []
    for path in sweep_dir.rglob("metrics.json") if sweep_dir.is_dir() else ():
        try:
            record = RunRecord.read(path)
        except (OSError, ValueError):
            continue
        if record.finished and isinstance(record.train_time_s, int | float):
            times.append(float(record.train_time_s))
    if times:
        per_run = sum(times) / len(times) / jobs
        return runs * per_run, f"mean of {len(times)} finished runs in {sweep_dir}, {jobs} at a time"
    per_run, source = DEFAULT_RUN_S.get(table, (0, "no estimate known"))
    return runs * per_run, source


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def make_plan(tables: Sequence[str], overrides: Sequence[str], table_overrides: dict[str, list[str]],
              asked: set[str]) -> list[TablePlan]:
    """One ``TablePlan`` per table; ``run`` is set for complete data, and for tables in ``ASK_FOR``
    only when they are in ``asked``."""
    plans = []
    for table in tables:
        plan = plan_table(table, [*overrides, *table_overrides.get(table, [])])
        if plan.problems:
            plan.reason = f"{plan.dataset} at {plan.root} is incomplete"
        elif table in ASK_FOR and table not in asked:
            plan.reason = f"runs only when asked for: make tables {ASK_FOR[table]}"
        else:
            plan.run = True
        plans.append(plan)
    return plans


def print_plan(plans: Sequence[TablePlan], out=None) -> None:
    """The plan, one line per table (what runs, how many runs, how long), then the problems of
    every dataset that keeps its table from running; to ``out`` (default: stderr)."""
    out = out or sys.stderr
    print("make tables: the plan (times are estimates)", file=out)
    print(f"  {'efficiency':<12} {'runs':<8} params and operation counts, no data needed", file=out)
    for plan in plans:
        cost = f"{plan.runs} runs, about {_duration(plan.seconds)}"
        state = "runs" if plan.run else "skipped"
        why = f"{plan.dataset} complete at {plan.root}" if plan.run else plan.reason
        print(f"  {plan.table:<12} {state:<8} {cost:<28} {why}", file=out)
        for problem in plan.problems[:10]:
            print(f"      {problem}", file=out)
        if len(plan.problems) > 10:
            print(f"      ... and {len(plan.problems) - 10} more problems", file=out)
        if plan.problems:
            print(f"      get it: make data-{plan.dataset}; check it: python -m liafnet.data.check "
                  f"{plan.dataset} --root {plan.root}", file=out)
    chosen = [p for p in plans if p.run]
    print(f"make tables: {len(chosen)} paper tables, {sum(p.runs for p in chosen)} runs, about "
          f"{_duration(sum(p.seconds for p in chosen))}, plus the efficiency table", file=out)
    for basis in dict.fromkeys(p.basis for p in plans):
        tables = ", ".join(p.table for p in plans if p.basis == basis)
        print(f"  time per run for {tables}: {basis}", file=out)


def _table_names() -> list[str]:
    from liafnet import config

    names = [n for n in config.group_options("table") if n not in COVERED_BY]
    return [n for n in names if n not in ASK_FOR] + [n for n in names if n in ASK_FOR]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m liafnet.data.check",
        description="Check a dataset's original layout for completeness, or (--plan) print which paper "
                    "tables `make tables` can run.")
    parser.add_argument("args", nargs="*", metavar="DATASET | OVERRIDE",
                        help=f"a dataset ({', '.join(sorted(CHECKS))}); with --plan, Hydra overrides for every table")
    parser.add_argument("--root", help="dataset folder (default: where make data-<name> puts it)")
    parser.add_argument("--plan", action="store_true", help="print the plan of `make tables`; table names to stdout")
    parser.add_argument("--babi", action="store_true", help="with --plan: include the bAbI table (about 2 h)")
    parser.add_argument("--babi-arg", action="append", default=[], metavar="OVERRIDE",
                        help="with --plan: an override for the bAbI table only (repeatable)")
    args = parser.parse_intermixed_args(argv)
    if args.plan:
        plans = make_plan(_table_names(), args.args, {"babi": args.babi_arg}, {"babi"} if args.babi else set())
        print_plan(plans)
        print(" ".join(p.table for p in plans if p.run))
        return 0
    if len(args.args) != 1 or args.args[0] not in CHECKS:
        parser.error(f"name one dataset: {', '.join(sorted(CHECKS))} (got {' '.join(args.args) or 'none'})")
    dataset = args.args[0]
    root = Path(args.root or DEFAULT_ROOTS[dataset])
    problems = check(dataset, root)
    if not problems:
        print(f"{dataset}: complete at {root}")
        return 0
    print(f"{dataset}: incomplete at {root}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    print(f"Get it with `make data-{dataset}` (or `python -m liafnet.data.download`), or point --root at "
          f"a complete copy; docs/datasets.md lists the layout.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
