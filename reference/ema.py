"""BYOL's target network: an exponential moving average of the online network, and its momentum schedule.

Example:
    >>> from torch import nn
    >>> online, target = nn.Linear(2, 2), nn.Linear(2, 2)
    >>> _ = nn.init.ones_(online.weight); _ = nn.init.zeros_(target.weight)
    >>> ema_update(target, online, momentum=0.75)
    >>> target.weight.flatten().tolist()
    [0.25, 0.25, 0.25, 0.25]
    >>> momentum_schedule(0.99, 3, cosine=True)
    [0.99, 0.995, 1.0]
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ema_update", "momentum_schedule"]


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """In place: ``target_param = momentum * target_param + (1 - momentum) * online_param`` for every parameter.

    Buffers (BatchNorm running statistics) are left alone: the target computes its own in its forward passes.

    Args:
        target: The EMA network (same architecture as ``online``).
        online: The trained network.
        momentum: In [0, 1]; 1 leaves the target unchanged, 0 copies the online weights.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum: got {momentum!r}, expected a number in [0, 1]")
    t_params, o_params = list(target.parameters()), list(online.parameters())
    if len(t_params) != len(o_params):
        raise ValueError("target: expected the same architecture as online (parameter counts differ)")
    for t, o in zip(t_params, o_params, strict=True):
        t.mul_(momentum).add_(o.detach() * (1.0 - momentum))  # two roundings, as in m*t + (1-m)*o


def momentum_schedule(base: float, total_steps: int, cosine: bool = False) -> list[float]:
    """The EMA momentum at every step, precomputed.

    Args:
        base: Momentum at step 0 (0.99 in the paper).
        total_steps: Number of optimisation steps.
        cosine: If true, rise from ``base`` to 1 along a half cosine (BYOL's schedule),
            ``1 - (1 - base) * (cos(pi k / (K - 1)) + 1) / 2``; otherwise constant.

    Returns:
        ``total_steps`` momenta.
    """
    if not 0.0 <= base <= 1.0:
        raise ValueError(f"base: got {base!r}, expected a momentum in [0, 1]")
    if not cosine or total_steps <= 1:
        return [float(base)] * total_steps
    k_last = total_steps - 1
    return [1.0 - (1.0 - base) * (math.cos(math.pi * k / k_last) + 1.0) / 2.0 for k in range(total_steps)]
