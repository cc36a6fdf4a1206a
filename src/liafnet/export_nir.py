"""Export a trained LIF-SNN (``model=lif``) to NIR, the Neuromorphic Intermediate Representation.

NIR (Pedersen et al., "Neuromorphic intermediate representation: a unified instruction set for
interoperable brain-inspired computing", Nature Communications 2024; package ``nir``) describes a
network as a graph of continuous-time nodes. liafnet's LIF neuron is discrete-time (docs/neurons.md)::

    U^t = I^t + V^{t-1},  S^t = [U^t > theta],  R^t = S^t v_reset + (1 - S^t) U^t,  V^t = alpha R^t

NIR's ``LIF`` node, ``tau dv/dt = (v_leak - v) + r I``, fire on ``v > v_threshold``, reset to
``v_reset``, integrated with forward Euler at step ``dt`` (the convention of snnTorch's NIR export,
``tau = dt / (1 - beta)``, ``r = tau / dt``) reads ``v <- v + (dt / tau) (v_leak - v + r I)``. That is liafnet's step exactly when

    tau = dt / (1 - alpha),   r = 1 / (1 - alpha),   v_leak = 0,
    v_threshold = theta,      v_reset = v_reset

(per neuron: a per-channel ``alpha`` gives per-channel ``tau``; NIR's ``v`` is liafnet's ``U``).
Batch norm (inference statistics) is folded into the preceding conv/linear (membrane BN also
scales the decay, :func:`neuron_decay`). docs/export.md has the
full mapping table and every option that does not map, each refused by :func:`to_nir` with a
:class:`NIRExportError` that names the key and what to do. No Hydra here; the command is
:mod:`liafnet.cli.export`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from liafnet.io import atomic_write_bytes
from liafnet.layers import ConvLIAF, DenseLIAF, LIAFNeuron
from liafnet.models.vision import LIAFNet

if TYPE_CHECKING:
    import nir

    from liafnet.data.spec import DataSpec

# Seconds per liafnet time step written into the graph; snnTorch's NIR export uses the same value.
# Only tau depends on it (tau / dt is what a simulator uses), so any dt gives the same network.
DEFAULT_DT = 1e-4

LIAF_EXPLANATION = (
    "model.family=liaf cannot be exported to NIR: a LIAF neuron's output is the analog fire "
    "Y^t = Act(U^t) (or Act(U^t - theta)), a real value computed from the membrane potential, while its "
    "spike S^t only resets the membrane. NIR's neuron nodes (LIF, CubaLIF, IF, LI, I) output either a "
    "spike or nothing, and no NIR node reads a neuron's membrane potential, so the analog fire has no "
    "NIR form (docs/export.md). Export a LIF-SNN (train with model=lif) instead.")


class NIRExportError(ValueError):
    """The model (or one of its options) has no exact NIR form; the message names the key."""


def require_nir():
    """Import and return the ``nir`` package, or raise ``ImportError`` naming the extra."""
    try:
        import nir
    except ImportError as error:
        raise ImportError("NIR export needs the optional 'nir' package: pip install 'liafnet[nir]'") from error
    return nir


def lif_parameters(alpha: torch.Tensor, threshold: float, v_reset: float, shape: tuple[int, ...],
                   dt: float = DEFAULT_DT) -> dict[str, np.ndarray]:
    """NIR ``LIF`` parameters (``tau`` [s], ``r``, ``v_leak``, ``v_threshold``, ``v_reset``, each a
    float32 array of ``shape``) whose forward-Euler step at ``dt`` [s] is liafnet's step with decay
    ``alpha`` (a scalar, or per channel ``[C, 1, 1]`` / ``[C]``, broadcast to ``shape``).

    Raises :class:`NIRExportError` unless ``0 <= alpha < 1`` (``tau`` must be positive and finite).
    """
    a = torch.broadcast_to(alpha.detach().double().cpu(), shape).numpy()
    if not np.all((a >= 0) & (a < 1)):
        raise NIRExportError(
            f"decay alpha must be in [0, 1) for NIR's LIF (tau = dt / (1 - alpha)); got values in "
            f"[{a.min():.6g}, {a.max():.6g}] (model.decay=fixed with model.decay_alpha >= 1, or a learnt "
            "decay logit so large that sigmoid rounds to 1); retrain with a decay below 1")
    full = np.ones(shape)
    return {
        "tau": (dt / (1.0 - a)).astype(np.float32),
        "r": (1.0 / (1.0 - a)).astype(np.float32),
        "v_leak": np.zeros(shape, np.float32),
        "v_threshold": (threshold * full).astype(np.float32),
        "v_reset": (v_reset * full).astype(np.float32),
    }


def batch_norm_affine(norm: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` per channel, float64, with ``norm(u) = scale u + shift`` in inference
    (running statistics): ``scale = gamma / sqrt(var + eps)``, ``shift = beta - scale mean``."""
    if norm.running_mean is None:
        raise NIRExportError(f"{norm} keeps no running statistics (track_running_stats=False), so it has "
                             "no fixed inference form to fold")
    gamma = norm.weight.detach().double() if norm.affine else 1.0
    beta = norm.bias.detach().double() if norm.affine else 0.0
    scale = gamma / torch.sqrt(norm.running_var.double() + norm.eps)
    return scale, beta - scale * norm.running_mean.double()


