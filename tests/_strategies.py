"""Composite hypothesis strategies: they draw shapes, parameters and a seed, never element-wise arrays."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8]


@st.composite
def shapes(
    draw: st.DrawFn, min_t: int = 1, max_b: int = 4, max_t: int = 8, max_hw: int = 12
) -> tuple[int, ...]:
    B = draw(st.integers(1, max_b))
    C = draw(st.sampled_from([1, 3]))
    T = draw(st.integers(min_t, max_t))
    H = draw(st.integers(2, max_hw))
    W = draw(st.integers(2, max_hw))
    return (B, C, T, H, W)


def make_video(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A video built from a seed: smooth-ish random content in [0, 1] (or [0, 255] for uint8)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(shape, generator=g, dtype=torch.float64)
    if dtype == torch.uint8:
        return (v * 255).round().to(torch.uint8)
    return v.to(dtype)


seeds = st.integers(0, 2**31 - 1)


def both_executors(aug, video: torch.Tensor, seed: int, threads: int, **extra):  # type: ignore[no-untyped-def]
    """``(streamed, record, batched)``: the CPU executor's output and record at ``threads`` torch threads,
    and the batched executor's replay of that record (``extra``: keywords for both calls, e.g. ``probe``)."""
    import vidaug3d.engine as ve

    torch.set_num_threads(threads)
    try:
        streamed, rec = aug(video, seed=seed, return_params=True, **extra)
        ve._STREAM_CPU = False
        batched = aug(video, params=rec, **extra)
    finally:
        ve._STREAM_CPU = True
        torch.set_num_threads(1)
    return streamed, rec, batched


def box_targets(
    B: int, T: int, H: int, W: int, seed: int, size: tuple[int, int], lo: int, hi: int
) -> dict[str, torch.Tensor]:
    """A random ``size = (w, h)`` box per clip (top-left corner in ``[lo, hi)``), the same box drawn into a
    ``(B, T, H, W)`` uint8 mask, and its centre as a keypoint: targets whose agreement a pipeline must keep."""
    w, h = size
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randint(lo, hi, (B,), generator=g)
    y0 = torch.randint(lo, hi, (B,), generator=g)
    boxes = torch.stack([x0, y0, x0 + w, y0 + h], 1).double()[:, None]  # (B, 1, 4) per clip
    cols, rows = torch.arange(W), torch.arange(H)
    inside = (
        (cols[None, None, :] >= x0[:, None, None])
        & (cols[None, None, :] < x0[:, None, None] + w)
        & (rows[None, :, None] >= y0[:, None, None])
        & (rows[None, :, None] < y0[:, None, None] + h)
    )
    masks = inside[:, None].expand(B, T, H, W).to(torch.uint8)
    return {"boxes": boxes, "masks": masks, "keypoints": (boxes[:, :, :2] + boxes[:, :, 2:]) / 2}
