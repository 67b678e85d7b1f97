"""The eight transforms: configuration, parameter sampling, and the kernel each one applies.

Each transform is thin: it validates its configuration, turns per-clip uniform draws into a typed
parameter record (:meth:`Transform.sample_params`), and applies a pure kernel from
:mod:`vidaug3d.functional` (:meth:`Transform.apply`). Calling a transform runs it as a one-element
:class:`vidaug3d.Compose`; composing several fuses them (see :mod:`vidaug3d.compose`).

Probability gates are branchless: a clip that is not transformed gets identity parameters
(angle 0, factor 1, an identity frame map, an empty box), so nothing depends on data on the host.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import Tensor

from . import functional as VF
from ._random import ClipKeys, add_noise_, clip_noise
from ._video import VideoShape
from .errors import fail
from .params import (
    AffineParams,
    ColorParams,
    EraseParams,
    FlipParams,
    FrameMapParams,
    NoiseParams,
    TransformParams,
)

if TYPE_CHECKING:
    from .compose import CallResult

__all__ = [
    "ColorJitter",
    "FrameReplace",
    "GaussianNoise",
    "RandomAffine",
    "RandomErasing",
    "RandomHorizontalFlip",
    "TemporalReverse",
    "TemporalShuffle",
    "Transform",
]

Kind = Literal["temporal", "geometric", "pointwise"]


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


def _max_frames(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise fail(name, value, "a non-negative int")
    return value


# ----------------------------------------------------------------------------------------------- base
class Transform:
    """Base class. Subclasses set :attr:`kind` and implement the three methods below."""

    kind: ClassVar[Kind]
    min_frames: ClassVar[int] = 1

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> TransformParams:
        """Draw this transform's parameters for a batch of ``shape`` from the clips' keys."""
        raise NotImplementedError

    def apply(self, video: Tensor, params: TransformParams) -> Tensor:
        """Apply the transform's kernel with explicit parameters to ``(B, C, T, H, W)``."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def __call__(self, video: Tensor, **kwargs: Any) -> CallResult:
        """Run this transform alone; same keywords as :meth:`vidaug3d.Compose.__call__`.

        With ``return_params=True`` the parameters returned are this transform's own record, and
        ``params=`` takes such a record.
        """
        from .compose import Compose  # local: compose imports this module
        from .params import Record

        pipeline = Compose([self])
        if isinstance(kwargs.get("params"), TransformParams):
            p = kwargs["params"]
            v = video if video.dim() == 5 else video.unsqueeze(0)
            kwargs["params"] = Record((type(self).__name__,), (p,), tuple(v.shape))  # type: ignore[arg-type]
        result = pipeline(video, **kwargs)
        if kwargs.get("return_params"):
            assert isinstance(result, tuple)
            return (*result[:-1], result[-1].params[0])  # type: ignore[union-attr,return-value]
        return result


class GeometricTransform(Transform):
    """A transform given by one forward affine matrix per clip (fused by matrix product)."""

    kind: ClassVar[Kind] = "geometric"
    exact: ClassVar[bool] = False  # true when the map sends pixel centres to pixel centres (no interpolation)

    def matrix(self, params: TransformParams, shape: VideoShape) -> Tensor:
        """``(B, 3, 3)`` float64 forward matrices in centred pixel coordinates."""
        raise NotImplementedError

    def apply(self, video: Tensor, params: TransformParams) -> Tensor:
        return VF.warp(video, self.matrix(params, VideoShape.of(video)))


class TemporalTransform(Transform):
    """A transform given by a ``(B, T)`` frame-index map (fused by composing maps)."""

    kind: ClassVar[Kind] = "temporal"

    def apply(self, video: Tensor, params: TransformParams) -> Tensor:
        assert isinstance(params, FrameMapParams)
        return VF.gather_frames(video, params.frame_map)


