"""Paths, subprocess settings and the neuron option grid shared by the tests."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from liafnet.neurons import SELU, Gaussian, LeakyReLU, NeuronParams, Rectangle, ReLU

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def subprocess_env(**extra) -> dict:
    """Environment for CLI subprocess tests: wandb off, few threads, unbuffered output."""
    env = dict(os.environ, WANDB_MODE="disabled", WANDB_SILENT="true", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(extra)
    return env


# The neuron option grid on which each fast path is compared with the per-step reference
# (tests/test_neurons.py: the torch path; tests/test_triton_liaf.py: the Triton kernel).
ACTS = {"selu": SELU(), "relu": ReLU(), "leaky_relu": LeakyReLU(0.2)}
SURROGATES = {"rect": Rectangle(), "rect_narrow": Rectangle(centre=0.3, half_width=0.2, height=2.0),
              "gauss": Gaussian()}
# Analog (LIAF) options: output mode x activation x clamp x fire test x reset x reset gradient x beta.
ANALOG_GRID = list(itertools.product(("ntr", "tr"), ACTS, (False, True), (False, True), ("hard", "soft"),
                                     (True, False), (0.0, 0.05)))
# Spiking (LIF) options and the decay variants: surrogate x reset x reset gradient x v_reset x decay form.
SPIKE_GRID = list(itertools.product(SURROGATES, ("hard", "soft"), (True, False), (0.0, 0.1),
                                    ("layer", "channel", "fixed")))


def analog_params(output, act, clamp, fire_ge, reset, detach, beta) -> NeuronParams:
    """The NeuronParams of one ANALOG_GRID case."""
    return NeuronParams(output=output, act=ACTS[act], clamp=clamp, fire_ge=fire_ge, reset=reset,
                        detach_reset=detach, beta=beta, v_reset=0.0 if reset == "soft" else -0.1,
                        surrogate=Gaussian() if detach else Rectangle())


def spike_params(surrogate, reset, detach, v_reset) -> NeuronParams:
    """The NeuronParams of one SPIKE_GRID case (its decay form is the caller's)."""
    return NeuronParams(output="spike", surrogate=SURROGATES[surrogate], reset=reset, detach_reset=detach,
                        v_reset=v_reset, threshold=0.4)
