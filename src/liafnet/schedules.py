"""Learning-rate schedules of the authors' recipes that torch has no single class for.

:func:`exponential_with_steps` is an exponential decay per scheduler step times a factor at each
milestone, the combination the authors' CIFAR10-DVS script produces (``ExponentialLR(0.9)`` every
epoch plus a hand-written decay helper; docs/tables.md, docs/paper.md §5.2). Configs build it as a
partial (``_partial_: true``) that receives the optimiser.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch


def _factor(step: int, gamma: float, milestones: tuple[int, ...], milestone_factor: float) -> float:
    passed = sum(1 for m in milestones if m <= step)
    return gamma**step * milestone_factor**passed


def exponential_with_steps(
    optimizer: torch.optim.Optimizer,
    gamma: float = 1.0,
    milestones: Sequence[int] = (),
    milestone_factor: float = 0.1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """lr at scheduler step ``s`` = base lr * ``gamma**s`` * ``milestone_factor**k``, ``k`` = the
    milestones ``<= s`` (a milestone 0 scales the very first step).

    Equals torch's ``ExponentialLR(gamma)`` chained with ``MultiStepLR(milestones, milestone_factor)``
    and, unlike those, also applies a milestone at 0. Raises ``ValueError`` for a non-positive
    ``gamma`` or ``milestone_factor`` or a negative milestone.
    """
    if gamma <= 0 or milestone_factor <= 0:
        raise ValueError(f"scheduler: gamma ({gamma}) and milestone_factor ({milestone_factor}) must be > 0")
    milestones = tuple(int(m) for m in milestones)
    if any(m < 0 for m in milestones):
        raise ValueError(f"scheduler.milestones must be >= 0, got {list(milestones)}")
    rule = partial(_factor, gamma=float(gamma), milestones=milestones, milestone_factor=float(milestone_factor))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, rule)
