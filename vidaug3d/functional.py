"""Pure kernels: explicit per-clip parameters in, a new tensor out.

Every kernel here takes a video of shape ``(B, C, T, H, W)``, float in [0, 1] (float32, float16,
bfloat16 or float64) or uint8 in [0, 255], and per-clip parameters whose leading dimension is ``B``.
Kernels draw no random numbers, hold no state and never modify their input; they return a new tensor
with the input's dtype and device. Arithmetic runs in float32 (float64 for float64 input) and uint8
results are rounded to the nearest integer. A parameter of shape ``(B,)`` applies to every frame of
its clip; where a kernel accepts ``(B, T)``, the parameter varies per frame. An empty batch (B = 0)
gives an empty result.

Geometry uses *centred pixel coordinates*: ``x = col + 0.5 - W / 2``, ``y = row + 0.5 - H / 2`` for
the centre of pixel ``(row, col)``, with y pointing down. A geometric matrix is a ``(B, 3, 3)``
forward map from input to output coordinates; :func:`warp` resamples with its inverse.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._video import work_dtype
from .errors import fail

__all__ = [
    "add_noise",
    "adjust_brightness",
    "adjust_brightness_contrast",
    "adjust_contrast",
    "affine_matrix",
    "erase",
    "gather_frames",
    "hflip",
    "hflip_matrix",
    "invert_matrix",
    "warp",
]

_GRAY = (0.299, 0.587, 0.114)


# ----------------------------------------------------------------------------------------------- helpers
def _check_video(video: Tensor) -> None:
    if not isinstance(video, Tensor) or video.dim() != 5:
        shape = tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__
        raise fail("video", shape, "a tensor of shape (B, C, T, H, W)")


def _check_param(name: str, value: Tensor, video: Tensor, *, per_frame: bool = False) -> Tensor:
    B, T = video.shape[0], video.shape[2]
    value = torch.as_tensor(value)
    ok = value.dim() == 1 and value.shape[0] == B
    if per_frame:
        ok = ok or (value.dim() == 2 and tuple(value.shape) == (B, T))
    if not ok:
        want = f"({B},) or ({B}, {T})" if per_frame else f"({B},)"
        raise fail(
            name,
            tuple(value.shape),
            f"shape {want}, one value per clip{' or per frame' if per_frame else ''}",
        )
    return value


def to_device(t: Tensor, device: torch.device, dtype: torch.dtype | None = None) -> Tensor:
    """Move a small parameter tensor to the video's device without a host-device synchronisation."""
    return t.to(device=device, dtype=dtype, non_blocking=True)


def _per_clip(value: Tensor, x: Tensor) -> Tensor:
    """Broadcast a ``(B,)`` or ``(B, T)`` parameter against ``(B, C, T, H, W)``."""
    value = to_device(value, x.device, x.dtype)
    if value.dim() == 1:
        return value.view(-1, 1, 1, 1, 1)
    return value.view(value.shape[0], 1, value.shape[1], 1, 1)


def to_work(video: Tensor, *, copy: bool = True) -> Tensor:
    """A float working copy of ``video``: uint8 scaled to [0, 1], halves promoted to float32."""
    wd = work_dtype(video.dtype)
    if video.dtype == torch.uint8:
        return video.to(wd).mul_(1.0 / 255.0)  # two fast passes (a promoting multiply is 3x slower)
    if video.dtype == wd and not copy:
        return video
    return video.to(wd, copy=copy)


def from_work(x: Tensor, dtype: torch.dtype, out: Tensor | None = None) -> Tensor:
    """Back from the working dtype to ``dtype`` (uint8 rounded to nearest; ``x`` may be consumed).

    With ``out`` (of ``dtype`` and ``x``'s shape) the result is written there and ``out`` returned.
    """
    if dtype == torch.uint8:
        # x is in [0, 1] (every kernel keeps it there), so no clamp is needed before the cast
        # (float -> int16 -> uint8 is about 4x faster than the direct float -> uint8 cast on the CPU)
        x16 = x.mul_(255.0).round_().to(torch.int16)
        return x16.to(torch.uint8) if out is None else out.copy_(x16)
    return x.to(dtype) if out is None else out.copy_(x)


