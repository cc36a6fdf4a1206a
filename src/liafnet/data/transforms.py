"""Frame transforms of the training recipes, vectorised over a whole sample (or batch) at once.

A transform maps float frames ``[..., T, C, H, W]`` to frames of the same shape; the leading
dimensions, if any, are samples. :class:`TransformedDataset` applies one to every item of a dataset,
so it runs in the loader workers, for training and evaluation alike (the authors sampled their
inputs at test time too).

- :func:`scale_to_unit`: event counts divided by the sample's largest count, into [0, 1].
- :func:`bernoulli_sample`: each frame value read as a firing probability, one Bernoulli draw per
  value: ``(x > u)`` with ``u ~ U[0, 1)``, the authors' input sampling (``data > rand`` in
  ``LIAFCNN``; docs/paper.md §4). On binary frames it is the identity, so a recipe that samples
  feeds count frames scaled to [0, 1].
- :class:`InputSampling`: the two above as one configurable callable (``data.input_sampling``).

The random temporal crop of DVS128 Gesture is not a frame transform: it picks the window's start
inside the gesture at event level (``DVSGesture(random_crop=True)``), so no event is binned twice.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import Dataset

from liafnet.data.errors import check_choice

SAMPLINGS = ("none", "bernoulli")
SCALINGS = ("none", "max")


def scale_to_unit(frames: torch.Tensor) -> torch.Tensor:
    """Divide each sample's frames ``[..., T, C, H, W]`` by that sample's largest value.

    The last four dimensions form one sample. An all-zero sample stays zero. Raises ``ValueError``
    for fewer than four dimensions or a negative value (frames hold event counts).
    """
    if frames.dim() < 4:
        raise ValueError(f"scale_to_unit: frames must be [..., T, C, H, W], got shape {tuple(frames.shape)}")
    peak = frames.flatten(-4).amax(dim=-1)
    if bool((peak < 0).any()) or bool((frames < 0).any()):
        raise ValueError("scale_to_unit: frames hold negative values; expected event counts")
    peak = peak.clamp_min(torch.finfo(frames.dtype).tiny)
    return frames / peak[(...,) + (None,) * 4]


def bernoulli_sample(frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One Bernoulli draw per value: 1 where ``frames > u``, ``u ~ U[0, 1)``, else 0 (same dtype).

    Values are firing probabilities and must lie in [0, 1] (``ValueError`` otherwise): a value of 1
    always fires, 0 never does. Source: the authors' ``LIAFCNN`` input sampling (docs/paper.md §4).
    """
    if frames.numel() and (bool((frames < 0).any()) or bool((frames > 1).any())):
        raise ValueError(
            f"bernoulli_sample: frame values must lie in [0, 1], got [{frames.min().item()}, "
            f"{frames.max().item()}]; scale count frames first (data.input_scaling=max)")
    noise = torch.rand(frames.shape, generator=generator, dtype=frames.dtype, device=frames.device)
    return (frames > noise).to(frames.dtype)


class InputSampling:
    """``scaling`` (``none`` | ``max``: :func:`scale_to_unit`) then ``sampling`` (``none`` |
    ``bernoulli``: :func:`bernoulli_sample`) on float frames ``[..., T, C, H, W]``."""

    def __init__(self, sampling: str = "none", scaling: str = "none"):
        check_choice("data.input_sampling", sampling, SAMPLINGS)
        check_choice("data.input_scaling", scaling, SCALINGS)
        self.sampling = sampling
        self.scaling = scaling

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if self.scaling == "max":
            frames = scale_to_unit(frames)
        if self.sampling == "bernoulli":
            frames = bernoulli_sample(frames)
        return frames

    def __repr__(self) -> str:
        return f"InputSampling(sampling={self.sampling!r}, scaling={self.scaling!r})"


class TransformedDataset(Dataset):
    """``(transform(frames), label)`` for each ``(frames, label)`` of ``dataset``; other attributes
    (``targets``, ``bad_files``, ``classes``) are the wrapped dataset's."""

    def __init__(self, dataset: Dataset, transform: Callable[[torch.Tensor], torch.Tensor]):
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        frames, label = self.dataset[index]
        return self.transform(torch.as_tensor(frames)), label

    def __getattr__(self, name: str):
        if name == "dataset":  # not yet set (unpickling): avoid recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)
