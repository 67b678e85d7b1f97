"""Targets that follow the video: boxes, keypoints, masks and frame-level labels.

Coordinates are in pixels of the canonical ``(H, W)`` frame: a box is ``(x0, y0, x1, y1)`` with
``0 <= x <= W``; a keypoint is ``(x, y)``, the centre of pixel ``(row, col)`` being
``(col + 0.5, row + 0.5)``. Shapes (the batch dimension first):

- ``boxes``: ``(B, N, 4)`` per clip, or ``(B, T, N, 4)`` per frame;
- ``keypoints``: ``(B, N, 2)`` per clip, or ``(B, T, N, 2)`` per frame;
- ``masks``: ``(B, T, H, W)`` or ``(B, K, T, H, W)``, any dtype (resampled with nearest neighbour);
- ``frame_labels``: ``(B, T, ...)``, any dtype.

Per-frame targets follow the frame order; per-clip targets hold for every frame and only follow the
geometry (a geometry that varies over the clip, ``vary="frame"`` or ``"drift"``, makes them per-frame). A box is mapped by transforming its four corners and taking their bounding box, clipped
to the frame (a box pushed out of the frame becomes empty: ``x0 == x1`` or ``y0 == y1``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from . import functional as VF
from .errors import fail

__all__ = ["TARGET_KEYS", "check_targets", "gather_targets", "warp_targets"]

TARGET_KEYS = ("boxes", "keypoints", "masks", "frame_labels")


def check_targets(targets: Mapping[str, Tensor], B: int, T: int, H: int, W: int) -> dict[str, Tensor]:
    """Validate target shapes against the (canonical) video; returns a plain dict."""
    if not isinstance(targets, Mapping):
        raise fail("targets", type(targets).__name__, f"a mapping with keys among {TARGET_KEYS}")
    out: dict[str, Tensor] = {}
    for key, value in targets.items():
        if key not in TARGET_KEYS:
            raise fail("targets", key, f"keys among {TARGET_KEYS}")
        if not isinstance(value, Tensor):
            raise fail(f"targets[{key!r}]", type(value).__name__, "a torch.Tensor")
        s = tuple(value.shape)
        if key in ("boxes", "keypoints"):
            d = 4 if key == "boxes" else 2
            ok = (len(s) == 3 and s[0] == B and s[2] == d) or (len(s) == 4 and s[:2] == (B, T) and s[3] == d)
            if not ok:
                raise fail(
                    f"targets[{key!r}]", s, f"shape ({B}, N, {d}) per clip or ({B}, {T}, N, {d}) per frame"
                )
            if not value.is_floating_point():
                raise fail(f"targets[{key!r}]", str(value.dtype), "a float tensor of pixel coordinates")
            if not bool(torch.isfinite(value).all()):
                raise fail(f"targets[{key!r}]", "non-finite coordinates", "finite coordinates")
        elif key == "masks":
            ok = (len(s) == 4 and s == (B, T, H, W)) or (len(s) == 5 and s[0] == B and s[2:] == (T, H, W))
            if not ok:
                raise fail("targets['masks']", s, f"shape ({B}, {T}, {H}, {W}) or ({B}, K, {T}, {H}, {W})")
        else:
            if len(s) < 2 or s[:2] != (B, T):
                raise fail("targets['frame_labels']", s, f"shape ({B}, {T}, ...)")
        out[key] = value
    return out


def _gather_dim1(x: Tensor, frame_map: Tensor) -> Tensor:
    fm = frame_map.to(x.device)
    idx = fm.view(*fm.shape, *([1] * (x.dim() - 2))).expand(*fm.shape, *x.shape[2:])
    return x.gather(1, idx)


def gather_targets(targets: dict[str, Tensor], frame_map: Tensor) -> dict[str, Tensor]:
    """Apply a ``(B, T)`` frame map to the per-frame targets."""
    out = dict(targets)
    for key in ("boxes", "keypoints"):
        if key in out and out[key].dim() == 4:
            out[key] = _gather_dim1(out[key], frame_map)
    if "frame_labels" in out:
        out["frame_labels"] = _gather_dim1(out["frame_labels"], frame_map)
    if "masks" in out:
        m = out["masks"]
        out["masks"] = _gather_dim1(m, frame_map) if m.dim() == 4 else VF.gather_frames(m, frame_map)
    return out


def _apply_points(matrix: Tensor, pts: Tensor, size_in: tuple[int, int], size_out: tuple[int, int]) -> Tensor:
    """Map ``(B, ..., 2)`` pixel points with ``(B, 3, 3)`` centred forward matrices, or
    ``(B, T, ..., 2)`` points with per-frame ``(B, T, 3, 3)`` ones."""
    m = matrix.to(device=pts.device, dtype=torch.float64)
    shape = pts.shape
    if m.dim() == 4:
        m = m.reshape(-1, 3, 3)
    p = pts.to(torch.float64).reshape(m.shape[0], -1, 2)
    c_in = torch.tensor([size_in[1] / 2.0, size_in[0] / 2.0], dtype=torch.float64, device=pts.device)
    c_out = torch.tensor([size_out[1] / 2.0, size_out[0] / 2.0], dtype=torch.float64, device=pts.device)
    q = (p - c_in) @ m[:, :2, :2].transpose(1, 2) + m[:, None, :2, 2] + c_out
    return q.reshape(shape).to(pts.dtype)


def warp_targets(
    targets: dict[str, Tensor], matrix: Tensor, size_in: tuple[int, int], size_out: tuple[int, int]
) -> dict[str, Tensor]:
    """Apply ``(B, 3, 3)`` forward matrices from ``size_in`` to ``size_out`` frames to boxes, keypoints, masks.

    With per-frame ``(B, T, 3, 3)`` matrices (a drifting geometry) per-clip boxes and keypoints
    become per-frame ones, ``(B, T, N, 4)`` and ``(B, T, N, 2)``, and a mask with one frame for all
    (a field of view) gets one per frame.
    """
    out = dict(targets)
    Ho, Wo = size_out
    if matrix.dim() == 4:
        B, T = matrix.shape[:2]
        for key in ("boxes", "keypoints"):
            if key in out and out[key].dim() == 3:
                out[key] = out[key].unsqueeze(1).expand(B, T, *out[key].shape[1:])
        if "masks" in out and out["masks"].shape[-3] == 1 and T > 1:
            out["masks"] = out["masks"].expand(*out["masks"].shape[:-3], T, *out["masks"].shape[-2:])
    if "keypoints" in out:
        out["keypoints"] = _apply_points(matrix, out["keypoints"], size_in, size_out)
    if "boxes" in out:
        b = out["boxes"]
        x0, y0, x1, y1 = b.unbind(-1)
        corners = torch.stack(
            [
                torch.stack([x0, y0], -1),
                torch.stack([x1, y0], -1),
                torch.stack([x0, y1], -1),
                torch.stack([x1, y1], -1),
            ],
            dim=-2,
        )
        q = _apply_points(matrix, corners, size_in, size_out)
        lo = q.amin(dim=-2)
        hi = q.amax(dim=-2)
        nb = torch.cat([lo, hi], dim=-1)
        bound = torch.tensor([Wo, Ho, Wo, Ho], dtype=nb.dtype, device=nb.device)
        out["boxes"] = torch.minimum(nb.clamp(min=0), bound)
    if "masks" in out:
        m = out["masks"]
        five = m if m.dim() == 5 else m.unsqueeze(1)
        dt = five.dtype
        warped = VF.resample_work(
            five.to(torch.float32), matrix.to(torch.float64), size_out, mode="nearest", antialias=False
        )
        warped = warped.round().to(dt) if not dt.is_floating_point else warped.to(dt)
        out["masks"] = warped if m.dim() == 5 else warped.squeeze(1)
    return out