def gray_mean(x: Tensor, *, per_frame: bool) -> Tensor:
    """Mean luminance per clip ``(B,1,1,1,1)`` or per frame ``(B,1,T,1,1)`` (ITU-R 601 weights for C = 3)."""
    if x.shape[1] == 3:
        lum = _GRAY[0] * x[:, 0:1] + _GRAY[1] * x[:, 1:2] + _GRAY[2] * x[:, 2:3]
    elif x.shape[1] == 1:
        lum = x
    else:
        lum = x.mean(dim=1, keepdim=True)
    dims = (3, 4) if per_frame else (2, 3, 4)
    return lum.mean(dim=dims, keepdim=True)


# ----------------------------------------------------------------------------------------------- temporal
def gather_frames(video: Tensor, frame_map: Tensor) -> Tensor:
    """Reorder, repeat or drop frames: ``out[b, :, t] = video[b, :, frame_map[b, t]]``.

    Pure data movement, exact for every dtype.

    Args:
        video: ``(B, C, T, H, W)``.
        frame_map: ``(B, T_out)`` integer indices in ``[0, T)``.

    Returns:
        ``(B, C, T_out, H, W)``.

    Example:
        >>> v = torch.arange(4.0).view(1, 1, 4, 1, 1)
        >>> gather_frames(v, torch.tensor([[3, 2, 1, 0]])).flatten().tolist()
        [3.0, 2.0, 1.0, 0.0]
    """
    _check_video(video)
    B, C, T, H, W = video.shape
    if frame_map.dim() != 2 or frame_map.shape[0] != B or frame_map.is_floating_point():
        raise fail("frame_map", tuple(frame_map.shape), f"an integer tensor of shape ({B}, T_out)")
    fm = to_device(frame_map, video.device, torch.int64)
    To = fm.shape[1]
    base = (torch.arange(B, device=video.device) * (C * T)).view(B, 1, 1) + (
        torch.arange(C, device=video.device) * T
    ).view(1, C, 1)
    flat = (base + fm.view(B, 1, To)).reshape(-1)
    out = video.reshape(B * C * T, H, W).index_select(0, flat)
    return out.view(B, C, To, H, W)


# ----------------------------------------------------------------------------------------------- geometry
def affine_matrix(angle: Tensor, translate: Tensor, scale: Tensor) -> Tensor:
    """Forward affine matrices: scale, then rotate, about the centre, then translate.

    Args:
        angle: ``(B,)`` rotation in degrees, counter-clockwise as seen on screen.
        translate: ``(B, 2)`` shift ``(dx, dy)`` in pixels (x right, y down).
        scale: ``(B,)`` isotropic zoom factor (> 1 enlarges).

    Returns:
        ``(B, 3, 3)`` float64 matrices in centred pixel coordinates.

    Example:
        >>> m = affine_matrix(torch.tensor([90.0]), torch.tensor([[0.0, 0.0]]), torch.tensor([1.0]))
        >>> (m[0, :2, :2].round() + 0.0).tolist()  # x -> -y: right goes up
        [[0.0, 1.0], [-1.0, 0.0]]
    """
    a = torch.deg2rad(angle.to(torch.float64))
    s = scale.to(torch.float64)
    t = translate.to(torch.float64)
    cos, sin = torch.cos(a) * s, torch.sin(a) * s
    m = torch.zeros(angle.shape[0], 3, 3, dtype=torch.float64, device=angle.device)
    m[:, 0, 0] = cos
    m[:, 0, 1] = sin
    m[:, 1, 0] = -sin
    m[:, 1, 1] = cos
    m[:, 0, 2] = t[:, 0]
    m[:, 1, 2] = t[:, 1]
    m[:, 2, 2] = 1.0
    return m


def hflip_matrix(flip: Tensor) -> Tensor:
    """``(B, 3, 3)`` float64 matrices that mirror x where ``flip`` (``(B,)`` bool) is true."""
    m = torch.eye(3, dtype=torch.float64, device=flip.device).repeat(flip.shape[0], 1, 1)
    m[:, 0, 0] = torch.where(flip.to(torch.bool), -1.0, 1.0).to(torch.float64)
    return m


