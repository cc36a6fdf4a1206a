"""The model-config schemas: one dataclass per family, the one home of every model default and check.

A model config (``conf/model/<family>.yaml``, the ``model`` node) is flat: neuron keys
(:class:`liafnet.neurons.LIAFNeuronOptions`), layer keys (:class:`NetworkOptions`), the bAbI reader's
``text_*`` keys (:class:`TextOptions`) and the family's own keys. Keys marked ``kind="events"`` size
the event-frame networks only, ``kind="text"`` the bAbI reader only; setting one for the other data
kind is an error (:meth:`liafnet.schema.Options.ignored_for`), never a silent no-op.

:mod:`liafnet.config` registers each schema with Hydra (``schema/model/<family>``); the YAML files
only pick the schema and set what differs. :func:`model_options` checks a plain dict the same way
for Python callers of :func:`liafnet.models.build_model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Dict, Optional

from liafnet.layers import RECURRENT_NORMS, LayerOptions
from liafnet.neurons import LIAFNeuronOptions, LIFNeuronOptions
from liafnet.schema import OptionError, Options, option

READOUTS = ("mean", "last")


@dataclass
class ModelOptions(Options):
    """Keys every family has."""

    family: str = option("liaf", doc="the model family (choose it with model=<family>)")
    readout: str = option("mean", choices=READOUTS,
                          doc="mean: mean over time of the per-step outputs | last: the last step")
    sum_frames: bool = option(False, kind="events",
                              doc="frame-summing baseline: sum the input over T into one frame")


@dataclass
class NetworkOptions(LayerOptions):
    """Keys of LIAF-Net / LIF-SNN on event frames (docs/models.md): the layers' normalisation and
    pooling (:class:`liafnet.layers.LayerOptions`) plus dropout, classifier and initialisation."""

    dropout: float = option(0.0, ge=0, lt=1, kind="events")
    classifier: str = option("neuron", choices=("neuron", "linear"), kind="events",
                             doc="the classifier is a LIAF/LIF layer (authors) | a linear layer")
    init: str = option("authors", choices=("authors", "default"), kind="events",
                       doc="Kaiming-normal weights, biases 0.5 (authors) | torch defaults")


@dataclass
class TextOptions(Options):
    """The bAbI reader's keys (docs/babi.md): Keras ``babi_rnn`` sizes."""

    text_embed_dim: int = option(50, ge=1, kind="text", doc="story and question embeddings")
    text_hidden: int = option(50, ge=1, kind="text", doc="story (and, with concat, question) reader size")
    text_dropout: float = option(0.3, ge=0, lt=1, kind="text",
                                 doc="after the embeddings and before the classifier")
    text_merge: str = option("sum_repeat", choices=("sum_repeat", "concat"), kind="text",
                             doc="sum_repeat: question summary added to every story step | concat (Keras 2)")
    text_init: str = option("keras", choices=("keras", "torch"), kind="text",
                            doc="keras: Glorot/orthogonal/zero bias, embeddings U(-0.05, 0.05) | torch")


@dataclass
class SpikingTextOptions(TextOptions):
    """Text keys of the LIAF/LIF readers."""

    text_encoder: str = option("rnn", choices=("rnn", "dense"), kind="text",
                               doc="rnn: LIAF-RNN (recurrent weights on the membrane) | dense: DenseLIAF")
    text_recurrent_norm: str = option("gain", choices=RECURRENT_NORMS, kind="text",
                                      doc="gain: LIAF-RNN loop gain alpha*||W_v|| capped at 1 | none")
    text_neuron: Dict[str, Any] = option({}, kind="text",
                                         doc="neuron keys that override the shared ones for the text reader")


@dataclass
class LIAFModel(ModelOptions, LIAFNeuronOptions, NetworkOptions, SpikingTextOptions):
    """LIAF-Net: ``model=liaf``."""

    family: str = option("liaf", choices=("liaf",))


@dataclass
class LIFModel(ModelOptions, LIFNeuronOptions, NetworkOptions, SpikingTextOptions):
    """LIF-SNN baseline: LIAF-Net's layout with spiking neurons, ``model=lif``."""

    family: str = option("lif", choices=("lif",))


