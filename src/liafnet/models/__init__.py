"""``build_model(family, spec, **options)``: the one way configs turn into networks.

Event data (``spec.kind == "events"``) goes to :mod:`liafnet.models.vision`, text to
``liafnet.models.text.build_text_model`` (imported lazily). Model configs are flat and shared by both
kinds, so each side drops the other's keys: the vision builder ignores keys starting with ``text_``,
and the text builder never sees the vision-only keys (:data:`vision.VISION_ONLY_OPTIONS`).
"""

from __future__ import annotations

from torch import nn

from liafnet.data.spec import DataSpec

FAMILIES = ("liaf", "lif", "lstm", "gru", "convlstm", "conv3d")
TEXT_PREFIX = "text_"


def build_model(family: str, spec: DataSpec, **options) -> nn.Module:
    """Build a ``family`` network for the input described by ``spec``.

    Raises ``ValueError`` naming ``model.family`` or ``model.<option>`` for anything unknown.
    """
    if family not in FAMILIES:
        raise ValueError(f"model.family must be one of {', '.join(FAMILIES)}; got {family!r}")
    if spec.kind == "text":
        from liafnet.models.text import build_text_model
        from liafnet.models.vision import VISION_ONLY_OPTIONS

        return build_text_model(family, spec, **{k: v for k, v in options.items() if k not in VISION_ONLY_OPTIONS})
    from liafnet.models.vision import build_vision_model

    return build_vision_model(family, spec, **{k: v for k, v in options.items() if not k.startswith(TEXT_PREFIX)})
