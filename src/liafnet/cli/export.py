"""``liafnet-export ckpt_path=<run>/checkpoints/best.ckpt [out=model.nir] [dt=1e-4]``.

Writes the NIR graph of a LIF-SNN checkpoint (``model=lif``) with
:func:`liafnet.export_nir.export_checkpoint`; also ``python -m liafnet.cli.export ...``. Arguments
are ``key=value`` like ``liafnet-eval``'s: ``ckpt_path`` (required), ``out`` (default: the
checkpoint's path with suffix ``.nir``), ``dt`` (seconds per time step, default 1e-4). Exit status 2
with the reason on stderr when the checkpoint cannot be exported (a LIAF model, an option NIR cannot
express, a missing file, the ``nir`` package not installed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

KEYS = ("ckpt_path", "out", "dt")


def parse(argv: Sequence[str]) -> dict[str, str]:
    """``["ckpt_path=a.ckpt", "dt=1e-3"]`` -> ``{"ckpt_path": "a.ckpt", "dt": "1e-3"}``; ``ValueError``
    naming the argument for anything else."""
    values: dict[str, str] = {}
    for argument in argv:
        key, sep, value = argument.partition("=")
        if not sep or key not in KEYS:
            raise ValueError(f"unknown argument {argument!r}; expected key=value with key in {', '.join(KEYS)}")
        values[key] = value
    if "ckpt_path" not in values:
        raise ValueError("ckpt_path=<path/to/checkpoint.ckpt> is required")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``liafnet-export``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="liafnet-export", description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arguments", nargs="*", metavar="key=value", help="ckpt_path=..., out=..., dt=...")
    arguments = parser.parse_args(argv).arguments
    from liafnet.export_nir import DEFAULT_DT, export_checkpoint

    try:
        values = parse(arguments)
        try:
            dt = float(values.get("dt", DEFAULT_DT))
        except ValueError:
            raise ValueError(f"dt must be a number of seconds; got {values['dt']!r}") from None
        out = export_checkpoint(values["ckpt_path"], values.get("out") or None, dt=dt)
    except (ImportError, OSError, ValueError) as error:
        print(f"liafnet-export: error: {error}", file=sys.stderr)
        return 2
    print(f"liafnet-export: {values['ckpt_path']} -> {out} (NIR, dt={dt:g} s per step)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
