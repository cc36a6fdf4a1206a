"""Training-step cost of the liafnet LIAF neuron inside the DVS128 Gesture LIAF-Net.

Compares, in one process and alternating between them so machine load hits all alike:

- ``liafnet``: the network as built by ``liafnet.models.build_model("liaf", ...)`` (fused kernel);
- ``floor``: the same network with every neuron replaced by ReLU (same convolutions, BN, pooling,
  no temporal dynamics): the cost the neuron adds on top of the synaptic layers;
- ``spikingjelly``: every neuron replaced by spikingjelly's ``LIAFNode`` in multi-step mode
  (``step_mode='m'``), SELU, NTR, threshold 0.5, hard reset to 0, detached reset, and the same
  initial leak (``tau = 1 / (1 - sigmoid(0.5))``, ``decay_input=False``). Skipped with the reason when
  spikingjelly cannot be imported.

One step = forward + backward + Adam step on a random batch. Peak memory of one step is measured in
a fresh subprocess per implementation: on CPU the peak resident set (``VmHWM``, reset first) above
the pre-step resident set,
``torch.cuda.max_memory_allocated`` above the pre-step level on CUDA.

    python benchmarks/bench_neurons.py --device cpu --out benchmarks/results_neurons.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from liafnet.data.spec import DataSpec
from liafnet.layers import LIAFNeuron
from liafnet.models import build_model

IMPLS = ("liafnet", "floor", "spikingjelly")
TARGETS = {"vs_floor": 1.15, "vs_spikingjelly": 0.75}


class ReLUNeuron(nn.Module):
    """Floor: the neuron slot filled with a stateless ReLU."""

    def forward(self, x: torch.Tensor, membrane_norm: nn.Module | None = None) -> torch.Tensor:
        return torch.relu(x)


class SpikingJellyNeuron(nn.Module):
    """spikingjelly's multi-step LIAFNode in the neuron slot; resets its state after each call."""

    def __init__(self, alpha: float):
        super().__init__()
        from spikingjelly.activation_based import neuron

        self.node = neuron.LIAFNode(
            act=nn.SELU(), threshold_related=False, tau=1.0 / (1.0 - alpha), decay_input=False,
            v_threshold=0.5, v_reset=0.0, detach_reset=True, step_mode="m")

    def forward(self, x: torch.Tensor, membrane_norm: nn.Module | None = None) -> torch.Tensor:
        y = self.node(x)
        self.node.reset()
        return y


def spikingjelly_status() -> tuple[bool, str]:
    try:
        from spikingjelly.activation_based import neuron  # noqa: F401
    except Exception as error:  # any import failure means "skip", with the reason recorded
        return False, f"spikingjelly cannot be imported: {type(error).__name__}: {error}"
    return True, importlib.metadata.version("spikingjelly")


def build(impl: str, time_steps: int) -> nn.Module:
    spec = DataSpec(kind="events", layout="dvs_gesture", time_steps=time_steps, channels=2, height=32,
                    width=32, num_classes=11)
    torch.manual_seed(0)
    model = build_model("liaf", spec)
    if impl == "liafnet":
        return model
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LIAFNeuron):
                alpha = float(child.alpha().detach().mean())
                setattr(module, name, ReLUNeuron() if impl == "floor" else SpikingJellyNeuron(alpha))
    return model


def fixed_batch(device: torch.device, time_steps: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The benchmark's input: sparse binary Gesture-sized frames and labels, the same every call."""
    generator = torch.Generator().manual_seed(1)
    frames = (torch.rand(time_steps, batch, 2, 32, 32, generator=generator) < 0.05).float().to(device)
    target = torch.randint(0, 11, (batch,), generator=generator).to(device)
    return frames, target


def make_step(model: nn.Module, device: torch.device, time_steps: int, batch: int):
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    frames, target = fixed_batch(device, time_steps, batch)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(frames).mean(0), target)
        loss.backward()
        optimizer.step()

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_impls(impls: list[str], device: torch.device, time_steps: int, batch: int, repeats: int,
               warmup: int) -> dict[str, list[float]]:
    steps = {impl: make_step(build(impl, time_steps), device, time_steps, batch) for impl in impls}
    for impl in impls:
        for _ in range(warmup):
            steps[impl]()
        sync(device)
    times: dict[str, list[float]] = {impl: [] for impl in impls}
    for _ in range(repeats):
        for impl in impls:
            sync(device)
            start = time.perf_counter()
            steps[impl]()
            sync(device)
            times[impl].append(time.perf_counter() - start)
    return times


