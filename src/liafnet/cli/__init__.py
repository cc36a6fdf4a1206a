"""Thin command-line entry points: parse, build (:mod:`liafnet.build`), call, print.

- ``liafnet-train`` / ``python train.py [overrides]``: :func:`liafnet.cli.train.main`
- ``liafnet-eval`` / ``python eval.py ckpt_path=...``: :func:`liafnet.cli.eval.main`
- ``liafnet-export`` / ``python -m liafnet.cli.export ckpt_path=... [out=...]``: NIR export of a LIF-SNN,
  :func:`liafnet.cli.export.main` (logic in :mod:`liafnet.export_nir`; needs ``liafnet[nir]``)
"""