@dataclass
class RNNModel(ModelOptions, TextOptions):
    """LSTM/GRU over flattened frames (events) or the bAbI reader with LSTM/GRU encoders (text)."""

    family: str = option("lstm", choices=("lstm", "gru"))
    readout: str = option("last", choices=READOUTS)
    hidden_size: Optional[int] = option(None, ge=1, kind="events",
                                        doc="null: the layout's default (synthetic 64, dvs_gesture 256, ...)")
    num_layers: int = option(1, ge=1, kind="events")
    dropout: float = option(0.0, ge=0, lt=1, kind="events", doc="between stacked layers")
    text_init: str = option("torch", choices=("keras", "torch"), kind="text",
                            doc="torch defaults, chosen on bAbI validation (docs/babi.md) | keras")
    text_encoder: str = option("rnn", choices=("rnn",), kind="text", doc="the family's own recurrent layer")


@dataclass
class LSTMModel(RNNModel):
    """``model=lstm``."""

    family: str = option("lstm", choices=("lstm",))


@dataclass
class GRUModel(RNNModel):
    """``model=gru``."""

    family: str = option("gru", choices=("gru",))


@dataclass
class ConvLSTMModel(ModelOptions):
    """ConvLSTM baseline (authors' lstmconv.py layout), event data only: ``model=convlstm``."""

    family: str = option("convlstm", choices=("convlstm",))
    readout: str = option("last", choices=READOUTS)
    dropout: float = option(0.0, ge=0, lt=1, kind="events", doc="before each fully connected layer")


@dataclass
class Conv3DModel(ModelOptions):
    """Conv3D baseline, event data only: ``model=conv3d``."""

    family: str = option("conv3d", choices=("conv3d",))
    readout: str = option("last", choices=READOUTS)
    temporal_kernel: int = option(3, ge=1, odd=True, kind="events")
    dropout: float = option(0.0, ge=0, lt=1, kind="events", doc="before each fully connected layer")


MODEL_SCHEMAS: dict[str, type[ModelOptions]] = {
    "liaf": LIAFModel, "lif": LIFModel, "lstm": LSTMModel, "gru": GRUModel,
    "convlstm": ConvLSTMModel, "conv3d": Conv3DModel,
}
FAMILIES = tuple(MODEL_SCHEMAS)
TEXT_FAMILIES = ("liaf", "lif", "lstm", "gru")


def model_options(family: str, options: Mapping[str, Any], data_kind: str) -> ModelOptions:
    """Check ``options`` (flat ``model.*`` keys, ``family`` optional) for ``family`` on ``data_kind``
    (``"events"``/``"text"``) data; return the typed options with every default filled in.

    Raises :class:`liafnet.schema.OptionError` (a ``ValueError``) naming ``model.<key>``: an unknown
    family or key, a bad value, a key that ``data_kind`` ignores set away from its default, or a
    family that has no model for ``data_kind``.
    """
    if family not in MODEL_SCHEMAS:
        raise OptionError("model.family", f"must be one of {', '.join(FAMILIES)} (model=<family>); "
                                          f"got {family!r}")
    if data_kind == "text" and family not in TEXT_FAMILIES:
        raise OptionError("model.family", f"must be one of {', '.join(TEXT_FAMILIES)} for text data; "
                                          f"{family!r} has no text model")
    options = {"family": family, **options}
    parsed = MODEL_SCHEMAS[family].parse(options, prefix="model.")
    parsed.ignored_for(data_kind, prefix="model.")
    if isinstance(parsed, (LIAFModel, LIFModel)) and parsed.text_neuron:
        schema = LIFNeuronOptions if family == "lif" else LIAFNeuronOptions
        schema.parse(parsed.text_neuron, prefix="model.text_neuron.")
    return parsed


def check_model_config(model: Mapping[str, Any], data_kind: str) -> ModelOptions:
    """:func:`model_options` on a composed ``model`` node (a plain mapping that holds ``family``)."""
    options = dict(model)
    return model_options(options.pop("family", None), options, data_kind)
