"""Ready-made pipelines."""

from __future__ import annotations

from .base import Transform
from .compose import Compose
from .transforms import (
    ColorJitter,
    FrameReplace,
    GaussianNoise,
    RandomAffine,
    RandomErasing,
    RandomHorizontalFlip,
    TemporalReverse,
    TemporalShuffle,
)

__all__ = ["paper"]


def paper(*, temporal: bool = True, spatial: bool = True, fuse: bool = True) -> Compose:
    """The augmentations of Chen, Rubin et al. (lung ultrasound BYOL), Table 2.

    Order: frame reverse (p 0.5), shuffle (p 0.5, 0-4 frames), replace (p 0.5, 0-4 frames); random
    affine (rotation +-10 degrees, translation +-10 %, scale +-20 %); horizontal flip (p 0.5);
    brightness and contrast 0.3; Gaussian noise std 0.03; random erasing (p 0.5, 2-10 % of the
    frame, aspect ratio 0.3-3.3). The paper does not give the application probabilities of the
    affine, colour and noise steps; they are applied to every clip here.

    Args:
        temporal: Include the three temporal transforms (False: the paper's ablation).
        spatial: Include the five spatial/photometric transforms.
        fuse: Fuse consecutive transforms of a kind (see ``vidaug3d.Compose``).

    Returns:
        The pipeline.

    Examples:
        >>> len(paper()), len(paper(temporal=False))
        (8, 5)
    """
    ts: list[Transform] = []
    if temporal:
        ts += [
            TemporalReverse(p=0.5),
            TemporalShuffle(p=0.5, max_frames=4),
            FrameReplace(p=0.5, max_frames=4),
        ]
    if spatial:
        ts += [
            RandomAffine(degrees=10.0, translate=(0.1, 0.1), scale=(0.8, 1.2)),
            RandomHorizontalFlip(p=0.5),
            ColorJitter(brightness=0.3, contrast=0.3),
            GaussianNoise(std=0.03),
            RandomErasing(p=0.5, scale=(0.02, 0.1), ratio=(0.3, 3.3)),
        ]
    return Compose(ts, fuse=fuse)
