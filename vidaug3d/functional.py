"""Pure kernels: explicit per-clip parameters in, a new tensor out.

Every kernel here takes a video of shape ``(B, C, T, H, W)``, float (float32, float16, bfloat16 or
float64, any finite values) or uint8 in [0, 255], and per-clip parameters whose leading dimension is
``B``. Kernels that clamp take a ``value_range`` (``"auto"``: ``(0, 1)`` for floats, ``(0, 255)`` for
uint8; a ``(low, high)`` pair; or None for no clamp).
Kernels draw no random numbers, hold no state and never modify their input; they return a new tensor
with the input's dtype and device. Arithmetic runs in float32 (float64 for float64 input) and uint8
results are rounded to the nearest integer. A parameter of shape ``(B,)`` applies to every frame of
its clip; where a kernel accepts ``(B, T)``, the parameter varies per frame. An empty batch (B = 0)
gives an empty result.

Geometry uses *centred pixel coordinates*: ``x = col + 0.5 - W / 2``, ``y = row + 0.5 - H / 2`` for
the centre of pixel ``(row, col)``, with y pointing down. A geometric matrix is a ``(B, 3, 3)``
forward map from input to output coordinates (each in its own frame's centred coordinates, so a
crop or resize is a matrix too); ``warp`` resamples with its inverse.

Kernels whose name ends in ``_`` work in place on a float *working tensor* (uint8 scaled to [0, 1],
see ``to_work``); they are what the pipelines' executors call.
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
    "crop_matrix",
    "erase",
    "flip_matrix",
    "gather_frames",
    "hflip",
    "hflip_matrix",
    "invert_matrix",
    "resize",
    "resized_crop",
    "vflip_matrix",
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
    dims = (3, 4) if per_frame else (2, 3, 4)
    # a sum's rounding follows the memory layout: one layout (the executors hand a clip over as a
    # view or as its own copy) keeps their means equal
    x = x.contiguous()
    if x.shape[1] == 3:
        # the mean is linear: the channels' means, weighted (one read of the clip; a luma image
        # first took five passes)
        m = x.mean(dim=dims, keepdim=True)
        return _GRAY[0] * m[:, 0:1] + _GRAY[1] * m[:, 1:2] + _GRAY[2] * m[:, 2:3]
    return x.mean(dim=dims if x.shape[1] == 1 else (1, *dims), keepdim=True)


# ----------------------------------------------------------------------------------------------- temporal
def gather_frames(video: Tensor, frame_map: Tensor) -> Tensor:
    """Reorder, repeat or drop frames: ``out[b, :, t] = video[b, :, frame_map[b, t]]``.

    Pure data movement, exact for every dtype.

    Args:
        video: ``(B, C, T, H, W)``.
        frame_map: ``(B, T_out)`` integer indices in ``[0, T)``.

    Returns:
        ``(B, C, T_out, H, W)``.

    Examples:
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
        angle: ``(B,)`` rotation in degrees, counter-clockwise as seen on screen (or ``(B, T)``:
            one per frame; any batch shape ``S`` works, ``translate`` then ``(*S, 2)``).
        translate: ``(B, 2)`` shift ``(dx, dy)`` in pixels (x right, y down).
        scale: ``(B,)`` isotropic zoom factor (> 1 enlarges).

    Returns:
        ``(B, 3, 3)`` (``(*S, 3, 3)``) float64 matrices in centred pixel coordinates.

    Examples:
        >>> m = affine_matrix(torch.tensor([90.0]), torch.tensor([[0.0, 0.0]]), torch.tensor([1.0]))
        >>> (m[0, :2, :2].round() + 0.0).tolist()  # x -> -y: right goes up
        [[0.0, 1.0], [-1.0, 0.0]]
    """
    a = torch.deg2rad(angle.to(torch.float64))
    s = scale.to(torch.float64)
    t = translate.to(torch.float64)
    cos, sin = torch.cos(a) * s, torch.sin(a) * s
    zero, one = torch.zeros_like(cos), torch.ones_like(cos)
    # built with one stack: indexed writes into a small tensor cost more than the arithmetic
    m = torch.stack([cos, sin, t[..., 0], -sin, cos, t[..., 1], zero, zero, one], dim=-1)
    return m.view(*cos.shape, 3, 3)


def flip_matrix(flip: Tensor, axis: int) -> Tensor:
    """``(B, 3, 3)`` float64 matrices that mirror x (``axis=0``) or y (``axis=1``) where ``flip`` is true."""
    m = torch.eye(3, dtype=torch.float64, device=flip.device).repeat(flip.shape[0], 1, 1)
    m[:, axis, axis] = torch.where(flip.to(torch.bool), -1.0, 1.0).to(torch.float64)
    return m


def hflip_matrix(flip: Tensor) -> Tensor:
    """``(B, 3, 3)`` float64 matrices that mirror x where ``flip`` (``(B,)`` bool) is true."""
    return flip_matrix(flip, 0)


def invert_matrix(matrix: Tensor) -> Tensor:
    """Closed-form inverse of ``(..., 3, 3)`` affine matrices (last row ``0 0 1``); no host sync."""
    m = matrix.reshape(-1, 9)
    a, b, tx, c, d, ty = m[:, 0], m[:, 1], m[:, 2], m[:, 3], m[:, 4], m[:, 5]
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    rows = [ia, ib, -(ia * tx + ib * ty), ic, id_, -(ic * tx + id_ * ty), zero, zero, one]
    return torch.stack(rows, dim=1).view(matrix.shape)


def _theta(
    matrix: Tensor,
    size_in: tuple[int, int],
    size_out: tuple[int, int],
    dtype: torch.dtype,
    device: torch.device,
    inverse: Tensor | None = None,
) -> Tensor:
    """``affine_grid`` thetas (output normalised -> input normalised) from forward pixel matrices.

    ``matrix`` maps centred input pixel coordinates of a ``size_in = (H, W)`` frame to centred output
    coordinates of a ``size_out`` frame; ``inverse`` is its inverse if already at hand.
    """
    inv = invert_matrix(matrix.to(torch.float64)) if inverse is None else inverse
    (hi, wi), (ho, wo) = size_in, size_out
    # input normalised = diag(2 / W_in, 2 / H_in) @ inv @ diag(W_out / 2, H_out / 2) @ output normalised
    scale = torch.tensor([[wo / wi, ho / wi, 2.0 / wi], [wo / hi, ho / hi, 2.0 / hi]], dtype=torch.float64)
    return to_device(inv[..., :2, :] * scale.to(inv.device), device, dtype)


def _pixel_centres(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Normalised pixel-centre coordinates ``(2 i + 1) / n - 1`` (``align_corners=False``)."""
    return (torch.arange(n, device=device, dtype=dtype) * 2 + 1) / n - 1


