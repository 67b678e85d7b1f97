"""Occlusion saliency of a video encoder, boxes around salient regions, and IoU with ground-truth boxes.

Definitions (the report, ``docs/reproduction.md``, refers to these):

- **Occlusion saliency.** A window of ``(wt, wh, ww)`` voxels slides over the clip with stride
  ``(st, sh, sw)`` (the last window of each axis is moved back to end at the border, so every voxel is
  covered). Each occluded copy replaces the window by ``fill`` (a constant, or the clip's mean). The score of a
  copy is a scalar per clip: the classifier's positive-class logit (:func:`logit_score`), or minus the L2
  distance between the encoder features of the copy and of the clean clip (:func:`feature_distance_score`).
  The **drop** of a window is ``score(clean) - score(occluded)``; the saliency of a voxel is the mean drop of
  the windows that cover it. All occluded copies are built by broadcasting three 1-D window indicators and
  scored in batches of ``batch_size`` clips (one forward per batch, not per window); the accumulation is one
  ``einsum``.
- **Kept pixels.** Per frame, the pixels whose saliency is at least the frame's ``ceil(0.1 * H * W)``-th
  largest value (top 10 %; ties at the threshold are kept).
- **Regions and boxes.** Connected components of the kept pixels (8-connectivity, ``scipy.ndimage.label``);
  each component's minimum encompassing box ``(x0, y0, x1, y1)`` in pixels, half-open (``x1``, ``y1``
  exclusive, so the area is ``(x1 - x0) * (y1 - y0)``). A component's **weight** is its share of the
  positive saliency of all kept pixels, ``w_k = sum_{p in C_k} max(s_p, 0) / sum_{p kept} max(s_p, 0)``
  (shares of pixel count if no kept saliency is positive).
- **IoU of a frame.** For each predicted box ``P_k``, ``iou_k = max_j IoU(P_k, G_j)`` over the frame's
  ground-truth boxes ``G_j``. The frame's **IoU** is ``max_k iou_k`` (the best salient region) and its
  **weighted IoU** is ``sum_k w_k * iou_k`` (the saliency-weighted mean, which also penalises salient
  regions away from the target). Frames without a ground-truth box are not scored; a frame with no kept
  region scores 0. A clip's figure is the mean over its scored frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), half-open pixel box


# --------------------------------------------------------------------------------------- occlusion


def _starts(size: int, window: int, stride: int) -> list[int]:
    if window > size:
        raise ValueError(f"window: expected at most the clip size {size}, got {window}")
    if window < 1 or stride < 1:
        raise ValueError(f"window/stride: expected positive sizes, got {window}/{stride}")
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def window_indicators(
    shape: tuple[int, int, int], window: tuple[int, int, int], stride: tuple[int, int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """1-D indicators of every occlusion window, ``(N, T)``, ``(N, H)``, ``(N, W)`` float32 in {0, 1}.

    Window ``n`` covers voxel ``(t, h, w)`` iff ``it[n, t] * ih[n, h] * iw[n, w] == 1``.
    """
    axes = []
    for size, win, st in zip(shape, window, stride, strict=True):
        starts = torch.tensor(_starts(size, win, st))
        pos = torch.arange(size)
        axes.append(((pos[None] >= starts[:, None]) & (pos[None] < starts[:, None] + win)).float())
    at, ah, aw = axes
    nt, nh, nw = at.shape[0], ah.shape[0], aw.shape[0]
    it = at[:, None, None, :].expand(nt, nh, nw, -1).reshape(-1, shape[0])
    ih = ah[None, :, None, :].expand(nt, nh, nw, -1).reshape(-1, shape[1])
    iw = aw[None, None, :, :].expand(nt, nh, nw, -1).reshape(-1, shape[2])
    return it, ih, iw


def _fill_value(video: torch.Tensor, fill: float | str) -> torch.Tensor | float:
    if fill == "mean":
        return video.mean(dim=(1, 2, 3), keepdim=True)
    if isinstance(fill, str):
        raise ValueError(f"fill: expected a number or 'mean', got {fill!r}")
    return float(fill)


@torch.no_grad()
def occlusion_saliency(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    video: torch.Tensor,
    window: tuple[int, int, int] = (4, 16, 16),
    stride: tuple[int, int, int] = (4, 8, 8),
    *,
    fill: float | str = 0.0,
    batch_size: int = 64,
) -> torch.Tensor:
    """Batched occlusion saliency of one clip.

    Args:
        score_fn: maps a batch ``(B, C, T, H, W)`` float to scores ``(B,)``.
        video: ``(C, T, H, W)`` float clip.
        window: occluded block ``(wt, wh, ww)`` in voxels.
        stride: window stride ``(st, sh, sw)``.
        fill: value of the occluded block, a number or ``"mean"`` (per-channel clip mean).
        batch_size: occluded copies scored per forward call.

    Returns:
        ``(T, H, W)`` saliency: mean score drop of the windows covering each voxel.
    """
    if video.ndim != 4:
        raise ValueError(f"video: expected (C, T, H, W), got shape {tuple(video.shape)}")
    video = video.float()
    shape = (int(video.shape[1]), int(video.shape[2]), int(video.shape[3]))
    it, ih, iw = window_indicators(shape, window, stride)
    base = score_fn(video[None]).reshape(-1)[0].float()
    fillv = _fill_value(video, fill)
    drops = []
    for s in range(0, it.shape[0], batch_size):
        m = (
            it[s : s + batch_size, :, None, None]
            * ih[s : s + batch_size, None, :, None]
            * iw[s : s + batch_size, None, None, :]
        )[:, None]  # (n, 1, T, H, W)
        occluded = video[None] * (1.0 - m) + m * fillv
        drops.append(base - score_fn(occluded).reshape(-1).float())
    d = torch.cat(drops)
    total = torch.einsum("n,nt,nh,nw->thw", d, it, ih, iw)
    count = torch.einsum("nt,nh,nw->thw", it, ih, iw)
    return total / count.clamp_min(1.0)


@torch.no_grad()
def occlusion_saliency_naive(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    video: torch.Tensor,
    window: tuple[int, int, int] = (4, 16, 16),
    stride: tuple[int, int, int] = (4, 8, 8),
    *,
    fill: float | str = 0.0,
) -> torch.Tensor:
    """Reference implementation: one forward per window, explicit loops (for tests)."""
    video = video.float()
    _, t, h, w = video.shape
    fillv = _fill_value(video, fill)
    base = float(score_fn(video[None]).reshape(-1)[0])
    total = torch.zeros(t, h, w)
    count = torch.zeros(t, h, w)
    for t0 in _starts(t, window[0], stride[0]):
        for h0 in _starts(h, window[1], stride[1]):
            for w0 in _starts(w, window[2], stride[2]):
                x = video.clone()
                sl = (
                    slice(None),
                    slice(t0, t0 + window[0]),
                    slice(h0, h0 + window[1]),
                    slice(w0, w0 + window[2]),
                )
                x[sl] = fillv if isinstance(fillv, float) else fillv.expand_as(x)[sl]
                drop = base - float(score_fn(x[None]).reshape(-1)[0])
                total[sl[1:]] += drop
                count[sl[1:]] += 1
    return total / count.clamp_min(1.0)


def logit_score(classifier: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Score = the classifier's positive-class logit, ``(B, ...) -> (B,)``; the model is put in eval mode."""
    classifier.eval()

    def score(x: torch.Tensor) -> torch.Tensor:
        return classifier(x).reshape(x.shape[0], -1)[:, -1]

    return score


