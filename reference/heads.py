"""BYOL/SimCLR heads: the projector and predictor MLPs.

BYOL (Grill et al. 2020) uses the same MLP for both: Linear -> BatchNorm1d -> ReLU -> Linear, hidden 4096,
output 256. SimCLR uses the projector only.

Example:
    >>> import torch
    >>> head = MLPHead(35)
    >>> head(torch.rand(4, 35)).shape
    torch.Size([4, 256])
"""

from __future__ import annotations

from torch import nn

__all__ = ["MLPHead"]


class MLPHead(nn.Sequential):
    """Linear -> BatchNorm1d -> ReLU -> Linear.

    Args:
        in_dim: Input size (the encoder's ``out_dim`` for a projector, ``out_dim`` of the projector for a
            predictor).
        hidden_dim: Hidden size (4096 in BYOL).
        out_dim: Output size (256 in BYOL).

    Shapes:
        ``(B, in_dim) -> (B, out_dim)``; B >= 2 in training mode (BatchNorm needs a batch).
    """

    def __init__(self, in_dim: int, hidden_dim: int = 4096, out_dim: int = 256) -> None:
        super().__init__(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