@functools.lru_cache(maxsize=64)
def _cached_pixel_centres(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    with torch.inference_mode(False), torch.no_grad():  # a plain tensor, whatever mode the first call ran in
        return _pixel_centres(n, dtype, device)


def _affine_grid(theta: Tensor, H: int, W: int) -> Tensor:
    """``F.affine_grid(theta, (., ., H, W), align_corners=False)`` as two broadcast multiply-adds.

    Eager calls reuse cached coordinate vectors (the CPU executor builds one grid per clip, where
    rebuilding them was most of the cost); compiled code computes them in the graph.
    """
    centres = _pixel_centres if torch.compiler.is_compiling() else _cached_pixel_centres
    xs = centres(W, theta.dtype, theta.device).view(1, 1, W)
    ys = centres(H, theta.dtype, theta.device).view(1, H, 1)
    t = theta.view(-1, 6, 1, 1)
    if torch.compiler.is_compiling() or theta.requires_grad:
        gx = t[:, 0] * xs + (t[:, 1] * ys + t[:, 2])
        gy = t[:, 3] * xs + (t[:, 4] * ys + t[:, 5])
        return torch.stack([gx, gy], dim=-1)
    # the same sums, each written straight into its channel of the grid: no stacking pass over it
    grid = torch.empty((t.shape[0], H, W, 2), dtype=theta.dtype, device=theta.device)
    torch.add(t[:, 0] * xs, t[:, 1] * ys + t[:, 2], out=grid[..., 0])
    torch.add(t[:, 3] * xs, t[:, 4] * ys + t[:, 5], out=grid[..., 1])
    return grid


# Downscaling by up to this factor (input pixels per output pixel) resamples without a prefilter:
# bilinear interpolation's own footprint suffices there, and the paper's zoom range (scale >= 0.8)
# stays below it, so its pipeline is unchanged by the prefilter.
ANTIALIAS_FROM = 1.25


def downscale_factors(matrix: Tensor, inverse: Tensor | None = None) -> Tensor:
    """``(B, 2)`` (``(..., 2)``) float64: input pixels per output pixel along the input's y and x axes.

    The footprint of one output pixel in the input: the lengths of the rows of the inverse map's
    linear part (1 for a pure shift or rotation, ``1 / scale`` for a zoom).
    """
    inv = invert_matrix(matrix.to(torch.float64)) if inverse is None else inverse
    return inv[..., :2, :2].square().sum(dim=-1).sqrt().flip(-1)


def antialias_sigma(matrix: Tensor, inverse: Tensor | None = None) -> Tensor:
    """``(B, 2)`` float64 Gaussian prefilter sigmas ``(sy, sx)`` in input pixels for a resampling.

    Bilinear interpolation is a triangle filter of half-width one input pixel (variance 1/6); an
    antialiased downscale by ``s`` wants a triangle of half-width ``s`` (variance ``s**2 / 6``, as
    torch's and PIL's antialiased bilinear resize). The Gaussian supplies the difference above
    ``ANTIALIAS_FROM``: ``sigma**2 = (s**2 - ANTIALIAS_FROM**2) / 6``, 0 below it.
    """
    s = downscale_factors(matrix, inverse)
    sigma = torch.sqrt((s * s - ANTIALIAS_FROM**2).clamp(min=0.0) / 6.0)
    # at the threshold itself (a zoom of exactly 0.8, give or take float rounding) no filter runs
    return torch.where(s > ANTIALIAS_FROM * (1.0 + 1e-9), sigma, 0.0)


BLUR_BLOCK = 1 << 17  # elements per chunk of planes in blur_planes: its three buffers then fit a 2 MB L2


def gaussian_weights(sigma: Tensor, radius: int, *, truncate: bool = False) -> Tensor:
    """``(n, 2 * radius + 1)`` float64 normalised Gaussian taps for ``(n,)`` sigmas (0: a unit impulse).

    With ``truncate`` each clip's taps stop at ``ceil(3 sigma)`` (zeros beyond), so a clip's weights
    do not depend on the largest sigma of its batch.
    """
    i = torch.arange(-radius, radius + 1, dtype=torch.float64)
    s = sigma.to(torch.float64).reshape(-1, 1)
    w = torch.exp(-0.5 * (i / s.clamp(min=1e-12)) ** 2)
    if truncate:
        w = torch.where(i.abs() <= torch.ceil(3.0 * s), w, 0.0)
    w = torch.where(s > 0, w, (i == 0).to(torch.float64))
    return w / w.sum(dim=1, keepdim=True)


def _blur_axis(x: Tensor, w: Tensor, dim: int, padding: str, out: Tensor | None = None) -> Tensor:
    """Convolve the planes of ``x`` (``(n, P, H, W)``) along ``dim`` (2 or 3) with per-clip taps ``w`` (n, k).

    A sum of shifted slices times per-clip weights: elementwise, so a clip's result does not depend
    on the batch it is in (a grouped convolution picks its algorithm by shape). Each tap is one
    in-place ``addcmul_`` (a fused multiply-add in torch's CPU kernel, vector and scalar paths alike),
    which reads and writes less than a product and a sum: 2.3x faster on 11 taps.
    """
    n, k = w.shape
    r = k // 2
    if r == 0:
        return x if out is None else out.copy_(x)
    pads = (0, 0, r, r) if dim == 2 else (r, r, 0, 0)
    size = x.shape[dim]
    xp = F.pad(x, pads, mode=padding)
    wt = to_device(w, x.device, x.dtype).view(n, 1, 1, 1, k)
    out = torch.mul(xp.narrow(dim, 0, size), wt[..., 0], out=out)
    for i in range(1, k):
        out.addcmul_(xp.narrow(dim, i, size), wt[..., i])
    return out


def blur_planes(
    x: Tensor, sigma: Tensor, padding: str = "reflect", radius: int | tuple[int, int] | None = None
) -> Tensor:
    """Separable Gaussian blur of ``(n, P, H, W)`` planes, sigmas ``(n, 2)`` = ``(sy, sx)`` per clip.

    ``radius`` (per axis) fixes the taps for every clip (a kernel size); None truncates each clip's
    taps at ``ceil(3 sigma)`` (the antialiasing prefilter). ``padding`` is ``"reflect"`` or
    ``"replicate"``; reflection uses at most ``size - 1`` taps each side. A clip whose sigma is 0
    comes back exactly as it was (its taps are a unit impulse).
    """
    sig = sigma.to(torch.float64).reshape(-1, 2)
    if radius is None:
        r = math.ceil(3.0 * float(sig.max())) if sig.numel() else 0
        radii, truncate = (r, r), True
    else:
        radii, truncate = (radius, radius) if isinstance(radius, int) else radius, False
    if x.numel() == 0 or max(radii) == 0:
        return x.clone()
    passes = []
    for axis, dim in ((0, 2), (1, 3)):
        r = min(radii[axis], x.shape[dim] - 1) if padding == "reflect" else radii[axis]
        if r > 0:
            passes.append((gaussian_weights(sig[:, axis], r, truncate=truncate), dim))
    if not passes:
        return x.clone()
    # a few planes at a time, so that both passes and their taps run on data in the core's cache
    # (elementwise work: the chunking changes no value)
    if x.requires_grad:  # autograd: whole tensors, no out= (which autograd does not support)
        out = x
        for w, dim in passes:
            out = _blur_axis(out, w, dim, padding)
        return out
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    step = max(1, BLUR_BLOCK // max(1, x.shape[0] * x.shape[2] * x.shape[3]))
    for p0 in range(0, x.shape[1], step):
        y = x[:, p0 : p0 + step]
        for j, (w, dim) in enumerate(passes):
            y = _blur_axis(y, w, dim, padding, out=out[:, p0 : p0 + step] if j == len(passes) - 1 else None)
    return out


def resample_planes(
    planes: Tensor,
    theta: Tensor,
    size: tuple[int, int],
    sigma: Tensor | None = None,
    *,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
) -> Tensor:
    """Resample ``(n, P, H, W)`` planes with one ``affine_grid`` theta per clip to ``size``.

    ``sigma`` (``(n, 2)``, from ``antialias_sigma``) prefilters the clips that need it first; a clip
    whose sigma is 0 is sampled as it is. ``resample_video`` arranges a video's planes for it.
    """
    if sigma is not None and bool((sigma > 0).any()):
        planes = blur_planes(planes, sigma, padding="replicate")
    grid = _affine_grid(to_device(theta, planes.device, planes.dtype), *size)
    return F.grid_sample(planes, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


def resample_video(
    x: Tensor,
    theta: Tensor,
    size: tuple[int, int],
    sigma: Tensor | None = None,
    *,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
) -> Tensor:
    """Resample a ``(n, C, T, H, W)`` float video to ``size`` with cooked thetas and prefilter sigmas.

    ``theta`` is ``(n, 2, 3)``: one grid per clip, shared by its ``C * T`` planes (one
    ``grid_sample`` over ``(n, C*T, H, W)``); or ``(n, T, 2, 3)``: one grid per frame (a drifting
    geometry; one ``grid_sample`` over ``(n*T, C, H, W)``). ``sigma`` is ``(n, 2)`` or ``(n, T, 2)``
    to match, or None. Both executors resample through here, the batched one with the whole batch,
    the CPU one with one clip.
    """
    n, C, T, H, W = x.shape
    Ho, Wo = size
    if n == 0:
        return x.new_empty((0, C, T, Ho, Wo))
    if theta.dim() == 3:
        merge_ct = x.stride(1) == T * x.stride(2)
        if C > 1 and sigma is None and not merge_ct and (n == 1 or x.stride(0) == C * x.stride(1)):
            # a window of frames viewed in a longer clip (a temporal crop): the channels cannot merge with
            # the frames without a copy, so sample (n*C, T) planes, each clip's grid repeated per channel
            # (the same grid, so the same values as the merged planes)
            out = resample_planes(
                x.reshape(n * C, T, H, W),
                theta.repeat_interleave(C, dim=0),
                size,
                None,
                mode=mode,
                padding_mode=padding_mode,
            )
            return out.view(n, C, T, Ho, Wo)
        out = resample_planes(
            x.reshape(n, C * T, H, W), theta, size, sigma, mode=mode, padding_mode=padding_mode
        )
        return out.view(n, C, T, Ho, Wo)
    planes = x.transpose(1, 2).reshape(n * T, C, H, W)
    out = resample_planes(
        planes,
        theta.reshape(n * T, 2, 3),
        size,
        None if sigma is None else sigma.reshape(n * T, 2),
        mode=mode,
        padding_mode=padding_mode,
    )
    return out.view(n, T, C, Ho, Wo).transpose(1, 2).contiguous()


def resample_work(
    x: Tensor,
    matrix: Tensor,
    size: tuple[int, int] | None = None,
    *,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    antialias: bool = True,
) -> Tensor:
    """``warp`` on a float working tensor: one sampling grid per clip (``(B, 3, 3)`` matrices),
    shared by all its frames, or one per frame (``(B, T, 3, 3)``).

    With ``antialias``, clips downscaled by more than ``ANTIALIAS_FROM`` are prefiltered (see
    ``antialias_sigma``) so that fine detail does not alias.
    """
    H, W = x.shape[3], x.shape[4]
    Ho, Wo = (H, W) if size is None else size
    m = matrix.to(torch.float64)
    inv = invert_matrix(m)
    sigma = antialias_sigma(m, inv) if antialias and mode == "bilinear" else None
    theta = _theta(m, (H, W), (Ho, Wo), x.dtype, x.device, inverse=inv)
    return resample_video(x, theta, (Ho, Wo), sigma, mode=mode, padding_mode=padding_mode)


def warp(
    video: Tensor,
    matrix: Tensor,
    *,
    size: tuple[int, int] | None = None,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    antialias: bool = True,
) -> Tensor:
    """Resample every frame of each clip with that clip's forward affine matrix.

    All ``C * T`` planes of a clip share one sampling grid, so the clip moves rigidly and a static
    clip stays static; with ``(B, T, 3, 3)`` matrices each frame has its own. Pixels that map from outside the frame get ``padding_mode``'s value. Any
    finite float values work (no range is assumed).

    Args:
        video: ``(B, C, T, H, W)``.
        matrix: ``(B, 3, 3)`` (or ``(B, 2, 3)``) forward maps from centred input pixel coordinates
            to centred output pixel coordinates, or ``(B, T, 3, 3)``: one per frame.
        size: Output ``(H_out, W_out)``; default the input's.
        mode: ``"bilinear"`` or ``"nearest"``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.
        antialias: Prefilter clips downscaled by more than ``ANTIALIAS_FROM`` (bilinear only).

    Returns:
        ``(B, C, T, H_out, W_out)``.

    Examples:
        >>> v = torch.rand(2, 1, 3, 8, 8)
        >>> eye = torch.eye(3).repeat(2, 1, 1)
        >>> torch.allclose(warp(v, eye), v, atol=1e-6)
        True
    """
    _check_video(video)
    B, T = video.shape[0], video.shape[2]
    lead = tuple(matrix.shape[:-2])
    if lead not in ((B,), (B, T)) or tuple(matrix.shape[-2:]) not in ((3, 3), (2, 3)):
        raise fail(
            "matrix", tuple(matrix.shape), f"shape ({B}, 3, 3), ({B}, 2, 3), or ({B}, {T}, 3, 3) per frame"
        )
    if mode not in ("bilinear", "nearest"):
        raise fail("mode", mode, '"bilinear" or "nearest"')
    if padding_mode not in ("zeros", "border", "reflection"):
        raise fail("padding_mode", padding_mode, '"zeros", "border" or "reflection"')
    if size is not None:
        size = check_size("size", size)
    if matrix.shape[-2] == 2:
        last = torch.tensor([0.0, 0.0, 1.0], dtype=matrix.dtype, device=matrix.device).expand(*lead, 1, 3)
        matrix = torch.cat([matrix, last], dim=-2)
    out = resample_work(
        to_work(video, copy=False), matrix, size, mode=mode, padding_mode=padding_mode, antialias=antialias
    )
    return from_work(out, video.dtype)


def check_size(name: str, size: object) -> tuple[int, int]:
    """``(h, w)`` from an int or a pair of positive ints; the package error otherwise."""
    pair = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in pair)
        or min(pair) < 1
    ):
        raise fail(name, size, "a positive int or a (height, width) pair of positive ints")
    return (int(pair[0]), int(pair[1]))


def crop_matrix(boxes: Tensor, size: tuple[int, int], frame: tuple[int, int]) -> Tensor:
    """``(B, 3, 3)`` float64 forward maps that send pixel boxes of a ``frame = (H, W)`` onto ``size``.

    Args:
        boxes: ``(B, 4)`` ``(x0, y0, x1, y1)`` in pixels of the input frame (float or int), or
            ``(B, T, 4)`` for one box per frame (then ``(B, T, 3, 3)`` matrices).
        size: ``(H_out, W_out)``.
        frame: ``(H_in, W_in)``.
    """
    b = boxes.to(torch.float64)
    (ho, wo), (hi, wi) = size, frame
    bw, bh = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    sx, sy = wo / bw, ho / bh
    m = torch.zeros(*b.shape[:-1], 3, 3, dtype=torch.float64)
    m[..., 0, 0] = sx
    m[..., 1, 1] = sy
    # X_out = (X_in - x0) * sx in absolute pixels; centred: x = X - W / 2 on each side
    m[..., 0, 2] = sx * (wi / 2.0 - b[..., 0]) - wo / 2.0
    m[..., 1, 2] = sy * (hi / 2.0 - b[..., 1]) - ho / 2.0
    m[..., 2, 2] = 1.0
    return m


def resized_crop(
    video: Tensor, boxes: Tensor, size: int | tuple[int, int], *, antialias: bool = True
) -> Tensor:
    """Crop one box per clip (the same in all its frames) and resize it to ``size``, bilinearly.

    Args:
        video: ``(B, C, T, H, W)``.
        boxes: ``(B, 4)`` ``(x0, y0, x1, y1)`` pixel boxes of positive size.
        size: ``(H_out, W_out)`` or one int for a square.
        antialias: Prefilter boxes shrunk by more than ``ANTIALIAS_FROM``.

    Examples:
        >>> v = torch.arange(16.0).view(1, 1, 1, 4, 4) / 16
        >>> out = resized_crop(v, torch.tensor([[1, 1, 3, 3]]), 2)
        >>> (out * 16).round().flatten().tolist()
        [5.0, 6.0, 9.0, 10.0]
    """
    _check_video(video)
    size = check_size("size", size)
    B, _, _, H, W = video.shape
    if boxes.dim() != 2 or tuple(boxes.shape) != (B, 4):
        raise fail("boxes", tuple(boxes.shape), f"shape ({B}, 4) of (x0, y0, x1, y1)")
    b = boxes.to(torch.float64)
    if bool(((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])).any()):
        raise fail("boxes", boxes.tolist(), "boxes with x1 > x0 and y1 > y0")
    return warp(video, crop_matrix(b, size, (H, W)), size=size, antialias=antialias)