def peak_memory_child(impl: str, device_name: str, time_steps: int, batch: int) -> int:
    """Run in a subprocess: bytes of peak memory that one training step adds."""
    device = torch.device(device_name)
    step = make_step(build(impl, time_steps), device, time_steps, batch)
    if device.type == "cuda":
        sync(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident set, to VmRSS
    before = _proc_status_bytes("VmRSS")
    step()
    return _proc_status_bytes("VmHWM") - before


def _proc_status_bytes(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process (Linux). Unlike ``ru_maxrss`` they are not inherited
    from the parent across fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}: peak memory needs Linux")


def peak_memory(impl: str, device: str, time_steps: int, batch: int) -> int:
    command = [sys.executable, __file__, "--memory-child", impl, "--device", device,
               "--time-steps", str(time_steps), "--batch", str(batch), "--threads", str(torch.get_num_threads())]
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=os.environ.copy())
    return int(result.stdout.strip().splitlines()[-1])



def machine(device: torch.device) -> dict:
    info = {
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_1_5_15_min": [round(load, 2) for load in os.getloadavg()],
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def markdown(report: dict) -> str:
    cfg, res = report["config"], report["results"]
    lines = [
        f"### Neuron benchmark ({cfg['device']})",
        "",
        (f"DVS128 Gesture LIAF-Net (2,322,891 weights), T={cfg['time_steps']}, batch {cfg['batch']}, "
         f"one training step (forward + backward + Adam), median of {cfg['repeats']} alternating runs, "
         f"{cfg['threads']} torch thread(s). "
         f"Machine: {report['machine']['processor']}, {report['machine']['cpu_count']} CPUs, "
         f"{report['machine'].get('gpu', 'no GPU')}, load average {report['machine']['load_average_1_5_15_min']} "
         f"at the end; torch {report['machine']['torch']}, spikingjelly {report['spikingjelly']}."),
        "",
        "| implementation | step (s, median) | peak memory of a step (MiB) |",
        "|---|---:|---:|",
    ]
    for impl in IMPLS:
        if impl in res:
            lines.append(f"| {impl} | {res[impl]['median_s']:.4f} | {res[impl]['peak_memory_bytes'] / 2**20:.1f} |")
        else:
            lines.append(f"| {impl} | skipped: {report['skipped'].get(impl, '')} | |")
    lines += ["", "| check | value | target | met |", "|---|---:|---:|---|"]
    for name, check in report["checks"].items():
        value = "skipped" if check["value"] is None else f"{check['value']:.3f}"
        lines.append(f"| {name} | {value} | {check['target']} | {check['met']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results_neurons.json"))
    parser.add_argument("--markdown", type=Path, default=None, help="default: --out with .md")
    parser.add_argument("--time-steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); 1 is robust on a shared machine")
    parser.add_argument("--memory-child", choices=IMPLS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        print(peak_memory_child(args.memory_child, args.device, args.time_steps, args.batch))
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to this torch build")
    device = torch.device(args.device)
    sj_ok, sj_info = spikingjelly_status()
    impls = [impl for impl in IMPLS if impl != "spikingjelly" or sj_ok]
    started = time.perf_counter()
    times = time_impls(impls, device, args.time_steps, args.batch, args.repeats, args.warmup)
    results = {impl: {"median_s": statistics.median(times[impl]), "times_s": times[impl],
                      "peak_memory_bytes": peak_memory(impl, args.device, args.time_steps, args.batch)}
               for impl in impls}

    def ratio(a: str, b: str, key: str) -> float | None:
        return results[a][key] / results[b][key] if a in results and b in results else None

    checks = {
        "step liafnet / floor": (ratio("liafnet", "floor", "median_s"), f"<= {TARGETS['vs_floor']}"),
        "step liafnet / spikingjelly": (ratio("liafnet", "spikingjelly", "median_s"),
                                        f"<= {TARGETS['vs_spikingjelly']}"),
        "memory liafnet / spikingjelly": (ratio("liafnet", "spikingjelly", "peak_memory_bytes"), "<= 1.0"),
    }
    limits = {"step liafnet / floor": TARGETS["vs_floor"], "step liafnet / spikingjelly": TARGETS["vs_spikingjelly"],
              "memory liafnet / spikingjelly": 1.0}
    report = {
        "config": {"device": args.device, "time_steps": args.time_steps, "batch": args.batch,
                   "threads": torch.get_num_threads(),
                   "repeats": args.repeats, "warmup": args.warmup, "network": "dvs_gesture liaf"},
        "machine": machine(device),
        "spikingjelly": sj_info if sj_ok else "not available",
        "skipped": {} if sj_ok else {"spikingjelly": sj_info},
        "results": results,
        "checks": {name: {"value": value, "target": target,
                          "met": None if value is None else bool(value <= limits[name])}
                   for name, (value, target) in checks.items()},
        "wall_s": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    md_path = args.markdown or args.out.with_suffix(".md")
    md_path.write_text(markdown(report))
    print(markdown(report))
    if any(math.isnan(r["median_s"]) for r in results.values()):
        sys.exit("a benchmark produced no timing")


if __name__ == "__main__":
    main()
