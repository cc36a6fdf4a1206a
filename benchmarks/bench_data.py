"""Data-pipeline benchmarks: AEDAT reading, framing, and the frame cache.

    python benchmarks/bench_data.py --out benchmarks/results_data.json [--markdown benchmarks/RESULTS.md]

1. ``read_aedat`` vs spikingjelly 2.0's AEDAT 3.1 reader (``spikingjelly.datasets.utils.load_aedat_v3``,
   a per-event Python loop) on the same synthetic 3.1 file; also AEDAT 2.0 throughput.
2. ``events_to_frames`` vs tonic's ``ToFrame`` on the same 1M events: time, and how many events
   each keeps (tonic drops the remainder and the last event, datasets.md §7.2).
3. Data time of a first epoch (cache built) vs a later epoch (cache read) for ``DVSGesture``.

Optional packages: ``pip install 'liafnet[bench]'`` (tonic) and
``pip install --no-deps spikingjelly==2.0.0`` (its torchvision pin is not installed; the benchmark
stubs torchvision's import so the reader, which uses only struct and numpy, can load). A missing
package skips its comparison and says so in the results.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

from liafnet.data.aedat import EVENT_DTYPE, read_aedat, write_aedat
from liafnet.data.dvs_gesture import DVSGesture
from liafnet.data.frames import events_to_frames

SENSOR = (128, 128, 2)


def best_time(fn, repeats: int) -> float:
    """Fastest of ``repeats`` wall-clock runs (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def synthetic_events(n: int, seed: int = 0, t_span: int = 10_000_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.empty(n, dtype=EVENT_DTYPE)
    events["x"], events["y"] = rng.integers(0, 128, n), rng.integers(0, 128, n)
    events["p"] = rng.integers(0, 2, n).astype(bool)
    events["t"] = np.sort(rng.integers(0, t_span, n))
    return events


class _Stub(types.ModuleType):
    """Stand-in for a heavy module that spikingjelly imports at module level but the timed reader
    never uses; any attribute is a dummy class."""

    def __init__(self, name: str):
        super().__init__(name)
        self.__path__ = []  # a package, so submodule imports reach the stubbing loop

    def __getattr__(self, attr):
        if attr.startswith("__"):  # __file__, __spec__, ...: behave like a module without them
            raise AttributeError(attr)
        return type(attr, (), {})


STUBBABLE = ("torchvision", "torchaudio")


def load_spikingjelly_reader():
    """spikingjelly's AEDAT 3.1 reader; torchvision/torchaudio (its declared dependencies, which we
    do not install) are stubbed if missing. The reader itself uses only struct and numpy."""
    for _ in range(20):
        try:
            from spikingjelly.datasets.utils import load_aedat_v3
        except ModuleNotFoundError as err:
            if err.name is None or err.name.split(".")[0] not in STUBBABLE:
                raise
            sys.modules[err.name] = _Stub(err.name)
            continue
        return load_aedat_v3
    raise ImportError("spikingjelly still fails to import after stubbing torchvision/torchaudio")


def bench_readers(folder: Path, n_events: int, repeats: int) -> dict:
    events = synthetic_events(n_events)
    v31 = folder / "bench31.aedat"
    v2 = folder / "bench20.aedat"
    write_aedat(v31, events, version="3.1")
    write_aedat(v2, events, version="2.0")
    ours31 = best_time(lambda: read_aedat(v31), repeats)
    ours2 = best_time(lambda: read_aedat(v2), repeats)
    result = {
        "events": n_events,
        "read_aedat_3.1_s": ours31,
        "read_aedat_3.1_events_per_s": n_events / ours31,
        "read_aedat_2.0_s": ours2,
        "read_aedat_2.0_events_per_s": n_events / ours2,
    }
    try:
        load_aedat_v3 = load_spikingjelly_reader()
    except ImportError as err:
        result["spikingjelly"] = f"skipped: {err}"
        return result
    theirs = best_time(lambda: load_aedat_v3(str(v31)), 3)  # seconds per run: fewer repeats
    decoded = load_aedat_v3(str(v31))
    ours = read_aedat(v31)
    same = all(np.array_equal(np.asarray(decoded[k]).astype(np.int64), ours[k].astype(np.int64)) for k in "xytp")
    result.update(
        {
            "spikingjelly_load_aedat_v3_s": theirs,
            "spikingjelly_events_per_s": n_events / theirs,
            "speedup_vs_spikingjelly": theirs / ours31,
            "identical_events": bool(same),
        }
    )
    return result


def bench_frames(n_events: int, n_bins: int, repeats: int) -> dict:
    events = synthetic_events(n_events, seed=1)
    ours_s = best_time(lambda: events_to_frames(events, SENSOR, n_time_bins=n_bins), repeats)
    ours = events_to_frames(events, SENSOR, n_time_bins=n_bins)
    result = {"events": n_events, "n_time_bins": n_bins, "events_to_frames_s": ours_s, "ours_total": int(ours.sum())}
    try:
        from tonic.transforms import ToFrame
    except ImportError as err:
        result["tonic"] = f"skipped: {err}"
        return result
    to_frame = ToFrame(sensor_size=SENSOR, n_time_bins=n_bins)
    theirs_s = best_time(lambda: to_frame(events), repeats)
    theirs = to_frame(events)
    result.update(
        {
            "tonic_ToFrame_s": theirs_s,
            "tonic_total": int(theirs.astype(np.int64).sum()),
            "tonic_lost_events": n_events - int(theirs.astype(np.int64).sum()),
            "tonic_dtype": str(theirs.dtype),
            "speedup_vs_tonic": theirs_s / ours_s,
        }
    )
    return result


def bench_cache(folder: Path, trials: int, gestures: int, events_per_gesture: int) -> dict:
    """A DVS Gesture tree in the original layout; epoch data time with an empty, then a warm cache."""
    root = folder / "DvsGesture"
    root.mkdir()
    names = [f"user{i + 1:02d}_lab" for i in range(trials)]
    rng = np.random.default_rng(2)
    for name in names:
        parts, rows = [], []
        for g in range(gestures):
            start, end = 1_000_000 + g * 6_500_000, 1_000_000 + g * 6_500_000 + 6_000_000
            parts.append(synthetic_events(events_per_gesture, seed=int(rng.integers(1 << 30)), t_span=end - start))
            parts[-1]["t"] += start
            rows.append(f"{g % 11 + 1},{start},{end}\n")
        write_aedat(root / f"{name}.aedat", np.concatenate(parts), version="3.1")
        (root / f"{name}_labels.csv").write_text("class,startTime_usec,endTime_usec\n" + "".join(rows))
    (root / "trials_to_train.txt").write_text("".join(f"{n}.aedat\n" for n in names))
    (root / "trials_to_test.txt").write_text("")

    def epoch(cache_dir):
        started = time.perf_counter()
        data = DVSGesture(root, "train", time_steps=60, cache_dir=cache_dir, random_crop=True)
        for i in range(len(data)):
            data[i]
        return time.perf_counter() - started, len(data)

    cache_dir = folder / "cache"
    first, n = epoch(cache_dir)
    later = min(epoch(cache_dir)[0] for _ in range(2))
    no_cache = epoch(None)[0]
    return {
        "recordings": trials,
        "samples": n,
        "events_per_sample": events_per_gesture,
        "first_epoch_s": first,
        "later_epoch_s": later,
        "no_disk_cache_epoch_s": no_cache,
        "later_ms_per_sample": 1000 * later / n,
    }


def markdown(results: dict) -> str:
    r, f, c = results["read_aedat"], results["events_to_frames"], results["cache"]
    lines = [
        "## Data pipeline (benchmarks/bench_data.py)",
        "",
        f"Machine: {results['machine']}. Best of several runs.",
        "",
        "| measurement | liafnet | reference | speed-up |",
        "|---|---:|---:|---:|",
    ]
    if "spikingjelly_load_aedat_v3_s" in r:
        lines.append(
            f"| AEDAT 3.1 read, {r['events']:,} events | {r['read_aedat_3.1_s'] * 1e3:.1f} ms "
            f"({r['read_aedat_3.1_events_per_s'] / 1e6:.1f} M ev/s) | spikingjelly `load_aedat_v3` "
            f"{r['spikingjelly_load_aedat_v3_s'] * 1e3:.0f} ms | {r['speedup_vs_spikingjelly']:.0f}x |"
        )
    else:
        lines.append(f"| AEDAT 3.1 read | {r['read_aedat_3.1_s'] * 1e3:.1f} ms | {r['spikingjelly']} | |")
    lines.append(
        f"| AEDAT 2.0 read, {r['events']:,} events | {r['read_aedat_2.0_s'] * 1e3:.1f} ms "
        f"({r['read_aedat_2.0_events_per_s'] / 1e6:.1f} M ev/s) | | |"
    )
    if "tonic_ToFrame_s" in f:
        lines.append(
            f"| frames, {f['events']:,} events, T={f['n_time_bins']} | {f['events_to_frames_s'] * 1e3:.1f} ms, "
            f"keeps {f['ours_total']:,} | tonic `ToFrame` {f['tonic_ToFrame_s'] * 1e3:.1f} ms, keeps "
            f"{f['tonic_total']:,} (loses {f['tonic_lost_events']:,}) | {f['speedup_vs_tonic']:.1f}x |"
        )
    else:
        lines.append(f"| frames | {f['events_to_frames_s'] * 1e3:.1f} ms | {f['tonic']} | |")
    lines += [
        (
            f"| DVSGesture epoch, {c['samples']} samples x {c['events_per_sample']:,} events | later epoch "
            f"{c['later_epoch_s']:.2f} s ({c['later_ms_per_sample']:.1f} ms/sample) | first epoch (builds cache) "
            f"{c['first_epoch_s']:.2f} s; no disk cache {c['no_disk_cache_epoch_s']:.2f} s | "
            f"{c['first_epoch_s'] / c['later_epoch_s']:.1f}x |"
        ),
        "",
    ]
    if "identical_events" in r:
        lines.append(f"Both readers decode identical events: {r['identical_events']}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="liafnet data-pipeline benchmarks")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results_data.json"))
    parser.add_argument("--markdown", type=Path, help="append the results table to this markdown file")
    parser.add_argument("--read-events", type=int, default=300_000)
    parser.add_argument("--frame-events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.read_events, args.frame_events, args.repeats = 20_000, 50_000, 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = {
            "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
            f"numpy {np.__version__}",
            "read_aedat": bench_readers(folder, args.read_events, args.repeats),
            "events_to_frames": bench_frames(args.frame_events, 20, args.repeats),
            "cache": bench_cache(
                folder, trials=2 if args.quick else 8, gestures=12, events_per_gesture=2_000 if args.quick else 50_000
            ),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    if args.markdown:
        with args.markdown.open("a") as f:
            f.write("\n" + table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