def invert_matrix(matrix: Tensor) -> Tensor:
    """Closed-form inverse of ``(B, 3, 3)`` affine matrices (last row ``0 0 1``); no host sync."""
    a, b, tx = matrix[:, 0, 0], matrix[:, 0, 1], matrix[:, 0, 2]
    c, d, ty = matrix[:, 1, 0], matrix[:, 1, 1], matrix[:, 1, 2]
    det = a * d - b * c
    inv = torch.zeros_like(matrix)
    inv[:, 0, 0] = d / det
    inv[:, 0, 1] = -b / det
    inv[:, 1, 0] = -c / det
    inv[:, 1, 1] = a / det
    inv[:, 0, 2] = -(inv[:, 0, 0] * tx + inv[:, 0, 1] * ty)
    inv[:, 1, 2] = -(inv[:, 1, 0] * tx + inv[:, 1, 1] * ty)
    inv[:, 2, 2] = 1.0
    return inv


def _theta(matrix: Tensor, H: int, W: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``affine_grid`` thetas (output normalised -> input normalised) from forward pixel matrices."""
    inv = invert_matrix(matrix.to(torch.float64))
    sx, sy = 2.0 / W, 2.0 / H
    theta = torch.empty(matrix.shape[0], 2, 3, dtype=torch.float64, device=inv.device)
    theta[:, 0, 0] = inv[:, 0, 0]
    theta[:, 0, 1] = inv[:, 0, 1] * sx / sy
    theta[:, 0, 2] = inv[:, 0, 2] * sx
    theta[:, 1, 0] = inv[:, 1, 0] * sy / sx
    theta[:, 1, 1] = inv[:, 1, 1]
    theta[:, 1, 2] = inv[:, 1, 2] * sy
    return to_device(theta, device, dtype)


def _pixel_centres(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Normalised pixel-centre coordinates ``(2 i + 1) / n - 1`` (``align_corners=False``)."""
    return (torch.arange(n, device=device, dtype=dtype) * 2 + 1) / n - 1


@functools.lru_cache(maxsize=64)
def _cached_pixel_centres(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    with torch.inference_mode(False), torch.no_grad():  # a plain tensor, whatever mode the first call ran in
        return _pixel_centres(n, dtype, device)


def _affine_grid(theta: Tensor, H: int, W: int) -> Tensor:
    """``F.affine_grid(theta, ..., align_corners=False)`` as two broadcast multiply-adds (no bmm).

    Eager calls reuse cached coordinate vectors (the CPU executor builds one grid per clip, where
    rebuilding them was most of the cost); compiled code computes them in the graph.
    """
    centres = _pixel_centres if torch.compiler.is_compiling() else _cached_pixel_centres
    xs = centres(W, theta.dtype, theta.device).view(1, 1, W)
    ys = centres(H, theta.dtype, theta.device).view(1, H, 1)
    t = theta.view(-1, 6, 1, 1)
    gx = t[:, 0] * xs + (t[:, 1] * ys + t[:, 2])
    gy = t[:, 3] * xs + (t[:, 4] * ys + t[:, 5])
    return torch.stack([gx, gy], dim=-1)


def warp_work(x: Tensor, matrix: Tensor, mode: str = "bilinear", padding_mode: str = "zeros") -> Tensor:
    """:func:`warp` on a float working tensor: one sampling grid per clip, shared by all its frames."""
    B, C, T, H, W = x.shape
    if B == 0:
        return x.clone()
    grid = _affine_grid(_theta(matrix, H, W, x.dtype, x.device), H, W)
    out = F.grid_sample(
        x.reshape(B, C * T, H, W), grid, mode=mode, padding_mode=padding_mode, align_corners=False
    )
    return out.view(B, C, T, H, W)


def warp(video: Tensor, matrix: Tensor, *, mode: str = "bilinear", padding_mode: str = "zeros") -> Tensor:
    """Resample every frame of each clip with that clip's forward affine matrix.

    All ``C * T`` planes of a clip share one sampling grid, so the clip moves rigidly and a static
    clip stays static. Pixels that map from outside the frame get ``padding_mode``'s value.

    Args:
        video: ``(B, C, T, H, W)``.
        matrix: ``(B, 3, 3)`` (or ``(B, 2, 3)``) forward maps in centred pixel coordinates.
        mode: ``"bilinear"`` or ``"nearest"``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.

    Returns:
        The warped video.

    Example:
        >>> v = torch.rand(2, 1, 3, 8, 8)
        >>> eye = torch.eye(3).repeat(2, 1, 1)
        >>> torch.allclose(warp(v, eye), v, atol=1e-6)
        True
    """
    _check_video(video)
    B = video.shape[0]
    if matrix.dim() != 3 or matrix.shape[0] != B or tuple(matrix.shape[1:]) not in ((3, 3), (2, 3)):
        raise fail("matrix", tuple(matrix.shape), f"shape ({B}, 3, 3) or ({B}, 2, 3)")
    if mode not in ("bilinear", "nearest"):
        raise fail("mode", mode, '"bilinear" or "nearest"')
    if padding_mode not in ("zeros", "border", "reflection"):
        raise fail("padding_mode", padding_mode, '"zeros", "border" or "reflection"')
    if matrix.shape[1] == 2:
        last = torch.tensor([0.0, 0.0, 1.0], dtype=matrix.dtype, device=matrix.device).expand(B, 1, 3)
        matrix = torch.cat([matrix, last], dim=1)
    out = warp_work(to_work(video, copy=False), matrix, mode, padding_mode)
    return from_work(out, video.dtype)


def hflip(video: Tensor, flip: Tensor | None = None) -> Tensor:
    """Mirror clips left-right: all clips, or those where ``flip`` (``(B,)`` bool) is true. Exact.

    Example:
        >>> v = torch.arange(3.0).view(1, 1, 1, 1, 3)
        >>> hflip(v).flatten().tolist()
        [2.0, 1.0, 0.0]
    """
    _check_video(video)
    if flip is None:
        return video.flip(-1)
    flip = _check_param("flip", flip, video)
    return torch.where(to_device(flip, video.device, torch.bool).view(-1, 1, 1, 1, 1), video.flip(-1), video)


# ----------------------------------------------------------------------------------------------- photometric
def brightness_contrast_(x: Tensor, brightness: Tensor, contrast: Tensor, per_frame: bool) -> Tensor:
    """In place on a working tensor: ``clamp(c * (b * x - m) + m, 0, 1)`` with ``m = b * mean_gray(x)``."""
    b = _per_clip(brightness, x)
    c = _per_clip(contrast, x)
    m0 = gray_mean(x, per_frame=per_frame)
    offset = b * m0 * (1.0 - c)
    return x.mul_(b * c).add_(offset).clamp_(0.0, 1.0)


def adjust_brightness_contrast(video: Tensor, brightness: Tensor, contrast: Tensor) -> Tensor:
    """Brightness then contrast, as one affine intensity map per clip (or frame), clamped once.

    ``out = clamp(c * (b * x - m) + m, 0, 1)`` where ``m`` is the mean luminance of ``b * x`` over the
    clip (``(B,)`` factors) or over each frame (``(B, T)`` factors). Unlike torchvision, there is no
    clamp between the two steps; that is what lets the pipeline fuse them.

    Args:
        video: ``(B, C, T, H, W)``.
        brightness: ``(B,)`` or ``(B, T)`` factors >= 0 (1 = unchanged).
        contrast: same shape as ``brightness``, factors >= 0 (1 = unchanged, 0 = flat mean grey).

    Example:
        >>> v = torch.full((1, 1, 2, 2, 2), 0.5)
        >>> adjust_brightness_contrast(v, torch.tensor([1.2]), torch.tensor([0.5])).flatten()[0].item()
        0.6000000238418579
    """
    _check_video(video)
    brightness = _check_param("brightness", brightness, video, per_frame=True)
    contrast = _check_param("contrast", contrast, video, per_frame=True)
    if brightness.shape != contrast.shape:
        raise fail("contrast", tuple(contrast.shape), f"the shape of brightness {tuple(brightness.shape)}")
    x = to_work(video)
    brightness_contrast_(x, brightness, contrast, per_frame=brightness.dim() == 2)
    return from_work(x, video.dtype)


def adjust_brightness(video: Tensor, factor: Tensor) -> Tensor:
    """Multiply intensities by ``factor`` (``(B,)`` or ``(B, T)``) and clamp to [0, 1]."""
    return adjust_brightness_contrast(video, factor, torch.ones_like(torch.as_tensor(factor)))


def adjust_contrast(video: Tensor, factor: Tensor) -> Tensor:
    """Blend with the mean luminance: ``clamp(f * (x - m) + m, 0, 1)``, ``factor`` ``(B,)`` or ``(B, T)``."""
    return adjust_brightness_contrast(video, torch.ones_like(torch.as_tensor(factor)), factor)


def add_noise_(x: Tensor, noise: Tensor, std: Tensor) -> Tensor:
    """In place on a working tensor: ``clamp(x + std * noise, 0, 1)``."""
    return x.addcmul_(noise, _per_clip(std, x)).clamp_(0.0, 1.0)


def add_noise(video: Tensor, noise: Tensor, std: Tensor) -> Tensor:
    """Add a given noise field scaled per clip: ``clamp(x + std[b] * noise, 0, 1)``.

    The kernel draws nothing: the caller supplies ``noise`` (standard normal, the video's shape),
    e.g. from :class:`vidaug3d.GaussianNoise`, which draws one field per clip from its seed.

    Args:
        video: ``(B, C, T, H, W)``.
        noise: A float tensor of the video's shape.
        std: ``(B,)`` standard deviations >= 0, in units of the [0, 1] intensity range.
    """
    _check_video(video)
    std = _check_param("std", std, video)
    if tuple(noise.shape) != tuple(video.shape):
        raise fail("noise", tuple(noise.shape), f"the video's shape {tuple(video.shape)}")
    x = to_work(video)
    add_noise_(x, to_device(noise, x.device, x.dtype), std)
    return from_work(x, video.dtype)


def box_mask(boxes: Tensor, H: int, W: int, device: torch.device) -> Tensor:
    """``(B, 1, 1, H, W)`` bool mask of half-open pixel boxes ``(y0, x0, y1, x1)``."""
    boxes = to_device(boxes, device, torch.int64)
    rows = torch.arange(H, device=device)
    cols = torch.arange(W, device=device)
    rm = (rows >= boxes[:, 0:1]) & (rows < boxes[:, 2:3])
    cm = (cols >= boxes[:, 1:2]) & (cols < boxes[:, 3:4])
    return (rm[:, :, None] & cm[:, None, :]).view(-1, 1, 1, H, W)


def erase_(x: Tensor, boxes: Tensor, value: float) -> Tensor:
    """In place: set the pixels inside each clip's box to ``value`` in every frame and channel.

    Done as a broadcast multiply by the box's complement (a masked fill with a mask broadcast over
    ``C * T`` planes is several times slower); the input is finite, so ``0 * x`` is 0.
    """
    H, W = x.shape[3], x.shape[4]
    inside = box_mask(boxes, H, W, x.device).to(x.dtype)
    x.mul_(1.0 - inside)
    return x.add_(inside, alpha=value) if value != 0.0 else x


def erase(video: Tensor, boxes: Tensor, value: float = 0.0) -> Tensor:
    """Fill one rectangle per clip, the same in every frame and channel.

    Args:
        video: ``(B, C, T, H, W)``.
        boxes: ``(B, 4)`` integer half-open pixel boxes ``(y0, x0, y1, x1)``; an empty box
            (``y0 == y1``) leaves its clip unchanged.
        value: The fill value, in [0, 1] (scaled to 255 for uint8).

    Example:
        >>> v = torch.ones(1, 1, 1, 3, 3)
        >>> erase(v, torch.tensor([[0, 0, 2, 1]]))[0, 0, 0].tolist()
        [[0.0, 1.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    _check_video(video)
    B = video.shape[0]
    if boxes.dim() != 2 or tuple(boxes.shape) != (B, 4):
        raise fail("boxes", tuple(boxes.shape), f"shape ({B}, 4) of (y0, x0, y1, x1)")
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise fail("value", value, "a fill value in [0, 1]")
    mask = box_mask(boxes, video.shape[3], video.shape[4], video.device)
    fill = round(value * 255.0) if video.dtype == torch.uint8 else value
    return video.masked_fill(mask, fill)
