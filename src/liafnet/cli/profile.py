"""``python -m liafnet.profile model=<m> data=<d> [overrides]``: one JSON object with parameters,
operations and energy per sample (:mod:`liafnet.profile`); ``--table OUT`` writes the efficiency
table of every model x event dataset (:mod:`liafnet.report.efficiency`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from liafnet import build, config
from liafnet.profile import DEFAULT_SPIKE_RATE, ENERGY_PJ, ENERGY_SOURCE, energy_per_op, profile_model
from liafnet.report.efficiency import efficiency_row, write_efficiency_table


def profile_config(overrides: list[str], spike_rate: float = DEFAULT_SPIKE_RATE,
                   rates: Mapping[str, float] | None = None,
                   energy_pj: Mapping[str, float] | None = None) -> dict:
    """Compose the ``train`` config with ``overrides`` and profile its model on its data spec (a
    text spec is known only once the datamodule has read its files; event specs need no files)."""
    cfg = config.compose(["paths.run_dir=.", *overrides])  # no run folder: nothing trains
    datamodule = build.build_datamodule(cfg)
    if config.data_kind(cfg) == "text":
        datamodule.prepare_data()
        datamodule.setup("fit")
    spec = build.spec_of(datamodule)
    model = build.build_model_from_config(cfg, spec, compile=False)
    stats = profile_model(model, spec, spike_rate=spike_rate, rates=rates, energy_pj=energy_pj)
    return {"model": cfg.model.family, "data": cfg.data.name, **stats}


def event_datasets() -> list[str]:
    """The ``conf/data`` choices that produce event frames, in the models' layout order."""
    from liafnet.models.vision import LAYOUTS

    names = [name for name in config.group_options("data")
             if config.data_kind(config.compose([f"data={name}"], check=False)) == "events"]
    return _ordered(names, tuple(LAYOUTS))


def _ordered(names: list[str], preferred: tuple) -> list[str]:
    return sorted(names, key=lambda name: (preferred.index(name) if name in preferred else len(preferred), name))


def efficiency_table(out: Path, spike_rate: float = DEFAULT_SPIKE_RATE,
                     energy_pj: Mapping[str, float] | None = None) -> list[dict]:
    """Profile every ``conf/model`` family on every event ``conf/data`` config; write ``out``.md/.csv."""
    from liafnet.models import FAMILIES

    models = _ordered(config.group_options("model"), FAMILIES)
    rows = [efficiency_row(data, model, profile_config([f"model={model}", f"data={data}"], spike_rate,
                                                       energy_pj=energy_pj))
            for data in event_datasets() for model in models]
    write_efficiency_table(rows, out, spike_rate, energy_per_op(energy_pj))
    return rows


def _energy(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected OP=PJ, e.g. mac=4.6, got {text!r}") from None


RATE_PREFIX = "val/rate/"  # firing-rate telemetry's keys in a run's metrics (liafnet.telemetry)


def _rates(path: str) -> dict[str, float]:
    """A JSON object ``{layer: rate}``, or a run's metrics.json, whose ``firing`` entries
    ``val/rate/<layer>`` (the firing-rate telemetry of the last validation epoch) are taken."""
    try:
        rates = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise argparse.ArgumentTypeError(f"--rates {path}: cannot read a JSON object ({error})") from None
    if not isinstance(rates, dict):
        raise argparse.ArgumentTypeError(f"--rates {path}: expected a JSON object {{layer: rate}}")
    entries = (rates.get("firing") or {}) if "model" in rates else rates
    measured = {key.removeprefix(RATE_PREFIX): value for key, value in entries.items() if key.startswith(RATE_PREFIX)}
    if "model" in rates and not measured:
        raise argparse.ArgumentTypeError(f"--rates {path}: a run record without {RATE_PREFIX}<layer> entries "
                                         "(was the run trained with firing-rate telemetry?)")
    return measured or rates


def main(argv: Sequence[str] | None = None) -> int:
    defaults = ", ".join(f"{key}={value:g}" for key, value in ENERGY_PJ.items())
    parser = argparse.ArgumentParser(
        prog="python -m liafnet.profile",
        description="Parameters, MACs, ACs, synaptic operations and an energy estimate per sample of a "
                    "model config, as one JSON object; or (--table) the efficiency table of every model on "
                    "every event dataset. Needs no data files.")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=lif data=dvs_gesture")
    parser.add_argument("--table", type=Path, help="write OUT.md and OUT.csv for every model x event dataset")
    parser.add_argument("--spike-rate", type=float, default=DEFAULT_SPIKE_RATE,
                        help="assumed firing rate of spike-driven inputs without a measured one (default %(default)s)")
    parser.add_argument("--rates", type=_rates, help="measured firing rates that replace --spike-rate for those "
                                                     "layers: a JSON file {neuron layer or 'input': rate}, or a "
                                                     "run's metrics.json (its firing entries val/rate/<layer>)")
    parser.add_argument("--energy", type=_energy, action="append", default=[], metavar="OP=PJ",
                        help=f"energy per operation in pJ, repeatable; defaults {defaults} ({ENERGY_SOURCE})")
    args = parser.parse_intermixed_args(argv)
    energy = dict(args.energy)
    energy_per_op(energy)  # unknown keys fail here, before any model is built
    if args.table is not None:
        if args.rates:
            parser.error("--rates names one model's layers; it does not apply to --table")
        rows = efficiency_table(args.table, args.spike_rate, energy)
        print(f"wrote {args.table.with_suffix('.md')} and {args.table.with_suffix('.csv')} ({len(rows)} rows)")
        return 0
    print(json.dumps(profile_config(args.overrides, args.spike_rate, args.rates, energy), indent=2))
    return 0
