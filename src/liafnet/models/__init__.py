"""``build_model(family, spec, **options)``: the one way configs turn into networks.

Event data (``spec.kind == "events"``) goes to :mod:`liafnet.models.vision`, text to
``liafnet.models.text.build_text_model`` (imported lazily). Options are the flat ``model.*`` keys,
checked against the family's schema in :mod:`liafnet.models.options` (defaults and allowed values
live there); a key the data kind ignores must keep its default.
"""

from __future__ import annotations

from torch import nn

from liafnet.data.spec import DataSpec
from liafnet.models.options import FAMILIES, MODEL_SCHEMAS, model_options

__all__ = ["FAMILIES", "MODEL_SCHEMAS", "build_model", "model_options"]


def build_model(family: str, spec: DataSpec, **options) -> nn.Module:
    """Build a ``family`` network for the input described by ``spec``.

    ``spec``: a :class:`liafnet.data.spec.DataSpec` (events: frames ``[T, C, H, W]`` per sample and a
    channel-plan ``layout``; text: vocabulary and lengths). The network maps time-first inputs to
    per-step logits ``[T', B, K]``. Raises ``ValueError`` naming ``model.family`` or
    ``model.<option>`` for anything unknown or out of range.
    """
    if spec.kind == "text":
        from liafnet.models.text import build_text_model

        return build_text_model(family, spec, **options)
    from liafnet.models.vision import build_vision_model

    return build_vision_model(family, spec, **options)