def resize(video: Tensor, size: int | tuple[int, int], *, antialias: bool = True) -> Tensor:
    """Resize every frame to ``size = (H_out, W_out)`` (bilinear, prefiltered when shrinking).

    Examples:
        >>> resize(torch.rand(2, 1, 3, 8, 8), (4, 6)).shape
        torch.Size([2, 1, 3, 4, 6])
    """
    _check_video(video)
    B, _, _, H, W = video.shape
    box = torch.tensor([[0.0, 0.0, float(W), float(H)]]).expand(B, 4)
    return resized_crop(video, box, size, antialias=antialias)


def vflip_matrix(flip: Tensor) -> Tensor:
    """``(B, 3, 3)`` float64 matrices that mirror y where ``flip`` (``(B,)`` bool) is true."""
    return flip_matrix(flip, 1)


def hflip(video: Tensor, flip: Tensor | None = None) -> Tensor:
    """Mirror clips left-right: all clips, or those where ``flip`` (``(B,)`` bool) is true. Exact.

    Examples:
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
ValueRange = tuple[float, float] | None  # (low, high) of the values a kernel clamps to; None: unbounded


def check_value_range(name: str, value_range: object) -> ValueRange:
    """A finite ``(low, high)`` pair with ``low < high``, or None; the package error otherwise."""
    if value_range is None:
        return None
    if (
        not isinstance(value_range, (tuple, list))
        or len(value_range) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value_range)
        or not all(math.isfinite(v) for v in value_range)
        or not value_range[0] < value_range[1]
    ):
        raise fail(name, value_range, "None (unbounded) or a finite (low, high) pair with low < high")
    return (float(value_range[0]), float(value_range[1]))


def clamp_(x: Tensor, value_range: ValueRange, active: Tensor | None = None) -> Tensor:
    """In place: clamp to ``value_range`` (nothing for None), only where ``active`` (``(n,)`` or ``(n, T)``).

    A clip (or frame) that a transform leaves alone keeps its values exactly, in range or not.
    """
    if value_range is None:
        return x
    lo, hi = value_range
    if active is None or bool(active.all()):
        return x.clamp_(lo, hi)
    if not bool(active.any()):
        return x
    inf = torch.tensor(math.inf, dtype=torch.float64)
    lo_t = _per_clip(torch.where(active, lo, -inf), x)
    hi_t = _per_clip(torch.where(active, hi, inf), x)
    return x.clamp_(min=lo_t, max=hi_t)


def brightness_contrast_(
    x: Tensor, brightness: Tensor, contrast: Tensor, value_range: ValueRange = (0.0, 1.0)
) -> Tensor:
    """In place on a working tensor: ``clamp(c * (b * x - m) + m)`` with ``m = b * mean_gray(x)``.

    ``(n,)`` factors use the clip's mean luminance, ``(n, T)`` factors each frame's. Clips (frames)
    whose factors are both 1 are left exactly as they are.
    """
    return intensity_map_(x, *intensity_factors(brightness, contrast), value_range)


def intensity_factors(brightness: Tensor, contrast: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(scale, shift, active)`` of ``intensity_map_`` for brightness then contrast."""
    # in float64: the product is then rounded once, to the working dtype
    b, c = brightness.to(torch.float64), contrast.to(torch.float64)
    return b * c, b * (1.0 - c), (b != 1.0) | (c != 1.0)