def fold_batch_norm(weight: torch.Tensor, bias: torch.Tensor | None,
                    norm: nn.BatchNorm1d | nn.BatchNorm2d | None) -> tuple[np.ndarray, np.ndarray]:
    """``(weight, bias)`` of the conv/linear whose output equals ``norm(layer(x))`` in inference:
    ``W' = scale W``, ``b' = scale b + shift`` (:func:`batch_norm_affine`). Computed in float64,
    returned as float32 arrays; ``norm=None`` returns the layer's own."""
    w = weight.detach().double().cpu()
    b = bias.detach().double().cpu() if bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if norm is not None:
        scale, shift = batch_norm_affine(norm)
        w = w * scale.reshape(-1, *([1] * (w.dim() - 1)))
        b = scale * b + shift
    return w.float().numpy(), b.float().numpy()


def neuron_decay(name: str, layer) -> torch.Tensor:
    """The decay of ``layer``'s LIF node in the graph: the neuron's ``alpha``; with membrane BN
    (``model.norm=membrane``, ``U'^t = scale (I^t + V^{t-1}) + shift`` each step) ``scale * alpha``,
    since then ``U'^t = (scale I^t + shift) + (scale alpha) R'^{t-1}``: the input part folds into the
    conv/linear like synaptic BN, the rest is an LIF with decay ``scale * alpha``."""
    alpha = layer.neuron.alpha().detach().double()
    if layer.norm_mode != "membrane":
        return alpha
    scale, _ = batch_norm_affine(layer.norm)
    spatial = (1, 1) if isinstance(layer.norm, nn.BatchNorm2d) else ()  # conv: per channel of [C, H, W]
    decay = scale.reshape(-1, *spatial) * alpha
    if not bool(((decay >= 0) & (decay < 1)).all()):
        raise NIRExportError(
            f"{name}: model.norm=membrane scales the membrane each step, which makes the effective decay "
            f"scale * alpha = BN gamma / sqrt(running_var + eps) * alpha; it lies in [{decay.min():.4g}, "
            f"{decay.max():.4g}], outside NIR's LIF range [0, 1); retrain with model.norm=synaptic")
    return decay


def _check_neuron(name: str, neuron: LIAFNeuron) -> None:
    """Refuse neuron options NIR's LIF cannot express (each message names the model key)."""
    p = neuron.params
    if not p.spiking:
        raise NIRExportError(LIAF_EXPLANATION)
    if p.fire_ge:
        raise NIRExportError(
            f"{name}: model.fire=ge fires on U >= theta, but NIR's LIF fires on v > v_threshold only; "
            "retrain with model.fire=gt (the default)")
    if p.reset != "hard":
        raise NIRExportError(
            f"{name}: model.reset={p.reset} subtracts the threshold on a spike, but NIR's LIF resets to "
            "v_reset; retrain with model.reset=hard (the default)")
    if p.beta != 0.0:
        raise NIRExportError(
            f"{name}: model.beta={p.beta}: liafnet adds beta after each step's leak and starts from "
            "V^-1 = 0, NIR's v_leak adds (1 - alpha) v_leak from the first step on, so the two differ at "
            "t = 0; retrain with model.beta=0 (the default)")


