"""The transforms: configuration, parameter sampling, and what the parameters do.

Each transform is thin: it validates its configuration, turns per-clip uniform draws into a typed
parameter record (``sample_params``), and says what the record does by its kind (a frame map, a
matrix, or an in-place value kernel from ``vidaug3d.functional``; see ``vidaug3d.base``).
Calling a transform runs it through the engine on its own; composing several fuses them.

Probability gates are branchless: a clip that is not transformed gets identity parameters
(angle 0, factor 1, an identity frame map, an empty box), so nothing depends on data on the host.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from . import _noise
from . import _photometric as PF
from . import functional as VF
from . import ultrasound as US
from ._noise import normal_field, uniform_field
from ._random import ClipKeys
from ._video import VideoShape
from .base import Context, GeometricTransform, TemporalTransform, ValueTransform
from .errors import fail
from .params import (
    AffineParams,
    BlurParams,
    ColorOrderParams,
    ColorParams,
    CropParams,
    EraseParams,
    FactorParams,
    FlipParams,
    FrameMapParams,
    GammaParams,
    NoiseParams,
    ShadowParams,
    SwitchParams,
    TransformParams,
)

__all__ = [
    "AcousticShadow",
    "CenterCrop",
    "ColorJitter",
    "DepthAttenuation",
    "FrameReplace",
    "GaussianBlur",
    "GaussianNoise",
    "RandomAdjustSharpness",
    "RandomAffine",
    "RandomAutocontrast",
    "RandomEqualize",
    "RandomErasing",
    "RandomGamma",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomSolarize",
    "RandomTemporalCrop",
    "RandomVerticalFlip",
    "Resize",
    "SpeckleNoise",
    "TemporalReverse",
    "TemporalShuffle",
    "TimeGainCompensation",
    "UniformTemporalSubsample",
]


# ----------------------------------------------------------------------------------------------- validation
def _prob(name: str, p: object) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
        raise fail(name, p, "a probability in [0, 1]")
    return float(p)


def _range(
    name: str,
    value: object,
    *,
    symmetric_around: float | None = None,
    lo: float = -math.inf,
    hi: float = math.inf,
) -> tuple[float, float]:
    """A (low, high) pair; a single number v means (c - v, c + v) around ``symmetric_around``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if symmetric_around is None:
            raise fail(name, value, "a (low, high) pair")
        if value < 0 or math.isnan(value):
            raise fail(name, value, "a non-negative number")
        pair = (symmetric_around - float(value), symmetric_around + float(value))
        pair = (max(pair[0], lo), pair[1])
    elif (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        pair = (float(value[0]), float(value[1]))
    else:
        raise fail(name, value, "a number or a (low, high) pair")
    if any(math.isnan(v) or math.isinf(v) for v in pair):
        raise fail(name, value, "finite numbers")
    if pair[0] > pair[1]:
        raise fail(name, value, "low <= high")
    if pair[0] < lo or pair[1] > hi:
        raise fail(name, value, f"values within [{lo}, {hi}]")
    return pair


def _lerp(u: Tensor, r: tuple[float, float]) -> Tensor:
    return r[0] + (r[1] - r[0]) * u


def _count_arg(name: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise fail(name, value, "a non-negative int" if minimum == 0 else f"an int >= {minimum}")
    return value


# ----------------------------------------------------------------------------------------------- time variation
Vary = Literal["clip", "frame", "drift"]
VARY: tuple[str, ...] = ("clip", "frame", "drift")
_TIME_STREAM = 64  # offset of the streams that hold drift end values and per-frame draws


def _vary(value: object, allowed: tuple[str, ...] = VARY, why: str = "") -> str:
    if value not in allowed:
        raise fail("vary", value, " or ".join(f'"{a}"' for a in allowed) + why)
    return str(value)


def _over_time(first: Tensor, keys: ClipKeys, slot: int, stream: int, vary: str, T: int) -> Tensor:
    """``(B, m, k)`` uniforms for ``k`` parameters that vary over the clip as ``vary`` says.

    ``first`` is the clip's own ``(B, k)`` draws (what ``vary="clip"`` uses): ``m = 1``. With
    ``"drift"`` they are the start and a second draw from ``stream + _TIME_STREAM`` the end
    (``m = 2``: a record stays O(B)); with ``"frame"`` every frame has its own (``m = T``).
    """
    if vary == "clip":
        return first[:, None, :]
    k = first.shape[1]
    if vary == "drift":
        return torch.stack([first, keys.uniform(slot, stream + _TIME_STREAM, k)], dim=1)
    return keys.uniform(slot, stream + _TIME_STREAM, k * T).reshape(-1, T, k)


def _gated_over_time(keys: ClipKeys, slot: int, p: float, k: int, vary: str, T: int) -> tuple[Tensor, Tensor]:
    """The layout most transforms draw in: ``k`` parameters from draws ``0 .. k-1`` of stream 0 and the
    clip's gate from draw ``k``. Returns the gate ``(B, 1)`` and the parameters' uniforms
    ``(B, m, k)`` as ``vary`` says (``_over_time``)."""
    u = keys.uniform(slot, 0, k + 1)
    return (u[:, k] < p)[:, None], _over_time(u[:, :k], keys, slot, 0, vary, T)


def _for_record(vary: str, *values: Tensor) -> tuple[Tensor, ...]:
    """Drop the time axis of ``(B, 1, ...)`` values where ``vary == "clip"`` (the record is ``(B, ...)``)."""
    return tuple(v[:, 0] for v in values) if vary == "clip" else values


def _at_frames(value: Tensor, vary: str, T: int) -> Tensor:
    """A recorded parameter per frame: drift's ``(B, 2, ...)`` start and end become ``(B, T, ...)``
    by linear interpolation (the first frame at the start, the last at the end); ``"clip"``'s
    ``(B, ...)`` and ``"frame"``'s ``(B, T, ...)`` are returned as they are."""
    if vary != "drift":
        return value
    w = torch.linspace(0.0, 1.0, T, dtype=torch.float64) if T > 1 else torch.zeros(1, dtype=torch.float64)
    w = w.view(1, T, *([1] * (value.dim() - 2)))
    start, end = value[:, :1].to(torch.float64), value[:, 1:2].to(torch.float64)
    out = start + (end - start) * w
    return out if value.dtype == torch.int64 else out.to(value.dtype)


def _padding(padding_mode: object) -> str:
    if padding_mode not in ("zeros", "border", "reflection"):
        raise fail("padding_mode", padding_mode, '"zeros", "border" or "reflection"')
    return str(padding_mode)


# ----------------------------------------------------------------------------------------------- geometry
class RandomAffine(GeometricTransform):
    """Random rotation, translation and isotropic scale per clip: the same on all its frames, per
    frame, or drifting over the clip.

    Rotation is counter-clockwise on screen for positive angles (as kornia and torchvision's
    ``rotate``; torchvision's ``affine`` turns the other way). With ``vary="drift"`` the clip's
    first frame gets the start parameters, its last the end ones (each drawn like the clip's one)
    and the frames between a linear blend of the two: a camera that turns, pans and zooms smoothly.
    Per-frame geometry is one matrix per frame, still one resample of each frame (fused with the
    stage's other geometric transforms); per-clip targets become per-frame ones.

    Args:
        degrees: Rotation range in degrees: ``d`` means ``(-d, d)``, or a ``(low, high)`` pair.
        translate: Maximum shift as fractions ``(fx, fy)`` of the width and height; the shift is
            uniform in ``[-fx * W, fx * W]`` x ``[-fy * H, fy * H]`` pixels. None for no shift.
        scale: ``(low, high)`` zoom range, > 0. None for no zoom.
        p: Probability that a clip is transformed at all.
        padding_mode: What fills pixels that come from outside the frame: ``"zeros"``,
            ``"border"`` or ``"reflection"``.
        vary: ``"clip"`` (one set per clip; record ``angle`` (B,), ``translate`` (B, 2),
            ``scale`` (B,)), ``"frame"`` (independent per frame: (B, T), (B, T, 2), (B, T)) or
            ``"drift"`` (start and end: (B, 2), (B, 2, 2), (B, 2)).

    Examples:
        >>> t = RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.8, 1.2))
        >>> out, p = t(torch.rand(2, 1, 4, 16, 16), seed=0, return_params=True)
        >>> out.shape, p.angle.shape, p.translate.shape
        (torch.Size([2, 1, 4, 16, 16]), torch.Size([2]), torch.Size([2, 2]))
        >>> _, p = RandomAffine(10, vary="drift")(torch.rand(2, 1, 4, 16, 16), seed=0, return_params=True)
        >>> p.angle.shape  # start and end
        torch.Size([2, 2])
    """

    def __init__(
        self,
        degrees: float | tuple[float, float] = 0.0,
        translate: tuple[float, float] | None = None,
        scale: tuple[float, float] | None = None,
        p: float = 1.0,
        padding_mode: str = "zeros",
        vary: Vary = "clip",
    ) -> None:
        self.degrees = _range("degrees", degrees, symmetric_around=0.0, lo=-360.0, hi=360.0)
        if translate is None:
            self.translate = (0.0, 0.0)
        else:
            if not (isinstance(translate, Sequence) and len(translate) == 2):
                raise fail("translate", translate, "a (fx, fy) pair of fractions in [0, 1]")
            self.translate = (
                _range("translate", (0.0, translate[0]), lo=0.0, hi=1.0)[1],
                _range("translate", (0.0, translate[1]), lo=0.0, hi=1.0)[1],
            )
        self.scale = (1.0, 1.0) if scale is None else _range("scale", scale, lo=1e-6)
        self.p = _prob("p", p)
        self.padding_mode = _padding(padding_mode)
        self.vary = _vary(vary)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> AffineParams:
        on, v = _gated_over_time(keys, slot, self.p, 4, self.vary, shape.T)  # v: (B, 1 | 2 | T, 4)
        angle = torch.where(on, _lerp(v[..., 0], self.degrees), 0.0)
        tx = torch.where(on, (2.0 * v[..., 1] - 1.0) * (self.translate[0] * shape.W), 0.0)
        ty = torch.where(on, (2.0 * v[..., 2] - 1.0) * (self.translate[1] * shape.H), 0.0)
        scale = torch.where(on, _lerp(v[..., 3], self.scale), 1.0)
        angle, translate, scale = _for_record(self.vary, angle, torch.stack([tx, ty], dim=-1), scale)
        return AffineParams(angle=angle, translate=translate, scale=scale)

    def matrix(self, params: TransformParams, shape: VideoShape) -> Tensor:
        assert isinstance(params, AffineParams)
        at = [_at_frames(v, self.vary, shape.T) for v in (params.angle, params.translate, params.scale)]
        return VF.affine_matrix(*at)


class _Flip(GeometricTransform):
    """Shared by the flips: a mirror per clip with probability ``p``, exact data movement."""

    exact: ClassVar[bool] = True
    interpolation = None
    axis: ClassVar[int]  # 0: x (left-right), 1: y (upside down)

    def __init__(self, p: float = 0.5) -> None:
        self.p = _prob("p", p)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> FlipParams:
        return FlipParams(flip=keys.uniform(slot, 0, 1)[:, 0] < self.p)

    def matrix(self, params: TransformParams, shape: VideoShape) -> Tensor:
        assert isinstance(params, FlipParams)
        return VF.flip_matrix(params.flip, self.axis)


class RandomHorizontalFlip(_Flip):
    """Mirror a clip left-right with probability ``p`` (all its frames).

    Examples:
        >>> v = torch.rand(4, 1, 2, 8, 8)
        >>> out, p = RandomHorizontalFlip(p=1.0)(v, seed=0, return_params=True)
        >>> torch.equal(out, v.flip(-1)), p.flip.tolist()
        (True, [True, True, True, True])
    """

    axis = 0


class RandomVerticalFlip(_Flip):
    """Mirror a clip upside down with probability ``p`` (all its frames).

    Examples:
        >>> v = torch.rand(2, 1, 2, 8, 8)
        >>> torch.equal(RandomVerticalFlip(p=1.0)(v, seed=0), v.flip(-2))
        True
    """

    axis = 1


class _Crop(GeometricTransform):
    """Shared by the transforms whose record is a pixel box per clip, resampled to ``size``."""

    size: tuple[int, int]

    def output_shape(self, shape: VideoShape) -> VideoShape:
        return VideoShape(shape.B, shape.C, shape.T, *self.size)

    def matrix(self, params: TransformParams, shape: VideoShape) -> Tensor:
        assert isinstance(params, CropParams)
        return VF.crop_matrix(params.box, self.size, (shape.H, shape.W))


class RandomResizedCrop(_Crop):
    """Crop a random box per clip (the same on all its frames, or sliding) and resize it to ``size``.

    torchvision's sampling: the box covers a fraction ``scale`` of the frame's area with an aspect
    ratio (w / h) log-uniform in ``ratio``; up to ``attempts`` candidates are drawn and the first
    that fits is used; if none fits, the largest centred box within ``ratio`` (the whole frame
    when its aspect is in range). Boxes are whole pixels. Shrinking by more than
    ``vidaug3d.functional.ANTIALIAS_FROM`` is prefiltered against aliasing.

    With ``vary="drift"`` the box keeps its size and slides over the clip from its start position
    (the clip's box) to an end position drawn the same way (uniform where the box fits), in
    sub-pixel steps: the record holds both boxes, ``(B, 2, 4)``. Independent boxes per frame
    (``"frame"``) would make a clip jump around and are refused.

    Args:
        size: Output ``(height, width)``, or one int for a square.
        scale: ``(low, high)`` fraction of the frame's area, in (0, 1].
        ratio: ``(low, high)`` aspect ratio w / h, > 0.
        attempts: Candidate boxes per clip.
        vary: ``"clip"`` or ``"drift"``.

    Examples:
        >>> out, p = RandomResizedCrop(32, scale=(0.2, 1.0))(torch.rand(2, 1, 4, 48, 64), seed=0, return_params=True)
        >>> out.shape, p.box.shape
        (torch.Size([2, 1, 4, 32, 32]), torch.Size([2, 4]))
    """

    def __init__(
        self,
        size: int | tuple[int, int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
        attempts: int = 10,
        vary: Literal["clip", "drift"] = "clip",
    ) -> None:
        self.size = VF.check_size("size", size)
        self.scale = _range("scale", scale, lo=0.0, hi=1.0)
        if self.scale[1] <= 0.0:
            raise fail("scale", scale, "a (low, high) area fraction with high > 0")
        self.ratio = _range("ratio", ratio, lo=1e-6)
        self.attempts = _count_arg("attempts", attempts, 1)
        self.vary = _vary(vary, ("clip", "drift"), " (a crop per frame would jump around)")

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> CropParams:
        H, W, A = shape.H, shape.W, self.attempts
        area = _lerp(keys.uniform(slot, 0, A).to(torch.float64), self.scale) * (H * W)
        log_r = _lerp(
            keys.uniform(slot, 1, A).to(torch.float64), (math.log(self.ratio[0]), math.log(self.ratio[1]))
        )
        r = torch.exp(log_r)
        w = torch.round(torch.sqrt(area * r)).to(torch.int64)
        h = torch.round(torch.sqrt(area / r)).to(torch.int64)
        fits = (w > 0) & (w <= W) & (h > 0) & (h <= H)
        first = torch.argmax(fits.to(torch.int64), dim=1, keepdim=True)
        any_fit = fits.any(dim=1)
        h, w = h.gather(1, first)[:, 0], w.gather(1, first)[:, 0]
        u = keys.uniform(slot, 2, 2).to(torch.float64)
        y0 = torch.floor(u[:, 0] * (H - h + 1).to(torch.float64)).to(torch.int64)
        x0 = torch.floor(u[:, 1] * (W - w + 1).to(torch.float64)).to(torch.int64)
        # torchvision's fallback: the whole frame, trimmed to the nearest aspect ratio in range
        fh, fw = H, W
        if self.ratio[0] > W / H:
            fh = round(W / self.ratio[0])
        elif self.ratio[1] < W / H:
            fw = round(H * self.ratio[1])
        fy, fx = (H - fh) // 2, (W - fw) // 2
        box = torch.stack([x0, y0, x0 + w, y0 + h], dim=1)
        fallback = torch.tensor([fx, fy, fx + fw, fy + fh], dtype=torch.int64)
        box = torch.where(any_fit[:, None], box, fallback)
        if self.vary == "drift":  # the same box size at a second position
            bw, bh = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
            e = keys.uniform(slot, 2 + _TIME_STREAM, 2).to(torch.float64)
            ey = torch.floor(e[:, 0] * (H - bh + 1).to(torch.float64)).to(torch.int64)
            ex = torch.floor(e[:, 1] * (W - bw + 1).to(torch.float64)).to(torch.int64)
            box = torch.stack([box, torch.stack([ex, ey, ex + bw, ey + bh], dim=1)], dim=1)
        return CropParams(box=box)

    def matrix(self, params: TransformParams, shape: VideoShape) -> Tensor:
        assert isinstance(params, CropParams)
        box = _at_frames(params.box, self.vary, shape.T)  # (B, 4), or (B, T, 4) sliding
        return VF.crop_matrix(box, self.size, (shape.H, shape.W))


class Resize(_Crop):
    """Resize every frame to ``size`` (bilinear; shrinking by more than
    ``vidaug3d.functional.ANTIALIAS_FROM`` is prefiltered against aliasing).

    Args:
        size: ``(height, width)``; or one int: the shorter side becomes ``size`` and the longer
            keeps the aspect ratio (rounded down), as torchvision's ``Resize``.

    Examples:
        >>> Resize(16)(torch.rand(1, 1, 2, 32, 48), seed=0).shape
        torch.Size([1, 1, 2, 16, 24])
    """

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.edge = size if isinstance(size, int) and not isinstance(size, bool) else None
        self.size = VF.check_size("size", size)

    def _size(self, shape: VideoShape) -> tuple[int, int]:
        if self.edge is None:
            return self.size
        H, W = shape.H, shape.W
        if H <= W:
            return (self.edge, max(1, int(self.edge * W / H)))
        return (max(1, int(self.edge * H / W)), self.edge)

    def output_shape(self, shape: VideoShape) -> VideoShape:
        return VideoShape(shape.B, shape.C, shape.T, *self._size(shape))

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> CropParams:
        return CropParams(
            box=torch.tensor([0, 0, shape.W, shape.H], dtype=torch.int64).expand(shape.B, 4).clone()
        )

    def matrix(self, params: TransformParams, shape: VideoShape) -> Tensor:
        assert isinstance(params, CropParams)
        return VF.crop_matrix(params.box, self._size(shape), (shape.H, shape.W))


class CenterCrop(_Crop):
    """Cut the central ``size`` box out of every frame (whole pixels: exact, no interpolation).

    The box's top-left corner is ``round((H - h) / 2), round((W - w) / 2)``, as torchvision's.
    A crop larger than the frame raises (torchvision pads instead; pad before cropping).

    Examples:
        >>> v = torch.arange(16.0).view(1, 1, 1, 4, 4)
        >>> CenterCrop(2)(v / 16, seed=0).mul(16).flatten().tolist()
        [5.0, 6.0, 9.0, 10.0]
    """

    exact: ClassVar[bool] = True
    interpolation = None

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.size = VF.check_size("size", size)

    def output_shape(self, shape: VideoShape) -> VideoShape:
        h, w = self.size
        if h > shape.H or w > shape.W:
            raise fail(
                "video",
                f"frames of (H, W) = {(shape.H, shape.W)}",
                f"frames at least as large as CenterCrop(size={self.size})",
            )
        return super().output_shape(shape)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> CropParams:
        h, w = self.size
        y0, x0 = round((shape.H - h) / 2.0), round((shape.W - w) / 2.0)
        return CropParams(
            box=torch.tensor([x0, y0, x0 + w, y0 + h], dtype=torch.int64).expand(shape.B, 4).clone()
        )


# ----------------------------------------------------------------------------------------------- values
class ColorJitter(ValueTransform):
    """Random brightness, contrast, saturation and hue per clip (or per frame), torchvision's names.

    Factors are uniform in ``[max(0, 1 - v), 1 + v]`` for a number ``v``, or in a given
    ``(low, high)`` range; the hue shift is uniform in ``[-h, h]`` turns (``h <= 0.5``).

    ``order="fixed"`` (the default): brightness and contrast as one affine intensity map (the
    contrast blends with the mean luminance of the clip, or of each frame when the factors vary
    over the clip), clamped once to the call's ``value_range``; then saturation (a blend with the
    luma), then hue (a rotation of the HSV hue), each clamped. It is the default because
    brightness and contrast then stay one fused map (one pass over the clip, one clamp) and the
    result does not depend on a draw. ``order="random"`` is torchvision's: each clip draws a
    permutation of the four (recorded as ``order``), and every step is applied and clamped on its
    own, the contrast blending with the mean luminance of its own input. Saturation and hue need RGB
    (``C = 3``): one-channel video raises when they are set; hue needs a bounded value range. See
    ``vidaug3d.functional.adjust_brightness_contrast`` and ``vidaug3d._photometric``.

    Args:
        brightness: Brightness jitter, a number or a (low, high) factor range.
        contrast: Contrast jitter, a number or a (low, high) factor range.
        saturation: Saturation jitter, a number or a (low, high) factor range.
        hue: Hue jitter in turns, a number ``h`` in [0, 0.5] for ``(-h, h)`` or a pair within it.
        p: Probability that a clip is jittered.
        vary: ``"clip"``: one set of factors per clip, shape ``(B,)``; ``"frame"``: independent
            factors for every frame, shape ``(B, T)`` (flicker); ``"drift"``: a start and an end
            factor per clip, shape ``(B, 2)``, blended linearly over the frames (a gain that rises).
        order: ``"fixed"`` or ``"random"`` (a permutation per clip).

    Examples:
        >>> out, p = ColorJitter(0.3, 0.3)(torch.rand(2, 1, 4, 8, 8), seed=0, return_params=True)
        >>> p.brightness.shape, bool(((p.brightness >= 0.7) & (p.brightness <= 1.3)).all())
        (torch.Size([2]), True)
    """

    def __init__(
        self,
        brightness: float | tuple[float, float] = 0.0,
        contrast: float | tuple[float, float] = 0.0,
        saturation: float | tuple[float, float] = 0.0,
        hue: float | tuple[float, float] = 0.0,
        p: float = 1.0,
        vary: Vary = "clip",
        order: Literal["fixed", "random"] = "fixed",
    ) -> None:
        self.brightness = _range("brightness", brightness, symmetric_around=1.0, lo=0.0)
        self.contrast = _range("contrast", contrast, symmetric_around=1.0, lo=0.0)
        self.saturation = _range("saturation", saturation, symmetric_around=1.0, lo=0.0)
        self.hue = _range("hue", hue, symmetric_around=0.0, lo=-0.5, hi=0.5)
        self.p = _prob("p", p)
        self.vary = _vary(vary)
        if order not in ("fixed", "random"):
            raise fail("order", order, '"fixed" or "random"')
        self.order = order

    @property
    def _colour(self) -> bool:
        return self.saturation != (1.0, 1.0) or self.hue != (0.0, 0.0)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> ColorParams:
        if self._colour and shape.C != 3:
            raise fail(
                "video", f"{shape.C} channel(s)", "3 (RGB) channels for ColorJitter's saturation and hue"
            )
        on = keys.uniform(slot, 2, 1) < self.p

        def factor(stream: int, r: tuple[float, float], off: float) -> Tensor:
            u = _over_time(keys.uniform(slot, stream, 1), keys, slot, stream, self.vary, shape.T)[..., 0]
            return torch.where(on, _lerp(u, r), off)

        b = factor(0, self.brightness, 1.0)
        c = factor(1, self.contrast, 1.0)
        if self._colour:
            sat, hue = factor(3, self.saturation, 1.0), factor(4, self.hue, 0.0)
        else:
            sat, hue = torch.ones_like(b), torch.zeros_like(b)
        b, c, sat, hue = _for_record(self.vary, b, c, sat, hue)
        if self.order == "random":
            order = torch.argsort(keys.uniform(slot, 5, 4), dim=1)  # a uniform permutation per clip
            return ColorOrderParams(brightness=b, contrast=c, saturation=sat, hue=hue, order=order)
        return ColorParams(brightness=b, contrast=c, saturation=sat, hue=hue)

    def check_context(self, ctx: Context) -> None:
        if self.hue != (0.0, 0.0) and ctx.value_range is None:
            raise fail("value_range", None, "a bounded (low, high) range: ColorJitter's hue needs one")

    def prepare(self, params: TransformParams, ctx: Context) -> Any:
        assert isinstance(params, ColorParams)
        if self.vary == "drift" or self.order == "random":  # per frame / per step in apply_
            return params
        return self._factors(params.brightness, params.contrast, params.saturation, params.hue)

    @staticmethod
    def _factors(b: Tensor, c: Tensor, sat: Tensor, hue: Tensor) -> tuple[Any, ...]:
        scale, shift, active = VF.intensity_factors(b, c)
        per_clip = (scale.tolist(), shift.tolist(), active.tolist()) if scale.dim() == 1 else None
        return (
            scale,
            shift,
            active,
            per_clip,
            sat if bool((sat != 1.0).any()) else None,
            hue if bool((hue != 0.0).any()) else None,
        )

    def clip_params(self, prepared: Any, b: int) -> Any:
        if isinstance(prepared, ColorParams):
            return prepared.select(slice(b, b + 1))
        scale, shift, active, per_clip, sat, hue = prepared
        s = None if sat is None or not bool((sat[b] != 1.0).any()) else sat[b : b + 1]
        h = None if hue is None or not bool((hue[b] != 0.0).any()) else hue[b : b + 1]
        if per_clip is not None:  # Python numbers: the intensity kernel's per-clip path
            return (per_clip[0][b], per_clip[1][b], per_clip[2][b], None, s, h)
        return (scale[b : b + 1], shift[b : b + 1], active[b : b + 1], None, s, h)

    def apply_(self, x: Tensor, params: Any, ctx: Context) -> Tensor:
        if isinstance(params, ColorParams):  # drift: start and end blended over the clip's frames
            T = x.shape[2]
            raw = (params.brightness, params.contrast, params.saturation, params.hue)
            f = tuple(_at_frames(v, self.vary, T) for v in raw)
            if isinstance(params, ColorOrderParams):
                return self._in_order_(x, f, params.order, ctx)
            params = self._factors(*f)
        scale, shift, active, _, sat, hue = params
        x = VF.intensity_map_(x, scale, shift, active, ctx.value_range)
        if sat is not None:
            x = PF.adjust_saturation_(x, sat, value_range=ctx.value_range)
        if hue is not None:
            x = PF.adjust_hue_(x, hue, value_range=ctx.value_range)
        return x

    @staticmethod
    def _in_order_(x: Tensor, f: tuple[Tensor, ...], order: Tensor, ctx: Context) -> Tensor:
        """torchvision's random order: step ``i`` applies, to the clips whose ``order[:, i]`` names
        it, that operation alone, clamped; the clips are gathered by index (no loop over clips)."""
        b, c, sat, hue = f
        one = torch.ones_like(b)
        identity = (1.0, 1.0, 1.0, 0.0)
        for i in range(4):
            for op in range(4):
                v = f[op]
                sel = (order[:, i] == op) & (v != identity[op]).reshape(v.shape[0], -1).any(dim=1)
                if not bool(sel.any()):
                    continue
                idx = sel.nonzero()[:, 0]
                xs = x.index_select(0, VF.to_device(idx, x.device))
                if op < 2:
                    scale, shift, active = VF.intensity_factors(
                        b[idx] if op == 0 else one[idx], c[idx] if op == 1 else one[idx]
                    )
                    xs = VF.intensity_map_(xs, scale, shift, active, ctx.value_range)
                elif op == 2:
                    xs = PF.adjust_saturation_(xs, sat[idx], value_range=ctx.value_range)
                else:
                    xs = PF.adjust_hue_(xs, hue[idx], value_range=ctx.value_range)
                x = x.index_copy_(0, VF.to_device(idx, x.device), xs) if x.shape[0] > 1 else xs
        return x


class _Switch(ValueTransform):
    """Shared by the transforms that are on or off per clip: ``on`` (B,) drawn with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = _prob("p", p)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> SwitchParams:
        return SwitchParams(on=keys.uniform(slot, 0, 1)[:, 0] < self.p)

    def clip_params(self, prepared: Any, b: int) -> Any:
        assert isinstance(prepared, SwitchParams)
        return bool(prepared.on[b])  # one clip: on or off

    def kernel_(self, x: Tensor, on: Tensor | None, ctx: Context) -> Tensor:
        raise NotImplementedError

    def apply_(self, x: Tensor, params: Any, ctx: Context) -> Tensor:
        if isinstance(params, bool):
            return self.kernel_(x, None, ctx) if params else x
        assert isinstance(params, SwitchParams)
        return self.kernel_(x, params.on, ctx) if bool(params.on.any()) else x


class RandomGrayscale(_Switch):
    """Turn a clip gray with probability ``p`` (luma in all three channels, as torchvision's).

    One-channel clips are left as they are.

    Examples:
        >>> out = RandomGrayscale(p=1.0)(torch.rand(2, 3, 2, 4, 4), seed=0)
        >>> torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
        True
    """

    def kernel_(self, x: Tensor, on: Tensor | None, ctx: Context) -> Tensor:
        return PF.grayscale_(x, enabled=on, value_range=ctx.value_range)


class RandomAutocontrast(_Switch):
    """Stretch each channel of a clip to the full value range, with probability ``p``.

    torchvision's ``RandomAutocontrast`` per clip: the minimum and maximum are taken over the
    whole clip, so all its frames get the same map. Needs a bounded value range.
    """

    needs_range = True

    def kernel_(self, x: Tensor, on: Tensor | None, ctx: Context) -> Tensor:
        return PF.autocontrast_(x, enabled=on, value_range=ctx.value_range)


class RandomEqualize(_Switch):
    """Equalise the histogram of each channel of a clip (256 levels), with probability ``p``.

    torchvision's ``RandomEqualize`` per clip: one histogram over the whole clip, so all its frames
    get the same map. Needs a bounded value range.
    """

    needs_range = True

    def kernel_(self, x: Tensor, on: Tensor | None, ctx: Context) -> Tensor:
        return PF.equalize_(x, enabled=on, value_range=ctx.value_range)


class RandomSolarize(_Switch):
    """Invert the values at or above ``threshold`` with probability ``p`` (torchvision's names).

    ``threshold`` is in the units of the value range (uint8 video: [0, 1]; torchvision takes 0-255
    for uint8 images). Needs a bounded value range.

    Examples:
        >>> v = torch.tensor([0.2, 0.6, 0.9]).view(1, 1, 1, 1, 3)
        >>> [round(a, 3) for a in RandomSolarize(0.5, p=1.0)(v, seed=0).flatten().tolist()]
        [0.2, 0.4, 0.1]
    """

    needs_range = True

    def __init__(self, threshold: float, p: float = 0.5) -> None:
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not math.isfinite(threshold)
        ):
            raise fail("threshold", threshold, "a finite threshold in the value range's units")
        self.threshold = float(threshold)
        super().__init__(p)

    def kernel_(self, x: Tensor, on: Tensor | None, ctx: Context) -> Tensor:
        t = torch.full((x.shape[0],), self.threshold, dtype=torch.float64)
        if on is None or bool(on.all()):
            return PF.solarize_(x, t, value_range=ctx.value_range)
        y = PF.solarize_(x.clone(), t, value_range=ctx.value_range)
        return torch.where(on.to(x.device).view(-1, 1, 1, 1, 1), y, x)


class RandomGamma(ValueTransform):
    """Gamma correction ``gain * x ** gamma`` on the value range, gamma drawn per clip.

    As kornia's ``RandomGamma`` (gamma uniform in ``gamma``, gain uniform in ``gain``); the values
    are mapped to [0, 1] by the value range first and back after. Needs a bounded value range.

    Args:
        gamma: ``(low, high)`` exponent range, > 0.
        gain: ``(low, high)`` gain range, >= 0 (default 1).
        p: Probability that a clip is corrected.
        vary: ``"clip"`` (record ``(B,)``), ``"frame"`` (``(B, T)``) or ``"drift"`` (start and
            end, ``(B, 2)``, blended over the frames).
    """

    needs_range = True

    def __init__(
        self,
        gamma: tuple[float, float] = (0.7, 1.5),
        gain: tuple[float, float] = (1.0, 1.0),
        p: float = 1.0,
        vary: Vary = "clip",
    ) -> None:
        self.gamma = _range("gamma", gamma, lo=1e-6)
        self.gain = _range("gain", gain, lo=0.0)
        self.p = _prob("p", p)
        self.vary = _vary(vary)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> GammaParams:
        on, v = _gated_over_time(keys, slot, self.p, 2, self.vary, shape.T)
        gamma = torch.where(on, _lerp(v[..., 0], self.gamma), 1.0)
        gain = torch.where(on, _lerp(v[..., 1], self.gain), 1.0)
        gamma, gain = _for_record(self.vary, gamma, gain)
        return GammaParams(gamma=gamma, gain=gain)

    def clip_params(self, prepared: Any, b: int) -> Any:
        assert isinstance(prepared, GammaParams)
        if bool((prepared.gamma[b] == 1.0).all() and (prepared.gain[b] == 1.0).all()):
            return None
        return prepared.select(slice(b, b + 1))

    def apply_(self, x: Tensor, params: Any, ctx: Context) -> Tensor:
        if params is None:
            return x
        T = x.shape[2]
        return PF.adjust_gamma_(
            x,
            _at_frames(params.gamma, self.vary, T),
            _at_frames(params.gain, self.vary, T),
            value_range=ctx.value_range,
        )


class RandomAdjustSharpness(ValueTransform):
    """Sharpen (factor > 1) or soften (< 1) a clip with probability ``p``, torchvision's definition.

    A blend with the 3x3-smoothed frame (``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13``, borders kept),
    ``factor * x + (1 - factor) * smooth``, clamped to the value range.

    Args:
        sharpness_factor: The factor (torchvision's name), >= 0; 1 leaves the clip unchanged.
        p: Probability that a clip is adjusted.
    """

    def __init__(self, sharpness_factor: float, p: float = 0.5) -> None:
        if (
            isinstance(sharpness_factor, bool)
            or not isinstance(sharpness_factor, (int, float))
            or not 0 <= sharpness_factor < math.inf
        ):
            raise fail("sharpness_factor", sharpness_factor, "a finite factor >= 0")
        self.sharpness_factor = float(sharpness_factor)
        self.p = _prob("p", p)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> FactorParams:
        on = keys.uniform(slot, 0, 1)[:, 0] < self.p
        return FactorParams(factor=torch.where(on, self.sharpness_factor, 1.0))

    def clip_params(self, prepared: Any, b: int) -> Any:
        assert isinstance(prepared, FactorParams)
        return None if float(prepared.factor[b]) == 1.0 else prepared.select(slice(b, b + 1))

    def apply_(self, x: Tensor, params: Any, ctx: Context) -> Tensor:
        if params is None or not bool((params.factor != 1.0).any()):
            return x
        y = PF.adjust_sharpness_(
            x.clone() if not bool((params.factor != 1.0).all()) else x,
            params.factor,
            value_range=ctx.value_range,
        )
        if y is x:
            return x
        on = (params.factor != 1.0).to(x.device).view(-1, 1, 1, 1, 1)
        return torch.where(on, y, x)  # clips at factor 1 exactly as they were


@dataclass(frozen=True)
class _PreparedNoise:
    """A keyed noise's record with the batch's row keys (``_noise.clip_rows``), for the clip tasks."""

    params: NoiseParams
    rows: Tensor


class _KeyedNoise(ValueTransform):
    """Shared by the noises drawn from a keyed field: a ``NoiseParams`` record (strength, seed) per
    clip; the strength per clip ``(B,)``, per frame ``(B, T)`` or drifting ``(B, 2)`` (``vary``)."""

    vary: str = "clip"
    _KIND = _noise._NORMAL

    def _elements(self, shape: VideoShape) -> int:
        """Elements of one clip's field (SpeckleNoise: ``looks`` uniforms per pixel)."""
        return shape.C * shape.T * shape.H * shape.W

    def prepare(self, params: TransformParams, ctx: Context) -> Any:
        # the batch's row keys at once, for the CPU executor's clip tasks (see _noise.clip_rows)
        if ctx.shape is None:
            return params
        assert isinstance(params, NoiseParams)
        return _PreparedNoise(params, _noise.clip_rows(self._KIND, params.seed, self._elements(ctx.shape)))

    def _strength(self, keys: ClipKeys, slot: int, T: int, r: tuple[float, float]) -> Tensor:
        """The strength (0 where the clip's gate is off) as ``vary`` says."""
        on, v = _gated_over_time(keys, slot, self.p, 1, self.vary, T)  # type: ignore[attr-defined]
        return _for_record(self.vary, torch.where(on, _lerp(v[..., 0], r), 0.0))[0]

    def clip_params(self, prepared: Any, b: int) -> Any:
        rows = None
        if isinstance(prepared, _PreparedNoise):
            prepared, rows = prepared.params, prepared.rows[b : b + 1]
        assert isinstance(prepared, NoiseParams)
        std = float(prepared.std[b]) if self.vary == "clip" else prepared.std[b : b + 1]
        return (std, int(prepared.seed[b]), rows)  # one clip: Python numbers where they suffice

    def _clip_field(
        self, seed: int, rows: Tensor | None, shape: tuple[int, ...], dtype: torch.dtype
    ) -> Tensor:
        """One clip's field of ``shape`` (from its prepared row keys when there are some)."""
        make = normal_field if self._KIND == _noise._NORMAL else uniform_field
        if rows is None:
            return make(seed, shape, dtype=dtype)
        out = torch.empty(shape, dtype=dtype)
        _noise.field_from_rows(self._KIND, rows, out.view(1, -1))
        return out

    def _clip_strength(self, strength: float | Tensor, T: int) -> float | Tensor | None:
        """One clip's strength for its kernel, or None where it adds nothing."""
        if isinstance(strength, Tensor):
            return _at_frames(strength, self.vary, T) if bool((strength != 0.0).any()) else None
        return strength if strength != 0.0 else None


class GaussianNoise(_KeyedNoise):
    """Add Gaussian noise, independent for every pixel and frame, then clamp to the value range.

    The noise is a pure function of the clip's seed (from its key) and the element's index in the
    clip (``vidaug3d._noise.normal_field``: a counter-based hash turned into normals), so a clip's
    noise does not depend on its batch, the thread count, the executor or the device (the same
    values on CPU and CUDA), and it replays exactly from the record.

    Args:
        std: Standard deviation in the units of the video's values (uint8 videos: of [0, 1]), or a
            (low, high) range drawn per clip.
        p: Probability that a clip gets noise.
        vary: How the standard deviation varies: ``"clip"``, ``"frame"`` or ``"drift"`` (the
            field itself is independent per pixel and frame in every mode).

    Examples:
        >>> v = torch.full((1, 1, 2, 8, 8), 0.5)
        >>> out = GaussianNoise(0.03)(v, seed=0)
        >>> 0.01 < float((out - v).std()) < 0.05
        True
    """

    def __init__(self, std: float | tuple[float, float] = 0.03, p: float = 1.0, vary: Vary = "clip") -> None:
        if isinstance(std, (int, float)) and not isinstance(std, bool):
            self.std = _range("std", (float(std), float(std)), lo=0.0)
        else:
            self.std = _range("std", std, lo=0.0)
        self.p = _prob("p", p)
        self.vary = _vary(vary)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> NoiseParams:
        std = self._strength(keys, slot, shape.T, self.std)
        return NoiseParams(std=std, seed=keys.seeds(slot, 1))

    def apply_(self, x: Tensor, params: Any, ctx: Context) -> Tensor:
        if isinstance(params, _PreparedNoise):
            params = params.params
        if isinstance(params, NoiseParams):
            # the whole batch's fields in one elementwise evaluation (no loop over clips)
            noise = normal_field(params.seed, x.shape[1:], dtype=x.dtype, device=x.device)
            std_t = _at_frames(params.std, self.vary, x.shape[2])
            return VF.add_noise_(x, noise, std_t, ctx.value_range, scratch=True)
        std, seed, rows = params  # one clip (CPU): its own field, made only if it is used
        s = self._clip_strength(std, x.shape[2])
        if s is None:
            return x
        noise = self._clip_field(seed, rows, tuple(x.shape[1:]), x.dtype).unsqueeze(0)
        return VF.add_noise_(x, noise, s, ctx.value_range, scratch=True)


class GaussianBlur(ValueTransform):
    """Blur every frame of a clip with a Gaussian whose sigma is drawn per clip (torchvision's names).

    The kernel has ``kernel_size`` taps per axis and weights ``exp(-x**2 / (2 sigma**2))``,
    normalised, with reflected borders, as torchvision's and kornia's ``gaussian_blur``; it is
    separable and runs as one pass per axis over the clip's frames (the same sigma on all of them,
    or, with ``vary="frame"`` or ``"drift"``, a sigma per frame: focus that comes and goes).
    A frame smaller than the kernel uses the taps that fit.

    Args:
        kernel_size: Odd positive int, or an ``(ky, kx)`` pair of them.
        sigma: Standard deviation in pixels: a number, or a ``(low, high)`` range drawn per clip.
        p: Probability that a clip is blurred.
        vary: ``"clip"`` (record ``(B,)``), ``"frame"`` (``(B, T)``) or ``"drift"`` (``(B, 2)``).

    Examples:
        >>> out = GaussianBlur(5, sigma=(0.5, 2.0))(torch.rand(2, 1, 3, 16, 16), seed=0)
        >>> out.shape
        torch.Size([2, 1, 3, 16, 16])
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        sigma: float | tuple[float, float] = (0.1, 2.0),
        p: float = 1.0,
        vary: Vary = "clip",
    ) -> None:
        ks = VF.check_size("kernel_size", kernel_size)
        if ks[0] % 2 == 0 or ks[1] % 2 == 0:
            raise fail("kernel_size", kernel_size, "odd kernel sizes")
        self.kernel_size = ks
        if isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
            sigma = (float(sigma), float(sigma))
        self.sigma = _range("sigma", sigma, lo=0.0)
        self.p = _prob("p", p)
        self.vary = _vary(vary)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> BlurParams:
        on, v = _gated_over_time(keys, slot, self.p, 1, self.vary, shape.T)
        return BlurParams(sigma=_for_record(self.vary, torch.where(on, _lerp(v[..., 0], self.sigma), 0.0))[0])

    def clip_params(self, prepared: Any, b: int) -> Any:
        assert isinstance(prepared, BlurParams)
        return prepared.sigma[b : b + 1] if bool((prepared.sigma[b] > 0).any()) else None

    def apply_(self, x: Tensor, params: Any, ctx: Context) -> Tensor:
        sigma = params.sigma if isinstance(params, BlurParams) else params
        if sigma is None or not bool((sigma > 0).any()):
            return x
        n, C, T, H, W = x.shape
        ky, kx = self.kernel_size
        sigma = _at_frames(sigma, self.vary, T)
        if sigma.dim() == 1:  # one sigma per clip: its C * T planes in one pass
            planes = x.reshape(n, C * T, H, W)
        else:  # one per frame: the frames are the items, their C channels the planes
            planes, sigma = x.transpose(1, 2).reshape(n * T, C, H, W), sigma.reshape(n * T)
        y = VF.blur_planes(planes, sigma[:, None].expand(-1, 2), padding="reflect", radius=(ky // 2, kx // 2))
        if not bool((sigma > 0).all()):  # leave unblurred clips (frames) exact
            y = torch.where((sigma > 0).to(x.device).view(-1, 1, 1, 1), y, planes)
        if sigma.shape[0] == n:
            return y.view(n, C, T, H, W)
        return y.view(n, T, C, H, W).transpose(1, 2).contiguous()


class RandomErasing(ValueTransform):
    """Erase one random rectangle per clip, at the same place in every frame (torchvision's sampling),
    or moving.

    The box's area is a fraction ``scale`` of the frame and its aspect ratio (h / w) is log-uniform
    in ``ratio``; up to ``attempts`` candidate boxes are drawn and the first that fits is used (none
    fits: the clip is left alone, as in torchvision). With ``vary="drift"`` the box keeps its size
    and slides, in whole pixels, from its position to a second one drawn the same way (an occluder
    that passes: record ``(B, 2, 4)``); with ``"frame"`` every frame draws its own box (record
    ``(B, T, 4)``; the clip's ``p`` still decides whether it is erased at all).

    Args:
        p: Probability that a clip is erased.
        scale: (low, high) fraction of the frame's area.
        ratio: (low, high) aspect ratio h / w.
        value: Fill value in the video's units (uint8 videos: in [0, 1]); within the call's
            ``value_range`` where that is bounded.
        attempts: Candidate boxes per clip.
        vary: ``"clip"``, ``"frame"`` or ``"drift"``.

    Examples:
        >>> out, p = RandomErasing(p=1.0)(torch.rand(3, 1, 2, 32, 32), seed=0, return_params=True)
        >>> p.box.shape
        torch.Size([3, 4])
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: tuple[float, float] = (0.02, 0.33),
        ratio: tuple[float, float] = (0.3, 3.3),
        value: float = 0.0,
        attempts: int = 10,
        vary: Vary = "clip",
    ) -> None:
        self.p = _prob("p", p)
        self.scale = _range("scale", scale, lo=0.0, hi=1.0)
        self.ratio = _range("ratio", ratio, lo=1e-6)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise fail("value", value, "a finite fill value")
        self.value = float(value)
        self.attempts = _count_arg("attempts", attempts, 1)
        self.vary = _vary(vary)

    def check_context(self, ctx: Context) -> None:
        vr = ctx.value_range
        if vr is not None and not vr[0] <= self.value <= vr[1]:
            raise fail("value", self.value, f"a fill value within the value range {vr} (working units)")

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> EraseParams:
        H, W, T = shape.H, shape.W, shape.T
        k = 2 * self.attempts + 3
        u = keys.uniform(slot, 0, k)
        box, on = self._box(u.to(torch.float64), H, W)
        if self.vary == "frame":
            uf = keys.uniform(slot, _TIME_STREAM, k * T).reshape(-1, k).to(torch.float64)
            uf[:, k - 1] = 0.0  # the frames' boxes are all on; the clip's own gate decides
            fbox, _ = self._box(uf, H, W)
            box = torch.where((u[:, k - 1] < self.p)[:, None, None], fbox.view(-1, T, 4), 0)
        elif self.vary == "drift":  # the same size at a second position
            bh, bw = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
            e = keys.uniform(slot, _TIME_STREAM, 2).to(torch.float64)
            ey = torch.floor(e[:, 0] * (H - bh + 1).to(torch.float64)).to(torch.int64)
            ex = torch.floor(e[:, 1] * (W - bw + 1).to(torch.float64)).to(torch.int64)
            end = torch.where(on[:, None], torch.stack([ey, ex, ey + bh, ex + bw], dim=1), 0)
            box = torch.stack([box, end], dim=1)
        return EraseParams(box=box)

    def _box(self, u: Tensor, H: int, W: int) -> tuple[Tensor, Tensor]:
        """``(n, 4)`` boxes ``(y0, x0, y1, x1)`` (empty where off) and whether each is on, from
        ``(n, 2 * attempts + 3)`` uniforms."""
        area = _lerp(u[:, : self.attempts], self.scale) * (H * W)
        log_r = _lerp(
            u[:, self.attempts : 2 * self.attempts], (math.log(self.ratio[0]), math.log(self.ratio[1]))
        )
        r = torch.exp(log_r)
        h = torch.round(torch.sqrt(area * r)).to(torch.int64)
        w = torch.round(torch.sqrt(area / r)).to(torch.int64)
        fits = (h < H) & (w < W) & (h > 0) & (w > 0)
        first = torch.argmax(fits.to(torch.int64), dim=1, keepdim=True)
        any_fit = fits.any(dim=1)
        h = h.gather(1, first)[:, 0]
        w = w.gather(1, first)[:, 0]
        k = 2 * self.attempts
        y0 = torch.floor(u[:, k] * (H - h + 1).to(torch.float64)).to(torch.int64)
        x0 = torch.floor(u[:, k + 1] * (W - w + 1).to(torch.float64)).to(torch.int64)
        on = any_fit & (u[:, k + 2] < self.p)
        box = torch.stack([y0, x0, y0 + h, x0 + w], dim=1)
        return torch.where(on[:, None], box, torch.zeros_like(box)), on

    def _frame_boxes(self, box: Tensor, T: int) -> Tensor:
        """The boxes the kernel erases: ``(n, 4)`` per clip or ``(n, T, 4)`` per frame."""
        if self.vary != "drift":
            return box
        size = box[:, :1, 2:] - box[:, :1, :2]
        origin = torch.round(_at_frames(box[..., :2], "drift", T)).to(torch.int64)
        return torch.cat([origin, origin + size], dim=-1)

    def clip_params(self, prepared: Any, b: int) -> Any:
        assert isinstance(prepared, EraseParams)
        return prepared.box[b].tolist() if self.vary == "clip" else prepared.box[b : b + 1]

    def apply_(self, x: Tensor, params: Any, ctx: Context) -> Tensor:
        if isinstance(params, (EraseParams, Tensor)):
            box = params.box if isinstance(params, EraseParams) else params
            return VF.erase_(x, self._frame_boxes(box, x.shape[2]), self.value)
        y0, x0, y1, x1 = params  # one clip: a slice assignment touches only the box
        if y1 > y0 and x1 > x0:
            x[..., y0:y1, x0:x1] = self.value
        return x


# ----------------------------------------------------------------------------------------------- temporal
def _choose(u: Tensor, k: Tensor) -> Tensor:
    """``(B, T)`` bool: for each clip, the ``k[b]`` positions with the smallest ``u`` values."""
    rank = torch.argsort(torch.argsort(u, dim=1), dim=1)
    return rank < k[:, None]


def _count(u: Tensor, max_frames: int, T: int) -> Tensor:
    """Per-clip count uniform in {0, ..., max_frames}, capped at T."""
    k = torch.floor(u * (max_frames + 1)).to(torch.int64).clamp_(max=max_frames)
    return k.clamp_(max=T)


class TemporalReverse(TemporalTransform):
    """Play a clip backwards with probability ``p``.

    Examples:
        >>> out, p = TemporalReverse(p=1.0)(torch.rand(1, 1, 4, 2, 2), seed=0, return_params=True)
        >>> p.frame_map.tolist()
        [[3, 2, 1, 0]]
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = _prob("p", p)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> FrameMapParams:
        on = keys.uniform(slot, 0, 1) < self.p
        t = torch.arange(shape.T, dtype=torch.int64)
        return FrameMapParams(frame_map=torch.where(on, shape.T - 1 - t, t))


class _KFrames(TemporalTransform):
    """Shared by the transforms that act on ``k`` randomly chosen frames, ``k`` in {0, ..., max_frames}."""

    min_frames: ClassVar[int] = 2

    def __init__(self, p: float = 0.5, max_frames: int = 4) -> None:
        self.p = _prob("p", p)
        self.max_frames = _count_arg("max_frames", max_frames)

    def _chosen(self, shape: VideoShape, keys: ClipKeys, slot: int) -> tuple[Tensor, Tensor]:
        """The per-clip count ``k`` (0 where the gate is off) and the ``(B, T)`` uniforms that pick frames."""
        g = keys.uniform(slot, 0, 2)
        k = torch.where(g[:, 1] < self.p, _count(g[:, 0], self.max_frames, shape.T), 0)
        return k, keys.uniform(slot, 1, shape.T)


class TemporalShuffle(_KFrames):
    """Permute ``k`` randomly chosen frames among themselves, ``k`` uniform in {0, ..., max_frames}.

    The chosen frames, taken in a random order, each move to the place of the next one (a random
    cyclic permutation), so every one of the ``k`` frames leaves its place when ``k >= 2``; the
    other frames keep theirs. Applied with probability ``p`` (else k = 0).

    Args:
        p: Probability that a clip is shuffled.
        max_frames: Largest number of frames permuted (capped at T).

    Examples:
        >>> out, p = TemporalShuffle(p=1.0, max_frames=4)(torch.rand(2, 1, 8, 2, 2), seed=1, return_params=True)
        >>> sorted(p.frame_map[0].tolist()) == list(range(8))
        True
    """

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> FrameMapParams:
        T = shape.T
        k, u = self._chosen(shape, keys, slot)
        # The k chosen positions in a random order first, then the others in ascending order.
        chosen = _choose(u, k)
        t = torch.arange(T, dtype=torch.int64).expand(len(k), T)
        order = torch.argsort(torch.where(chosen, u, 2.0 + t), dim=1)
        # Position order[j] shows frame order[j + 1] (cyclically among the first k).
        j = torch.arange(T, dtype=torch.int64).expand(len(k), T)
        km1 = (k - 1)[:, None]
        nxt = torch.where(j < km1, j + 1, torch.where(j == km1, 0, j))
        frame_map = t.clone().scatter_(1, order, order.gather(1, nxt))
        return FrameMapParams(frame_map=frame_map)


class FrameReplace(_KFrames):
    """Overwrite ``k`` randomly chosen frames with other frames of the same clip.

    ``k`` is uniform in {0, ..., max_frames} (capped at T); each replaced frame shows a frame drawn
    uniformly from the clip's *other* frames of the input. Applied with probability ``p``.
    Not invertible (frames are lost).

    Examples:
        >>> out, p = FrameReplace(p=1.0, max_frames=4)(torch.rand(2, 1, 8, 2, 2), seed=3, return_params=True)
        >>> bool(((p.frame_map >= 0) & (p.frame_map < 8)).all())
        True
    """

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> FrameMapParams:
        T = shape.T
        k, u = self._chosen(shape, keys, slot)
        chosen = _choose(u, k)
        t = torch.arange(T, dtype=torch.int64).expand(len(k), T)
        offset = 1 + torch.floor(keys.uniform(slot, 2, T) * (T - 1)).to(torch.int64).clamp_(max=T - 2)
        source = (t + offset) % T
        return FrameMapParams(frame_map=torch.where(chosen, source, t))


class UniformTemporalSubsample(TemporalTransform):
    """Keep ``num_frames`` evenly spaced frames of every clip (first and last included).

    Frame ``i`` is input frame ``int(i * (T - 1) / (num_frames - 1))``: torchvision's and
    pytorchvideo's ``UniformTemporalSubsample`` (``linspace(0, T - 1, num_frames)`` truncated).
    More frames than the clip has repeat frames (the same formula).

    Examples:
        >>> out, p = UniformTemporalSubsample(4)(torch.rand(1, 1, 10, 2, 2), seed=0, return_params=True)
        >>> p.frame_map.tolist()
        [[0, 3, 6, 9]]
    """

    def __init__(self, num_frames: int) -> None:
        self.num_frames = _count_arg("num_frames", num_frames, 1)

    def output_shape(self, shape: VideoShape) -> VideoShape:
        return VideoShape(shape.B, shape.C, self.num_frames, shape.H, shape.W)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> FrameMapParams:
        idx = torch.linspace(0, shape.T - 1, self.num_frames, dtype=torch.float64).clamp(0, shape.T - 1)
        return FrameMapParams(frame_map=idx.to(torch.int64).expand(shape.B, -1).clone())


class RandomTemporalCrop(TemporalTransform):
    """A window of ``num_frames`` frames at a random start per clip, optionally at a random speed.

    With ``speed`` ``(low, high)``, each clip draws a playback speed ``s`` log-uniform in the range
    and its window spans ``num_frames * s`` input frames, sampled at frame
    ``start + floor((i + 0.5) * s)`` for output frame ``i`` (``s > 1`` skips frames, ``s < 1``
    repeats them); with speed 1 the window is ``num_frames`` consecutive frames. A window longer
    than the clip has its speed capped so that it spans the whole clip.

    Clips shorter than ``num_frames`` (``short``): ``"error"`` (default) raises; ``"loop"`` plays
    the clip again from its first frame; ``"pad"`` repeats its last frame.

    Args:
        num_frames: Output frames, >= 1.
        speed: Playback speed range, > 0 (default: no speed change).
        short: What to do with clips shorter than ``num_frames``.

    Examples:
        >>> out, p = RandomTemporalCrop(4)(torch.rand(2, 1, 10, 2, 2), seed=0, return_params=True)
        >>> out.shape[2], bool((p.frame_map.diff(dim=1) == 1).all())
        (4, True)
    """

    def __init__(
        self,
        num_frames: int,
        speed: tuple[float, float] = (1.0, 1.0),
        short: Literal["error", "loop", "pad"] = "error",
    ) -> None:
        self.num_frames = _count_arg("num_frames", num_frames, 1)
        self.speed = _range("speed", speed, lo=1e-6)
        if short not in ("error", "loop", "pad"):
            raise fail("short", short, '"error", "loop" or "pad"')
        self.short = short

    def output_shape(self, shape: VideoShape) -> VideoShape:
        if self.num_frames > shape.T and self.short == "error":
            raise fail(
                "video",
                f"T = {shape.T} frames",
                f"at least num_frames = {self.num_frames} frames for RandomTemporalCrop "
                '(or short="loop" / "pad")',
            )
        return VideoShape(shape.B, shape.C, self.num_frames, shape.H, shape.W)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> FrameMapParams:
        T, n = shape.T, self.num_frames
        u = keys.uniform(slot, 0, 2).to(torch.float64)
        lo, hi = math.log(self.speed[0]), math.log(self.speed[1])
        s = torch.exp(_lerp(u[:, 0], (lo, hi)))
        if n <= T:
            s = torch.minimum(s, torch.tensor(T / n, dtype=torch.float64))  # the window fits the clip
        i = torch.arange(n, dtype=torch.float64)
        off = torch.floor((i + 0.5) * s[:, None]).to(torch.int64)  # (B, n), non-decreasing from 0
        span = off[:, -1] + 1
        room = (T - span).clamp(min=0)
        start = torch.floor(u[:, 1] * (room + 1).to(torch.float64)).to(torch.int64)
        idx = start[:, None] + off
        if self.short == "loop":
            idx = idx % T
        return FrameMapParams(frame_map=idx.clamp_(max=T - 1))


# ----------------------------------------------------------------------------------------------- ultrasound
class _ProbeTransform(ValueTransform):
    """Shared by the ultrasound transforms that work along the probe's depth or beams.

    They need the call's probe geometry (``probe=`` a ``vidaug3d.ultrasound.ProbeGeometry`` or
    ``"estimate"``) in their input's coordinates, so they come before any geometric transform.
    """

    def check_context(self, ctx: Context) -> None:
        if ctx.probe is None:
            where = (
                "before the geometric transforms (they move the frame the probe was given in)"
                if ctx.probe_moved
                else 'with the call\'s probe= (a ProbeGeometry, or "estimate")'
            )
            raise fail("probe", None, f"the probe geometry for {type(self).__name__}: use it {where}")

    def clip_params(self, prepared: Any, b: int) -> Any:
        return (b, prepared.select(slice(b, b + 1)))

    def apply_(self, x: Tensor, params: Any, ctx: Context) -> Tensor:
        b, p = params if isinstance(params, tuple) else (None, params)
        probe = ctx.probe if b is None else ctx.probe[b]
        return self.kernel_(x, probe, p, ctx)

    def kernel_(self, x: Tensor, probe: Any, params: Any, ctx: Context) -> Tensor:
        raise NotImplementedError


class DepthAttenuation(_ProbeTransform):
    """Darken with depth from the probe: gain ``(1 - floor) * exp(-mu * d) + floor``, ``d`` in [0, 1].

    ``d`` is the normalised depth (0 at the probe face, 1 at the deepest imaged row; along the
    beams for a sector probe). ``mu`` and ``floor`` are drawn per clip. Inside the field of view
    only (the outside stays as it was). See ``vidaug3d.ultrasound.depth_attenuation``.

    Args:
        mu: ``(low, high)`` attenuation over the whole depth, >= 0.
        floor: ``(low, high)`` fraction of brightness never lost, in [0, 1].
        p: Probability that a clip is attenuated.
        vary: ``"clip"``, ``"frame"`` or ``"drift"`` (``mu`` and ``floor`` from a start to an
            end value over the clip: a gain that changes as the probe presses or lifts).
    """

    def __init__(
        self,
        mu: tuple[float, float] = (0.5, 2.0),
        floor: tuple[float, float] = (0.1, 0.4),
        p: float = 1.0,
        vary: Vary = "clip",
    ) -> None:
        self.mu = _range("mu", mu, lo=0.0)
        self.floor = _range("floor", floor, lo=0.0, hi=1.0)
        self.p = _prob("p", p)
        self.vary = _vary(vary)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> GammaParams:
        on, v = _gated_over_time(keys, slot, self.p, 2, self.vary, shape.T)
        # record: gamma = mu (0 where off), gain = floor (1 where off): the identity gain
        mu = torch.where(on, _lerp(v[..., 0], self.mu), 0.0)
        floor = torch.where(on, _lerp(v[..., 1], self.floor), 1.0)
        mu, floor = _for_record(self.vary, mu, floor)
        return GammaParams(gamma=mu, gain=floor)

    def kernel_(self, x: Tensor, probe: Any, params: Any, ctx: Context) -> Tensor:
        T = x.shape[2]
        mu, floor = _at_frames(params.gamma, self.vary, T), _at_frames(params.gain, self.vary, T)
        return US.depth_attenuation_(x, probe, mu, floor, value_range=ctx.value_range)


class TimeGainCompensation(_ProbeTransform):
    """A random time-gain-compensation curve: a smooth gain along depth through ``points`` knots.

    The knots' gains are drawn per clip, uniform in ``gain``, evenly spaced from the probe face to
    the deepest row; between knots the curve is a smoothstep (C1, never beyond its two knots). See
    ``vidaug3d.ultrasound.time_gain_compensation``.

    Args:
        gain: ``(low, high)`` range of each knot's gain, >= 0.
        points: Number of knots, >= 2.
        p: Probability that a clip gets a curve (else gain 1).
        vary: ``"clip"`` (record ``(B, points)``), ``"frame"`` (``(B, T, points)``) or
            ``"drift"`` (a start and an end curve, ``(B, 2, points)``, blended over the frames:
            a sonographer turning the gain knobs).
    """

    def __init__(
        self, gain: tuple[float, float] = (0.6, 1.4), points: int = 5, p: float = 1.0, vary: Vary = "clip"
    ) -> None:
        self.gain = _range("gain", gain, lo=0.0)
        self.points = _count_arg("points", points, 2)
        self.p = _prob("p", p)
        self.vary = _vary(vary)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> FactorParams:
        on = keys.uniform(slot, 1, 1) < self.p
        v = _over_time(keys.uniform(slot, 0, self.points), keys, slot, 0, self.vary, shape.T)
        factor = torch.where(on[:, :, None], _lerp(v, self.gain), 1.0)
        return FactorParams(factor=_for_record(self.vary, factor)[0])

    def kernel_(self, x: Tensor, probe: Any, params: Any, ctx: Context) -> Tensor:
        gains = _at_frames(params.factor, self.vary, x.shape[2]).to(torch.float64)
        return US.time_gain_compensation_(x, probe, gains, value_range=ctx.value_range)


class AcousticShadow(_ProbeTransform):
    """A shadow behind an obstacle (a rib): a band along the beams, darkened beyond a depth.

    Gain ``1 - strength * exp(-(u - position)**2 / (2 width**2))`` at normalised depths at or past
    ``depth``; ``u`` is the lateral position across the field of view (0 at its left edge, 1 at its
    right), so for a sector probe the band follows the beams from the apex. With ``vary="drift"``
    the band's position moves linearly from a start to an end position drawn per clip (a shadow
    that wanders as the probe rocks); the record holds the two ends (O(B)). See
    ``vidaug3d.ultrasound.acoustic_shadow``.

    Args:
        position: ``(low, high)`` band centre across the field of view.
        width: ``(low, high)`` Gaussian width in the same units, > 0.
        strength: ``(low, high)`` darkening at the centre, in [0, 1].
        depth: ``(low, high)`` normalised depth where the shadow starts.
        p: Probability that a clip gets a shadow.
        vary: ``"clip"`` (the same on every frame) or ``"drift"``.
        drift: Largest move of the position over the clip, with ``vary="drift"``.
    """

    def __init__(
        self,
        position: tuple[float, float] = (0.1, 0.9),
        width: tuple[float, float] = (0.03, 0.1),
        strength: tuple[float, float] = (0.4, 0.9),
        depth: tuple[float, float] = (0.05, 0.4),
        p: float = 0.5,
        vary: Literal["clip", "drift"] = "clip",
        drift: float = 0.1,
    ) -> None:
        self.position = _range("position", position)
        self.width = _range("width", width, lo=1e-6)
        self.strength = _range("strength", strength, lo=0.0, hi=1.0)
        self.depth = _range("depth", depth)
        self.p = _prob("p", p)
        self.vary = _vary(
            vary, ("clip", "drift"), " (a shadow is an obstacle's: it moves, it does not flicker)"
        )
        if isinstance(drift, bool) or not isinstance(drift, (int, float)) or not 0 <= drift < math.inf:
            raise fail("drift", drift, "a finite distance >= 0")
        self.drift = float(drift)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> ShadowParams:
        u = keys.uniform(slot, 0, 6).to(torch.float64)
        on = u[:, 5] < self.p
        pos = _lerp(u[:, 0], self.position)
        end = pos + (2.0 * u[:, 4] - 1.0) * self.drift if self.vary == "drift" else pos
        strength = torch.where(on, _lerp(u[:, 2], self.strength), 0.0)
        return ShadowParams(
            position=pos,
            position_end=end,
            width=_lerp(u[:, 1], self.width),
            strength=strength,
            depth=_lerp(u[:, 3], self.depth),
        )

    def kernel_(self, x: Tensor, probe: Any, params: Any, ctx: Context) -> Tensor:
        assert isinstance(params, ShadowParams)
        if not bool((params.strength > 0).any()):
            return x
        position = params.position
        if bool((params.position_end != params.position).any()):  # drift: per frame, from start to end
            ends = torch.stack([params.position, params.position_end], dim=1)
            position = _at_frames(ends, "drift", x.shape[2])
        return US.acoustic_shadow_(
            x,
            probe,
            position,
            params.width,
            params.strength,
            params.depth,
            value_range=ctx.value_range,
        )


class SpeckleNoise(_KeyedNoise):
    """Multiplicative speckle: ``x * (1 + strength * (field - 1))``, a unit-mean field per pixel and frame.

    The field is Rayleigh (``looks=1``: fully developed speckle) or gamma with ``looks`` looks
    (the mean of ``looks`` exponentials: multi-look speckle, variance ``1 / looks``), made from the
    keyed uniform field (``vidaug3d._noise.uniform_field``), so like the Gaussian noise it is a pure
    function of the clip's seed and the pixel: the same in any batch, thread count or device. Inside
    the field of view only, when one is given. See ``vidaug3d.ultrasound.speckle``.

    Args:
        strength: ``(low, high)`` blend of the field, >= 0 (0 = no change, 1 = the full field).
        looks: 1 for Rayleigh, k > 1 for gamma with k looks.
        p: Probability that a clip gets speckle.
        vary: How the strength varies: ``"clip"``, ``"frame"`` or ``"drift"``.
    """

    def __init__(
        self, strength: tuple[float, float] = (0.2, 0.6), looks: int = 1, p: float = 1.0, vary: Vary = "clip"
    ) -> None:
        self.strength = _range("strength", strength, lo=0.0)
        self.looks = _count_arg("looks", looks, 1)
        self.p = _prob("p", p)
        self.vary = _vary(vary)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> NoiseParams:
        std = self._strength(keys, slot, shape.T, self.strength)
        return NoiseParams(std=std, seed=keys.seeds(slot, 1))

    _KIND = _noise._UNIFORM

    def _elements(self, shape: VideoShape) -> int:
        return self.looks * shape.C * shape.T * shape.H * shape.W

    def _field(self, seed: int | Tensor, x: Tensor, rows: Tensor | None = None) -> Tensor:
        shape = (self.looks, *x.shape[1:])  # k uniforms per pixel
        if isinstance(seed, Tensor):  # (B, k, ...) -> (k, B, ...)
            u = uniform_field(seed, shape, dtype=torch.float64, device=x.device).transpose(0, 1)
        else:
            u = self._clip_field(seed, rows, shape, torch.float64)
        f = (US.rayleigh_field(u[0]) if self.looks == 1 else US.gamma_field(u)).to(x.dtype)
        return f if isinstance(seed, Tensor) else f.unsqueeze(0)

    def apply_(self, x: Tensor, params: Any, ctx: Context) -> Tensor:
        if isinstance(params, _PreparedNoise):
            params = params.params
        if isinstance(params, NoiseParams):
            if not bool((params.std > 0).any()):
                return x
            std_t = _at_frames(params.std, self.vary, x.shape[2])
            return US.speckle_(
                x, self._field(params.seed, x), std_t.to(torch.float64), value_range=ctx.value_range
            )
        strength, seed, rows = params
        s = self._clip_strength(strength, x.shape[2])
        if s is None:
            return x
        s_t = s.to(torch.float64) if isinstance(s, Tensor) else torch.tensor([s], dtype=torch.float64)
        return US.speckle_(x, self._field(seed, x, rows), s_t, value_range=ctx.value_range)
