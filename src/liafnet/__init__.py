"""liafnet: Leaky Integrate and Analog Fire networks (Wu et al., IEEE TNNLS 2021) and their baselines.

The public API (README "Use LIAF layers in your own model"):

- layers over time-first tensors ``[T, B, ...]``: :class:`ConvLIAF`, :class:`ConvLIF`,
  :class:`DenseLIAF`, :class:`DenseLIF`, :class:`RecurrentLIAF`, :class:`ConvLSTM`,
  :class:`LIAFNeuron`, :class:`TimeDistributed`; neuron settings from :func:`neuron_config`
  (options :class:`LIAFNeuronOptions` / :class:`LIFNeuronOptions`);
- readers: :func:`read_aedat` (AEDAT 2.0 / 3.1 -> structured events), :func:`events_to_frames`
  (events -> ``[T, P, H, W]`` frames), :func:`parse_babi` (bAbI text files -> examples);
- models: :func:`build_model` (a paper network for a :class:`DataSpec`), :func:`load_model` (the
  trained network of a liafnet checkpoint, read with ``weights_only=True``).
"""

from __future__ import annotations

from importlib import metadata

from liafnet.trained import load_model
from liafnet.data.aedat import read_aedat
from liafnet.data.babi import parse_babi
from liafnet.data.frames import events_to_frames
from liafnet.data.spec import DataSpec
from liafnet.layers import (
    ConvLIAF,
    ConvLIF,
    ConvLSTM,
    DenseLIAF,
    DenseLIF,
    LIAFNeuron,
    RecurrentLIAF,
    TimeDistributed,
)
from liafnet.models import build_model
from liafnet.neurons import LIAFNeuronOptions, LIFNeuronOptions, NeuronConfig, neuron_config

try:
    __version__ = metadata.version("liafnet")
except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

__all__ = [
    "ConvLIAF", "ConvLIF", "ConvLSTM", "DataSpec", "DenseLIAF", "DenseLIF", "LIAFNeuron", "LIAFNeuronOptions",
    "LIFNeuronOptions", "NeuronConfig", "RecurrentLIAF", "TimeDistributed", "__version__", "build_model",
    "events_to_frames", "load_model", "neuron_config", "parse_babi", "read_aedat",
]