def _pool_node(nir, pool: nn.Module, name: str, shape: tuple[int, int, int]):
    if not isinstance(pool, nn.AvgPool2d):
        raise NIRExportError(f"{name}: model.pool_type=max has no NIR node (NIR pools by average or sum); "
                             "retrain with model.pool_type=avg (the default)")
    kernel, stride, padding = (np.broadcast_to(np.asarray(v, dtype=np.int64), (2,)).copy()
                               for v in (pool.kernel_size, pool.stride, pool.padding))
    out = tuple(int(v) for v in (np.array(shape[1:]) + 2 * padding - kernel) // stride + 1)
    return nir.AvgPool2d(kernel_size=kernel, stride=stride, padding=padding), (shape[0], *out)


def to_nir(model: nn.Module, spec: DataSpec, dt: float = DEFAULT_DT, readout: str = "mean") -> nir.NIRGraph:
    """The NIR graph of a LIF-SNN built by :func:`liafnet.models.build_model` (``family="lif"``).

    ``spec``: the :class:`~liafnet.data.spec.DataSpec` the model was built for (input ``[C, H, W]``
    per step). ``dt``: seconds per time step (written into ``tau`` and the graph's ``metadata``).
    ``readout``: the checkpoint's ``model.readout``, recorded in ``metadata`` (NIR has no time
    reduction; the graph outputs the classifier's per-step spikes, or logits for
    ``model.classifier=linear``). Node names are the liafnet module names (``convs.0.conv``,
    ``convs.0.neuron``, ``convs.0.pool``, ``flatten``, ``dense.0.linear``, ...).

    Raises :class:`NIRExportError` (a ``ValueError``) for a model or option without an exact NIR
    form (LIAF neurons, ``fire=ge``, soft reset, ``beta != 0``, ``dense_norm=time``, max pooling,
    frame summing, a decay outside ``[0, 1)``, also after membrane BN's scale); ``ImportError``
    without the ``nir`` package.
    """
    nir = require_nir()
    if spec.kind != "events":
        raise NIRExportError(f"NIR export covers event-frame LIF-SNNs; got a model for {spec.kind} data "
                             "(bAbI), whose token embeddings have no NIR node")
    if not isinstance(model, LIAFNet):
        raise NIRExportError(
            f"NIR export covers the LIF-SNN (model.family=lif) only; got a {type(model).__name__} "
            "(model.sum_frames=true wraps it in FrameSum, a sum over time NIR cannot express)")
    if not dt > 0:
        raise NIRExportError(f"dt must be a positive number of seconds; got {dt}")
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(
        [spec.channels, spec.height, spec.width]))}
    edges: list[tuple[str, str]] = []
    last = "input"

    def add(name: str, node) -> None:
        nonlocal last
        nodes[name] = node
        edges.append((last, name))
        last = name

    shape: tuple[int, ...] = (spec.channels, spec.height, spec.width)
    for index, layer in enumerate(model.convs):
        assert isinstance(layer, ConvLIAF)
        prefix = f"convs.{index}"
        _check_neuron(prefix, layer.neuron)
        conv = layer.conv
        weight, bias = fold_batch_norm(conv.weight, conv.bias, layer.norm)
        node = nir.Conv2d(input_shape=shape[1:], weight=weight, stride=conv.stride, padding=conv.padding,
                          dilation=conv.dilation, groups=conv.groups, bias=bias)
        add(f"{prefix}.conv", node)
        shape = tuple(int(v) for v in node.output_type["output"])
        if layer.pool is not None and layer.pool_order == "before":
            pool, shape = _pool_node(nir, layer.pool, f"{prefix}.pool", shape)
            add(f"{prefix}.pool", pool)
        add(f"{prefix}.neuron", nir.LIF(**lif_parameters(
            neuron_decay(prefix, layer), layer.neuron.params.threshold, layer.neuron.params.v_reset, shape, dt)))
        if layer.pool is not None and layer.pool_order == "after":
            pool, shape = _pool_node(nir, layer.pool, f"{prefix}.pool", shape)
            add(f"{prefix}.pool", pool)
    add("flatten", nir.Flatten(input_type=np.array(shape), start_dim=0, end_dim=-1))
    for index, layer in enumerate(model.dense):
        prefix = f"dense.{index}"
        if isinstance(layer, nn.Linear):  # model.classifier=linear: per-step logits
            weight, bias = fold_batch_norm(layer.weight, layer.bias, None)
            add(prefix, nir.Affine(weight=weight, bias=bias))
            continue
        assert isinstance(layer, DenseLIAF)
        _check_neuron(prefix, layer.neuron)
        if layer.time_norm:
            raise NIRExportError(
                f"{prefix}: model.dense_norm=time normalises each time step with its own statistics "
                "(the authors' BatchNorm1d over T), a gain that changes with t; a NIR graph is the same "
                "at every step. Retrain with model.dense_norm=feature (folded into the linear) or none")
        weight, bias = fold_batch_norm(layer.linear.weight, layer.linear.bias, layer.norm)
        add(f"{prefix}.linear", nir.Affine(weight=weight, bias=bias))
        add(f"{prefix}.neuron", nir.LIF(**lif_parameters(
            neuron_decay(prefix, layer), layer.neuron.params.threshold, layer.neuron.params.v_reset,
            (weight.shape[0],), dt)))
    add("output", nir.Output(output_type=np.array([spec.num_classes])))
    metadata = {"source": "liafnet", "family": "lif", "dt": float(dt), "time_steps": int(spec.time_steps),
                "readout": readout, "euler": "v <- v + (dt / tau) (v_leak - v + r I); fire v > v_threshold; "
                                             "v <- v_reset on a spike"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export_checkpoint(ckpt_path: str | os.PathLike, out: str | os.PathLike | None = None,
                      dt: float = DEFAULT_DT) -> Path:
    """Write the NIR graph of a ``model=lif`` checkpoint to ``out`` (default: the checkpoint's path
    with suffix ``.nir``), atomically; returns the path.

    The checkpoint is read with ``weights_only=True`` and the network rebuilt by
    :func:`liafnet.load_model` (in eval mode: batch norm uses its running statistics). Raises
    ``FileNotFoundError``/``ValueError`` for a missing or foreign file, :class:`NIRExportError` for a
    model without an NIR form (LIAF: the analog fire; see :func:`to_nir`).
    """
    nir = require_nir()
    from liafnet.trained import CONFIG_KEY, load_model, read_checkpoint, spec_of_checkpoint

    checkpoint = read_checkpoint(ckpt_path)
    model_config = checkpoint[CONFIG_KEY]["model"]
    family = model_config["family"]
    if family == "liaf":
        raise NIRExportError(f"{ckpt_path}: {LIAF_EXPLANATION}")
    if family != "lif":
        raise NIRExportError(
            f"{ckpt_path}: model.family={family} has no spiking neurons; NIR export covers the LIF-SNN "
            "(model=lif) only")
    graph = to_nir(load_model(ckpt_path), spec_of_checkpoint(checkpoint), dt=dt,
                   readout=model_config.get("readout", "mean"))
    out = Path(out) if out is not None else Path(ckpt_path).with_suffix(".nir")
    buffer = io.BytesIO()
    nir.write(buffer, graph)
    return atomic_write_bytes(out, buffer.getvalue())


__all__ = ["DEFAULT_DT", "NIRExportError", "batch_norm_affine", "export_checkpoint", "fold_batch_norm", "lif_parameters", "to_nir"]
