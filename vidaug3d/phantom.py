"""A deterministic synthetic lung-ultrasound phantom: the project's embedded default dataset.

The phantom renders short grayscale videos that look like B-mode lung ultrasound: a sector (convex probe) or
rectangular (linear probe) field of view, multiplicative speckle, a chest wall with layered soft tissue, ribs
with acoustic shadows, a bright pleural line that slides with breathing, A-lines (horizontal reverberations of
the pleura), optional B-lines (vertical comet tails that move with the lung) and, in positive videos, a
consolidation: a hypoechoic, tissue-like region below the pleura with an irregular deep border and bright
air-bronchogram spots. The consolidation's bounding box is known in every frame. Probe motion, breathing rate,
geometry, attenuation and gain differ between videos.

Overall gain is set per video so that the mean brightness of the field of view is drawn from the same range for
both classes: a model that sees only the mean brightness cannot tell the classes apart (the tests check this with
a logistic regression on mean brightness).

Everything is a pure function of a seed: video ``i`` of ``make_dataset(n, seed=s)`` equals
``render_video(video_seed(s, i), consolidation=labels[i])``, whatever ``n`` or ``chunk_size``.

API:

```python
import vidaug3d.phantom as ph
data = ph.make_dataset(256, num_frames=16, size=(112, 112), seed=0, consolidation_fraction=0.5)
data.videos        # (N, 1, T, H, W) uint8
data.labels        # (N,) int64, 1 = consolidation
data.boxes         # list of N tensors (T, N_i, 4) float32, xyxy pixels; N_i = 1 if labels[i] else 0
data.seeds         # (N,) int64, the per-video seeds
boxes, counts = data.padded_boxes()   # (N, T, M, 4) float32 padded with NaN, (N,) int64
one = ph.render_video(seed=7, num_frames=16, size=(112, 112), consolidation=True)
one.video, one.label, one.boxes      # (1, T, H, W) uint8, int, (T, 1, 4) float32
```

Box convention: ``(x1, y1, x2, y2)`` in pixel units of the output frame, with pixel ``j`` covering
``[j, j + 1)``: a box around pixels ``x0..x1`` inclusive is ``(x0, y0, x1 + 1, y1 + 1)``. A box is the extent of
the visible consolidation (inside the field of view, outside rib shadows) in that frame.

Examples:
    >>> from vidaug3d import phantom
    >>> v = phantom.render_video(3, num_frames=4, size=(32, 32), consolidation=True)
    >>> tuple(v.video.shape), v.video.dtype, v.label, tuple(v.boxes.shape)
    ((1, 4, 32, 32), torch.uint8, 1, (4, 1, 4))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidaug3d.errors import fail

__all__ = [
    "PhantomData",
    "PhantomVideo",
    "make_dataset",
    "render_batch",
    "render_video",
    "video_seed",
]

_MASK64 = (1 << 64) - 1
_N_UNIFORMS = 96  # scalars drawn per video, in a fixed order (stable under option changes)
_MAX_BLINES = 4
_MAX_SPOTS = 10
_FOVS = ("sector", "linear")


@dataclass(frozen=True)
class PhantomVideo:
    """One rendered phantom video.

    Attributes:
        video: ``(1, T, H, W)`` uint8 frames.
        label: 1 if the video shows a consolidation, else 0.
        boxes: ``(T, N, 4)`` float32 boxes ``(x1, y1, x2, y2)`` in pixels; ``N`` is 1 for a positive video, 0 for
            a negative one.
        seed: The seed the video was rendered from.
        fov: ``"sector"`` or ``"linear"``.
    """

    video: torch.Tensor
    label: int
    boxes: torch.Tensor
    seed: int
    fov: str


@dataclass(frozen=True)
class PhantomData:
    """A set of phantom videos, as returned by ``make_dataset``.

    Attributes:
        videos: ``(N, 1, T, H, W)`` uint8.
        labels: ``(N,)`` int64, 1 = consolidation.
        boxes: list of ``N`` float32 tensors of shape ``(T, N_i, 4)`` (xyxy pixels); ``N_i`` is 0 or 1.
        seeds: ``(N,)`` int64 per-video seeds (``video_seed(seed, i)``).
    """

    videos: torch.Tensor
    labels: torch.Tensor
    boxes: list[torch.Tensor]
    seeds: torch.Tensor

    def __len__(self) -> int:
        return int(self.videos.shape[0])

    def padded_boxes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack the boxes into one tensor.

        Returns:
            ``(boxes, counts)``: boxes ``(N, T, M, 4)`` float32 with rows past a video's count filled with NaN
            (``M`` = the largest count, at least 1), and counts ``(N,)`` int64.
        """
        n = len(self.boxes)
        t = int(self.videos.shape[2])
        counts = torch.tensor([int(b.shape[1]) for b in self.boxes], dtype=torch.int64)
        m = max(1, int(counts.max()) if n else 1)
        out = torch.full((n, t, m, 4), float("nan"), dtype=torch.float32)
        for i, b in enumerate(self.boxes):
            out[i, :, : b.shape[1]] = b
        return out, counts


