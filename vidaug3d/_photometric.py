"""Photometric kernels: saturation, hue, grayscale, gamma, solarize, autocontrast, equalize, sharpness.

Each operation comes twice:

- ``name_(x, ..., value_range=(0, 1))`` works in place on a float working tensor ``x`` of shape
  ``(n, C, T, H, W)`` (float32, or float64), as the engine's value stage holds it, and returns ``x``;
- ``name(video, ...)`` is the public, non-in-place kernel: uint8 or float video in, a new tensor of the
  same dtype and device out (via ``vidaug3d.functional.to_work`` / ``from_work``).

Parameters are tensors with leading dimension ``n`` (any device; CPU is expected): ``(n,)`` gives one
value per clip, ``(n, T)`` one per frame where the docstring says so. They are moved to the video's
device without a host synchronisation.

``value_range`` is the ``(lo, hi)`` range of the working values: results are clamped to it, and
thresholds and the histogram are in its units. ``None`` means unbounded: nothing is clamped, and the
operations that need a bound (hue, gamma, solarize, autocontrast, equalize) raise. A uint8 video is
worked on as ``x / 255`` in [0, 1], so the public kernels take uint8 with ``value_range=(0, 1)`` only and
its thresholds in [0, 1] units, as everywhere in ``vidaug3d.functional`` (torchvision takes 0-255
thresholds for uint8 images).

Batch independence: every result element depends only on its own clip (elementwise arithmetic, or
reductions over one clip's own elements such as a histogram), and no operation whose rounding depends on
the batch (convolutions, matmuls, fused multiply-adds) is used, so ``k(x)[b]`` equals
``k(x[b:b+1])[0]`` bit for bit at a fixed thread count.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .errors import fail
from .functional import _GRAY, ValueRange, check_value_range, clamp_, from_work, to_device, to_work

__all__ = [
    "ValueRange",
    "adjust_gamma",
    "adjust_gamma_",
    "adjust_hue",
    "adjust_hue_",
    "adjust_saturation",
    "adjust_saturation_",
    "adjust_sharpness",
    "adjust_sharpness_",
    "autocontrast",
    "autocontrast_",
    "equalize",
    "equalize_",
    "grayscale",
    "grayscale_",
    "solarize",
    "solarize_",
]

_UNIT: tuple[float, float] = (0.0, 1.0)


# ----------------------------------------------------------------------------------------------- checks
def _check_work(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor) or x.dim() != 5 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise fail(name, shape, "a float tensor of shape (n, C, T, H, W)")


def check_range(value_range: ValueRange, *, needed_by: str | None = None) -> tuple[float, float] | None:
    """Validate ``value_range`` (``vidaug3d.functional.check_value_range``); with ``needed_by`` (an
    operation's name) None is refused: that operation needs a bound."""
    if value_range is None and needed_by is not None:
        raise fail("value_range", None, f"a bounded (lo, hi) range: {needed_by} needs one")
    return check_value_range("value_range", value_range)


def check_param(
    name: str,
    value: Tensor | float,
    n: int,
    T: int,
    *,
    per_frame: bool = True,
    above: float | None = None,
    at_least: float | None = None,
) -> Tensor:
    """Check that a parameter is ``(n,)`` (or ``(n, T)``) and real; return it as a tensor.

    The values are checked (finite, ``> above``, ``>= at_least``) only when they are on the CPU, where
    that costs no device sync.
    """
    value = torch.as_tensor(value)
    ok = value.dim() == 1 and value.shape[0] == n
    if per_frame:
        ok = ok or (value.dim() == 2 and tuple(value.shape) == (n, T))
    if not ok or value.dtype == torch.bool or value.is_complex():
        want = f"({n},) or ({n}, {T})" if per_frame else f"({n},)"
        what = "one value per clip" + (" or per frame" if per_frame else "")
        raise fail(name, tuple(value.shape), f"a real tensor of shape {want}, {what}")
    if value.device.type == "cpu" and value.numel():
        v = value.double()
        if not bool(torch.isfinite(v).all()):
            raise fail(name, value.tolist(), "finite values")
        if above is not None and not bool((v > above).all()):
            raise fail(name, value.tolist(), f"values > {above}")
        if at_least is not None and not bool((v >= at_least).all()):
            raise fail(name, value.tolist(), f"values >= {at_least}")
    return value


def param(
    name: str,
    value: Tensor | float,
    x: Tensor,
    *,
    per_frame: bool = True,
    above: float | None = None,
    at_least: float | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """``check_param``, viewed as ``(n, 1, 1|T, 1, 1)`` on ``x``'s device.

    The view has ``x``'s dtype (or ``dtype``), so arithmetic with it rounds as ``x``'s own does.
    """
    n, T = x.shape[0], x.shape[2]
    value = check_param(name, value, n, T, per_frame=per_frame, above=above, at_least=at_least)
    value = to_device(value, x.device, dtype or x.dtype)
    if value.dim() == 1:
        return value.view(n, 1, 1, 1, 1)
    return value.view(n, 1, T, 1, 1)


def enabled_mask(enabled: Tensor | None, x: Tensor) -> Tensor | None:
    """Check an optional ``(n,)`` bool gate and view it as ``(n, 1, 1, 1, 1)`` on ``x``'s device."""
    if enabled is None:
        return None
    enabled = torch.as_tensor(enabled)
    if enabled.dim() != 1 or enabled.shape[0] != x.shape[0] or enabled.dtype != torch.bool:
        raise fail("enabled", tuple(enabled.shape), f"a bool tensor of shape ({x.shape[0]},), or None")
    return to_device(enabled, x.device).view(-1, 1, 1, 1, 1)


def _rgb(x: Tensor, what: str) -> None:
    if x.shape[1] != 3:
        raise fail("video", tuple(x.shape), f"3 (RGB) channels in dim 1: {what} is defined for colour only")


def _luma(x: Tensor) -> Tensor:
    """``(n, 1, T, H, W)`` ITU-R 601 luma of RGB, summed left to right (elementwise, batch-independent)."""
    return _GRAY[0] * x[:, 0:1] + _GRAY[1] * x[:, 1:2] + _GRAY[2] * x[:, 2:3]


def _public(
    video: Tensor,
    value_range: ValueRange,
    op: Callable[[Tensor], Tensor],
) -> Tensor:
    """Run an in-place kernel on a working copy of ``video`` and convert back to its dtype."""
    if not isinstance(video, Tensor) or video.dim() != 5:
        shape = tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__
        raise fail("video", shape, "a tensor of shape (B, C, T, H, W)")
    if not (video.dtype == torch.uint8 or video.is_floating_point()):
        raise fail("video", video.dtype, "a uint8 or floating-point tensor")
    if video.dtype == torch.uint8 and check_range(value_range) != _UNIT:
        raise fail("value_range", value_range, "(0, 1) for a uint8 video (worked on as x / 255)")
    x = op(to_work(video))
    return from_work(x, video.dtype)


# ----------------------------------------------------------------------------------------------- saturation
def adjust_saturation_(x: Tensor, factor: Tensor, *, value_range: ValueRange = _UNIT) -> Tensor:
    """In place: blend RGB with its luma, ``f * x + (1 - f) * gray``, clamped to the range.

    See ``adjust_saturation``.
    """
    _check_work(x)
    rng = check_range(value_range)
    f = param("factor", factor, x, at_least=0.0)
    _rgb(x, "saturation")
    gray = _luma(x).mul_(1.0 - f)
    return clamp_(x.mul_(f).add_(gray), rng)


def adjust_saturation(video: Tensor, factor: Tensor, *, value_range: ValueRange = _UNIT) -> Tensor:
    """Change colour saturation: ``clamp(f * x + (1 - f) * gray(x))`` per clip or per frame.

    torchvision's definition (a blend with the grayscale image; 0 gives gray, 1 the input, 2 doubles
    the colour), with ITU-R 601 weights ``(0.299, 0.587, 0.114)`` where torchvision uses 0.2989 for red.
    kornia's ``adjust_saturation`` differs: it scales the S channel of HSV and clips S to [0, 1].
    Linear, so it also works unbounded (``value_range=None``: no clamp).

    Args:
        video: ``(B, 3, T, H, W)`` RGB, uint8 or float. One channel raises: saturation is undefined.
        factor: ``(B,)`` or ``(B, T)`` factors >= 0 (1 = unchanged).
        value_range: ``(lo, hi)`` to clamp to, or None.

    Returns:
        The adjusted video, same dtype and device.

    Examples:
        >>> v = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1, 1)
        >>> adjust_saturation(v, torch.tensor([0.0])).flatten().tolist()  # all channels = luma of red
        [0.29899999499320984, 0.29899999499320984, 0.29899999499320984]
    """
    return _public(video, value_range, lambda x: adjust_saturation_(x, factor, value_range=value_range))


# ----------------------------------------------------------------------------------------------- hue
HUE_BLOCK = 1 << 15  # elements per channel in one chunk of frames: the dozen temporaries then stay in L2


def adjust_hue_(x: Tensor, factor: Tensor, *, value_range: ValueRange = _UNIT) -> Tensor:
    """In place: rotate the HSV hue by ``factor`` turns. See ``adjust_hue``.

    Elementwise, a few frames at a time (so its temporaries stay in the core's cache; the chunking
    changes no value).
    """
    _check_work(x)
    rng = check_range(value_range, needed_by="hue")
    assert rng is not None
    f = param("factor", factor, x)
    _rgb(x, "hue")
    n, _, T, H, W = x.shape
    step = T if x.requires_grad else max(1, HUE_BLOCK // max(1, n * H * W))
    for t0 in range(0, T, step):
        _hue_chunk(x[:, :, t0 : t0 + step], f if f.shape[2] == 1 else f[:, :, t0 : t0 + step], rng)
    return clamp_(x, rng)


def _hue_chunk(x: Tensor, f: Tensor, rng: tuple[float, float]) -> None:
    lo, hi = rng
    unit = rng == _UNIT
    grad = x.requires_grad  # autograd: read a copy and write once at the end (saved inputs must survive)
    u = (x.clone() if grad else x) if unit else (x - lo) / (hi - lo)
    r, g, b = u[:, 0:1], u[:, 1:2], u[:, 2:3]
    v = torch.maximum(torch.maximum(r, g), b)
    chroma = v - torch.minimum(torch.minimum(r, g), b)
    # hue in sixths of a turn, as torchvision's _rgb2hsv (red sector first, then green, then blue)
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    rc, gc, bc = (v - r) / safe, (v - g) / safe, (v - b) / safe
    h6 = torch.where(v == r, bc - gc, torch.where(v == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = h6 / 6.0 + f
    h = h - torch.floor(h)  # in [0, 1) up to rounding; the channel formula is periodic anyway
    h6 = h * 6.0
    outs = []
    for c, k0 in enumerate((5.0, 3.0, 1.0)):  # R, G, B of the standard closed form of HSV -> RGB
        k = torch.remainder(h6 + k0, 6.0)
        w = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
        if grad:
            outs.append(v - chroma * w)
        else:  # r, g and b are not read again: each channel is written in place
            torch.sub(v, chroma * w, out=x[:, c : c + 1])
    if grad:
        x.copy_(torch.cat(outs, dim=1))
    if not unit:
        x.mul_(hi - lo).add_(lo)


def adjust_hue(video: Tensor, factor: Tensor, *, value_range: ValueRange = _UNIT) -> Tensor:
    """Rotate the hue of RGB clips by ``factor`` turns of the HSV colour wheel.

    torchvision's ``adjust_hue`` semantics: ``factor`` in [-0.5, 0.5] is a fraction of a full turn
    (kornia's ``adjust_hue`` takes radians in [-pi, pi]: ``kornia = 2 * pi * factor``). Saturation and
    value are kept; gray pixels stay as they are. The HSV -> RGB step uses the closed form
    ``v - c * clamp(min(k, 4 - k), 0, 1)``, ``k = (n + 6 h) mod 6``, elementwise (torchvision uses an
    einsum over a one-hot sector mask); results agree to float rounding. Needs a bounded range (the
    colour wheel is defined on [lo, hi]); ``value_range=None`` raises.

    Args:
        video: ``(B, 3, T, H, W)`` RGB, uint8 or float; one channel raises (hue is undefined).
        factor: ``(B,)`` or ``(B, T)`` hue shifts in turns (0 = unchanged; any real value, mod 1).
        value_range: ``(lo, hi)`` of the values.

    Returns:
        The adjusted video, same dtype and device.

    Examples:
        >>> red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1, 1)
        >>> adjust_hue(red, torch.tensor([1 / 3])).flatten().tolist()  # a third of a turn: green
        [0.0, 1.0, 0.0]
    """
    return _public(video, value_range, lambda x: adjust_hue_(x, factor, value_range=value_range))


# ----------------------------------------------------------------------------------------------- grayscale
def grayscale_(x: Tensor, *, enabled: Tensor | None = None, value_range: ValueRange = _UNIT) -> Tensor:
    """In place: replace the 3 channels by their luma (1 channel: unchanged). See ``grayscale``."""
    _check_work(x)
    check_range(value_range)
    gate = enabled_mask(enabled, x)
    C = x.shape[1]
    if C == 1:
        return x
    _rgb(x, "grayscale (to C channels)")
    gray = _luma(x).expand_as(x)
    if gate is None:
        return x.copy_(gray)
    return x.copy_(torch.where(gate, gray, x))


def grayscale(video: Tensor, *, enabled: Tensor | None = None, value_range: ValueRange = _UNIT) -> Tensor:
    """Luma ``0.299 R + 0.587 G + 0.114 B`` (ITU-R 601) copied into all three channels.

    The channel count is kept (torchvision's ``num_output_channels=3``), so a grayscale clip can sit in
    an RGB batch. One-channel clips are returned unchanged; other channel counts raise. The result is a
    convex combination, so it stays in any range and ``value_range`` is only validated.

    Args:
        video: ``(B, 3, T, H, W)`` or ``(B, 1, T, H, W)``, uint8 or float.
        enabled: Optional ``(B,)`` bool: only those clips are converted (a branchless gate).
        value_range: Accepted for a uniform signature; unused.

    Returns:
        The converted video, same dtype, device and shape.

    Examples:
        >>> v = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1, 1)
        >>> [round(c, 3) for c in grayscale(v).flatten().tolist()]
        [0.299, 0.299, 0.299]
    """
    return _public(video, value_range, lambda x: grayscale_(x, enabled=enabled, value_range=value_range))


# ----------------------------------------------------------------------------------------------- gamma
def adjust_gamma_(
    x: Tensor, gamma: Tensor, gain: Tensor | None = None, *, value_range: ValueRange = _UNIT
) -> Tensor:
    """In place: ``lo + (hi - lo) * clamp(gain * u ** gamma, 0, 1)``, ``u = (x - lo) / (hi - lo)``.

    See ``adjust_gamma``.
    """
    _check_work(x)
    rng = check_range(value_range, needed_by="gamma")
    assert rng is not None
    g = param("gamma", gamma, x, above=0.0)
    k = None if gain is None else param("gain", gain, x, at_least=0.0)
    lo, hi = rng
    unit = rng == _UNIT
    if not unit:
        x.sub_(lo).div_(hi - lo)
    x.clamp_(min=0.0).pow_(g)  # a value below the range would give NaN for fractional gamma
    if k is not None:
        x.mul_(k)
    x.clamp_(0.0, 1.0)
    if not unit:
        x.mul_(hi - lo).add_(lo)
    return x


def adjust_gamma(
    video: Tensor, gamma: Tensor, gain: Tensor | None = None, *, value_range: ValueRange = _UNIT
) -> Tensor:
    """Gamma correction ``gain * x ** gamma`` on the range mapped to [0, 1], clamped.

    Same as torchvision's and kornia's ``adjust_gamma`` for [0, 1] (they also clamp to [0, 1]); for
    another range the values are first mapped to [0, 1] and back, so ``lo`` stays ``lo`` and ``hi``
    stays ``hi`` (for ``gain = 1``). Values below ``lo`` are treated as ``lo``. Needs a bounded range.

    Args:
        video: ``(B, C, T, H, W)``, uint8 or float.
        gamma: ``(B,)`` or ``(B, T)`` exponents > 0 (< 1 brightens, > 1 darkens).
        gain: Optional ``(B,)`` or ``(B, T)`` multipliers (default 1).
        value_range: ``(lo, hi)`` of the values.

    Returns:
        The adjusted video, same dtype and device.

    Examples:
        >>> v = torch.full((1, 1, 1, 1, 1), 0.25)
        >>> adjust_gamma(v, torch.tensor([0.5])).item()
        0.5
    """
    return _public(video, value_range, lambda x: adjust_gamma_(x, gamma, gain, value_range=value_range))


# ----------------------------------------------------------------------------------------------- solarize
def solarize_(x: Tensor, threshold: Tensor, *, value_range: ValueRange = _UNIT) -> Tensor:
    """In place: ``x >= threshold`` becomes ``lo + hi - x``. See ``solarize``."""
    _check_work(x)
    rng = check_range(value_range, needed_by="solarize")
    assert rng is not None
    t = param("threshold", threshold, x)
    lo, hi = rng
    inverted = torch.sub(lo + hi, x) if lo != 0.0 else torch.sub(hi, x)
    return x.copy_(torch.where(x >= t, inverted, x))


def solarize(video: Tensor, threshold: Tensor, *, value_range: ValueRange = _UNIT) -> Tensor:
    """Invert the values at or above ``threshold``: ``x >= t`` becomes ``lo + hi - x``.

    torchvision's and kornia's rule (``x >= t`` inverted; kornia keeps ``x < t``) on the range
    ``(lo, hi)`` instead of [0, 1]. ``threshold`` is in range units; for uint8 video in [0, 1] units
    (``128 / 255`` for torchvision's 128). A threshold above ``hi`` leaves the clip unchanged. Needs a
    bounded range.

    Args:
        video: ``(B, C, T, H, W)``, uint8 or float.
        threshold: ``(B,)`` or ``(B, T)`` thresholds.
        value_range: ``(lo, hi)`` of the values.

    Returns:
        The solarized video, same dtype and device.

    Examples:
        >>> v = torch.tensor([0.2, 0.6, 0.9]).view(1, 1, 1, 1, 3)
        >>> [round(a, 3) for a in solarize(v, torch.tensor([0.5])).flatten().tolist()]
        [0.2, 0.4, 0.1]
    """
    return _public(video, value_range, lambda x: solarize_(x, threshold, value_range=value_range))


# ----------------------------------------------------------------------------------------------- autocontrast
def autocontrast_(x: Tensor, *, enabled: Tensor | None = None, value_range: ValueRange = _UNIT) -> Tensor:
    """In place: stretch each clip's channels to the full range. See ``autocontrast``."""
    _check_work(x)
    rng = check_range(value_range, needed_by="autocontrast")
    assert rng is not None
    gate = enabled_mask(enabled, x)
    if x.numel() == 0:
        return x
    lo, hi = rng
    # min and max are exact, so a clip's reduction gives the same bits in any batch
    mn = x.amin(dim=(2, 3, 4), keepdim=True)
    mx = x.amax(dim=(2, 3, 4), keepdim=True)
    flat = mx <= mn
    if gate is not None:
        flat = flat | ~gate  # a scale of 1 and offset 0: the clip passes unchanged
    # dividing by the spread (not multiplying by its inverse, as torchvision does) maps max to hi exactly
    spread = torch.where(flat, torch.ones_like(mx), mx - mn)
    shift = torch.where(flat, torch.zeros_like(mn), mn)
    x.sub_(shift).div_(spread)
    if hi - lo != 1.0:
        x.mul_(torch.where(flat, torch.ones_like(mx), torch.full_like(mx, hi - lo)))
    if lo != 0.0:
        x.add_(torch.where(flat, torch.zeros_like(mn), torch.full_like(mn, lo)))
    return x.clamp_(lo, hi) if gate is None else x.copy_(torch.where(gate, x.clamp(lo, hi), x))


def autocontrast(video: Tensor, *, enabled: Tensor | None = None, value_range: ValueRange = _UNIT) -> Tensor:
    """Stretch each channel of each clip linearly so that its minimum is ``lo`` and its maximum ``hi``.

    torchvision's ``autocontrast`` per image and channel (``(x - min) / (max - min)``, a division where
    torchvision multiplies by the reciprocal, so the maximum lands on ``hi`` exactly), here per clip and channel: the minimum and
    maximum are taken over all ``T * H * W`` pixels of the clip, so every frame gets the same map and a
    clip's frames keep their relative brightness. A constant channel is left unchanged. Needs a bounded
    range. (kornia has no autocontrast; its ``normalize_min_max`` is the per-image analogue.)

    Args:
        video: ``(B, C, T, H, W)``, uint8 or float.
        enabled: Optional ``(B,)`` bool: only those clips are stretched.
        value_range: ``(lo, hi)`` of the values.

    Returns:
        The stretched video, same dtype and device.

    Examples:
        >>> v = torch.tensor([0.25, 0.5, 0.75]).view(1, 1, 1, 1, 3)
        >>> autocontrast(v).flatten().tolist()
        [0.0, 0.5, 1.0]
    """
    return _public(video, value_range, lambda x: autocontrast_(x, enabled=enabled, value_range=value_range))


# ----------------------------------------------------------------------------------------------- equalize
def equalize_(x: Tensor, *, enabled: Tensor | None = None, value_range: ValueRange = _UNIT) -> Tensor:
    """In place: per-clip, per-channel histogram equalisation on 256 levels. See ``equalize``."""
    _check_work(x)
    rng = check_range(value_range, needed_by="equalize")
    assert rng is not None
    gate = enabled_mask(enabled, x)
    n, C, T, H, W = x.shape
    if x.numel() == 0:
        return x
    lo, hi = rng
    unit = rng == _UNIT
    u = x if unit else (x - lo) / (hi - lo)
    q = u.mul(255.0).round_().clamp_(0.0, 255.0).to(torch.int64).view(n * C, T * H * W)
    # integer counts: exact, and each row is one clip's channel
    hist = torch.zeros(n * C, 256, dtype=torch.int64, device=x.device)
    hist.scatter_add_(1, q, torch.ones_like(q))
    cum = hist.cumsum(dim=1)
    # PIL's step: the pixels not in the last non-empty bin, over 255 (torchvision's equalize_image)
    last = cum.argmax(dim=1, keepdim=True)  # first bin where the cumulative count reaches its total
    step = torch.div(T * H * W - hist.gather(1, last), 255, rounding_mode="floor")
    valid = step > 0
    step = step.clamp_(min=1)
    lut = torch.div(cum[:, :-1] + torch.div(step, 2, rounding_mode="floor"), step, rounding_mode="floor")
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut.clamp_(0, 255)], dim=1)
    lut = torch.where(valid, lut, torch.arange(256, device=x.device).view(1, 256))
    levels = lut.gather(1, q).view(n, C, T, H, W).to(x.dtype)
    out = levels.div_(255.0)
    if not unit:
        out = out.mul_(hi - lo).add_(lo)
    keep = ~valid.view(n, C, 1, 1, 1)  # a channel with step 0 (nearly constant) is returned as it was
    if gate is not None:
        keep = keep | ~gate
    return x.copy_(torch.where(keep, x, out))


def equalize(video: Tensor, *, enabled: Tensor | None = None, value_range: ValueRange = _UNIT) -> Tensor:
    """Histogram equalisation per clip and channel, PIL's and torchvision's algorithm on 256 levels.

    The values are quantised to 256 levels of the range (``round(255 * (x - lo) / (hi - lo))``; exact
    for uint8), one 256-bin histogram is counted over all ``T * H * W`` pixels of a clip's channel
    (torchvision counts per image: here every frame of a clip gets the same map, so the clip does not
    flicker), and PIL's lookup table ``(cum[k-1] + step // 2) // step`` with
    ``step = (N - count of the last non-empty bin) // 255`` maps each level. For uint8 video the result
    equals torchvision's ``equalize`` applied to the clip's frames tiled into one image. A channel with
    ``step == 0`` is returned unchanged, as in PIL. Float input comes back quantised to 256 levels
    (torchvision converts floats by ``floor(x * 255.999)``, not by rounding). kornia's ``equalize``
    implements a different lookup (not PIL's) and is not matched. Needs a bounded range.

    Args:
        video: ``(B, C, T, H, W)``, uint8 or float.
        enabled: Optional ``(B,)`` bool: only those clips are equalised.
        value_range: ``(lo, hi)`` of the values.

    Returns:
        The equalised video, same dtype and device.

    Examples:
        >>> v = (torch.arange(4, dtype=torch.uint8) * 10).repeat_interleave(300).view(1, 1, 3, 20, 20)
        >>> equalize(v).unique().tolist()  # 300 pixels on each of 4 levels: spread over the range
        [0, 100, 200, 255]
    """
    return _public(video, value_range, lambda x: equalize_(x, enabled=enabled, value_range=value_range))


# ----------------------------------------------------------------------------------------------- sharpness
def adjust_sharpness_(x: Tensor, factor: Tensor, *, value_range: ValueRange = _UNIT) -> Tensor:
    """In place: blend the interior with its 3x3 smoothing, borders kept. See ``adjust_sharpness``."""
    _check_work(x)
    rng = check_range(value_range)
    f = param("factor", factor, x, at_least=0.0)
    H, W = x.shape[3], x.shape[4]
    if x.numel() == 0 or H <= 2 or W <= 2:
        return x  # torchvision: no interior, nothing to do
    centre = x[..., 1:-1, 1:-1]
    # the 8 neighbours summed in a fixed order from shifted views: elementwise, no batch-dependent conv
    acc = x[..., 0 : H - 2, 0 : W - 2].clone()
    for dy, dx in ((0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)):
        acc.add_(x[..., dy : H - 2 + dy, dx : W - 2 + dx])
    blurred = acc.add_(centre * 5.0).div_(13.0)
    centre.add_(blurred.sub_(centre).mul_(1.0 - f))
    return clamp_(x, rng)


def adjust_sharpness(video: Tensor, factor: Tensor, *, value_range: ValueRange = _UNIT) -> Tensor:
    """Sharpen or soften: blend each frame with its 3x3 smoothing ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13``.

    torchvision's (and PIL's) definition: ``out = x + (1 - f) * (blur(x) - x)`` inside the frame, the
    one-pixel border kept as it is, clamped to the range (0 = smoothed, 1 = unchanged, 2 = sharpened).
    Frames of 2 pixels or fewer in height or width are returned unchanged. For uint8 torchvision rounds
    the smoothed image to integers before blending; here it stays float (at most one level apart).
    kornia's ``sharpness`` uses the same kernel and factor. Linear, so it works unbounded too.

    Args:
        video: ``(B, C, T, H, W)``, uint8 or float.
        factor: ``(B,)`` or ``(B, T)`` sharpness factors >= 0.
        value_range: ``(lo, hi)`` to clamp to, or None.

    Returns:
        The adjusted video, same dtype and device.

    Examples:
        >>> v = torch.zeros(1, 1, 1, 3, 3)
        >>> v[..., 1, 1] = 13.0
        >>> adjust_sharpness(v, torch.tensor([0.0]), value_range=None)[0, 0, 0].tolist()
        [[0.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]
    """
    return _public(video, value_range, lambda x: adjust_sharpness_(x, factor, value_range=value_range))