class PointwiseTransform(Transform):
    """A transform that acts on values, not positions (fused into one in-place pass)."""

    kind: ClassVar[Kind] = "pointwise"

    def apply_(self, x: Tensor, params: TransformParams) -> Tensor:
        """Apply in place to a float working tensor in [0, 1] (batched tensor ops)."""
        raise NotImplementedError

    def clip_op(self, params: TransformParams) -> Callable[[Tensor, int], None]:
        """An in-place function ``op(clip, b)`` for one clip ``(C, T, H, W)`` of the working tensor.

        The CPU executor runs the whole plan clip by clip in a thread pool, so that the clip stays
        in cache across all its ops. The result equals :meth:`apply_` to float rounding.
        """

        def op(clip: Tensor, b: int) -> None:
            self.apply_(clip.unsqueeze(0), params.select([b]))

        return op

    def apply(self, video: Tensor, params: TransformParams) -> Tensor:
        x = VF.to_work(video)
        return VF.from_work(self.apply_(x, params), video.dtype)


# ----------------------------------------------------------------------------------------------- geometry
class RandomAffine(GeometricTransform):
    """Random rotation, translation and isotropic scale per clip, identical on all its frames.

    Args:
        degrees: Rotation range in degrees: ``d`` means ``(-d, d)``, or a ``(low, high)`` pair.
        translate: Maximum shift as fractions ``(fx, fy)`` of the width and height; the shift is
            uniform in ``[-fx * W, fx * W]`` x ``[-fy * H, fy * H]`` pixels. None for no shift.
        scale: ``(low, high)`` zoom range, > 0. None for no zoom.
        p: Probability that a clip is transformed at all.
        padding_mode: What fills pixels that come from outside the frame: ``"zeros"``,
            ``"border"`` or ``"reflection"``.

    Example:
        >>> t = RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.8, 1.2))
        >>> out, p = t(torch.rand(2, 1, 4, 16, 16), seed=0, return_params=True)
        >>> out.shape, p.angle.shape, p.translate.shape
        (torch.Size([2, 1, 4, 16, 16]), torch.Size([2]), torch.Size([2, 2]))
    """

    def __init__(
        self,
        degrees: float | tuple[float, float] = 0.0,
        translate: tuple[float, float] | None = None,
        scale: tuple[float, float] | None = None,
        p: float = 1.0,
        padding_mode: str = "zeros",
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
        if padding_mode not in ("zeros", "border", "reflection"):
            raise fail("padding_mode", padding_mode, '"zeros", "border" or "reflection"')
        self.padding_mode = padding_mode

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> AffineParams:
        u = keys.uniform(slot, 0, 5)
        on = u[:, 4] < self.p
        angle = torch.where(on, _lerp(u[:, 0], self.degrees), 0.0)
        tx = torch.where(on, (2.0 * u[:, 1] - 1.0) * (self.translate[0] * shape.W), 0.0)
        ty = torch.where(on, (2.0 * u[:, 2] - 1.0) * (self.translate[1] * shape.H), 0.0)
        scale = torch.where(on, _lerp(u[:, 3], self.scale), 1.0)
        return AffineParams(angle=angle, translate=torch.stack([tx, ty], dim=1), scale=scale)

    def matrix(self, params: TransformParams, shape: VideoShape) -> Tensor:
        assert isinstance(params, AffineParams)
        return VF.affine_matrix(params.angle, params.translate, params.scale)

    def apply(self, video: Tensor, params: TransformParams) -> Tensor:
        return VF.warp(video, self.matrix(params, VideoShape.of(video)), padding_mode=self.padding_mode)


class RandomHorizontalFlip(GeometricTransform):
    """Mirror a clip left-right with probability ``p`` (all its frames).

    Example:
        >>> v = torch.rand(4, 1, 2, 8, 8)
        >>> out, p = RandomHorizontalFlip(p=1.0)(v, seed=0, return_params=True)
        >>> torch.equal(out, v.flip(-1)), p.flip.tolist()
        (True, [True, True, True, True])
    """

    exact: ClassVar[bool] = True

    def __init__(self, p: float = 0.5) -> None:
        self.p = _prob("p", p)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> FlipParams:
        return FlipParams(flip=keys.uniform(slot, 0, 1)[:, 0] < self.p)

    def matrix(self, params: TransformParams, shape: VideoShape) -> Tensor:
        assert isinstance(params, FlipParams)
        return VF.hflip_matrix(params.flip)

    def apply(self, video: Tensor, params: TransformParams) -> Tensor:
        assert isinstance(params, FlipParams)
        return VF.hflip(video, params.flip)


# ----------------------------------------------------------------------------------------------- photometric
class ColorJitter(PointwiseTransform):
    """Random brightness then contrast, one affine intensity map per clip (or per frame).

    Factors are uniform in ``[max(0, 1 - v), 1 + v]`` for a number ``v``, or in a given
    ``(low, high)`` range. The contrast blends with the mean luminance of the clip (``vary="clip"``)
    or of each frame (``vary="frame"``). See :func:`vidaug3d.functional.adjust_brightness_contrast`.

    Args:
        brightness: Brightness jitter, a number or a (low, high) factor range.
        contrast: Contrast jitter, a number or a (low, high) factor range.
        p: Probability that a clip is jittered.
        vary: ``"clip"``: one pair of factors per clip, shape ``(B,)``; ``"frame"``: independent
            factors for every frame, shape ``(B, T)`` (flicker).

    Example:
        >>> out, p = ColorJitter(0.3, 0.3)(torch.rand(2, 1, 4, 8, 8), seed=0, return_params=True)
        >>> p.brightness.shape, bool(((p.brightness >= 0.7) & (p.brightness <= 1.3)).all())
        (torch.Size([2]), True)
    """

    def __init__(
        self,
        brightness: float | tuple[float, float] = 0.0,
        contrast: float | tuple[float, float] = 0.0,
        p: float = 1.0,
        vary: Literal["clip", "frame"] = "clip",
    ) -> None:
        self.brightness = _range("brightness", brightness, symmetric_around=1.0, lo=0.0)
        self.contrast = _range("contrast", contrast, symmetric_around=1.0, lo=0.0)
        self.p = _prob("p", p)
        if vary not in ("clip", "frame"):
            raise fail("vary", vary, '"clip" or "frame"')
        self.vary = vary

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> ColorParams:
        n = shape.T if self.vary == "frame" else 1
        ub = keys.uniform(slot, 0, n)
        uc = keys.uniform(slot, 1, n)
        on = keys.uniform(slot, 2, 1) < self.p
        b = torch.where(on, _lerp(ub, self.brightness), 1.0)
        c = torch.where(on, _lerp(uc, self.contrast), 1.0)
        if self.vary == "clip":
            b, c = b[:, 0], c[:, 0]
        return ColorParams(brightness=b, contrast=c)

    def apply_(self, x: Tensor, params: TransformParams) -> Tensor:
        assert isinstance(params, ColorParams)
        return VF.brightness_contrast_(
            x, params.brightness, params.contrast, per_frame=params.brightness.dim() == 2
        )

    def clip_op(self, params: TransformParams) -> Callable[[Tensor, int], None]:
        assert isinstance(params, ColorParams)
        if params.brightness.dim() == 2:  # per frame: the batched kernel on the one clip
            return super().clip_op(params)
        bs, cs = params.brightness.tolist(), params.contrast.tolist()

        def op(clip: Tensor, b: int) -> None:
            if bs[b] == 1.0 and cs[b] == 1.0:
                return  # identity (x in [0, 1]: the map and the clamp change nothing)
            m0 = float(VF.gray_mean(clip.unsqueeze(0), per_frame=False))
            clip.mul_(bs[b] * cs[b]).add_(bs[b] * m0 * (1.0 - cs[b])).clamp_(0.0, 1.0)

        return op


class GaussianNoise(PointwiseTransform):
    """Add Gaussian noise, independent for every pixel and frame, then clamp to [0, 1].

    Each clip's noise field comes from its own generator, seeded from the clip's key, so the noise
    of a clip does not depend on the rest of the batch and replays exactly from the record. The
    field is drawn on the video's device: the CPU and CUDA fields differ for the same seed.

    Args:
        std: Standard deviation in units of the [0, 1] range, or a (low, high) range drawn per clip.
        p: Probability that a clip gets noise.

    Example:
        >>> v = torch.full((1, 1, 2, 8, 8), 0.5)
        >>> out = GaussianNoise(0.03)(v, seed=0)
        >>> 0.01 < float((out - v).std()) < 0.05
        True
    """

    def __init__(self, std: float | tuple[float, float] = 0.03, p: float = 1.0) -> None:
        if isinstance(std, (int, float)) and not isinstance(std, bool):
            self.std = _range("std", (float(std), float(std)), lo=0.0)
        else:
            self.std = _range("std", std, lo=0.0)
        self.p = _prob("p", p)

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> NoiseParams:
        u = keys.uniform(slot, 0, 2)
        std = torch.where(u[:, 1] < self.p, _lerp(u[:, 0], self.std), 0.0)
        return NoiseParams(std=std, seed=keys.seeds(slot, 1))

    def apply_(self, x: Tensor, params: TransformParams) -> Tensor:
        assert isinstance(params, NoiseParams)
        return add_noise_(x, params.seed, params.std)

    def clip_op(self, params: TransformParams) -> Callable[[Tensor, int], None]:
        assert isinstance(params, NoiseParams)
        seeds, stds = params.seed.tolist(), params.std.tolist()

        def op(clip: Tensor, b: int) -> None:
            if stds[b] == 0.0:
                return  # not applied: adding 0 * noise changes nothing
            clip.add_(clip_noise(seeds[b], clip), alpha=stds[b]).clamp_(0.0, 1.0)

        return op


class RandomErasing(PointwiseTransform):
    """Erase one random rectangle per clip, at the same place in every frame (torchvision's sampling).

    The box's area is a fraction ``scale`` of the frame and its aspect ratio (h / w) is log-uniform
    in ``ratio``; up to ``attempts`` candidate boxes are drawn and the first that fits is used (none
    fits: the clip is left alone, as in torchvision).

    Args:
        p: Probability that a clip is erased.
        scale: (low, high) fraction of the frame's area.
        ratio: (low, high) aspect ratio h / w.
        value: Fill value in [0, 1].
        attempts: Candidate boxes per clip.

    Example:
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
    ) -> None:
        self.p = _prob("p", p)
        self.scale = _range("scale", scale, lo=0.0, hi=1.0)
        self.ratio = _range("ratio", ratio, lo=1e-6)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise fail("value", value, "a fill value in [0, 1]")
        self.value = float(value)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise fail("attempts", attempts, "a positive int")
        self.attempts = attempts

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> EraseParams:
        H, W = shape.H, shape.W
        u = keys.uniform(slot, 0, 2 * self.attempts + 3).to(torch.float64)
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
        box = torch.where(on[:, None], box, torch.zeros_like(box))
        return EraseParams(box=box)

    def apply_(self, x: Tensor, params: TransformParams) -> Tensor:
        assert isinstance(params, EraseParams)
        return VF.erase_(x, params.box, self.value)

    def clip_op(self, params: TransformParams) -> Callable[[Tensor, int], None]:
        assert isinstance(params, EraseParams)
        boxes = params.box.tolist()

        def op(clip: Tensor, b: int) -> None:
            y0, x0, y1, x1 = boxes[b]
            if y1 > y0 and x1 > x0:
                clip[..., y0:y1, x0:x1] = self.value

        return op

    def apply(self, video: Tensor, params: TransformParams) -> Tensor:
        assert isinstance(params, EraseParams)
        return VF.erase(video, params.box, self.value)


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

    Example:
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
        self.max_frames = _max_frames("max_frames", max_frames)

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

    Example:
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

    Example:
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