def video_seed(seed: int, index: int) -> int:
    """The seed of video ``index`` in a dataset made with ``seed`` (a splitmix64 hash, 63 bits).

    Examples:
        >>> video_seed(0, 1) == video_seed(0, 1) != video_seed(1, 0)
        True
    """
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(index) + 0x632BE59BD9B4E019) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return z & ((1 << 63) - 1)


def _check_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    if len(size) != 2 or not all(isinstance(s, int) and s >= 8 for s in size):
        raise fail("size", size, "an int or (height, width) of ints >= 8")
    return int(size[0]), int(size[1])


def _draw(
    seed: int,
    num_frames: int,
    hs: int,
    ws: int,
    consolidation: bool | None,
    fov: str | None,
    b_lines: bool | None,
) -> tuple[dict[str, float | bool], torch.Tensor, torch.Tensor]:
    """Draw one video's scalars and raw complex noise from its own generator."""
    g = torch.Generator().manual_seed(int(seed))
    u: list[float] = torch.rand(_N_UNIFORMS, generator=g, dtype=torch.float64).tolist()
    it = iter(u)

    def nxt(lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * next(it)

    p: dict[str, float | bool] = {}
    p["consolidation"] = bool(nxt() < 0.5) if consolidation is None else bool(consolidation)
    p["sector"] = (nxt() < 0.75) if fov is None else (nxt() < 2.0 and fov == "sector")
    p["b_lines"] = (nxt() < 0.5) if b_lines is None else (nxt() < 2.0 and bool(b_lines))
    # geometry of the scan converter
    p["apex"] = nxt(0.18, 0.45)
    p["theta"] = math.radians(nxt(30.0, 40.0))
    p["depth_span"] = nxt(0.85, 1.0)
    # chest wall and pleura (depth as a fraction of the imaging depth)
    p["pleura"] = nxt(0.2, 0.34)
    p["tilt"] = nxt(-0.04, 0.04)
    p["wall_level"] = nxt(0.07, 0.14)
    p["layer_freq"] = nxt(14.0, 30.0)
    p["layer_phase"] = nxt(0.0, 2 * math.pi)
    p["fascia1"] = nxt(0.3, 0.5)
    p["fascia2"] = nxt(0.6, 0.85)
    p["pleura_amp"] = nxt(1.1, 1.6)
    p["pleura_width"] = nxt(0.006, 0.011)
    # ribs
    p["rib_left"] = nxt() < 0.7
    p["rib_right"] = nxt() < 0.7
    p["rib_left_pos"] = nxt(-0.95, -0.62)
    p["rib_right_pos"] = nxt(0.62, 0.95)
    p["rib_half"] = nxt(0.12, 0.22)
    # breathing / sliding and probe motion
    p["slide_amp"] = nxt(0.03, 0.08)
    p["breath_period"] = nxt(10.0, 32.0)
    p["breath_phase"] = nxt(0.0, 2 * math.pi)
    p["probe_vx"] = nxt(-0.06, 0.06)
    p["probe_vz"] = nxt(-0.02, 0.02)
    p["probe_wob"] = nxt(0.0, 0.012)
    p["probe_wob_phase"] = nxt(0.0, 2 * math.pi)
    # A-lines
    p["aline_amp"] = nxt(0.35, 0.8)
    p["aline_decay"] = nxt(0.45, 0.7)
    p["air_level"] = nxt(0.02, 0.05)
    # B-lines: up to _MAX_BLINES, count 1..4 when present
    p["n_blines"] = float(1 + int(nxt() * _MAX_BLINES))
    for j in range(_MAX_BLINES):
        p[f"bline_pos{j}"] = nxt(-0.6, 0.6)
    p["bline_amp"] = nxt(0.6, 1.0)
    p["bline_width"] = nxt(0.012, 0.03)
    # consolidation
    p["cons_center"] = nxt(-0.3, 0.3)
    p["cons_half"] = nxt(0.18, 0.34)
    p["cons_height"] = nxt(0.18, 0.34)
    p["cons_level"] = nxt(0.12, 0.22)
    p["shred_f1"] = nxt(8.0, 16.0)
    p["shred_p1"] = nxt(0.0, 2 * math.pi)
    p["shred_f2"] = nxt(20.0, 35.0)
    p["shred_p2"] = nxt(0.0, 2 * math.pi)
    p["n_spots"] = float(3 + int(nxt() * (_MAX_SPOTS - 2)))
    for j in range(_MAX_SPOTS):
        p[f"spot_u{j}"] = nxt(-0.8, 0.8)
        p[f"spot_d{j}"] = nxt(0.1, 0.8)
    p["spot_amp"] = nxt(0.7, 1.2)
    # image formation
    p["atten"] = nxt(0.4, 1.4)
    p["tgc"] = nxt(0.0, 0.8)
    p["corr_wall"] = nxt(0.85, 0.97)
    p["corr_lung"] = nxt(0.45, 0.75)
    p["compress"] = nxt(6.0, 20.0)
    p["target_mean"] = nxt(0.12, 0.24)
    p["enoise"] = nxt(0.005, 0.02)
    p["speckle_contrast"] = nxt(0.55, 0.85)
    # static speckle textures (fixed to the probe, moving with the lung) and one fresh field per frame
    static = torch.randn(2, 2, int(hs * 1.5), int(ws * 1.5), generator=g)
    fresh = torch.randn(num_frames, 2, hs, ws, generator=g)
    return p, static, fresh


def _gauss1d(sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(2.5 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _smooth(x: torch.Tensor, sigma_y: float, sigma_x: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, H, W)`` (replicated borders), as sums of shifted copies.

    A handful of taps: much faster on the CPU than a single-channel convolution.
    """
    for dim, sigma in ((-2, sigma_y), (-1, sigma_x)):
        k = _gauss1d(sigma)
        r = k.numel() // 2
        n = x.shape[dim]
        pad = [0, 0, 0, 0]
        pad[0 if dim == -1 else 2] = r
        pad[1 if dim == -1 else 3] = r
        xp = F.pad(x.unsqueeze(1), pad, mode="replicate").squeeze(1)
        w = k.tolist()
        out = xp.narrow(dim, 0, n) * w[0]
        for i in range(1, len(w)):
            out.add_(xp.narrow(dim, i, n), alpha=w[i])
        x = out
    return x


def _col(params: list[dict[str, float | bool]], key: str) -> torch.Tensor:
    """A ``(B, 1, 1, 1)`` float32 column of one scalar across the batch."""
    return torch.tensor([float(q[key]) for q in params], dtype=torch.float32).view(-1, 1, 1, 1)


def render_batch(
    seeds: Sequence[int],
    *,
    num_frames: int = 16,
    size: int | Sequence[int] = (112, 112),
    consolidation: Sequence[bool | None] | None = None,
    fov: str | None = None,
    b_lines: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """Render several phantom videos at once (vectorised over videos, frames and pixels).

    Args:
        seeds: One seed per video.
        num_frames: ``T``, frames per video.
        size: ``(H, W)`` of the output frames, or one int for square frames.
        consolidation: Per video, True/False to force the class or None to draw it from the seed.
        fov: ``"sector"``, ``"linear"``, or None to draw it per video (75% sector).
        b_lines: True/False to force B-lines on or off, None to draw them per video.

    Returns:
        ``(videos, labels, boxes, fovs)``: videos ``(B, 1, T, H, W)`` uint8; labels ``(B,)`` int64; boxes
        ``(B, T, 4)`` float32 xyxy pixels of the consolidation (NaN where a frame shows none, and for negative
        videos); the field of view of each video.
    """
    h, w = _check_size(size)
    if not isinstance(num_frames, int) or num_frames < 1:
        raise fail("num_frames", num_frames, "an int >= 1")
    if fov is not None and fov not in _FOVS:
        raise fail("fov", fov, "'sector', 'linear' or None")
    b = len(seeds)
    if consolidation is None:
        consolidation = [None] * b
    if len(consolidation) != b:
        raise fail("consolidation", len(consolidation), f"one entry per seed ({b})")
    t = num_frames
    hs, ws = h, w
    drawn = [_draw(s, t, hs, ws, c, fov, b_lines) for s, c in zip(seeds, consolidation, strict=True)]
    params = [d[0] for d in drawn]

    def col(key: str) -> torch.Tensor:
        return _col(params, key)

    # --- speckle: smooth complex Gaussian fields, magnitude is Rayleigh-distributed -----------------------------
    static = torch.stack([d[1] for d in drawn])  # (B, 2 fields, 2 re/im, Ht, Wt)
    fresh = torch.stack([d[2] for d in drawn])  # (B, T, 2, hs, ws)
    ht, wt = static.shape[-2:]
    sy, sx = 0.55 * hs / 112 + 0.25, 1.1 * ws / 112 + 0.3  # grains elongated laterally, scale with size
    static = _smooth(static.reshape(-1, ht, wt), sy, sx).reshape(b, 2, 2, ht, wt)
    fresh = _smooth(fresh.reshape(-1, hs, ws), sy, sx).reshape(b, t, 2, hs, ws)
    norm = math.sqrt(2.0) * _gauss1d(sy).square().sum().sqrt() * _gauss1d(sx).square().sum().sqrt()
    static = static / norm
    fresh = fresh / norm

    # --- coordinates: depth d in [0, 1] down, lateral u in [-1, 1] ---------------------------------------------
    d = ((torch.arange(hs, dtype=torch.float32) + 0.5) / hs).view(1, 1, hs, 1)
    u = ((torch.arange(ws, dtype=torch.float32) + 0.5) / ws * 2 - 1).view(1, 1, 1, ws)
    tt = torch.arange(t, dtype=torch.float32).view(1, t, 1, 1)
    tc = (tt - (t - 1) / 2) / max(t, 8)
    breath = torch.sin(2 * math.pi * tt / col("breath_period") + col("breath_phase"))
    slide = col("slide_amp") * breath  # (B, T, 1, 1) lateral lung motion
    wob = col("probe_wob") * torch.sin(2 * math.pi * tt / 7.0 + col("probe_wob_phase"))
    dx = col("probe_vx") * tc + wob  # probe motion, lateral
    dz = col("probe_vz") * tc + 0.004 * breath + 0.5 * wob  # probe motion, depth
    du = u - dx  # world lateral coordinate of each pixel (moves with the probe)
    dd = d - dz  # world depth
    ul = du - slide  # lung coordinate (slides under the pleura)

    # --- sample the static speckle at the moving coordinates -------------------------------------------------
    # texture covers u in [-1.5, 1.5], d in [-0.25, 1.25]
    def sample(tex: torch.Tensor, uu: torch.Tensor) -> torch.Tensor:
        gx = (uu / 1.5).expand(b, t, hs, ws)
        gy = ((dd - 0.5) / 0.75).expand(b, t, hs, ws)
        grid = torch.stack([gx, gy], dim=-1).reshape(b, t * hs, ws, 2)
        out = F.grid_sample(tex, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out.reshape(b, 2, t, hs, ws)  # re/im

    def speckle(tex: torch.Tensor, uu: torch.Tensor, c: torch.Tensor, k: int) -> torch.Tensor:
        s = sample(tex, uu)
        f = fresh[:, :, k : k + 1]  # (B, T, 1, hs, ws): one fresh channel per field...
        re = c * s[:, 0] + torch.sqrt(1 - c**2) * f[:, :, 0]
        # ...and the imaginary part from the other fresh channel, rolled, to stay independent
        f2 = fresh[:, :, 1 - k]
        im = c * s[:, 1] + torch.sqrt(1 - c**2) * torch.roll(f2, shifts=(hs // 3, ws // 3), dims=(-2, -1))
        return torch.sqrt(re * re + im * im) / math.sqrt(math.pi / 4)  # unit mean

    sc = col("speckle_contrast")  # blend towards the mean: the display is smoother than raw Rayleigh speckle
    s_wall = 1 - sc + sc * speckle(static[:, 0], du, col("corr_wall"), 0)
    s_lung = 1 - sc + sc * speckle(static[:, 1], ul, col("corr_lung"), 1)

    # --- anatomy (echo amplitude before speckle) -----------------------------------------------------------
    pl = col("pleura")  # pleural depth (the sector geometry curves it)
    above = torch.sigmoid((pl - dd) / 0.006)
    below = 1 - above
    layers = (
        1
        + 0.12 * torch.sin(2 * math.pi * col("layer_freq") * dd + col("layer_phase"))
        + 0.1 * torch.sin(2 * math.pi * 0.37 * col("layer_freq") * (dd + 0.2 * du) + 2 * col("layer_phase"))
    )
    skin = 0.3 * torch.exp(-(((dd - 0.015) / 0.012) ** 2))
    fascia = 0.25 * torch.exp(-(((dd - col("fascia1") * pl) / 0.008) ** 2)) + 0.2 * torch.exp(
        -(((dd - col("fascia2") * pl) / 0.01) ** 2)
    )
    wall = (
        col("wall_level") * layers * (1 + 0.25 * torch.sin(3.0 * du + 5 * dd + col("layer_phase")))
        + skin
        + fascia
    )
    pleura = col("pleura_amp") * torch.exp(-(((dd - pl) / col("pleura_width")) ** 2))

    # A-lines at multiples of the pleural depth
    alines = torch.zeros(())
    for k in (2, 3, 4):
        amp = col("aline_amp") * col("aline_decay") ** (k - 2)
        width = col("pleura_width") * (1.0 + 0.35 * k)
        alines = alines + amp * torch.exp(-(((dd - k * pl) / width) ** 2))
    # B-lines: vertical bands from the pleura to the bottom, moving with the lung
    nbl = col("n_blines") * col("b_lines")
    bl_profile = torch.zeros(b, t, 1, ws)
    for j in range(_MAX_BLINES):
        on = (nbl > j).float()
        bl_profile = bl_profile + on * torch.exp(-(((ul - col(f"bline_pos{j}")) / col("bline_width")) ** 2))
    bl_profile = bl_profile.clamp(max=1.0)
    blines = col("bline_amp") * bl_profile * (0.8 + 0.4 * torch.exp(-3 * (dd - pl).clamp(min=0)))

    # consolidation: hypoechoic tissue from the pleura down to an irregular ("shred") border
    cons_on = col("consolidation")
    half = col("cons_half")
    cu = col("cons_center")
    shred = (
        1
        + 0.22 * torch.sin(col("shred_f1") * ul + col("shred_p1"))
        + 0.12 * torch.sin(col("shred_f2") * ul + col("shred_p2"))
    )
    bottom = pl + col("cons_height") * shred
    half_d = half * (1 + 0.12 * torch.sin(col("shred_f1") * 1.7 * dd + col("shred_p2")))  # irregular sides
    lat = torch.sigmoid((half_d - (ul - cu).abs()) / 0.012)
    deep = torch.sigmoid((bottom - dd) / 0.008)
    cons = cons_on * lat * deep * below  # soft mask (B, T, hs, ws)
    shred_line = 0.8 * cons_on * lat * torch.exp(-(((dd - bottom) / 0.012) ** 2)) * below
    # air bronchograms: bright spots inside, moving with the lung, with a little jitter of their own
    n_sp = col("n_spots")
    su = torch.stack([torch.tensor([float(q[f"spot_u{j}"]) for q in params]) for j in range(_MAX_SPOTS)], 1)
    sd = torch.stack([torch.tensor([float(q[f"spot_d{j}"]) for q in params]) for j in range(_MAX_SPOTS)], 1)
    su = su.view(b, 1, _MAX_SPOTS, 1)  # (B, 1, S, 1)
    sd = sd.view(b, 1, _MAX_SPOTS, 1)
    sp_on = (torch.arange(_MAX_SPOTS).view(1, 1, _MAX_SPOTS, 1) < n_sp.view(b, 1, 1, 1)).float()
    jit = 0.01 * torch.sin(2 * math.pi * tt.view(1, t, 1, 1) / 5.0 + 7 * su)
    spot_u = cu.view(b, 1, 1, 1) + su * half.view(b, 1, 1, 1) * 0.8 + jit  # lung coordinates (B, T, S, 1)
    spot_d = col("pleura").view(b, 1, 1, 1) + sd * col("cons_height").view(b, 1, 1, 1) * 0.85
    ul_row = ul[:, :, 0, :].unsqueeze(2)  # (B, T, 1, ws)
    dd_col = dd[:, :, :, 0].unsqueeze(2)  # (B, T, 1, hs)
    gx_ = torch.exp(-(((ul_row - spot_u) / 0.022) ** 2))  # (B, T, S, ws)
    gy_ = torch.exp(-(((dd_col - spot_d) / 0.011) ** 2)) * sp_on  # (B, T, S, hs)
    spots = torch.einsum("btsh,btsw->bthw", gy_, gx_)
    spots = col("spot_amp") * spots.clamp(max=1.0) * cons

    # ribs: a bright curved surface just above the pleura and a shadow below it
    shadow = torch.ones(())
    ribs = torch.zeros(())
    for side in ("left", "right"):
        on = col(f"rib_{side}")
        inside = torch.sigmoid((col("rib_half") - (du - col(f"rib_{side}_pos")).abs()) / 0.015)
        surf = pl - 0.035 - 0.03 * (1 - ((du - col(f"rib_{side}_pos")) / col("rib_half")).clamp(-1, 1) ** 2)
        ribs = ribs + on * inside * 1.2 * torch.exp(-(((dd - surf) / 0.012) ** 2))
        shadow = shadow * (1 - on * inside * torch.sigmoid((dd - surf - 0.01) / 0.006) * 0.93)

    lung_echo = col("air_level") + alines * (1 - bl_profile) * (1 - cons) + blines * (1 - cons)
    lung_echo = lung_echo * (1 - cons) + cons * col("cons_level") + spots + shred_line
    amp = above * wall * s_wall + (pleura + ribs) * s_lung + below * lung_echo * s_lung
    amp = amp * shadow

    # --- image formation: attenuation with time-gain compensation, log compression, gain --------------------
    amp = amp * torch.exp(-col("atten") * d) * (1 + col("tgc") * d)
    comp = col("compress")
    img = torch.log1p(comp * amp) / torch.log1p(comp * 2.0)

    # --- scan conversion to the display grid --------------------------------------------------------------
    y = ((torch.arange(h, dtype=torch.float32) + 0.5) / h).view(1, h, 1)
    x = ((torch.arange(w, dtype=torch.float32) + 0.5) / w - 0.5).view(1, 1, w)
    apex = col("apex").view(b, 1, 1)
    theta = col("theta").view(b, 1, 1)
    r = torch.sqrt(x**2 * (w / h) ** 2 + (y + apex) ** 2)
    ang = torch.atan2(x * (w / h), y + apex)
    r0 = apex
    r1 = r0 + col("depth_span").view(b, 1, 1)  # a wide fan may be clipped by the frame's sides
    sec_u = ang / theta
    sec_d = (r - r0) / (r1 - r0)
    lin_u = (x * 2).expand(b, h, w)
    lin_d = y.expand(b, h, w)
    is_sec = col("sector").view(b, 1, 1) > 0.5
    gu = torch.where(is_sec, sec_u, lin_u)
    gd = torch.where(is_sec, sec_d, lin_d)
    inside_fov = (gu.abs() <= 1) & (gd >= 0) & (gd <= 1)  # (B, H, W)
    grid = torch.stack([gu, gd * 2 - 1], dim=-1)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mask = F.grid_sample(cons * shadow, grid, mode="bilinear", padding_mode="border", align_corners=False)
    fovf = inside_fov.unsqueeze(1).float()
    # smooth the edge of the sector a little, as scanners do
    out = out * fovf
    mask = (mask > 0.5) & inside_fov.unsqueeze(1)

    # --- gain: the mean brightness inside the field of view is a random target, whatever the class -----------
    nf = fovf.sum(dim=(1, 2, 3), keepdim=True).clamp(min=1) * t
    mean = out.sum(dim=(1, 2, 3), keepdim=True) / nf
    for _ in range(2):  # two passes so that clipping at 1 barely moves the mean off its target
        out = (out * col("target_mean") / mean.clamp(min=1e-6)).clamp(0, 1)
        mean = out.sum(dim=(1, 2, 3), keepdim=True) / nf
    out = (out + col("enoise") * fresh[:, :, 0]) * fovf  # a little electronic noise
    videos = (out.clamp(0, 1) * 255).round().to(torch.uint8).unsqueeze(1)

    # --- boxes from the visible consolidation mask --------------------------------------------------------
    rows = mask.any(dim=3)  # (B, T, H)
    cols = mask.any(dim=2)  # (B, T, W)
    has = rows.any(dim=2)
    ar_h = torch.arange(h)
    ar_w = torch.arange(w)
    y0 = torch.where(rows, ar_h, h).amin(dim=2).float()
    y1 = torch.where(rows, ar_h, -1).amax(dim=2).float() + 1
    x0 = torch.where(cols, ar_w, w).amin(dim=2).float()
    x1 = torch.where(cols, ar_w, -1).amax(dim=2).float() + 1
    boxes = torch.stack([x0, y0, x1, y1], dim=-1)
    boxes = torch.where(has.unsqueeze(-1), boxes, torch.full_like(boxes, float("nan")))
    labels = torch.tensor([int(bool(q["consolidation"])) for q in params], dtype=torch.int64)
    fovs = ["sector" if q["sector"] else "linear" for q in params]
    return videos, labels, boxes, fovs


def render_video(
    seed: int,
    *,
    num_frames: int = 16,
    size: int | Sequence[int] = (112, 112),
    consolidation: bool | None = None,
    fov: str | None = None,
    b_lines: bool | None = None,
) -> PhantomVideo:
    """Render one phantom video from a seed.

    Args:
        seed: Any int; the video is a pure function of it and the options.
        num_frames: ``T``.
        size: ``(H, W)`` or an int for square frames.
        consolidation: Force the class (True/False) or draw it from the seed (None, p = 0.5).
        fov: ``"sector"``, ``"linear"`` or None (drawn: 75% sector).
        b_lines: Force B-lines on/off, or None to draw them (p = 0.5, independent of the class).

    Returns:
        A ``PhantomVideo`` with ``video`` ``(1, T, H, W)`` uint8 and ``boxes`` ``(T, N, 4)``.

    Examples:
        >>> a = render_video(5, num_frames=3, size=24)
        >>> b = render_video(5, num_frames=3, size=24)
        >>> bool((a.video == b.video).all())
        True
    """
    videos, labels, boxes, fovs = render_batch(
        [seed], num_frames=num_frames, size=size, consolidation=[consolidation], fov=fov, b_lines=b_lines
    )
    label = int(labels[0])
    bx = boxes[0].unsqueeze(1) if label else boxes[0][:, :0].unsqueeze(1).reshape(num_frames, 0, 4)
    return PhantomVideo(video=videos[0], label=label, boxes=bx, seed=int(seed), fov=fovs[0])


def make_dataset(
    n_videos: int,
    num_frames: int = 16,
    size: int | Sequence[int] = (112, 112),
    seed: int = 0,
    consolidation_fraction: float = 0.5,
    *,
    fov: str | None = None,
    b_lines: bool | None = None,
    chunk_size: int | None = None,
    num_threads: int | None = 1,
) -> PhantomData:
    """Render ``n_videos`` phantom videos with an exact class balance.

    ``round(n_videos * consolidation_fraction)`` videos are positive, at positions chosen by a seeded permutation.
    Video ``i`` is ``render_video(video_seed(seed, i), consolidation=bool(labels[i]))``.

    Args:
        n_videos: Number of videos ``N`` (>= 0).
        num_frames: ``T``.
        size: ``(H, W)`` or an int.
        seed: Dataset seed.
        consolidation_fraction: Fraction of positive videos, in [0, 1].
        fov: Force the field of view for all videos, or None to draw it per video.
        b_lines: Force B-lines on/off for all videos, or None to draw them per video.
        chunk_size: Videos rendered per vectorised batch (memory versus speed; the result does not depend on it).
            None: as many as hold about 400,000 pixels (2 videos of 16x112x112): small chunks stay in the CPU's
            caches and were faster than 32-video chunks; peak working memory about 75 MiB instead of about 0.8 GiB.
        num_threads: torch threads while rendering (the previous setting is restored afterwards); None keeps the
            current setting. One by default: on a 2-core machine two threads were 1.4-9x slower in every run here.

    Returns:
        A ``PhantomData``.

    Examples:
        >>> data = make_dataset(4, num_frames=2, size=16, seed=1)
        >>> tuple(data.videos.shape), data.labels.sum().item(), len(data.boxes)
        ((4, 1, 2, 16, 16), 2, 4)
    """
    if not isinstance(n_videos, int) or n_videos < 0:
        raise fail("n_videos", n_videos, "an int >= 0")
    if not 0.0 <= float(consolidation_fraction) <= 1.0:
        raise fail("consolidation_fraction", consolidation_fraction, "a fraction in [0, 1]")
    h, w = _check_size(size)
    if chunk_size is None:
        chunk_size = max(1, (2 * 16 * 112 * 112) // (max(1, num_frames) * h * w))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise fail("chunk_size", chunk_size, "None or an int >= 1")
    n_pos = round(n_videos * float(consolidation_fraction))
    g = torch.Generator().manual_seed(video_seed(seed, -1))
    perm = torch.randperm(n_videos, generator=g)
    labels = torch.zeros(n_videos, dtype=torch.int64)
    labels[perm[:n_pos]] = 1
    seeds = [video_seed(seed, i) for i in range(n_videos)]
    if num_threads is not None and (
        isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
    ):
        raise fail("num_threads", num_threads, "None or an int >= 1")
    videos = torch.empty(n_videos, 1, num_frames, h, w, dtype=torch.uint8)
    boxes: list[torch.Tensor] = []
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        _render_into(videos, boxes, seeds, labels, chunk_size, num_frames, (h, w), fov, b_lines)
    finally:
        torch.set_num_threads(old_threads)
    return PhantomData(
        videos=videos, labels=labels, boxes=boxes, seeds=torch.tensor(seeds, dtype=torch.int64)
    )


def _render_into(
    videos: torch.Tensor,
    boxes: list[torch.Tensor],
    seeds: list[int],
    labels: torch.Tensor,
    chunk_size: int,
    num_frames: int,
    size: tuple[int, int],
    fov: str | None,
    b_lines: bool | None,
) -> None:
    n_videos = len(seeds)
    h, w = size
    for s in range(0, n_videos, chunk_size):
        e = min(n_videos, s + chunk_size)
        v, lab, bx, _ = render_batch(
            seeds[s:e],
            num_frames=num_frames,
            size=(h, w),
            consolidation=[bool(x) for x in labels[s:e]],
            fov=fov,
            b_lines=b_lines,
        )
        videos[s:e] = v
        for i in range(e - s):
            boxes.append(bx[i].unsqueeze(1) if lab[i] else torch.zeros(num_frames, 0, 4))
