"""Input validation and layout handling shared by every entry point."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ._random import eager
from .errors import fail

__all__ = ["FLOAT_DTYPES", "Layout", "VideoShape", "check_values", "parse_layout", "work_dtype"]

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_CANON = "BCTHW"


@dataclass(frozen=True)
class Layout:
    """A parsed layout: how to move a tensor to ``(B, C, T, H, W)`` and back."""

    name: str
    batched: bool
    to_canon: tuple[int, ...]  # permutation applied to the (batched) input
    from_canon: tuple[int, ...]


@functools.lru_cache(maxsize=32)
def parse_layout(layout: str) -> Layout:
    """Parse a layout name such as ``"BCTHW"``, ``"B T C H W"`` or ``"CTHW"``.

    Examples:
        >>> parse_layout("B T C H W").to_canon
        (0, 2, 1, 3, 4)
    """
    if not isinstance(layout, str):
        raise fail("layout", layout, 'a layout name such as "BCTHW", "BTCHW" or "CTHW"')
    name = layout.replace(" ", "").upper()
    batched = "B" in name
    full = name if batched else "B" + name
    if len(full) != 5 or sorted(full) != sorted(_CANON):
        raise fail(
            "layout",
            layout,
            'a permutation of the letters B, C, T, H, W (B optional), e.g. "BCTHW" or "BTCHW"',
        )
    to_canon = tuple(full.index(ch) for ch in _CANON)
    from_canon = tuple(_CANON.index(ch) for ch in full)
    return Layout(name, batched, to_canon, from_canon)


@dataclass(frozen=True)
class VideoShape:
    """The canonical shape of a batch, ``(B, C, T, H, W)``."""

    B: int
    C: int
    T: int
    H: int
    W: int

    @classmethod
    def of(cls, video: Tensor) -> VideoShape:
        B, C, T, H, W = (int(s) for s in video.shape)
        return cls(B, C, T, H, W)

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.B, self.C, self.T, self.H, self.W)


def to_canonical(video: object, layout: str | None) -> tuple[Tensor, Layout]:
    """Check a video's type, rank, dtype and size and view it as ``(B, C, T, H, W)``.

    Args:
        video: The user's tensor.
        layout: Its layout name, or None for ``"BCTHW"`` (rank 5) / ``"CTHW"`` (rank 4).

    Returns:
        The canonical view (no copy) and the parsed layout, to restore the output with.
    """
    if not isinstance(video, Tensor):
        raise fail("video", type(video).__name__, "a torch.Tensor of shape (B, C, T, H, W)")
    if layout is None:
        if video.dim() == 5:
            layout = "BCTHW"
        elif video.dim() == 4:
            layout = "CTHW"
        else:
            raise fail(
                "video",
                f"a tensor of shape {tuple(video.shape)}",
                "rank 5 (B, C, T, H, W) or rank 4 (C, T, H, W); pass layout= for other orders",
            )
    lay = parse_layout(layout)
    want = 5 if lay.batched else 4
    if video.dim() != want:
        raise fail("video", f"a tensor of shape {tuple(video.shape)}", f"rank {want} for layout {lay.name!r}")
    if video.dtype not in FLOAT_DTYPES and video.dtype != torch.uint8:
        raise fail("video", f"dtype {video.dtype}", "float32, float16, bfloat16, float64 or uint8")
    v = video if lay.batched else video.unsqueeze(0)
    v = v.permute(lay.to_canon)
    B, C, T, H, W = v.shape
    if B == 0:
        raise fail("video", f"an empty batch of shape {tuple(video.shape)}", "at least one clip")
    if min(C, T, H, W) == 0:
        raise fail("video", f"shape {tuple(video.shape)} ({lay.name})", "non-empty C, T, H and W")
    return v, lay


def from_canonical(out: Tensor, lay: Layout) -> Tensor:
    """Undo ``to_canonical`` on an output tensor."""
    out = out.permute(lay.from_canon)
    if lay.name not in ("BCTHW", "CTHW"):
        out = out.contiguous()
    return out if lay.batched else out.squeeze(0)


@eager  # reads values on the host: a graph break either way, so keep it out of compiled graphs
def check_values(video: Tensor, clip: int | None = None) -> None:
    """Reject NaN and inf in a float video (one reduction pass); any finite value is accepted.

    The value range belongs to the transforms that clamp (their ``value_range``), not to the input.
    This reads the tensor's values: on CUDA it synchronises with the host, so the pipelines call it
    on CPU tensors only unless asked to. ``clip`` names the batch index of a one-clip ``video`` in
    the message (the CPU executor checks each clip in its task, while the clip is in cache).
    """
    if video.dtype == torch.uint8:
        return
    # a sum is finite iff every value is, unless large finite values overflow it: only then look closer
    # (the sum is the cheapest full reduction here, about 2/3 of aminmax's time)
    if math.isfinite(
        float(video.detach().sum(dtype=torch.float32 if video.dtype != torch.float64 else None))
    ):
        return
    lo, hi = torch.aminmax(video.detach())
    if not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
        where = "" if clip is None else f" (in clip {clip})"
        raise fail("video", "a tensor containing NaN or inf" + where, "finite values")


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype arithmetic runs in: float64 stays float64, everything else computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32
