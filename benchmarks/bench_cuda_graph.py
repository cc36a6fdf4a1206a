"""Is the CUDA training step launch-bound? Eager vs whole-step CUDA-graph replay (CUDA only).

The network, data and step of ``bench_neurons.py`` (DVS Gesture LIAF-Net, T=20) for liafnet, the
ReLU floor and spikingjelly's LIAFNode, each run eagerly and as one captured CUDA graph (forward,
backward, Adam with ``capturable=True``); median of 30 steps. Results: docs/neurons.md.

    python benchmarks/bench_cuda_graph.py
"""
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_neurons as b

DEVICE = torch.device("cuda")


def setup(impl: str, time_steps: int, batch: int, capturable: bool):
    """Model, optimizer and a step (forward, backward, Adam) on fixed data, as in bench_neurons.py."""
    model = b.build(impl, time_steps).to(DEVICE).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=capturable)
    frames, target = b.fixed_batch(DEVICE, time_steps, batch)

    def step() -> None:
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
    """Whole-step capture as in PyTorch's CUDA-graph docs: warm up on a side stream, then capture."""
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


def median_ms(fn, repeats: int = 30) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("bench_cuda_graph.py needs a CUDA device (torch.cuda.is_available() is False)")
    print(torch.__version__, torch.cuda.get_device_name())
    for batch in (8, 32):
        for impl in ("liafnet", "floor", "spikingjelly"):
            for mode, make in (("eager", eager), ("cuda-graph", graphed)):
                label = f"T=20 B={batch:3d} {impl:12s} {mode:10s}"
                try:
                    print(f"{label} {median_ms(make(impl, 20, batch)):7.2f} ms", flush=True)
                except RuntimeError as error:  # a failed capture: report it and go on with the rest
                    print(f"{label} FAILED {type(error).__name__}: {str(error)[:300]}", flush=True)
                    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
