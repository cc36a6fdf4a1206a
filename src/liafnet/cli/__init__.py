"""Thin command-line entry points: parse, build (:mod:`liafnet.build`), call, print.

- ``liafnet-train`` / ``python train.py [overrides]``: :func:`liafnet.cli.train.main`
- ``liafnet-eval`` / ``python eval.py ckpt_path=...``: :func:`liafnet.cli.eval.main`
"""
