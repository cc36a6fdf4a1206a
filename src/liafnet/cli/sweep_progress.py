"""Say what a sweep is doing while its jobs run elsewhere (Hydra callback, ``conf/hydra/default.yaml``).

Hydra's submitit launchers (``hydra/launcher=submitit_local``, ``hydra/launcher=slurm``) send each
job's output to a file under ``.submitit/`` and wait without a word until every job has ended. With
this callback the sweep prints its plan (how many jobs, where results and job logs go), one line per
job as it finishes (read from the job's ``metrics.json``), and a heartbeat while jobs are running.
Sweeps whose jobs print to this console (the basic and joblib launchers) are left as they are.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from liafnet.record import RunRecord


def count_jobs(config: DictConfig) -> int:
    """Jobs in the sweep: the product of the sizes of the sweeps in ``hydra.sweeper.params`` and on
    the command line (a command-line sweep of a key replaces the config's)."""
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    overrides = [f"{key}={value}" for key, value in params.items()]
    overrides += [str(o) for o in config.hydra.overrides.task]
    sizes: dict[str, int] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        sweep = override.is_sweep_override()
        sizes[override.get_key_element()] = len(list(override.sweep_string_iterator())) if sweep else 1
    return math.prod(sizes.values())


class SweepProgress(Callback):
    """Prints a sweep's plan, each finished job, and every ``heartbeat_s`` seconds a count."""

    def __init__(self, poll_s: float = 2.0, heartbeat_s: float = 60.0):
        self.poll_s, self.heartbeat_s = poll_s, heartbeat_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __getstate__(self) -> dict[str, float]:
        # Hydra pickles its callbacks into every submitit job; the watcher stays in this process.
        return {"poll_s": self.poll_s, "heartbeat_s": self.heartbeat_s}

    def __setstate__(self, state: dict[str, float]) -> None:
        self.__init__(**state)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = str(OmegaConf.select(config, "hydra.launcher._target_") or "")
        if "submitit" not in launcher:
            return
        sweep_dir = Path(str(config.hydra.sweep.dir))
        total = count_jobs(config)
        job_logs = str(OmegaConf.select(config, "hydra.launcher.submitit_folder")).replace("%j", "<job id>")
        print(f"liafnet sweep: {total} job(s) through {launcher.rsplit('.', 1)[-1]}; each writes "
              f"{sweep_dir}/<job>/metrics.json. Job output goes to files, follow it with\n"
              f"  tail -f {job_logs}/*_log.out\n"
              "This console prints a line as each job finishes.", flush=True)
        self._thread = threading.Thread(target=self._watch, args=(sweep_dir, total), daemon=True)
        self._thread.start()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    def _watch(self, sweep_dir: Path, total: int) -> None:
        start = last_beat = time.monotonic()
        reported: set[Path] = set()
        while True:
            stopping = self._stop.wait(self.poll_s)
            running = 0
            for path in sorted(sweep_dir.glob("*/metrics.json")):
                try:
                    record = RunRecord.read(path)
                except (OSError, ValueError):  # being replaced right now: read it next time
                    continue
                status = record.status
                if status == "running":
                    running += 1
                elif path not in reported:
                    reported.add(path)
                    result = f"test/acc {record.test_acc}" if record.finished else f"error: {record.error}"
                    print(f"liafnet sweep: {len(reported)}/{total} done: {path.parent.name}: {status}, {result}",
                          flush=True)
            if stopping:
                return
            now = time.monotonic()
            if now - last_beat >= self.heartbeat_s:
                last_beat = now
                print(f"liafnet sweep: {len(reported)}/{total} done, {running} running, "
                      f"{(now - start) / 60:.0f} min", flush=True)
