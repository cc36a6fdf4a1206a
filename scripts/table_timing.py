"""Estimate how long each paper table takes to run, from measured training-step times.

Builds every model family for each table's frame layout (``liafnet.models.build_model``, default
options), times a few training steps (forward, mean readout, cross-entropy, backward, Adam) and
evaluation steps on random binary frames, and scales them to a whole run. Data loading is not
included (frames come from the on-disk cache), so real runs take somewhat longer. Needs only torch::

    PYTHONPATH=src python scripts/table_timing.py                 # all tables, on cuda if present
    PYTHONPATH=src python scripts/table_timing.py --layouts dvs_gesture --json timing.json
    PYTHONPATH=src python scripts/table_timing.py --recipe           # the tables' recipes (below)

``--cpu-time`` (CPU only) counts the process's CPU seconds over all threads instead of wall clock:
on a shared machine the wall clock includes other jobs' time, CPU seconds do not (with N busy
threads they are up to N times the wall time of an idle machine).

``--recipe`` takes each cell's batch and budget from the authors' recipe the table trains with
(conf/experiment/<table>.yaml and conf/recipe/<table>_<model>.yaml): its batch size, its budget in
iterations or epochs, and its evaluation cadence (validation and the authors' protocol's test pass,
e.g. every 20 iterations on DVS128 Gesture). ``--batch N`` times every cell at batch N instead (a
CPU shortcut for the large layouts); the run time then scales the measured per-sample time.

When a batch does not fit in memory it is halved until it does; the table says which batch ran.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from liafnet.data.spec import DataSpec
from liafnet.io import atomic_write_json
from liafnet.models import FAMILIES, build_model
from liafnet.report.render import format_seconds


@dataclass(frozen=True)
class Setting:
    """One table's data shape, split sizes (datasets.md) and epochs (paper.md §5, authors' code)."""

    table: str
    spec: DataSpec
    batch: int
    n_train: int
    n_eval: int  # validation + test samples per run
    epochs: int


SETTINGS = {
    "dvs_gesture": Setting("gesture", DataSpec("events", 11, "dvs_gesture", 60, 2, 32, 32), 32,
                           n_train=1176, n_eval=288 + 118, epochs=110),  # 4,000 iterations x 32
    "cifar10_dvs": Setting("cifar10_dvs", DataSpec("events", 10, "cifar10_dvs", 10, 2, 42, 42), 32,
                           n_train=9000, n_eval=1000 + 900, epochs=100),
    "mnist_dvs": Setting("mnist_dvs", DataSpec("events", 10, "mnist_dvs", 50, 2, 128, 128), 16,
                         n_train=8000, n_eval=2000 + 800, epochs=30),
    "synthetic": Setting("smoke", DataSpec("events", 6, "synthetic", 16, 2, 16, 16), 16,
                         n_train=720, n_eval=180, epochs=1),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model, spec: DataSpec, batch: int, device: torch.device, steps: int,
               clock=time.perf_counter) -> tuple[float, float]:
    """Seconds per training step and per evaluation step (median of ``steps`` after warm-up)."""
    frames = (torch.rand(spec.time_steps, batch, spec.channels, spec.height, spec.width, device=device) < 0.05)
    frames = frames.float()
    target = torch.randint(0, spec.num_classes, (batch,), device=device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        optimiser.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(frames).mean(0), target)
        loss.backward()
        optimiser.step()

    def eval_step():
        with torch.no_grad():
            model(frames).mean(0).argmax(-1)

    times = {}
    for name, step, mode in (("train", train_step, True), ("eval", eval_step, False)):
        model.train(mode)
        step()  # warm-up: cuDNN autotuning, allocator growth
        measured = []
        for _ in range(steps):
            _sync(device)
            start = clock()
            step()
            _sync(device)
            measured.append(clock() - start)
            if measured[-1] > 5.0:  # slow cells: a couple of steps are enough
                break
        times[name] = sorted(measured)[len(measured) // 2]
    return times["train"], times["eval"]


EXPERIMENTS = {"dvs_gesture": "gesture", "cifar10_dvs": "cifar10_dvs", "mnist_dvs": "mnist_dvs"}


def recipe_budget(layout: str, family: str) -> dict:
    """Batch, training steps and evaluated samples of one table cell under its recipe."""
    from liafnet.config import compose

    setting = SETTINGS[layout]
    cfg = compose([f"experiment={EXPERIMENTS[layout]}", f"model={family}"], check=False)
    batch = int(cfg.data.batch_size)
    n_val = round(setting.n_train * float(cfg.data.datamodule.val_fraction))
    n_fit, n_test = setting.n_train - n_val, setting.n_eval - n_val
    if cfg.trainer.get("max_steps", -1) not in (None, -1):
        steps = int(cfg.trainer.max_steps)
        evaluations = steps // int(cfg.trainer.val_check_interval)
    else:
        evaluations = int(cfg.trainer.max_epochs)
        steps = evaluations * math.ceil(n_fit / batch)
    # Validation and the authors' protocol's test pass run at the same cadence, plus the final test.
    return {"batch": batch, "train_steps": steps, "eval_samples": evaluations * (n_val + n_test) + n_test,
            "recipe": str(cfg.recipe.name)}


def measure(layout: str, family: str, device: torch.device, steps: int, recipe: bool = False,
            batch: int | None = None, clock=time.perf_counter) -> dict:
    setting = SETTINGS[layout]
    budget = recipe_budget(layout, family) if recipe else None
    run_batch = budget["batch"] if budget else setting.batch
    batch = batch or run_batch
    while True:
        try:
            torch.manual_seed(0)
            model = build_model(family, setting.spec).to(device)
            train_s, eval_s = time_steps(model, setting.spec, batch, device, steps, clock)
            break
        except torch.OutOfMemoryError:
            model = None
            torch.cuda.empty_cache()
            if batch == 1:
                return {"layout": layout, "family": family, "error": "out of memory at batch 1"}
            batch //= 2
    params = sum(p.numel() for p in model.parameters())
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    row = {"layout": layout, "table": setting.table, "family": family, "params": params, "batch": batch,
           "train_step_s": train_s, "eval_step_s": eval_s, "peak_gib": peak}
    if budget:
        # Per-sample times scaled to the recipe's batch (exact when batch == the recipe's).
        scale = budget["batch"] / batch
        run_s = (budget["train_steps"] * train_s * scale
                 + math.ceil(budget["eval_samples"] / budget["batch"]) * eval_s * scale)
        return row | budget | {"timed_batch": batch, "batch": budget["batch"], "run_s": run_s,
                               "epoch_s": None, "epochs": None}
    epoch_s = math.ceil(setting.n_train / batch) * train_s + math.ceil(setting.n_eval / batch) * eval_s
    return row | {"epoch_s": epoch_s, "epochs": setting.epochs, "run_s": epoch_s * setting.epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layouts", nargs="+", default=["dvs_gesture", "cifar10_dvs", "mnist_dvs"],
                        choices=sorted(SETTINGS))
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--seeds", type=int, default=3, help="runs per cell, for the table total")
    parser.add_argument("--json", help="also write the measurements here")
    parser.add_argument("--recipe", action="store_true", help="batch and budget of the tables' recipes")
    parser.add_argument("--batch", type=int, help="time every cell at this batch (scaled to the run's)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="CPU: count process CPU seconds (all threads) instead of wall clock, so that "
                             "other jobs on a shared machine do not inflate the times")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    clock = "process CPU seconds, all threads" if args.cpu_time else "wall clock"
    print(f"device: {name}; torch {torch.__version__}; {torch.get_num_threads()} threads; fp32; {clock}; "
          "data loading not included", flush=True)
    results = []
    if args.recipe:
        print("| table | model | recipe | params | batch (timed) | train step | eval step | train steps | "
              "evaluated samples | run |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    else:
        print("| table | model | params | batch | train step | epoch | epochs | run | peak GPU memory |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for layout in args.layouts:
        total = 0.0
        for family in args.families:
            row = measure(layout, family, device, args.steps, recipe=args.recipe, batch=args.batch,
                          clock=time.process_time if args.cpu_time else time.perf_counter)
            results.append(row)
            if "error" in row:
                print(f"| {SETTINGS[layout].table} | {family} | | | {row['error']} | | | | |", flush=True)
                continue
            total += row["run_s"] * args.seeds
            if args.recipe:
                print(f"| {row['table']} | {family} | {row['recipe']} | {row['params']:,} | {row['batch']} "
                      f"({row['timed_batch']}) | {row['train_step_s'] * 1e3:.0f} ms | {row['eval_step_s'] * 1e3:.0f} ms "
                      f"| {row['train_steps']:,} | {row['eval_samples']:,} | {format_seconds(row['run_s'])} |", flush=True)
                continue
            peak = f"{row['peak_gib']:.1f} GiB" if row["peak_gib"] is not None else ""
            print(f"| {row['table']} | {family} | {row['params']:,} | {row['batch']} | "
                  f"{row['train_step_s'] * 1e3:.0f} ms | {format_seconds(row['epoch_s'])} | {row['epochs']} | "
                  f"{format_seconds(row['run_s'])} | {peak} |", flush=True)
        blanks = "| | | | | | | |" if args.recipe else "| | | | | |"
        print(f"| {SETTINGS[layout].table} | **all x {args.seeds} seeds** {blanks} **{format_seconds(total)}** |"
              + ("" if args.recipe else " |"), flush=True)
    if args.json:
        atomic_write_json(args.json, {"device": name, "torch": torch.__version__, "threads": torch.get_num_threads(),
                                      "settings": {k: asdict(v) | {"spec": asdict(v.spec)} for k, v in SETTINGS.items()},
                                      "results": results})


if __name__ == "__main__":
    main()
