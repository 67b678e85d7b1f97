"""Ready-made pipelines."""

from __future__ import annotations

import torch  # noqa: F401 (doctests)

from .base import Transform
from .compose import Compose, TwoViews
from .transforms import (
    AcousticShadow,
    ColorJitter,
    DepthAttenuation,
    FrameReplace,
    GaussianBlur,
    GaussianNoise,
    RandomAffine,
    RandomErasing,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomSolarize,
    RandomTemporalCrop,
    SpeckleNoise,
    TemporalReverse,
    TemporalShuffle,
    TimeGainCompensation,
)

__all__ = ["byol_video", "paper", "ultrasound"]


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


def byol_video(
    size: int | tuple[int, int] = 112, frames: int = 16, *, blur_kernel: int | None = None
) -> TwoViews:
    """BYOL's asymmetric image augmentations on clips, with CVRL's temporally consistent crops.

    From BYOL (Grill et al., 2020, "Bootstrap your own latent", Table 6 / Appendix B): random
    resized crop (area 0.08-1, aspect 3/4-4/3) resized to ``size``, horizontal flip p 0.5, colour
    jitter p 0.8 (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1), grayscale p 0.2, Gaussian
    blur (sigma 0.1-2.0, a kernel 10 % of the size) with p 1.0 on the first view and 0.1 on the
    second, solarization p 0 and 0.2. As in CVRL (Qian et al., 2021, "Spatiotemporal contrastive
    video representation learning"), every frame of a clip gets the same spatial parameters, and the
    two views are ``frames``-frame windows at independent random starts (``RandomTemporalCrop``), so
    they come from different moments of the video.

    Args:
        size: Output frame size.
        frames: Frames per view.
        blur_kernel: Odd blur kernel size; default about a tenth of the size.

    Returns:
        A ``TwoViews`` of the two pipelines.

    Examples:
        >>> views = byol_video(32, 4)
        >>> v1, v2 = views(torch.rand(2, 3, 8, 48, 48), seed=0)
        >>> v1.shape, v2.shape
        (torch.Size([2, 3, 4, 32, 32]), torch.Size([2, 3, 4, 32, 32]))
    """
    h = size if isinstance(size, int) else min(size)
    k = blur_kernel if blur_kernel is not None else max(3, (h // 10) | 1)

    def view(blur: float, solarize: float) -> Compose:
        ts: list[Transform] = [
            RandomTemporalCrop(frames),
            RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
            RandomHorizontalFlip(p=0.5),
            ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p=0.8),
            RandomGrayscale(p=0.2),
            GaussianBlur(k, sigma=(0.1, 2.0), p=blur),
        ]
        if solarize > 0:
            ts.append(RandomSolarize(0.5, p=solarize))
        return Compose(ts)

    return TwoViews(view(1.0, 0.0), view(0.1, 0.2))


def ultrasound(*, temporal: bool = True) -> Compose:
    """The paper's augmentations with the lung-ultrasound transforms, for a probe given per call.

    Order: the paper's three temporal transforms; depth attenuation (mu 0.3-1.5, floor 0.2-0.5,
    p 0.5), a random TGC curve (gain 0.7-1.3, p 0.5), an acoustic shadow (a rib: p 0.3, wandering
    over the clip), speckle (strength 0.1-0.4, p 0.5), all before the geometry because they follow
    the probe's depth and beams; then the paper's affine, flip, brightness/contrast, Gaussian noise
    (std 0.03) and erasing. Call it with ``probe=`` a ``vidaug3d.ultrasound.ProbeGeometry`` (or
    ``probe="estimate"``): every value transform then stays inside the field of view, and the
    black outside stays black.

    Examples:
        >>> from vidaug3d.ultrasound import ProbeGeometry, fov_mask
        >>> g = ProbeGeometry.make_sector(apex=(32.0, -16.0), angles=(-35.0, 35.0), depths=(20.0, 76.0))
        >>> video = torch.rand(2, 1, 8, 64, 64) * fov_mask(g, 64, 64)
        >>> out, moved = ultrasound()(video, seed=0, probe=g, targets={"masks": fov_mask(g, 64, 64)[:, 0].expand(2, 8, 64, 64)})
        >>> outside = ~moved["masks"].bool().unsqueeze(1)  # the sector where the geometry moved it
        >>> bool((out[outside] == 0).float().mean() > 0.95)  # noise and fills stayed inside
        True
    """
    # the paper's transforms, with the probe transforms between its temporal and its spatial ones
    ts: list[Transform] = list(paper(temporal=temporal, spatial=False).transforms)
    ts += [
        DepthAttenuation(mu=(0.3, 1.5), floor=(0.2, 0.5), p=0.5),
        TimeGainCompensation(gain=(0.7, 1.3), points=5, p=0.5),
        AcousticShadow(p=0.3, vary="drift", drift=0.1),
        SpeckleNoise(strength=(0.1, 0.4), p=0.5),
    ]
    ts += list(paper(temporal=False).transforms)
    return Compose(ts)
