"""Event-frame classifiers of every family, one channel plan per dataset layout (docs/models.md).

All take ``[T, B, C, H, W]`` and return per-step logits ``[T', B, K]``: ``T' = T`` for LIAF-Net and
LIF-SNN (the task averages over time), ``T' = 1`` for the models that read only the last step
(ConvLSTM, LSTM, GRU) or reduce time themselves (Conv3D).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import torch
from torch import nn

from liafnet.data.spec import DataSpec
from liafnet.layers import (
    ConvLIAF,
    ConvLIF,
    ConvLSTM,
    DenseLIAF,
    DenseLIF,
    TimeDistributed,
    init_authors_,
)
from liafnet.models.options import model_options
from liafnet.neurons import neuron_config, neuron_options


@dataclass(frozen=True)
class ConvStage:
    channels: int
    kernel: int
    padding: int
    pool: int | None = None  # pooling kernel after the stage; None: no pooling
    pool_stride: int | None = None  # defaults to the kernel


@dataclass(frozen=True)
class Layout:
    convs: tuple[ConvStage, ...]
    hidden: tuple[int, ...]  # dense widths between the flattened features and the classifier
    rnn_hidden: int  # LSTM/GRU hidden size


# Channel plans (paper.md §5; the synthetic one is ours). CIFAR10-DVS "pools" with kernel 1 and
# stride 2, i.e. plain subsampling, as the authors' example does.
LAYOUTS = {
    "synthetic": Layout((ConvStage(16, 3, 1, 2), ConvStage(32, 3, 1, 2)), (64,), rnn_hidden=64),
    "dvs_gesture": Layout(
        (ConvStage(64, 3, 1), ConvStage(128, 3, 1, 2), ConvStage(128, 3, 1, 2)), (256,), rnn_hidden=256),
    "cifar10_dvs": Layout(
        tuple(ConvStage(c, 3, 0, 1, 2) for c in (32, 64, 128, 256)), (512,), rnn_hidden=128),
    "mnist_dvs": Layout(
        (ConvStage(64, 5, 0), ConvStage(64, 5, 0, 2), ConvStage(128, 5, 0, 2)), (), rnn_hidden=128),
}

def _conv_out(size: int, kernel: int, padding: int, stride: int = 1) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _stage_out(size: int, stage: ConvStage, same_padding: bool = False) -> int:
    size = _conv_out(size, stage.kernel, stage.kernel // 2 if same_padding else stage.padding)
    if stage.pool is not None:
        size = _conv_out(size, stage.pool, 0, stage.pool_stride or stage.pool)
    if size < 1:
        raise ValueError(f"frames are too small for this layout: a stage {stage} leaves {size} pixels")
    return size


def _feature_size(spec: DataSpec, layout: Layout, same_padding: bool = False) -> int:
    height, width = spec.height, spec.width
    for stage in layout.convs:
        height, width = _stage_out(height, stage, same_padding), _stage_out(width, stage, same_padding)
    return layout.convs[-1].channels * height * width


class FrameSum(nn.Module):
    """Frame-summing baseline: sums the input over time into one frame (T' = 1) before ``net``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.sum(dim=0, keepdim=True))


class LIAFNet(nn.Module):
    """LIAF-Net / LIF-SNN (authors' ``LIAFCNN``): ConvLIAF stack, flatten per step, DenseLIAF stack.

    The classifier is itself a LIAF (or LIF) layer, so its activation applies to the logits; with
    ``classifier="linear"`` it is a plain linear layer instead. Returns ``[T, B, K]``.
    """

    def __init__(self, spec: DataSpec, layout: Layout, spiking: bool, options: dict):
        super().__init__()
        neuron = neuron_config(spiking=spiking, **{k: options[k] for k in neuron_options(spiking).keys()})
        conv_class, dense_class = (ConvLIF, DenseLIF) if spiking else (ConvLIAF, DenseLIAF)
        channels = spec.channels
        convs = []
        for stage in layout.convs:
            convs.append(conv_class(
                channels, stage.channels, stage.kernel, neuron=neuron, padding=stage.padding,
                pool=stage.pool, pool_stride=stage.pool_stride, pool_type=options["pool_type"],
                norm=options["norm"], pool_order=options["pool_order"], dropout=options["dropout"]))
            channels = stage.channels
        self.convs = nn.ModuleList(convs)
        widths = (_feature_size(spec, layout), *layout.hidden)
        dense_kwargs = {"neuron": neuron, "time_steps": spec.time_steps, "norm": options["norm"],
                        "dense_norm": options["dense_norm"]}
        dense = [dense_class(n_in, n_out, dropout=options["dropout"], **dense_kwargs)
                 for n_in, n_out in itertools.pairwise(widths)]
        if options["classifier"] == "neuron":
            dense.append(dense_class(widths[-1], spec.num_classes, **dense_kwargs))
        else:
            dense.append(nn.Linear(widths[-1], spec.num_classes))
        self.dense = nn.ModuleList(dense)
        if options["init"] == "authors":
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    init_authors_(module, bias=neuron.params.threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x)
        x = x.flatten(2)
        for layer in self.dense:
            x = layer(x)
        return x


class ConvLSTMNet(nn.Module):
    """Authors' ConvLSTM baseline: ConvLSTM cells ('same' padding) with the layout's pools, the last
    step's features -> FC stack without nonlinearity between layers. Returns ``[1, B, K]``."""

    def __init__(self, spec: DataSpec, layout: Layout, options: dict):
        super().__init__()
        channels, cells, pools = spec.channels, [], []
        for stage in layout.convs:
            cells.append(ConvLSTM(channels, stage.channels, stage.kernel))
            pools.append(TimeDistributed(nn.AvgPool2d(stage.pool, stage.pool_stride or stage.pool))
                         if stage.pool is not None else nn.Identity())
            channels = stage.channels
        self.cells, self.pools = nn.ModuleList(cells), nn.ModuleList(pools)
        widths = (_feature_size(spec, layout, same_padding=True), *layout.hidden, spec.num_classes)
        fc: list[nn.Module] = []
        for n_in, n_out in itertools.pairwise(widths):
            if options["dropout"] > 0:
                fc.append(nn.Dropout(options["dropout"]))
            fc.append(nn.Linear(n_in, n_out))
        self.fc = nn.Sequential(*fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.cells) - 1
        for index, (cell, pool) in enumerate(zip(self.cells, self.pools)):
            x = cell(x)
            if index == last:
                x = x[-1:]  # only the last step feeds the classifier
            x = pool(x)
        return self.fc(x.flatten(2))


class Conv3DNet(nn.Module):
    """Conv3D baseline: the layout's channel plan with ``temporal_kernel x k x k`` kernels (time
    padding keeps T), BN3d, ReLU, spatial pooling; mean over time; FC stack with ReLU. ``[1, B, K]``."""

    def __init__(self, spec: DataSpec, layout: Layout, options: dict):
        super().__init__()
        kt = options["temporal_kernel"]
        channels, stages = spec.channels, []
        for stage in layout.convs:
            block: list[nn.Module] = [
                nn.Conv3d(channels, stage.channels, (kt, stage.kernel, stage.kernel),
                          padding=(kt // 2, stage.padding, stage.padding)),
                nn.BatchNorm3d(stage.channels), nn.ReLU()]
            if stage.pool is not None:
                stride = stage.pool_stride or stage.pool
                block.append(nn.AvgPool3d((1, stage.pool, stage.pool), (1, stride, stride)))
            stages.append(nn.Sequential(*block))
            channels = stage.channels
        self.stages = nn.Sequential(*stages)
        widths = (_feature_size(spec, layout), *layout.hidden, spec.num_classes)
        fc: list[nn.Module] = []
        for n_in, n_out in itertools.pairwise(widths):
            if options["dropout"] > 0:
                fc.append(nn.Dropout(options["dropout"]))
            fc += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.fc = nn.Sequential(*fc[:-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.stages(x.permute(1, 2, 0, 3, 4)).mean(dim=2)  # [B, C, T, H, W] -> [B, C, H, W]
        return self.fc(features.flatten(1)).unsqueeze(0)


class RNNNet(nn.Module):
    """LSTM or GRU over flattened frames ``[T, B, C*H*W]``; the last step -> linear. ``[1, B, K]``."""

    def __init__(self, spec: DataSpec, layout: Layout, cell: str, options: dict):
        super().__init__()
        hidden = options["hidden_size"] if options["hidden_size"] is not None else layout.rnn_hidden
        layers = options["num_layers"]
        rnn_class = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_class(spec.channels * spec.height * spec.width, hidden, num_layers=layers,
                             dropout=options["dropout"] if layers > 1 else 0.0)
        self.classifier = nn.Linear(hidden, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(x.flatten(2))
        return self.classifier(outputs[-1:])


def build_vision_model(family: str, spec: DataSpec, **options) -> nn.Module:
    """Build ``family`` for ``spec.layout``; see :func:`liafnet.models.build_model`.

    ``options`` are checked by :func:`liafnet.models.options.model_options` (errors name
    ``model.<key>``); missing keys take the schema defaults.
    """
    if spec.layout not in LAYOUTS:
        raise ValueError(f"data.layout must be one of {', '.join(LAYOUTS)}; got {spec.layout!r}")
    options = model_options(family, options, "events").to_dict()
    layout = LAYOUTS[spec.layout]
    if options["sum_frames"]:
        spec = dataclasses.replace(spec, time_steps=1)
    if family in ("liaf", "lif"):
        net: nn.Module = LIAFNet(spec, layout, spiking=family == "lif", options=options)
    elif family == "convlstm":
        net = ConvLSTMNet(spec, layout, options)
    elif family == "conv3d":
        net = Conv3DNet(spec, layout, options)
    else:
        net = RNNNet(spec, layout, family, options)
    return FrameSum(net) if options["sum_frames"] else net
