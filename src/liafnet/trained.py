"""Reading a trained run: liafnet checkpoints read safely, and the trained network rebuilt from one.

A checkpoint written by ``liafnet-train`` is a Lightning checkpoint plus two plain entries: the
resolved run config (:data:`CONFIG_KEY`) and the :class:`~liafnet.data.spec.DataSpec` the model was
built for (:data:`SPEC_KEY`). Everything here reads with ``torch.load(..., weights_only=True)``
(tensors and plain containers only) and builds objects only through liafnet's own builders and
schemas: nothing named in the file is imported or called. No Hydra.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from liafnet.data.spec import DataSpec

CONFIG_KEY = "liafnet_config"
SPEC_KEY = "liafnet_spec"
MODEL_KEYS_NOT_OPTIONS = ("family", "readout")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint at ``path`` as plain containers (``weights_only=True``, on the CPU). Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` for one liafnet train did not write."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path}: no such checkpoint file")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or CONFIG_KEY not in checkpoint:
        raise ValueError(f"{path} was not written by liafnet train (no stored config)")
    return checkpoint


def spec_of_checkpoint(checkpoint: dict) -> DataSpec:
    """The :class:`DataSpec` the checkpoint's model was built for. Checkpoints from before it was
    stored carry it in their config's ``data.spec`` (event data); otherwise ``ValueError``."""
    if checkpoint.get(SPEC_KEY):
        return DataSpec(**checkpoint[SPEC_KEY])
    legacy = (checkpoint[CONFIG_KEY].get("data") or {}).get("spec") or {}
    if legacy.get("kind") == "events":
        return DataSpec(**legacy)
    raise ValueError("this checkpoint does not store its data spec (written by an older liafnet); "
                     "re-test it with `liafnet-eval ckpt_path=...`, which rebuilds the data")


def model_options_of(model_config: dict) -> dict:
    """A stored ``model`` config node as the keyword options of :func:`liafnet.models.build_model`."""
    return {k: v for k, v in model_config.items() if k not in MODEL_KEYS_NOT_OPTIONS}


def model_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The network's own ``state_dict`` from a task checkpoint (keys without the ``model.`` prefix)."""
    return {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}


def load_model(ckpt_path: str | os.PathLike) -> nn.Module:
    """The trained network of a liafnet checkpoint, on the CPU, in eval mode.

    Rebuilt with :func:`liafnet.models.build_model` from the stored model options (checked against
    the family's schema) and data spec, then loaded with the stored weights; the file is read with
    ``weights_only=True`` and nothing in it is instantiated. The network maps time-first input
    (``[T, B, C, H, W]`` frames, or bAbI ``(story [Ls, B], question [Lq, B])`` token ids) to per-step
    logits ``[T', B, K]``. Raises ``FileNotFoundError``/``ValueError`` as :func:`read_checkpoint`.
    """
    from liafnet.models import build_model

    checkpoint = read_checkpoint(ckpt_path)
    model_config = dict(checkpoint[CONFIG_KEY]["model"])
    model = build_model(model_config["family"], spec_of_checkpoint(checkpoint), **model_options_of(model_config))
    model.load_state_dict(model_state(checkpoint))
    return model.eval()
