"""The efficiency table: parameters, operations and energy of every model on every event dataset,
as Markdown and CSV (rows from :func:`liafnet.profile.profile_model`, one per model x dataset)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from tabulate import tabulate

from liafnet.io import atomic_write_text
from liafnet.profile import ENERGY_PJ, ENERGY_SOURCE, PAPER_LABEL

COLUMNS = ("data", "model", "params", "bn_params", "neuron_params", "dense_macs", "macs", "acs", "synops",
           "energy_uj", "paper_mults", "paper_adds")


def efficiency_row(data: str, model: str, stats: Mapping) -> dict:
    """One table row from a :func:`~liafnet.profile.profile_model` result."""
    return {"data": data, "model": model, **{key: stats[key] for key in COLUMNS[2:9]},
            "energy_uj": round(stats["energy"]["total_uj"], 3),
            "paper_mults": stats["paper_convention"]["multiplications"],
            "paper_adds": stats["paper_convention"]["additions"]}


def write_efficiency_table(rows: Sequence[Mapping], out: str | Path, spike_rate: float,
                           energy_pj: Mapping[str, float] = ENERGY_PJ) -> tuple[Path, Path]:
    """``out``.md and ``out``.csv (written atomically); the notes say how every column was counted,
    the assumed spike rate and the energies per operation used (with their source)."""
    out = Path(out)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path = atomic_write_text(out.with_suffix(".csv"), buffer.getvalue())
    used = ", ".join(f"{key} {value:g} pJ" for key, value in energy_pj.items())
    changed = {key: value for key, value in energy_pj.items() if ENERGY_PJ.get(key) != value}
    energy = f"Energy per operation: {used}" + (
        f" (user-set: {', '.join(changed)}; defaults: {ENERGY_SOURCE})" if changed else f" ({ENERGY_SOURCE})")
    notes = (
        "\n\nPer sample over the whole sequence, computed by `python -m liafnet.profile` from the model and data "
        "configs (no data files). `params` = weights + biases; BN affine and decay parameters apart. "
        "`macs`: synaptic multiply-accumulates on analog inputs; `acs`: accumulates on spike-driven inputs "
        f"(binary event frames, LIF spikes), assumed rate {spike_rate}; `synops = macs + acs`. "
        f"{energy}; neuron updates 2 mult + 2 add each. `paper_*`: {PAPER_LABEL}. See docs/profile.md.\n")
    table = tabulate([[row[c] for c in COLUMNS] for row in rows], headers=COLUMNS, tablefmt="github",
                     intfmt=",", floatfmt=",.3f")
    md_path = atomic_write_text(out.with_suffix(".md"), "# Model efficiency\n\n" + table + notes)
    return md_path, csv_path
