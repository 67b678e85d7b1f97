"""An independent, per-clip, NumPy reference of the eight transforms, for the fused-equals-sequential tests.

Written from the documented semantics only: nothing here calls vidaug3d's kernels. Each function takes
one clip ``(C, T, H, W)`` float64 and that clip's parameters (read from a record).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vidaug3d._noise import normal_field


def affine_forward(angle_deg: float, tx: float, ty: float, scale: float) -> np.ndarray:
    """Forward map in centred pixel coordinates (y down): scale, rotate counter-clockwise, translate."""
    a = math.radians(angle_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    return np.array([[c, s, tx], [-s, c, ty], [0.0, 0.0, 1.0]])


def flip_forward(flip: bool) -> np.ndarray:
    return np.diag([-1.0 if flip else 1.0, 1.0, 1.0])


def bilinear_warp(
    clip: np.ndarray, forward: np.ndarray, size: tuple[int, int] | None = None, padding: str = "zeros"
) -> np.ndarray:
    """Resample every plane of ``clip`` (C, T, H, W) to ``size``: out(p) = in(forward^-1 p).

    ``forward`` maps centred input pixel coordinates to centred output ones; ``padding`` is
    ``"zeros"`` or ``"border"`` for samples from outside the input.
    """
    _C, _T, H, W = clip.shape
    Ho, Wo = (H, W) if size is None else size
    inv = np.linalg.inv(forward)
    rows, cols = np.mgrid[0:Ho, 0:Wo].astype(np.float64)
    xc, yc = cols + 0.5 - Wo / 2, rows + 0.5 - Ho / 2
    xi = inv[0, 0] * xc + inv[0, 1] * yc + inv[0, 2]
    yi = inv[1, 0] * xc + inv[1, 1] * yc + inv[1, 2]
    px, py = xi + W / 2 - 0.5, yi + H / 2 - 0.5
    if padding == "border":
        px, py = np.clip(px, 0, W - 1), np.clip(py, 0, H - 1)
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    wx, wy = px - x0, py - y0
    out = np.zeros((*clip.shape[:2], Ho, Wo))
    for dy, dx, w in (
        (0, 0, (1 - wy) * (1 - wx)),
        (0, 1, (1 - wy) * wx),
        (1, 0, wy * (1 - wx)),
        (1, 1, wy * wx),
    ):
        yy, xx = y0 + dy, x0 + dx
        inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
        vals = clip[:, :, np.clip(yy, 0, H - 1), np.clip(xx, 0, W - 1)]
        out += np.where(inside, w, 0.0) * vals
    return out


def crop_forward(
    box: tuple[float, float, float, float], size: tuple[int, int], frame: tuple[int, int]
) -> np.ndarray:
    """Forward map (centred coordinates) that sends the pixel box (x0, y0, x1, y1) of ``frame`` onto ``size``."""
    x0, y0, x1, y1 = box
    (ho, wo), (hi, wi) = size, frame
    sx, sy = wo / (x1 - x0), ho / (y1 - y0)
    # absolute: X_out = (X_in - x0) sx; centred on each side
    return np.array(
        [[sx, 0.0, sx * (wi / 2 - x0) - wo / 2], [0.0, sy, sy * (hi / 2 - y0) - ho / 2], [0, 0, 1.0]]
    )


def gray_mean(clip: np.ndarray) -> float:
    lum = 0.299 * clip[0] + 0.587 * clip[1] + 0.114 * clip[2] if clip.shape[0] == 3 else clip.mean(axis=0)
    return float(lum.mean())


def paper_pipeline_reference(video: torch.Tensor, record, erase_value: float = 0.0) -> np.ndarray:
    """Apply the paper preset's eight transforms one by one, clip by clip, from a record.

    Returns float64 values in [0, 1] (before any uint8 quantisation).
    """
    v = video.double()
    if video.dtype == torch.uint8:
        v = v / 255.0
    x = v.numpy()
    names = record.names
    assert names == (
        "TemporalReverse",
        "TemporalShuffle",
        "FrameReplace",
        "RandomAffine",
        "RandomHorizontalFlip",
        "ColorJitter",
        "GaussianNoise",
        "RandomErasing",
    ), names
    P = record.params
    out = []
    for b in range(x.shape[0]):
        clip = x[b]
        for i in range(3):  # temporal, one gather each, in order
            clip = clip[:, P[i].frame_map[b].numpy()]
        a = P[3]
        clip = bilinear_warp(
            clip,
            affine_forward(
                float(a.angle[b]), float(a.translate[b, 0]), float(a.translate[b, 1]), float(a.scale[b])
            ),
        )
        if bool(P[4].flip[b]):
            clip = clip[..., ::-1]
        bb, cc = float(P[5].brightness[b]), float(P[5].contrast[b])
        m = bb * gray_mean(clip)
        clip = np.clip(cc * (bb * clip - m) + m, 0.0, 1.0)
        # the noise field is the library's keyed field (checked against its own independent
        # reference in test_noise.py): a pure function of the clip's seed and the element index
        ndt = torch.float64 if video.dtype == torch.float64 else torch.float32
        noise = normal_field(int(P[6].seed[b]), clip.shape, dtype=ndt).double().numpy()
        clip = np.clip(clip + float(P[6].std[b]) * noise, 0.0, 1.0)
        y0, x0, y1, x1 = (int(v) for v in P[7].box[b])
        clip = clip.copy()
        clip[:, :, y0:y1, x0:x1] = erase_value
        out.append(clip)
    return np.stack(out)
