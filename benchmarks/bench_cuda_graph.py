"""CUDA training-step time, eager and whole-step CUDA-graph replay, and peak memory (CUDA only).

The network, data and step of ``bench_neurons.py`` (DVS Gesture LIAF-Net: forward, backward, Adam)
for each T in ``--time-steps`` and batch in ``--batch`` (default T = 20, 60 and batch 8, 32), with:

- ``liafnet``: the model as built; on CUDA ``liaf_multistep`` runs the fused Triton kernel;
- ``liafnet_torch``: the same with the kernel switched off (``triton_liaf.ENABLED = False``), the
  per-step torch path it replaces;
- ``floor``: every neuron replaced by ReLU; ``spikingjelly``: by spikingjelly's ``LIAFNode``
  (skipped with the reason when it cannot be imported).

Each runs eagerly and as one captured CUDA graph (Adam with ``capturable=True``). Times: the
implementations alternate in ``--rounds`` rounds of ``--steps`` steps, and each one's median step
is reported (ms). Peak memory: ``torch.cuda.max_memory_allocated`` during one warm eager step, above
the memory allocated before it (model, optimizer state and input stay out). Writes JSON and
markdown; docs/neurons.md has the discussion.

    python benchmarks/bench_cuda_graph.py --out benchmarks/results_neurons_cuda_triton.json
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_neurons as b  # noqa: E402

from liafnet.io import atomic_write_json, atomic_write_text  # noqa: E402
from liafnet.kernels import triton_liaf  # noqa: E402

DEVICE = torch.device("cuda")
IMPLS = ("liafnet", "liafnet_torch", "floor", "spikingjelly")
MODES = ("eager", "graph")


@contextlib.contextmanager
def triton_enabled(enabled: bool):
    previous, triton_liaf.ENABLED = triton_liaf.ENABLED, enabled
    try:
        yield
    finally:
        triton_liaf.ENABLED = previous


def setup(impl: str, time_steps: int, batch: int, capturable: bool):
    """Model, optimizer and a step (forward, backward, Adam) on fixed data, as in bench_neurons.py."""
    model = b.build("liafnet" if impl == "liafnet_torch" else impl, time_steps).to(DEVICE).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=capturable)
    frames, target = b.fixed_batch(DEVICE, time_steps, batch)

    def step() -> None:
        with triton_enabled(impl != "liafnet_torch"):
            nn.functional.cross_entropy(model(frames).mean(0), target).backward()
        optimizer.step()

    return optimizer, step


def eager(impl: str, time_steps: int, batch: int):
    optimizer, step = setup(impl, time_steps, batch, capturable=False)

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        step()

    return run


def graphed(impl: str, time_steps: int, batch: int):
    """Whole-step capture as in PyTorch's CUDA-graph docs: warm up on a side stream (this also
    compiles the Triton kernels), then capture."""
    optimizer, step = setup(impl, time_steps, batch, capturable=True)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(side)
    optimizer.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def peak_memory(impl: str, time_steps: int, batch: int) -> int:
    run = eager(impl, time_steps, batch)
    run()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def time_runners(runners: dict, rounds: int, steps: int) -> dict[str, list[float]]:
    for run in runners.values():  # warm-up
        for _ in range(3):
            run()
    torch.cuda.synchronize()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(steps):
                start = time.perf_counter()
                run()
                torch.cuda.synchronize()
                times[name].append(time.perf_counter() - start)
    return times


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "### CUDA step time and memory (benchmarks/bench_cuda_graph.py)", "",
        (f"DVS128 Gesture LIAF-Net, one training step (forward + backward + Adam), median of "
         f"{report['config']['rounds']} alternating rounds x {report['config']['steps']} steps, ms; "
         f"eager and whole-step CUDA graph; peak memory of a warm eager step above the pre-step level. "
         f"{m.get('gpu')}, torch {m['torch']}, CUDA {m.get('cuda')}, Triton {report['triton']}, "
         f"spikingjelly {report['spikingjelly']}."), "",
        "| T | batch | impl | eager (ms) | graph (ms) | peak memory (MiB) |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for row in report["rows"]:
        cells = [row.get(mode) for mode in MODES] + [row.get("peak_memory_bytes")]
        cells[2] = None if cells[2] is None else cells[2] / 2**20
        text = [f"{c:.2f}" if isinstance(c, float | int) else (c or "") for c in cells]
        lines.append(f"| {row['time_steps']} | {row['batch']} | {row['impl']} | " + " | ".join(text) + " |")
    lines += ["", "Goal (issue 17): liafnet step <= 1.15x the floor and <= 0.75x spikingjelly, memory <= "
              "spikingjelly's.", "", "| T | batch | mode | liafnet / floor | liafnet / spikingjelly | "
              "memory liafnet / spikingjelly | met |", "|---:|---:|---|---:|---:|---:|---|"]
    for check in report["checks"]:
        values = [check[k] for k in ("vs_floor", "vs_spikingjelly", "memory_vs_spikingjelly")]
        lines.append(f"| {check['time_steps']} | {check['batch']} | {check['mode']} | "
                     + " | ".join("" if v is None else f"{v:.3f}" for v in values) + f" | {check['met']} |")
    return "\n".join(lines) + "\n"


def ratio(rows: dict, a: str, b_: str, key: str) -> float | None:
    x, y = rows.get(a, {}).get(key), rows.get(b_, {}).get(key)
    return x / y if isinstance(x, float | int) and isinstance(y, float | int) and y else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-steps", type=int, nargs="+", default=[20, 60])
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results_neurons_cuda_triton.json"))
    parser.add_argument("--markdown", type=Path, default=None, help="default: --out with .md")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_cuda_graph.py needs a CUDA device (torch.cuda.is_available() is False)")
    sj_ok, sj_info = b.spikingjelly_status()
    impls = [impl for impl in args.impls if impl != "spikingjelly" or sj_ok]
    started = time.perf_counter()
    rows, checks = [], []
    for time_steps in args.time_steps:
        for batch in args.batch:
            runners, results = {}, {impl: {} for impl in impls}
            for impl in impls:
                for mode, make in (("eager", eager), ("graph", graphed)):
                    try:
                        runners[(impl, mode)] = make(impl, time_steps, batch)
                    except RuntimeError as error:  # a failed capture: report it, go on with the rest
                        results[impl][mode] = f"failed: {type(error).__name__}: {str(error)[:200]}"
                        torch.cuda.synchronize()
            times = time_runners(runners, args.rounds, args.steps)
            for (impl, mode), samples in times.items():
                results[impl][mode] = statistics.median(samples) * 1e3
                results[impl][mode + "_times_ms"] = [s * 1e3 for s in samples]
            del runners
            for impl in impls:
                results[impl]["peak_memory_bytes"] = peak_memory(impl, time_steps, batch)
                rows.append({"time_steps": time_steps, "batch": batch, "impl": impl, **results[impl]})
                print({k: v for k, v in rows[-1].items() if not k.endswith("_times_ms")}, flush=True)
            for mode in MODES:
                check = {"time_steps": time_steps, "batch": batch, "mode": mode,
                         "vs_floor": ratio(results, "liafnet", "floor", mode),
                         "vs_spikingjelly": ratio(results, "liafnet", "spikingjelly", mode),
                         "memory_vs_spikingjelly": ratio(results, "liafnet", "spikingjelly", "peak_memory_bytes")}
                values = (check["vs_floor"], check["vs_spikingjelly"], check["memory_vs_spikingjelly"])
                check["met"] = (None if None in values else
                                bool(values[0] <= b.TARGETS["vs_floor"] and values[1] <= b.TARGETS["vs_spikingjelly"]
                                     and values[2] <= 1.0))
                checks.append(check)
            torch.cuda.empty_cache()
    report = {
        "config": {"time_steps": args.time_steps, "batch": args.batch, "rounds": args.rounds, "steps": args.steps,
                   "network": "dvs_gesture liaf"},
        "machine": b.machine(DEVICE),
        "triton": getattr(triton_liaf.triton, "__version__", "not available"),
        "spikingjelly": sj_info if sj_ok else f"skipped ({sj_info})",
        "rows": rows, "checks": checks, "wall_s": time.perf_counter() - started,
    }
    atomic_write_json(args.out, report)
    text = markdown(report)
    atomic_write_text(args.markdown or args.out.with_suffix(".md"), text)
    print(text)


if __name__ == "__main__":
    main()