def feature_distance_score(encoder: nn.Module, clean: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Score = minus the L2 distance of the encoder features to those of ``clean`` ``(C, T, H, W)``.

    The drop of an occluded copy is then the distance its features moved, a label-free saliency.
    """
    encoder.eval()
    with torch.no_grad():
        ref = encoder(clean.float()[None])

    def score(x: torch.Tensor) -> torch.Tensor:
        return -torch.linalg.vector_norm(encoder(x) - ref, dim=1)

    return score


# ------------------------------------------------------------------------------- regions and boxes


def top_fraction_mask(saliency: torch.Tensor | np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Per-frame mask of the top ``fraction`` of pixels: ``(H, W)`` or ``(T, H, W)`` -> bool, same shape.

    A pixel is kept when its value is at least the frame's ``ceil(fraction * H * W)``-th largest (ties kept).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction: expected a value in (0, 1], got {fraction}")
    s = np.asarray(saliency, dtype=np.float64)
    squeeze = s.ndim == 2
    if squeeze:
        s = s[None]
    if s.ndim != 3:
        raise ValueError(f"saliency: expected (H, W) or (T, H, W), got shape {s.shape}")
    flat = s.reshape(s.shape[0], -1)
    k = max(1, math.ceil(fraction * flat.shape[1]))
    thresh = -np.partition(-flat, k - 1, axis=1)[:, k - 1]
    mask = s >= thresh[:, None, None]
    return mask[0] if squeeze else mask


def regions(mask: np.ndarray, saliency: np.ndarray | None = None) -> tuple[list[Box], list[float]]:
    """Boxes around the 8-connected regions of a 2-D mask and each region's saliency weight.

    Args:
        mask: ``(H, W)`` bool.
        saliency: ``(H, W)`` saliency for the weights (see the module docstring); pixel counts if ``None``.

    Returns:
        ``(boxes, weights)``: half-open ``(x0, y0, x1, y1)`` boxes in label order and weights summing to 1
        (empty lists for an empty mask).
    """
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask: expected (H, W), got shape {mask.shape}")
    lab, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return [], []
    boxes: list[Box] = []
    for sl in ndimage.find_objects(lab):
        assert sl is not None
        boxes.append((int(sl[1].start), int(sl[0].start), int(sl[1].stop), int(sl[0].stop)))
    idx = np.arange(1, n + 1)
    if saliency is not None:
        pos = np.clip(np.asarray(saliency, dtype=np.float64), 0.0, None)
        mass = np.asarray(ndimage.sum_labels(pos, lab, idx), dtype=np.float64)
        if mass.sum() <= 0:
            mass = np.asarray(ndimage.sum_labels(mask, lab, idx), dtype=np.float64)
    else:
        mass = np.asarray(ndimage.sum_labels(mask, lab, idx), dtype=np.float64)
    return boxes, (mass / mass.sum()).tolist()


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two half-open boxes ``(x0, y0, x1, y1)``; 0 when the union is empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return float(inter / union) if union > 0 else 0.0


def frame_iou(
    pred_boxes: Sequence[Sequence[float]], weights: Sequence[float], gt_boxes: Sequence[Sequence[float]]
) -> tuple[float, float]:
    """``(IoU, weighted IoU)`` of one frame, as defined in the module docstring."""
    if len(gt_boxes) == 0:
        raise ValueError("gt_boxes: expected at least one ground-truth box for a scored frame")
    if len(pred_boxes) == 0:
        return 0.0, 0.0
    ious = np.array([max(box_iou(p, g) for g in gt_boxes) for p in pred_boxes])
    return float(ious.max()), float(np.dot(np.asarray(weights, dtype=np.float64), ious))


def clip_iou(
    saliency: torch.Tensor | np.ndarray,
    gt_boxes: Sequence[Sequence[Sequence[float]]],
    fraction: float = 0.1,
) -> dict[str, float]:
    """Mean IoU and weighted IoU over the frames of a clip that have ground-truth boxes.

    Args:
        saliency: ``(T, H, W)`` saliency.
        gt_boxes: per frame, a list of ``(x0, y0, x1, y1)`` boxes (empty list: frame not scored).
        fraction: fraction of pixels kept per frame.

    Returns:
        ``{"iou", "wiou", "frames"}`` (``nan`` when no frame has a box).
    """
    s = np.asarray(saliency, dtype=np.float64)
    if len(gt_boxes) != s.shape[0]:
        raise ValueError(f"gt_boxes: expected one entry per frame ({s.shape[0]}), got {len(gt_boxes)}")
    mask = top_fraction_mask(s, fraction)
    ious, wious = [], []
    for t in range(s.shape[0]):
        if len(gt_boxes[t]) == 0:
            continue
        boxes, w = regions(mask[t], s[t])
        i, wi = frame_iou(boxes, w, gt_boxes[t])
        ious.append(i)
        wious.append(wi)
    if not ious:
        return {"iou": math.nan, "wiou": math.nan, "frames": 0}
    return {"iou": float(np.mean(ious)), "wiou": float(np.mean(wious)), "frames": len(ious)}


# --------------------------------------------------------------------------------------- a whole evaluation


def saliency_study(
    scorers: dict[str, Callable[[torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]],
    videos: torch.Tensor,
    boxes: Sequence[Sequence[Sequence[Sequence[float]]]],
    indices: Sequence[int],
    window: tuple[int, int, int],
    stride: tuple[int, int, int],
    *,
    fraction: float = 0.1,
    keep: int = 3,
    examples_of: str | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Occlusion saliency IoU of several scorers on the same videos (the study's phantom localisation).

    Args:
        scorers: name -> ``make_score(clean_clip)``, the clip's score function (:func:`logit_score`,
            :func:`feature_distance_score`).
        videos: ``(N, 1, T, H, W)`` uint8 clips.
        boxes: per video, per frame, its ground-truth boxes ``(x0, y0, x1, y1)``.
        indices: the videos to score (positives: they have boxes).
        window, stride: the occlusion window and stride ``(t, h, w)``.
        fraction: pixels kept per frame for the boxes (:func:`clip_iou`).
        keep: how many of the first videos' maps to return as examples.
        examples_of: the scorer whose run also stores those videos and their boxes.

    Returns:
        ``(summary, examples)``: per scorer the mean and Student-t interval of IoU and weighted IoU over the
        videos and the per-video values; ``{"videos", "boxes", "maps": {scorer: [maps]}}`` for plots.
    """
    from reference.data import to_float
    from reference.evaluate import t_interval

    summary: dict[str, dict[str, Any]] = {}
    examples: dict[str, Any] = {"videos": [], "boxes": [], "maps": {}}
    for name, make_score in scorers.items():
        ious, wious = [], []
        examples["maps"][name] = []
        for j, i in enumerate(indices):
            video = to_float(videos[i])
            sal = occlusion_saliency(make_score(video), video, window, stride, fill="mean", batch_size=64)
            gt = [[tuple(b.tolist()) for b in boxes[i][t]] for t in range(video.shape[1])]
            r = clip_iou(sal, gt, fraction=fraction)
            ious.append(r["iou"])
            wious.append(r["wiou"])
            if j < keep:
                examples["maps"][name].append(sal.numpy())
                if name == examples_of:
                    examples["videos"].append(videos[i, 0].numpy())
                    examples["boxes"].append(gt)
        summary[name] = {
            "iou": t_interval(ious),
            "wiou": t_interval(wious),
            "n_videos": len(ious),
            "per_video_iou": ious,
            "per_video_wiou": wious,
        }
    return summary, examples
