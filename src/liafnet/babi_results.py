"""bAbI comparison grids: run them, file every finished run under ``results/``, and rebuild the
tables from ``results/`` alone (docs/babi.md, "The tables").

Each setting (``keras1``, ``two_tower``) has a table config, ``conf/table/<table>.yaml``, whose
sweep runs over the 20 tasks; its ``babi_columns`` list holds the model overrides of the main
columns (liaf, lif, lstm, gru, and two_tower's slow-leak LIAF; run with ``--seeds`` seeds) and ``babi_extras`` those of the extra
columns (run with ``--extra-seeds`` seeds), one sweep per column. A finished run becomes one small JSON file,
``results/babi/<setting>/cells/<column>/task<NN>-seed<S>/metrics.json``, with the fields a table
needs plus where it came from (git revision, overrides, model config). A run that failed is filed
too, with ``status: failed`` and its error, so the table says "1 failed" with the reason instead of
"missing"; a finished run of the same command replaces it, never the other way round. The tables are
built from those files only, so a grid can be run in several sittings, on several machines, and
aggregated by anyone with a checkout::

    python -m liafnet.babi_results run     [--setting keras1] [--seeds 3] [--extra-seeds 1] [overrides]
    python -m liafnet.babi_results collect [--setting two_tower] [overrides]  # finished runs -> results/
    python -m liafnet.babi_results table   [--setting ...] [--seeds 3] [--extra-seeds 1]  # results/ -> tables

Without ``--setting`` each command does both settings.

``run`` first copies the cells already in ``results/`` back into the sweep folders, where
``train.py`` skips any run whose ``metrics.json`` says ``ok``: a fresh machine resumes the grid
instead of repeating it. Failed cells are not copied back, so ``run`` tries them again. Delete a
finished cell's folder under ``results/`` to run it again.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from liafnet.io import atomic_write_json
from liafnet.record import RunRecord
from liafnet.report.render import format_seconds
from liafnet.report.runs import dotted
from liafnet.rundirs import run_name

SETTINGS = {"keras1": "babi", "two_tower": "babi_two_tower"}  # setting -> conf/table/<name>.yaml
RESULTS_DIR = Path("results") / "babi"
# The model-config keys a cell keeps: enough to tell its column and rebuild the run.
_CONFIG_KEYS = ("data.task", "data.variant", "data.batch_size", "data.val_fraction", "optimizer.lr",
                "trainer.max_epochs", "trainer.gradient_clip_val", "early_stopping.patience")
_TRAIN_COMMAND = ("-c", "from liafnet.cli.train import main; main()")


def column_of(family: str, encoder: str | None) -> str:
    """The table column of a run: ``lstm``/``gru``, else ``<layer>`` of the liaf/lif encoder.

    ``rnn`` -> ``liaf_rnn``/``lif_rnn`` (the LIAF-RNN), ``dense`` -> ``dense_liaf``/``dense_lif``
    (one DenseLIAF/DenseLIF layer), any other encoder ``e`` -> ``e`` itself (its name already says
    which cell it is, e.g. ``liaf_lstm``), prefixed by ``lif_`` for spiking output.
    """
    if family in ("lstm", "gru"):
        return family
    if encoder == "rnn":
        return f"{family}_rnn"
    if encoder == "dense":
        return f"dense_{family}"
    return str(encoder) if family == "liaf" else f"lif_{encoder}"


def _peak_train_acc(run_dir: Path) -> float | None:
    """The best epoch-level training accuracy in the run's CSV log (None without a log)."""
    path = run_dir / "csv" / "metrics.csv"
    if not path.is_file():
        return None
    best = None
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            value = row.get("train/acc") or row.get("train/acc_epoch")
            if value:
                best = max(best or 0.0, float(value))
    return best