def intensity_map_(
    x: Tensor,
    scale: Tensor | float,
    shift: Tensor | float,
    active: Tensor | bool,
    value_range: ValueRange = (0.0, 1.0),
) -> Tensor:
    """In place: ``clamp(scale * x + shift * mean_gray(x))`` where ``active``; other clips untouched.

    Tensors ``(n,)`` use each clip's mean luminance, ``(n, T)`` each frame's. For one clip the
    factors may be Python numbers (the CPU executor's per-clip path: fewer small tensor ops); they
    are then the tensors' values, and the arithmetic is the same operation for operation.
    """
    if not isinstance(scale, Tensor):
        if not active:
            return x
        m0 = gray_mean(x, per_frame=False)
        x.mul_(scale).add_(m0 * shift)
        return x if value_range is None else x.clamp_(*value_range)
    assert isinstance(shift, Tensor) and isinstance(active, Tensor)
    if not bool(active.any()):
        return x
    m0 = gray_mean(x, per_frame=scale.dim() == 2)
    x.mul_(_per_clip(scale, x)).add_(_per_clip(shift, x) * m0)
    return clamp_(x, value_range, active)


def adjust_brightness_contrast(
    video: Tensor, brightness: Tensor, contrast: Tensor, *, value_range: ValueRange | str = "auto"
) -> Tensor:
    """Brightness then contrast, as one affine intensity map per clip (or frame), clamped once.

    ``out = clamp(c * (b * x - m) + m)`` where ``m`` is the mean luminance of ``b * x`` over the
    clip (``(B,)`` factors) or over each frame (``(B, T)`` factors). Unlike torchvision, there is no
    clamp between the two steps; that is what lets the pipeline fuse them.

    Args:
        video: ``(B, C, T, H, W)``.
        brightness: ``(B,)`` or ``(B, T)`` factors >= 0 (1 = unchanged).
        contrast: same shape as ``brightness``, factors >= 0 (1 = unchanged, 0 = flat mean grey).
        value_range: What to clamp to: ``"auto"`` (``(0, 1)`` for floats, ``(0, 255)`` for uint8),
            a ``(low, high)`` pair, or None for no clamp.

    Examples:
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
    brightness_contrast_(x, brightness, contrast, work_range(video.dtype, value_range))
    return from_work(x, video.dtype)


def adjust_brightness(video: Tensor, factor: Tensor, *, value_range: ValueRange | str = "auto") -> Tensor:
    """Multiply intensities by ``factor`` (``(B,)`` or ``(B, T)``) and clamp."""
    f = torch.as_tensor(factor)
    return adjust_brightness_contrast(video, f, torch.ones_like(f), value_range=value_range)


def adjust_contrast(video: Tensor, factor: Tensor, *, value_range: ValueRange | str = "auto") -> Tensor:
    """Blend with the mean luminance: ``clamp(f * (x - m) + m)``, ``factor`` ``(B,)`` or ``(B, T)``."""
    f = torch.as_tensor(factor)
    return adjust_brightness_contrast(video, torch.ones_like(f), f, value_range=value_range)


def work_range(dtype: torch.dtype, value_range: ValueRange | str = "auto") -> ValueRange:
    """The value range in working units for a video of ``dtype``: uint8 works in [0, 1].

    ``"auto"`` is ``(0, 1)`` for floats and ``(0, 255)`` for uint8; a uint8 video accepts only
    ``"auto"`` or ``(0, 255)`` (its values cannot leave that range).
    """
    if isinstance(value_range, str):
        if value_range != "auto":
            raise fail("value_range", value_range, '"auto", None or a (low, high) pair')
        return (0.0, 1.0)
    vr = check_value_range("value_range", value_range)
    if dtype == torch.uint8:
        if vr != (0.0, 255.0):
            raise fail("value_range", value_range, '"auto" or (0, 255) for a uint8 video')
        return (0.0, 1.0)
    return vr


def add_noise_(
    x: Tensor,
    noise: Tensor,
    std: Tensor | float,
    value_range: ValueRange = (0.0, 1.0),
    *,
    scratch: bool = False,
) -> Tensor:
    """In place on a working tensor: ``clamp(x + std * noise)``; clips with ``std == 0`` are untouched.

    ``std`` is ``(n,)``, or a Python number for one clip (the CPU executor's per-clip path). With
    ``scratch`` the kernel may overwrite ``noise`` (one pass over the clip fewer).
    """
    # a multiply then an add (not addcmul): each rounds once, whatever the vector width
    if not isinstance(std, Tensor):
        if std == 0.0:
            return x
        x.add_(noise.mul_(std) if scratch else noise * std)
        return x if value_range is None else x.clamp_(*value_range)
    active = std != 0.0
    if not bool(active.any()):
        return x
    scaled = noise.mul_(_per_clip(std, x)) if scratch else noise * _per_clip(std, x)
    return clamp_(x.add_(scaled), value_range, active)


def add_noise(video: Tensor, noise: Tensor, std: Tensor, *, value_range: ValueRange | str = "auto") -> Tensor:
    """Add a given noise field scaled per clip: ``clamp(x + std[b] * noise)``.

    The kernel draws nothing: the caller supplies ``noise`` (standard normal, the video's shape),
    e.g. from ``vidaug3d.GaussianNoise``, which draws one field per clip from its seed.

    Args:
        video: ``(B, C, T, H, W)``.
        noise: A float tensor of the video's shape.
        std: ``(B,)`` standard deviations >= 0, in the units of the video's values (uint8: of [0, 1]).
        value_range: What to clamp to (see ``adjust_brightness_contrast``).
    """
    _check_video(video)
    std = _check_param("std", std, video)
    if tuple(noise.shape) != tuple(video.shape):
        raise fail("noise", tuple(noise.shape), f"the video's shape {tuple(video.shape)}")
    x = to_work(video)
    add_noise_(x, to_device(noise, x.device, x.dtype), std, work_range(video.dtype, value_range))
    return from_work(x, video.dtype)


def box_mask(boxes: Tensor, H: int, W: int, device: torch.device) -> Tensor:
    """``(B, 1, 1, H, W)`` bool mask of half-open pixel boxes ``(y0, x0, y1, x1)`` (``(B, 4)``), or
    ``(B, 1, T, H, W)`` for one box per frame (``(B, T, 4)``)."""
    boxes = to_device(boxes, device, torch.int64)
    T = boxes.shape[1] if boxes.dim() == 3 else 1
    boxes = boxes.reshape(-1, 4)
    rows = torch.arange(H, device=device)
    cols = torch.arange(W, device=device)
    rm = (rows >= boxes[:, 0:1]) & (rows < boxes[:, 2:3])
    cm = (cols >= boxes[:, 1:2]) & (cols < boxes[:, 3:4])
    return (rm[:, :, None] & cm[:, None, :]).view(-1, 1, T, H, W)


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
        value: The fill value in the video's units (for uint8: in [0, 1], scaled to 255).

    Examples:
        >>> v = torch.ones(1, 1, 1, 3, 3)
        >>> erase(v, torch.tensor([[0, 0, 2, 1]]))[0, 0, 0].tolist()
        [[0.0, 1.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    _check_video(video)
    B = video.shape[0]
    if boxes.dim() != 2 or tuple(boxes.shape) != (B, 4):
        raise fail("boxes", tuple(boxes.shape), f"shape ({B}, 4) of (y0, x0, y1, x1)")
    if not math.isfinite(value) or (video.dtype == torch.uint8 and not 0.0 <= value <= 1.0):
        raise fail("value", value, "a finite fill value (in [0, 1] for a uint8 video)")
    mask = box_mask(boxes, video.shape[3], video.shape[4], video.device)
    fill = round(value * 255.0) if video.dtype == torch.uint8 else value
    return video.masked_fill(mask, fill)
