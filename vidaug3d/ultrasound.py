"""Ultrasound kernels: probe geometry, field of view, depth attenuation, TGC, acoustic shadows, speckle.

Geometry is in *image pixel coordinates*: ``x = col + 0.5`` to the right and ``y = row + 0.5`` down for
the centre of pixel ``(row, col)``, the origin at the image's top-left corner (the apex of a convex
probe usually lies above the image, ``y < 0``).

A ``ProbeGeometry`` holds one probe per clip, sector (convex or phased array) or linear, as two
coordinates per pixel:

- *lateral* ``u``: sector: the beam angle ``atan2(x - apex_x, y - apex_y)`` in degrees (0 straight down,
  positive to the right); linear: ``x``. Normalised ``u = (lateral - start) / (end - start)``, 0 at the
  start (left) edge and 1 at the end (right) edge.
- *depth* ``d``: sector: the distance from the apex; linear: ``y``. Normalised
  ``d = (depth - near) / (far - near)``, 0 at the probe face and 1 at the deepest row imaged.

The field of view is ``0 <= u <= 1 and 0 <= d <= 1`` at pixel centres (``fov_mask``).

The value kernels (``depth_attenuation``, ``time_gain_compensation``, ``acoustic_shadow``, ``speckle``)
multiply each pixel by a gain about the range's low end: ``lo + (x - lo) * gain``, clamped to the range
(``value_range=None``: about 0, unclamped). With ``fov`` (an ``(n, 1, 1|T, H, W)`` bool mask, from
``fov_mask`` or ``estimate_fov``) the pixels outside it are returned exactly as they were;
without it the whole frame gets the gain, with ``d`` clamped to [0, 1] so that the gain outside the
geometry is the gain at its nearest depth. Each comes as an in-place ``name_(x, ...)`` on a float
working tensor (the engine's value stage) and a public ``name(video, ...)`` for uint8 or float video.
The gain maps are computed in float64 from the per-clip parameters (elementwise, on the video's device)
and cast to the working dtype, so a batch gives the bits of its clips one by one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from ._photometric import ValueRange, _check_work, _public, check_range, param
from .errors import fail
from .functional import to_device, to_work

__all__ = [
    "ProbeGeometry",
    "acoustic_shadow",
    "acoustic_shadow_",
    "beam_coordinates",
    "depth_attenuation",
    "depth_attenuation_",
    "estimate_fov",
    "fit_probe",
    "fov_mask",
    "gamma_field",
    "rayleigh_field",
    "speckle",
    "speckle_",
    "time_gain_compensation",
    "time_gain_compensation_",
]

_UNIT: tuple[float, float] = (0.0, 1.0)
Number = float | Tensor


# ----------------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class ProbeGeometry:
    """One probe geometry per clip: all fields are ``(n,)`` tensors (CPU, float64; ``sector`` bool).

    Attributes:
        sector: True for a sector (convex or phased array) probe, False for a linear one.
        apex_x: Sector apex x in pixels (ignored for linear).
        apex_y: Sector apex y in pixels, may be negative (above the image) (ignored for linear).
        start: Sector: left edge angle in degrees from straight down (negative = left); linear: left x.
        end: Sector: right edge angle (> start); linear: right x (> start).
        near: Sector: the probe face's distance from the apex (>= 0); linear: the top y.
        far: Sector: the deepest distance from the apex (> near); linear: the bottom y (> near).

    Build one with ``make_sector`` or ``make_linear``, join with ``cat``, pick clips by
    indexing (``geometry[1:3]``), serialise with ``to_dict`` / ``from_dict``.

    Examples:
        >>> g = ProbeGeometry.make_sector(apex=(32.0, -20.0), angles=(-35.0, 35.0), depths=(25.0, 80.0))
        >>> len(g), g.sector.tolist()
        (1, [True])
        >>> both = ProbeGeometry.cat([g, ProbeGeometry.make_linear(x=(8.0, 56.0), y=(0.0, 60.0))])
        >>> both.sector.tolist(), both[1:].start.tolist()
        ([True, False], [8.0])
    """

    sector: Tensor
    apex_x: Tensor
    apex_y: Tensor
    start: Tensor
    end: Tensor
    near: Tensor
    far: Tensor

    def __post_init__(self) -> None:
        n = None
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, Tensor) or v.dim() != 1 or (n is not None and v.shape[0] != n):
                got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
                raise fail(
                    f.name, got, f"a 1-d tensor with one value per clip ({n if n is not None else 'n'},)"
                )
            n = v.shape[0]
        if self.sector.dtype != torch.bool:
            raise fail("sector", self.sector.dtype, "a bool tensor")
        if self.start.device.type != "cpu" or not len(self):
            return  # values are checked where that costs no device sync
        for name in ("apex_x", "apex_y", "start", "end", "near", "far"):
            if not bool(torch.isfinite(getattr(self, name)).all()):
                raise fail(name, getattr(self, name).tolist(), "finite values")
        if not bool((self.end > self.start).all()):
            raise fail("end", self.end.tolist(), f"values > start {self.start.tolist()}")
        if not bool((self.far > self.near).all()):
            raise fail("far", self.far.tolist(), f"values > near {self.near.tolist()}")
        sec = self.sector
        if bool((sec & (self.near < 0)).any()):
            raise fail("near", self.near.tolist(), "distances >= 0 from the apex for sector probes")
        if bool((sec & ((self.start <= -90) | (self.end >= 90))).any()):
            raise fail(
                "angles", (self.start.tolist(), self.end.tolist()), "sector edges in (-90, 90) degrees"
            )

    def __len__(self) -> int:
        return int(self.sector.shape[0])

    def __getitem__(self, index: int | slice | Tensor) -> ProbeGeometry:
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return ProbeGeometry(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def _columns(*values: Number | Sequence[float]) -> list[Tensor]:
        ts = [torch.as_tensor(v, dtype=torch.float64).reshape(-1) for v in values]
        n = max(t.shape[0] for t in ts)
        if any(t.shape[0] not in (1, n) for t in ts):
            raise fail("geometry", [tuple(t.shape) for t in ts], "scalars or (n,) tensors of one length")
        return [t.expand(n).clone() for t in ts]

    @classmethod
    def make_sector(
        cls,
        apex: tuple[Number, Number],
        angles: tuple[Number, Number],
        depths: tuple[Number, Number],
    ) -> ProbeGeometry:
        """Sector probes: ``apex=(x, y)`` pixels, ``angles=(start, end)`` degrees, ``depths=(near, far)`` pixels.

        Each entry is a number or an ``(n,)`` tensor (broadcast together).
        """
        ax, ay, a0, a1, r0, r1 = cls._columns(*apex, *angles, *depths)
        return cls(torch.ones(ax.shape[0], dtype=torch.bool), ax, ay, a0, a1, r0, r1)

    @classmethod
    def make_linear(cls, x: tuple[Number, Number], y: tuple[Number, Number]) -> ProbeGeometry:
        """Linear probes imaging the rectangle ``x=(left, right)``, ``y=(top, bottom)`` in pixels."""
        x0, x1, y0, y1 = cls._columns(*x, *y)
        zero = torch.zeros_like(x0)  # no apex
        return cls(torch.zeros(x0.shape[0], dtype=torch.bool), zero, zero.clone(), x0, x1, y0, y1)

    def to_dict(self) -> dict[str, list[float] | list[bool]]:
        """Plain lists, for JSON records (float64 values round-trip exactly through ``json``)."""
        return {f.name: getattr(self, f.name).tolist() for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, list[float] | list[bool]]) -> ProbeGeometry:
        """The inverse of ``to_dict``."""
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise fail("data", sorted(data), f"the keys {[f.name for f in fields(cls)]}")
        return cls(
            **{
                f.name: torch.tensor(data[f.name], dtype=torch.bool if f.name == "sector" else torch.float64)
                for f in fields(cls)
            }
        )

    @classmethod
    def cat(cls, geometries: Sequence[ProbeGeometry]) -> ProbeGeometry:
        """Join the clips of several geometries, in order."""
        if not geometries:
            raise fail("geometries", [], "at least one ProbeGeometry")
        return cls(**{f.name: torch.cat([getattr(g, f.name) for g in geometries]) for f in fields(cls)})


def _check_geometry(geometry: ProbeGeometry, n: int) -> None:
    if not isinstance(geometry, ProbeGeometry) or len(geometry) != n:
        got = len(geometry) if isinstance(geometry, ProbeGeometry) else type(geometry).__name__
        raise fail("geometry", got, f"a ProbeGeometry with one probe per clip ({n})")


def beam_coordinates(
    geometry: ProbeGeometry, H: int, W: int, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """Normalised lateral and depth coordinates ``(u, d)`` of every pixel centre, each ``(n, 1, 1, H, W)``.

    float64, on ``device``; see the module docstring for the definitions.

    Examples:
        >>> g = ProbeGeometry.make_linear(x=(0.0, 4.0), y=(0.0, 2.0))
        >>> u, d = beam_coordinates(g, 2, 4)
        >>> u[0, 0, 0, 0].tolist(), d[0, 0, 0, :, 0].tolist()
        ([0.125, 0.375, 0.625, 0.875], [0.25, 0.75])
    """
    dev = torch.device(device)
    n = len(geometry)

    def col(t: Tensor) -> Tensor:
        return to_device(t, dev, torch.float64).view(n, 1, 1)

    xs = (torch.arange(W, device=dev, dtype=torch.float64) + 0.5).view(1, 1, W)
    ys = (torch.arange(H, device=dev, dtype=torch.float64) + 0.5).view(1, H, 1)
    dx, dy = xs - col(geometry.apex_x), ys - col(geometry.apex_y)
    sector = to_device(geometry.sector, dev).view(n, 1, 1)
    lateral = torch.where(sector, torch.rad2deg(torch.atan2(dx, dy)), xs.expand(n, H, W))
    depth = torch.where(sector, torch.sqrt(dx * dx + dy * dy), ys.expand(n, H, W))
    start, end, near, far = (col(t) for t in (geometry.start, geometry.end, geometry.near, geometry.far))
    u = (lateral - start) / (end - start)
    d = (depth - near) / (far - near)
    return u.view(n, 1, 1, H, W), d.view(n, 1, 1, H, W)


def fov_mask(geometry: ProbeGeometry, H: int, W: int, device: torch.device | str = "cpu") -> Tensor:
    """Rasterise the field of view: ``(n, 1, 1, H, W)`` bool, True where a pixel centre is imaged.

    Args:
        geometry: One probe per clip.
        H: Frame height in pixels.
        W: Frame width in pixels.
        device: Where to build the mask (the video's device).

    Returns:
        The mask, broadcastable against ``(n, C, T, H, W)``.

    Examples:
        >>> g = ProbeGeometry.make_sector(apex=(4.0, 0.0), angles=(-45.0, 45.0), depths=(0.0, 4.0))
        >>> fov_mask(g, 4, 8)[0, 0, 0].int().tolist()
        [[0, 0, 0, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1, 0, 0]]
    """
    u, d = beam_coordinates(geometry, H, W, device)
    return (u >= 0) & (u <= 1) & (d >= 0) & (d <= 1)


# ----------------------------------------------------------------------------------------------- estimation
def _dilate(m: Tensor, k: int) -> Tensor:
    return F.max_pool2d(m, k, stride=1, padding=k // 2)


def _erode(m: Tensor, k: int) -> Tensor:
    return -F.max_pool2d(-m, k, stride=1, padding=k // 2)


def _fit_line(y: Tensor, x: Tensor) -> tuple[float, float]:
    """Least squares ``x = a + b * y`` (float64)."""
    ym, xm = y.mean(), x.mean()
    vy = ((y - ym) ** 2).sum()
    b = float(((y - ym) * (x - xm)).sum() / vy) if float(vy) > 0 else 0.0
    return float(xm) - b * float(ym), b


def _fit_edge(y: Tensor, x: Tensor, tol: float) -> tuple[float, float]:
    """A straight edge through the upper rows, extended to every row it explains within ``tol`` pixels.

    The extreme pixel of a row lies on the straight edge from the top of the field of view down to
    where the far arc (or bottom) begins; starting from the top third keeps the arc out of the first fit.
    """
    k = max(2, int(0.35 * y.numel()))
    use = torch.zeros_like(y, dtype=torch.bool)
    use[:k] = True
    a, b = _fit_line(y[use], x[use])
    for _ in range(3):
        # rows polluted by overlays or by the arc lie off the line; keep the rest
        use = (x - (a + b * y)).abs() <= tol
        if int(use.sum()) < 2:
            break
        a, b = _fit_line(y[use], x[use])
    return a, b


def _fit_one(mask: Tensor, min_row: int) -> ProbeGeometry:
    W = mask.shape[1]
    counts = mask.sum(1)
    rows = torch.nonzero(counts >= min_row).flatten()
    if rows.numel() < 4:
        raise fail("mask", int(mask.sum()), f"a field of view with at least 4 rows of >= {min_row} pixels")
    sub = mask[rows]
    cols = torch.arange(W).expand_as(sub)
    xl = torch.where(sub, cols, W).amin(1).double()  # left edge of the first pixel
    xr = torch.where(sub, cols, -1).amax(1).double() + 1.0  # right edge of the last pixel
    y = rows.double() + 0.5
    al, bl = _fit_edge(y, xl, 1.5)
    ar, br = _fit_edge(y, xr, 1.5)
    top, bottom = float(rows[0]), float(rows[-1]) + 1.0
    a0, a1 = math.degrees(math.atan(bl)), math.degrees(math.atan(br))
    if a1 - a0 < 1.0:  # parallel edges: a linear probe
        left = float(torch.median(xl))
        right = float(torch.median(xr))
        return ProbeGeometry.make_linear(x=(left, right), y=(top, bottom))
    ay = (al - ar) / (br - bl)
    ax = al + bl * ay
    yy, xx = torch.nonzero(mask, as_tuple=True)
    dx, dy = xx.double() + 0.5 - ax, yy.double() + 0.5 - ay
    ang = torch.rad2deg(torch.atan2(dx, dy))
    r = torch.sqrt(dx * dx + dy * dy)[(ang >= a0) & (ang <= a1)]
    if r.numel() < 4:
        raise fail("mask", int(mask.sum()), "a field of view whose edges meet at an apex")
    # near: the closest pixel (a quantile would cut off the narrow tip of a phased array's sector);
    # far: a high quantile, which a few stray pixels below the arc do not move
    near = max(0.0, float(r.min()) - 0.5)
    if near * math.radians(a1 - a0) < 6.0:
        near = 0.0  # the tip of a phased array, too narrow to survive the 3x3 clean-up: it starts at the apex
    far = float(torch.quantile(r, 0.998))
    return ProbeGeometry.make_sector(apex=(ax, ay), angles=(a0, a1), depths=(near, far))


def fit_probe(mask: Tensor, *, min_row: int = 3) -> ProbeGeometry:
    """Fit a sector or linear probe geometry to each clip's rough field-of-view mask.

    Per clip (a Python loop: this is set-up, not the hot path): the rows with at least ``min_row``
    pixels give a left and a right boundary (the outermost pixel edges). A straight line ``x = a + b y``
    is fitted to each side from the upper third of those rows, then refitted to every row within 1.5
    pixels of it, three times (rows on the far arc, or hit by overlays, drop out). Edges within 1 degree
    of parallel make a linear probe (left and right: the medians of the boundaries; top and bottom: the
    first and last rows); otherwise the lines meet at the apex, their slopes give the edge angles, and
    the nearest pixel centre's distance from the apex (inside the wedge, less half a pixel) and the
    99.8% quantile of those distances
    (a near arc narrower than 6 pixels is taken for the tip of a phased array: near = 0)
    give the near and far depths. On exact masks of 80-120 pixel sectors the fit is within about a
    pixel (apex, depths) and half a degree (edges); the tests hold it to 2 pixels and 1 degree.

    Args:
        mask: ``(n, 1, 1, H, W)`` or ``(n, H, W)`` bool, True where the clip is imaged.
        min_row: Rows with fewer pixels are ignored.

    Returns:
        One ``ProbeGeometry`` per clip (on the CPU).

    Examples:
        >>> g = ProbeGeometry.make_sector(apex=(48.0, -30.0), angles=(-30.0, 30.0), depths=(40.0, 110.0))
        >>> fit = fit_probe(fov_mask(g, 80, 96))
        >>> [round(v, 0) for v in (fit.apex_x.item(), fit.apex_y.item(), fit.end.item(), fit.far.item())]
        [48.0, -30.0, 30.0, 110.0]
    """
    if mask.dim() == 5 and mask.shape[1:3] == (1, 1):
        mask = mask[:, 0, 0]
    if mask.dim() != 3 or mask.dtype != torch.bool:
        raise fail("mask", tuple(mask.shape), "a bool tensor of shape (n, 1, 1, H, W) or (n, H, W)")
    mask = mask.cpu()
    if mask.shape[0] == 0:
        e = torch.zeros(0, dtype=torch.float64)
        return ProbeGeometry(torch.zeros(0, dtype=torch.bool), e, e, e, e, e, e)
    return ProbeGeometry.cat([_fit_one(m, min_row) for m in mask])


def estimate_fov(
    video: Tensor,
    *,
    threshold: float = 0.06,
    motion: float | None = 0.02,
    value_range: ValueRange = _UNIT,
) -> tuple[Tensor, ProbeGeometry]:
    """Estimate each clip's field of view: pixels that are ever bright and change over time, fitted.

    1. Candidates: a pixel whose maximum over the clip's frames and channels exceeds ``threshold``
       (in [0, 1] units of the range) and, with ``motion`` and more than one frame, whose range over
       time (max - min, over channels) exceeds ``motion``: speckle moves, burnt-in text and scale marks
       do not.
    2. Clean-up: a 3x3 opening (drops isolated pixels and thin strokes), then a 7x7 closing (fills
       the small holes that dark tissue leaves).
    3. ``fit_probe`` fits a sector or a rectangle, and the mask returned is that geometry
       rasterised (``fov_mask``): smooth edges, no holes, no overlays.

    Args:
        video: ``(n, C, T, H, W)``, uint8 or float.
        threshold: Brightness above black, as a fraction of the range.
        motion: Minimum change over time, as a fraction of the range; None to skip the test.
        value_range: ``(lo, hi)`` of a float video (uint8: ``(0, 1)``, i.e. x / 255).

    Returns:
        ``(mask, geometry)``: the ``(n, 1, 1, H, W)`` bool mask on the video's device and the fitted
        geometry (CPU). Raises when a clip shows no field of view.

    Examples:
        >>> g = ProbeGeometry.make_sector(apex=(40.0, -20.0), angles=(-40.0, 40.0), depths=(30.0, 90.0))
        >>> v = torch.rand(1, 1, 4, 72, 80, generator=torch.Generator().manual_seed(0)) * fov_mask(g, 72, 80)
        >>> mask, fit = estimate_fov(v)
        >>> abs(fit.apex_y.item() + 20) < 1.5, bool((mask == fov_mask(g, 72, 80)).float().mean() > 0.99)
        (True, True)
    """
    if not isinstance(video, Tensor) or video.dim() != 5:
        raise fail(
            "video",
            tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__,
            "(n, C, T, H, W)",
        )
    rng = check_range(value_range, needed_by="estimate_fov")
    assert rng is not None
    if video.dtype == torch.uint8 and rng != _UNIT:
        raise fail("value_range", value_range, "(0, 1) for a uint8 video (worked on as x / 255)")
    T, H, W = video.shape[2:]
    x = to_work(video, copy=False)
    lo, hi = rng
    u = (x - lo) / (hi - lo)
    cand = u.amax(dim=(1, 2)) > threshold
    if motion is not None and T > 1:
        cand &= (u.amax(dim=2) - u.amin(dim=2)).amax(dim=1) > motion
    m = cand.to(torch.float32).unsqueeze(1)
    m = _dilate(_erode(m, 3), 3)
    # closing on a zero-padded mask: at the image border the erosion must see black, not nothing
    m = _erode(_dilate(F.pad(m, (7, 7, 7, 7)), 7), 7)[..., 7:-7, 7:-7]
    geometry = fit_probe(m[:, 0] > 0.5)
    return fov_mask(geometry, H, W, video.device), geometry


# ----------------------------------------------------------------------------------------------- value kernels
def _fov(fov: Tensor | None, x: Tensor) -> Tensor | None:
    if fov is None:
        return None
    n, _, T, H, W = x.shape
    if not isinstance(fov, Tensor) or fov.dim() != 5 or fov.shape[0] != n or fov.shape[1] != 1:
        ok = False
    else:
        ok = fov.shape[2] in (1, T) and tuple(fov.shape[3:]) == (H, W)
    if not ok:
        got = tuple(fov.shape) if isinstance(fov, Tensor) else type(fov).__name__
        raise fail("fov", got, f"a mask of shape ({n}, 1, 1, {H}, {W}) or ({n}, 1, {T}, {H}, {W})")
    return to_device(fov, x.device).to(torch.bool)


def _apply_gain_(x: Tensor, gain: Tensor, fov: Tensor | None, value_range: ValueRange) -> Tensor:
    """``lo + (x - lo) * gain``, clamped, inside ``fov``; outside it ``x`` keeps its exact bits."""
    rng = check_range(value_range)
    inside = _fov(fov, x)
    gain = gain.to(x.dtype)
    lo = 0.0 if rng is None else rng[0]
    new = x * gain if lo == 0.0 else (x - lo).mul_(gain).add_(lo)
    if rng is not None:
        new.clamp_(rng[0], rng[1])
    return x.copy_(new if inside is None else torch.where(inside, new, x))


def _depth(geometry: ProbeGeometry, x: Tensor) -> tuple[Tensor, Tensor]:
    _check_geometry(geometry, x.shape[0])
    u, d = beam_coordinates(geometry, x.shape[3], x.shape[4], x.device)
    return u, d.clamp(0.0, 1.0)


def _p64(name: str, value: Tensor, x: Tensor, **bounds: float) -> Tensor:
    """A per-clip or per-frame parameter as float64 ``(n, 1, 1|T, 1, 1)`` (the gain maps are float64)."""
    return param(name, value, x, dtype=torch.float64, **bounds)  # type: ignore[arg-type]


def depth_attenuation_(
    x: Tensor,
    geometry: ProbeGeometry,
    mu: Tensor,
    floor: Tensor,
    *,
    fov: Tensor | None = None,
    value_range: ValueRange = _UNIT,
) -> Tensor:
    """In place: gain ``(1 - floor) * exp(-mu * d) + floor``. See ``depth_attenuation``."""
    _check_work(x)
    m = _p64("mu", mu, x, at_least=0.0)
    lf = _p64("floor", floor, x, at_least=0.0)
    _, d = _depth(geometry, x)
    gain = (1.0 - lf) * torch.exp(-m * d) + lf
    return _apply_gain_(x, gain, fov, value_range)


def depth_attenuation(
    video: Tensor,
    geometry: ProbeGeometry,
    mu: Tensor,
    floor: Tensor,
    *,
    fov: Tensor | None = None,
    value_range: ValueRange = _UNIT,
) -> Tensor:
    """Darken with depth: multiply by ``(1 - l) * exp(-mu * d) + l``, ``d`` the normalised depth.

    ``d`` is 0 at the probe face (the near radius of a sector; 0 at the apex of a phased array) and 1
    at the far edge, so ``mu`` is the attenuation over the whole imaged depth (``exp(-mu)`` at the
    bottom before the floor) and ``l`` the fraction of brightness never lost.

    Args:
        video: ``(n, C, T, H, W)``, uint8 or float.
        geometry: One probe per clip.
        mu: ``(n,)`` or ``(n, T)`` attenuation >= 0 (0 = unchanged).
        floor: ``(n,)`` or ``(n, T)`` floor ``l`` in [0, 1] (1 = unchanged).
        fov: Optional ``(n, 1, 1|T, H, W)`` bool mask; outside it pixels are unchanged.
        value_range: ``(lo, hi)`` (gain about ``lo``, clamped), or None (about 0, unclamped).

    Returns:
        The attenuated video, same dtype and device.

    Examples:
        >>> g = ProbeGeometry.make_linear(x=(0.0, 1.0), y=(0.0, 2.0))
        >>> v = torch.ones(1, 1, 1, 2, 1)
        >>> [round(a, 4) for a in depth_attenuation(v, g, torch.tensor([2.0]), torch.tensor([0.5])).flatten().tolist()]
        [0.8033, 0.6116]
    """
    return _public(
        video,
        value_range,
        lambda x: depth_attenuation_(x, geometry, mu, floor, fov=fov, value_range=value_range),
    )


def _tgc_gain(d: Tensor, gains: Tensor, x: Tensor) -> Tensor:
    n, _, T, H, W = x.shape
    g = torch.as_tensor(gains)
    ok = g.is_floating_point() and (
        (g.dim() == 2 and g.shape[0] == n) or (g.dim() == 3 and tuple(g.shape[:2]) == (n, T))
    )
    if not ok or g.shape[-1] < 2:
        raise fail("gains", tuple(g.shape), f"float control points ({n}, K) or ({n}, {T}, K), K >= 2")
    if g.device.type == "cpu" and g.numel() and not bool((torch.isfinite(g) & (g >= 0)).all()):
        raise fail("gains", g.tolist(), "finite gains >= 0")
    K = g.shape[-1]
    g = to_device(g, x.device, torch.float64)
    p = (d * (K - 1)).view(n, 1, H * W)
    k = torch.floor(p).clamp_(0, K - 2)
    t = p - k
    s = t * t * (3.0 - 2.0 * t)  # smoothstep: C1, flat at each knot, never beyond its two knots
    idx = k.to(torch.int64)
    if g.dim() == 2:
        g = g.view(n, 1, K)
    else:
        idx = idx.expand(n, T, H * W)
    g0 = g.expand(n, idx.shape[1], K).gather(2, idx)
    g1 = g.expand(n, idx.shape[1], K).gather(2, idx + 1)
    return (g0 + (g1 - g0) * s).view(n, 1, idx.shape[1], H, W)


def time_gain_compensation_(
    x: Tensor,
    geometry: ProbeGeometry,
    gains: Tensor,
    *,
    fov: Tensor | None = None,
    value_range: ValueRange = _UNIT,
) -> Tensor:
    """In place: a smooth gain curve along depth through ``K`` control points. See ``time_gain_compensation``."""
    _check_work(x)
    _, d = _depth(geometry, x)
    return _apply_gain_(x, _tgc_gain(d, gains, x), fov, value_range)


def time_gain_compensation(
    video: Tensor,
    geometry: ProbeGeometry,
    gains: Tensor,
    *,
    fov: Tensor | None = None,
    value_range: ValueRange = _UNIT,
) -> Tensor:
    """Time-gain compensation: multiply by a piecewise-smooth gain curve of the normalised depth.

    ``K`` control gains sit at the depths ``d_k = k / (K - 1)`` (the sliders of a scanner's TGC panel);
    between two knots the curve follows ``g_k + (g_{k+1} - g_k) * s(t)`` with the smoothstep
    ``s(t) = 3 t^2 - 2 t^3``: continuous with a continuous slope, flat at each knot, and never outside
    the range of its two knots (no overshoot, unlike a spline).

    Args:
        video: ``(n, C, T, H, W)``, uint8 or float.
        geometry: One probe per clip.
        gains: ``(n, K)`` or ``(n, T, K)`` linear gain factors >= 0 (1 = unchanged), ``K >= 2``.
        fov: Optional ``(n, 1, 1|T, H, W)`` bool mask; outside it pixels are unchanged.
        value_range: ``(lo, hi)`` (gain about ``lo``, clamped), or None (about 0, unclamped).

    Returns:
        The compensated video, same dtype and device.

    Examples:
        >>> g = ProbeGeometry.make_linear(x=(0.0, 1.0), y=(0.0, 4.0))
        >>> v = torch.full((1, 1, 1, 4, 1), 0.5)
        >>> time_gain_compensation(v, g, torch.tensor([[1.0, 2.0]])).flatten().tolist()
        [0.521484375, 0.658203125, 0.841796875, 0.978515625]
    """
    return _public(
        video,
        value_range,
        lambda x: time_gain_compensation_(x, geometry, gains, fov=fov, value_range=value_range),
    )


def acoustic_shadow_(
    x: Tensor,
    geometry: ProbeGeometry,
    position: Tensor,
    width: Tensor,
    strength: Tensor,
    depth: Tensor,
    *,
    fov: Tensor | None = None,
    value_range: ValueRange = _UNIT,
) -> Tensor:
    """In place: darken a Gaussian band along a beam beyond a depth. See ``acoustic_shadow``."""
    _check_work(x)
    pos = _p64("position", position, x)
    wid = _p64("width", width, x, above=0.0)
    st = _p64("strength", strength, x, at_least=0.0)
    dep = _p64("depth", depth, x)
    _check_geometry(geometry, x.shape[0])
    u, d = beam_coordinates(geometry, x.shape[3], x.shape[4], x.device)
    z = (u - pos) / wid
    gain = 1.0 - st * torch.exp(-0.5 * z * z) * (d >= dep).to(torch.float64)
    return _apply_gain_(x, gain.clamp_(min=0.0), fov, value_range)


def acoustic_shadow(
    video: Tensor,
    geometry: ProbeGeometry,
    position: Tensor,
    width: Tensor,
    strength: Tensor,
    depth: Tensor,
    *,
    fov: Tensor | None = None,
    value_range: ValueRange = _UNIT,
) -> Tensor:
    """An acoustic shadow: the band behind an obstacle (a rib) along a beam from the probe, darkened.

    Gain ``1 - strength * exp(-(u - position)^2 / (2 width^2))`` at normalised depths ``d >= depth``,
    1 above. ``u`` is the normalised lateral coordinate, so for a sector the band is a Gaussian in the
    beam angle (``theta0 = start + position * (end - start)`` degrees, its width ``width * (end -
    start)`` degrees) and follows the beams radially from the apex; for a linear probe it is vertical.
    A ``(n, T)`` position makes the shadow move from frame to frame (drift).

    Args:
        video: ``(n, C, T, H, W)``, uint8 or float.
        geometry: One probe per clip.
        position: ``(n,)`` or ``(n, T)`` band centre, 0 = start edge, 1 = end edge.
        width: ``(n,)`` or ``(n, T)`` Gaussian standard deviation in the same units, > 0.
        strength: ``(n,)`` or ``(n, T)`` darkening at the band centre, in [0, 1] (1 = black).
        depth: ``(n,)`` or ``(n, T)`` normalised depth where the shadow starts (0 = the probe face).
        fov: Optional ``(n, 1, 1|T, H, W)`` bool mask; outside it pixels are unchanged.
        value_range: ``(lo, hi)`` (darkens towards ``lo``), or None (towards 0, unclamped).

    Returns:
        The shadowed video, same dtype and device.

    Examples:
        >>> g = ProbeGeometry.make_linear(x=(0.0, 3.0), y=(0.0, 2.0))
        >>> v = torch.ones(1, 1, 1, 2, 3)
        >>> out = acoustic_shadow(v, g, *torch.tensor([[0.5], [0.01], [1.0], [0.5]]))
        >>> out[0, 0, 0].tolist()
        [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]
    """
    return _public(
        video,
        value_range,
        lambda x: acoustic_shadow_(
            x, geometry, position, width, strength, depth, fov=fov, value_range=value_range
        ),
    )


def _check_field(field: Tensor, x: Tensor) -> Tensor:
    n, C, T, H, W = x.shape
    ok = (
        isinstance(field, Tensor)
        and field.is_floating_point()
        and field.dim() == 5
        and field.shape[0] == n
        and field.shape[1] in (1, C)
        and tuple(field.shape[2:]) == (T, H, W)
    )
    if not ok:
        got = tuple(field.shape) if isinstance(field, Tensor) else type(field).__name__
        raise fail("field", got, f"a float tensor of shape ({n}, 1 or {C}, {T}, {H}, {W})")
    return to_device(field, x.device, x.dtype)


def speckle_(
    x: Tensor,
    field: Tensor,
    strength: Tensor | None = None,
    *,
    fov: Tensor | None = None,
    value_range: ValueRange = _UNIT,
) -> Tensor:
    """In place: multiply by ``1 + strength * (field - 1)``. See ``speckle``."""
    _check_work(x)
    f = _check_field(field, x)
    gain = f if strength is None else (f - 1.0).mul_(param("strength", strength, x, at_least=0.0)).add_(1.0)
    return _apply_gain_(x, gain, fov, value_range)


def speckle(
    video: Tensor,
    field: Tensor,
    strength: Tensor | None = None,
    *,
    fov: Tensor | None = None,
    value_range: ValueRange = _UNIT,
) -> Tensor:
    """Multiplicative speckle: ``x * (1 + strength * (field - 1))`` about ``lo``, clamped.

    The kernel draws nothing: ``field`` is a unit-mean multiplicative noise field supplied by the
    caller, e.g. ``rayleigh_field`` or ``gamma_field`` of uniforms keyed per clip like the
    Gaussian noise. ``strength`` blends it in (0 = no change, 1 = the full field).

    Args:
        video: ``(n, C, T, H, W)``, uint8 or float.
        field: ``(n, 1 or C, T, H, W)`` float multiplicative field (mean 1).
        strength: Optional ``(n,)`` or ``(n, T)`` blend >= 0 (default 1).
        fov: Optional ``(n, 1, 1|T, H, W)`` bool mask; outside it pixels are unchanged.
        value_range: ``(lo, hi)`` (about ``lo``, clamped), or None (about 0, unclamped).

    Returns:
        The speckled video, same dtype and device.

    Examples:
        >>> v = torch.full((1, 1, 1, 1, 2), 0.5)
        >>> speckle(v, torch.tensor([0.5, 1.5]).view(1, 1, 1, 1, 2), torch.tensor([0.5])).flatten().tolist()
        [0.375, 0.625]
    """
    return _public(
        video, value_range, lambda x: speckle_(x, field, strength, fov=fov, value_range=value_range)
    )


def rayleigh_field(uniform: Tensor) -> Tensor:
    """A unit-mean Rayleigh field from uniforms in [0, 1): ``sqrt(-(4 / pi) * log(1 - u))``.

    Rayleigh is the envelope of fully developed speckle; the scale ``sqrt(2 / pi)`` makes the mean 1
    (its standard deviation is then ``sqrt(4 / pi - 1) ~ 0.52``). Elementwise, any shape and dtype.

    Examples:
        >>> u = torch.rand(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> round(rayleigh_field(u).mean().item(), 2)
        1.0
    """
    one_minus = (1.0 - uniform).clamp_(min=torch.finfo(uniform.dtype).tiny)
    return one_minus.log_().mul_(-4.0 / math.pi).sqrt_()


def gamma_field(uniforms: Tensor) -> Tensor:
    """A unit-mean gamma field of integer shape ``k`` from ``k`` uniforms per pixel (dim 0).

    The mean of ``k`` unit exponentials ``-log(1 - u_i)``: Gamma(shape ``k``, scale ``1 / k``), mean 1,
    variance ``1 / k`` (``k`` looks, as multi-look speckle). ``uniforms`` is ``(k, *shape)`` in [0, 1).

    Examples:
        >>> u = torch.rand(4, 100_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> f = gamma_field(u)
        >>> round(f.mean().item(), 2), round(f.var().item(), 2)
        (1.0, 0.25)
    """
    if uniforms.dim() < 1 or uniforms.shape[0] < 1:
        raise fail("uniforms", tuple(uniforms.shape), "(k, ...) with k >= 1 uniforms per pixel")
    one_minus = (1.0 - uniforms).clamp_(min=torch.finfo(uniforms.dtype).tiny)
    return one_minus.log_().mean(dim=0).neg_()
