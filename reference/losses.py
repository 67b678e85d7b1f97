"""Self-supervised losses as small pure functions.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> p1, p2, z1, z2 = (torch.randn(8, 16, generator=g) for _ in range(4))
    >>> abs(float(byol_loss(z2, z1, z1, z2))) < 1e-6  # each prediction equals the other view's target
    True
    >>> 0.0 < float(byol_loss(p1, p2, z1, z2)) < 8.0
    True
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

__all__ = ["byol_loss", "gather_with_grad", "normalized_mse", "nt_xent"]


def normalized_mse(p: Tensor, z: Tensor) -> Tensor:
    """BYOL's regression loss per sample: ``||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z)``.

    Args:
        p: Predictions ``(B, D)``.
        z: Targets ``(B, D)``; gradients are not taken through them (detached here).

    Returns:
        ``(B,)`` losses in [0, 4].
    """
    return 2.0 - 2.0 * F.cosine_similarity(p.float(), z.detach().float(), dim=-1)


def byol_loss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """Symmetric BYOL loss: each view's prediction regresses the other view's target, summed over both directions.

    Args:
        p1: Online predictions of view 1, ``(B, D)``.
        p2: Online predictions of view 2, ``(B, D)``.
        z1: Target projections of view 1, ``(B, D)`` (no gradient).
        z2: Target projections of view 2, ``(B, D)`` (no gradient).

    Returns:
        Scalar: ``mean_b[(2 - 2 cos(p1, z2)) + (2 - 2 cos(p2, z1))]``, in [0, 8].
    """
    return (normalized_mse(p1, z2) + normalized_mse(p2, z1)).mean()


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.1) -> Tensor:
    """SimCLR's normalised-temperature cross entropy over the 2B views of a batch.

    For each of the 2B embeddings the positive is the other view of the same clip and the 2B - 2 other embeddings
    are negatives; the loss is the mean cross entropy over the 2B anchors.

    Args:
        z1: Projections of view 1, ``(B, D)``.
        z2: Projections of view 2, ``(B, D)``.
        temperature: Softmax temperature (> 0).

    Returns:
        Scalar loss.
    """
    if not temperature > 0:
        raise ValueError(f"temperature: got {temperature!r}, expected a number > 0")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(logits, targets)


class _GatherWithGrad(torch.autograd.Function):
    """``all_gather`` along dim 0 whose backward sums the gradients of all processes (all-reduce) and returns this
    process's slice; only all_gather and all_reduce are needed, which every backend (gloo included) supports."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:  # type: ignore[override]
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]  # type: ignore[attr-defined]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        start = ctx.rank * ctx.n  # type: ignore[attr-defined]
        return grad[start : start + ctx.n]  # type: ignore[attr-defined]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` ``(B, ...)`` of every process into ``(world * B, ...)``, keeping gradients.

    Without an initialised process group (or with one process) ``x`` is returned as it is. Used for SimCLR under
    DDP, so that every process sees the negatives of the global batch. Each process then computes the same global
    loss; the backward all-reduce and DDP's gradient averaging together give the gradient of that loss.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    out: Tensor = _GatherWithGrad.apply(x)  # type: ignore[no-untyped-call]
    return out