def cell_record(run: RunRecord, run_dir: Path, sweep_dir: Path) -> dict | None:
    """The results/ record of one ended bAbI comparison run: ``status`` ``ok`` (with its test
    accuracy) or ``failed`` (with the first line of its error). None for anything else: a run still
    running or killed, one without ``babi_setting`` or ``data.task`` in its config."""
    config = run.config or {}
    setting = config.get("babi_setting")
    finished = run.finished and run.test_acc is not None
    if setting not in SETTINGS or dotted(config, "data.task") is None or not (finished or run.status == "failed"):
        return None
    model = config.get("model") or {}
    record = {
        "status": "ok" if finished else "failed", "setting": setting,
        # A column named in the config (a variant of a family, e.g. another neuron setting) wins.
        "babi_column": config.get("babi_column") or column_of(model.get("family"), model.get("text_encoder")),
        "model": run.model, "data": run.data, "seed": run.seed,
        **{key: dotted(config, key) for key in _CONFIG_KEYS},
        "test/acc": run.test_acc, "val/acc": run.val_acc,
        "train_acc_max": _peak_train_acc(run_dir), "epochs": run.epochs,
        "train_time_s": run.train_time_s, "samples_per_s": run.samples_per_s,
        "params": run.params, "skipped_steps": run.skipped_steps,
        "git_rev": run.git_rev, "overrides": run.overrides,
        "sweep_subdir": run_dir.relative_to(sweep_dir).as_posix(),
        "model_config": dict(model),
        **({} if finished else {"error": (str(run.error or "").strip().splitlines() or ["no error message"])[0]}),
    }
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def cell_path(results: Path, record: dict) -> Path:
    return (results / "cells" / record["babi_column"] /
            f"task{int(record['data.task']):02d}-seed{record['seed']}" / "metrics.json")


def _command(record: dict) -> list[str]:
    """The overrides that make a run what it is (not where its data or outputs live)."""
    return sorted(o for o in record.get("overrides") or ()
                  if o.split("=", 1)[0].lstrip("+~") not in ("data.root", "paths.output_dir", "paths.data_dir"))


def collect(sweep_dir: Path, results: Path, setting: str) -> int:
    """File every finished or failed run of ``setting`` under ``sweep_dir`` into ``results``;
    returns the count of cells written.

    A cell already in ``results`` is replaced by a re-run of the same command (same overrides, apart
    from data and output paths), never by a run of another command (e.g. a shorter trial run in the
    same sweep folder): that run is reported and skipped; delete the cell to file it. A failed run
    never replaces a finished cell."""
    written = 0
    for path in sorted(sweep_dir.rglob("metrics.json")):
        try:
            run = RunRecord.read(path)
        except (OSError, ValueError):
            continue  # a run killed while writing: not finished
        record = cell_record(run, path.parent, sweep_dir)
        if record is None or record["setting"] != setting:
            continue
        target = cell_path(results, record)
        filed = json.loads(target.read_text()) if target.is_file() else None
        if filed is not None and _command(filed) != _command(record):
            print(f"bAbI {setting}: kept {target}; {path.parent} was run with other overrides "
                  f"{_command(record)} (delete the cell to file this run instead)", flush=True)
            continue
        if filed is not None and filed.get("status") == "ok" and record["status"] != "ok":
            print(f"bAbI {setting}: kept the finished cell {target}; {path.parent} failed: {record['error']}",
                  flush=True)
            continue
        if filed != record:
            atomic_write_json(target, record)
            written += 1
    return written


def restore(results: Path, sweep_dir: Path) -> int:
    """Copy the finished cells in ``results`` into the sweep folders they came from, unless a run is
    there, so that ``train.py`` skips them; returns the count. Failed cells stay behind, so their
    runs are tried again."""
    restored = 0
    for path in sorted((results / "cells").rglob("metrics.json")):
        record = json.loads(path.read_text())
        if record.get("status") != "ok":
            continue
        # The folder the current naming gives this command (not the one it ran in: names may change).
        target = sweep_dir / run_name(record["overrides"]) / "metrics.json"
        if not target.exists():
            atomic_write_json(target, record)
            restored += 1
    return restored


# ------------------------------------------------------------------------------------ commands
def _compose(table: str, overrides: Sequence[str]):
    from liafnet import config

    # As one job of the sweep composes it; no job runs here, so paths.run_dir gets a placeholder.
    return config.compose(["paths.run_dir=.", f"table={table}", *overrides], hydra_config=True)


def _sweep_dir(table: str, overrides: Sequence[str]) -> Path:
    return Path(_compose(table, overrides).hydra.sweep.dir)


def _columns(table: str, overrides: Sequence[str], key: str) -> list[list[str]]:
    """The model overrides of each column under ``key`` (``babi_columns``, ``babi_extras``)."""
    from omegaconf import OmegaConf

    columns = OmegaConf.select(_compose(table, overrides), key) or []
    return [list(map(str, column)) for column in columns]


def _column_names(table: str, overrides: Sequence[str], key: str) -> list[str]:
    """The table column of each entry of ``key`` (``babi_columns``, ``babi_extras``), from the config
    its runs compose (as ``cell_record`` files them)."""
    names = []
    for column in _columns(table, overrides, key):
        config = _compose(table, [*overrides, *column])
        names.append(config.get("babi_column") or column_of(config.model.family, config.model.get("text_encoder")))
    return names


