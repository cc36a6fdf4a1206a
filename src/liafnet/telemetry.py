"""Firing-rate telemetry: per-layer spike rates and mean analog outputs, logged every validation epoch.

:class:`FiringRates` is a Lightning callback. At the start of each validation (and test) epoch it
switches every :class:`liafnet.layers.LIAFNeuron` of the model to measuring; at the end it logs, per
neuron layer, through the LightningModule's logger (CSV, wandb, TensorBoard columns):

- ``val/rate/<layer>``: the fraction of neurons firing per step, mean ``S`` over neurons, steps and
  validation samples. For LIF layers these are the output spikes; for LIAF layers the internal
  firing that resets the membrane (the analog output is not a spike);
- ``val/activity/<layer>`` (LIAF layers only): the mean analog output ``Y``.

``<layer>`` is the module name of the layer that owns the neuron (``convs.0``, ``dense.1``,
``story_encoder``). Measuring never changes a layer's outputs, and training epochs are not measured.
:attr:`FiringRates.last` holds the last logged values (validation and test) for the run record.
"""

from __future__ import annotations

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from liafnet.layers import LIAFNeuron, neuron_layers


def layer_name(module_name: str) -> str:
    """``model.convs.0.neuron`` -> ``convs.0``: the owning layer's name inside the model."""
    name = module_name.removeprefix("model.")
    return name.removesuffix(".neuron") if name != "neuron" else name


class FiringRates(Callback):
    """Log per-layer firing rates and mean analog activity each validation and test epoch.

    Columns: ``<stage>/rate/<layer>`` for every neuron layer and ``<stage>/activity/<layer>`` for
    LIAF (analog) layers, ``stage`` in ``val``, ``test``. Values are means over the whole epoch
    (averaged over ranks under DDP). Models without LIAF/LIF neurons log nothing. ``last`` maps the
    column names to the values last logged (validation epochs other than the sanity check, and test).
    """

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    @staticmethod
    def _neurons(pl_module: LightningModule) -> dict[str, LIAFNeuron]:
        return {layer_name(name): neuron for name, neuron in neuron_layers(pl_module).items()}

    def _start(self, pl_module: LightningModule) -> None:
        for neuron in self._neurons(pl_module).values():
            neuron.reset_firing_stats()
            neuron.measure = True

    def _finish(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        values: dict[str, float] = {}
        for name, neuron in self._neurons(pl_module).items():
            stats = neuron.firing_stats()
            neuron.measure = False
            neuron.reset_firing_stats()
            if stats is None:
                continue
            values[f"{stage}/rate/{name}"] = stats["rate"]
            if not neuron.spiking:
                values[f"{stage}/activity/{name}"] = stats["activity"]
        if trainer.sanity_checking or not values:
            return
        # One collective for all layers: every rank measured its own shard of the data.
        local = torch.tensor(list(values.values()), dtype=torch.float32, device=pl_module.device)
        reduced = dict(zip(values, trainer.strategy.reduce(local, reduce_op="mean").tolist()))
        for key, value in reduced.items():
            pl_module.log(key, value)
        self.last.update(reduced)

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(pl_module)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._finish(trainer, pl_module, "val")

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(pl_module)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._finish(trainer, pl_module, "test")
