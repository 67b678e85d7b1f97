"""vidaug3d: seeded, per-clip, fused spatio-temporal augmentations for video tensors ``(B, C, T, H, W)``.

Examples:
    >>> import torch, vidaug3d as va
    >>> video = torch.rand(2, 1, 8, 32, 32)
    >>> aug = va.presets.paper()
    >>> out, params = aug(video, generator=torch.Generator().manual_seed(0), return_params=True)
    >>> torch.equal(aug(video, params=params), out)
    True
"""

from . import base, functional, presets, seeding, targets
from ._version import __version__
from .base import ClipKeys, GeometricTransform, TemporalTransform, Transform, ValueTransform, VideoShape
from .compose import Compose, TwoViews
from .errors import VidaugError
from .params import Record, TransformParams
from .seeding import clip_generator, clip_seed, worker_init_fn
from .transforms import (
    AcousticShadow,
    CenterCrop,
    ColorJitter,
    DepthAttenuation,
    FrameReplace,
    GaussianBlur,
    GaussianNoise,
    RandomAdjustSharpness,
    RandomAffine,
    RandomAutocontrast,
    RandomEqualize,
    RandomErasing,
    RandomGamma,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomSolarize,
    RandomTemporalCrop,
    RandomVerticalFlip,
    Resize,
    SpeckleNoise,
    TemporalReverse,
    TemporalShuffle,
    TimeGainCompensation,
    UniformTemporalSubsample,
)
from .wrappers import RandomApply, RandomChoice

__all__ = [
    "AcousticShadow",
    "CenterCrop",
    "ClipKeys",
    "ColorJitter",
    "Compose",
    "DepthAttenuation",
    "FrameReplace",
    "GaussianBlur",
    "GaussianNoise",
    "GeometricTransform",
    "RandomAdjustSharpness",
    "RandomAffine",
    "RandomApply",
    "RandomAutocontrast",
    "RandomChoice",
    "RandomEqualize",
    "RandomErasing",
    "RandomGamma",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomSolarize",
    "RandomTemporalCrop",
    "RandomVerticalFlip",
    "Record",
    "Resize",
    "SpeckleNoise",
    "TemporalReverse",
    "TemporalShuffle",
    "TemporalTransform",
    "TimeGainCompensation",
    "Transform",
    "TransformParams",
    "TwoViews",
    "UniformTemporalSubsample",
    "ValueTransform",
    "VidaugError",
    "VideoShape",
    "__version__",
    "base",
    "clip_generator",
    "clip_seed",
    "functional",
    "presets",
    "seeding",
    "targets",
    "worker_init_fn",
]


def __getattr__(name: str) -> object:
    # Optional submodules (io needs PyAV) load on first use: `vidaug3d.io`, `vidaug3d.datasets`, `vidaug3d.phantom`.
    if name in ("io", "datasets", "phantom"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