def build_tables(setting: str, results: Path, seeds: int, extra_seeds: int = 1, overrides: Sequence[str] = ()) -> int:
    """``results/<setting>/cells`` -> ``results/<setting>/<table>.{md,csv,tex}`` and
    ``<table>_rows.png`` (every task's columns side by side). The main columns expect ``seeds``
    seeds per task, the extras ``extra_seeds``."""
    from liafnet.cli.tables import main as tables_main

    table = SETTINGS[setting]
    grid = [o for o in overrides if o.split("=", 1)[0] in ("data.task", "+table_spec.smoke")]
    if extra_seeds > 0:
        extra = ",".join(f"{name}:[{','.join(map(str, range(extra_seeds)))}]"
                         for name in _column_names(table, overrides, "babi_extras"))
        grid += [f"+table_spec.columns.seeds={{{extra}}}"] if extra else []
    else:  # no extras asked for: their columns are left out (runs already filed are noted as outside the grid)
        grid += [f"+table_spec.grid.babi_column=[{','.join(_column_names(table, overrides, 'babi_columns'))}]"]
    return tables_main([f"table={table}", f"seed=range(0,{seeds})", *grid,
                        "--sweep-dir", str(results / "cells"), "--out", str(results)])


def run(setting: str, results: Path, seeds: int, extra_seeds: int, overrides: Sequence[str]) -> int:
    """Restore, sweep each main and extra column, collect, build the table; non-zero if a run failed."""
    table = SETTINGS[setting]
    sweep_dir = _sweep_dir(table, overrides)
    train_overrides = [o for o in overrides if not o.startswith("+table_spec.")]
    print(f"bAbI {setting}: restored {restore(results, sweep_dir)} finished cells from {results}", flush=True)
    status = 0
    jobs = [[*column, f"seed=range(0,{seeds})"] for column in _columns(table, overrides, "babi_columns")]
    if extra_seeds > 0:
        jobs += [[*extra, f"seed=range(0,{extra_seeds})"] for extra in _columns(table, overrides, "babi_extras")]
    started = time.monotonic()
    for job in jobs:
        command = [sys.executable, *_TRAIN_COMMAND, f"table={table}", *job, *train_overrides]
        print("bAbI " + setting + ": " + " ".join(command[3:]), flush=True)
        column_started = time.monotonic()
        status |= subprocess.run(command).returncode != 0
        # Wall times of the sweeps as they ran (cells already filed are skipped in seconds).
        print(f"bAbI {setting}: {' '.join(job)}: {format_seconds(time.monotonic() - column_started)} wall", flush=True)
    print(f"bAbI {setting}: all sweeps {format_seconds(time.monotonic() - started)} wall", flush=True)
    print(f"bAbI {setting}: filed {collect(sweep_dir, results, setting)} new or changed cells in {results}")
    return build_tables(setting, results, seeds, extra_seeds, overrides) or int(status)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m liafnet.babi_results", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("run", "collect", "table"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the runs (e.g. data.root=...)")
    parser.add_argument("--setting", action="append", choices=list(SETTINGS), dest="settings",
                        help="keras1 or two_tower; repeat for both (default: both)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of liaf, lif, lstm, gru (default 3)")
    parser.add_argument("--extra-seeds", type=int, default=1,
                        help="seeds of the extra columns (default 1; 0 skips them)")
    parser.add_argument("--results", default=str(RESULTS_DIR),
                        help="results folder; each setting gets <results>/<setting> (default %(default)s)")
    args = parser.parse_intermixed_args(argv)
    if args.seeds < 1 or args.extra_seeds < 0:
        parser.error(f"--seeds must be >= 1 and --extra-seeds >= 0, got {args.seeds} and {args.extra_seeds}")
    status = 0
    for setting in args.settings or list(SETTINGS):
        results = Path(args.results) / setting
        if args.command == "run":
            status |= run(setting, results, args.seeds, args.extra_seeds, args.overrides)
        elif args.command == "collect":
            sweep_dir = _sweep_dir(SETTINGS[setting], args.overrides)
            print(f"bAbI {setting}: filed {collect(sweep_dir, results, setting)} new or changed cells in {results}")
        else:
            status |= build_tables(setting, results, args.seeds, args.extra_seeds, args.overrides)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
