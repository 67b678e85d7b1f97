"""The engine: a plan of typed stages, parameters drawn through the shapes, and two executors.

A plan groups consecutive transforms of one kind into a ``Stage`` once, at construction:

- ``TemporalStage``: the transforms' ``(B, T_out)`` frame maps compose into one map (one gather);
  a map may pick, repeat or drop frames, so ``T`` may change;
- ``GeometricStage``: the transforms' matrices multiply into one matrix per clip, and every
  frame of a clip is resampled once from the stage's input ``(H, W)`` to its output ``(H, W)``
  (crops and resizes are matrices too); transforms that need different interpolation or padding
  start a new stage; a stage of exact maps (flips, whole-pixel crops) moves data instead;
- ``ValueStage``: colour, noise, erasing and the like run in place on one float working tensor.

At call time a record is drawn transform by transform, each for the shape it receives; each stage
*cooks* its transforms' parameters for the batch once (a composed map, matrices, sampling grids'
thetas), then runs. Two executors run a plan, with identical results: on the CPU (no autograd) the
whole plan runs clip by clip in a thread pool, so a clip is gathered, resampled and coloured while it
is in cache, and only the output is batch-sized; on CUDA and for inputs that require grad each
stage runs once over the batch.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Union

import torch
from torch import Tensor

from . import functional as VF
from ._random import ClipKeys, Draw, eager, make_keys, per_clip
from ._video import Layout, VideoShape, check_values, from_canonical, to_canonical, work_dtype
from .errors import VidaugError, fail
from .functional import ValueRange
from .params import Record, TransformParams, same_probe
from .targets import check_targets, gather_targets, warp_targets

if TYPE_CHECKING:
    from .base import Transform

__all__ = [
    "CallResult",
    "Context",
    "GeometricStage",
    "Plan",
    "Stage",
    "TemporalStage",
    "ValueStage",
]

CallResult = Union[Tensor, tuple[Any, ...]]  # noqa: UP007 (a runtime alias on Python 3.10)

# CPU inputs without autograd run through the streamed (clip-by-clip) executor; tests switch it off
# to compare it with the batched one.
_STREAM_CPU = True


def streams(video: Tensor) -> bool:
    """Whether the clip-streamed CPU executor runs this canonical video."""
    return video.device.type == "cpu" and not video.requires_grad and video.shape[0] > 0 and _STREAM_CPU


class Work(NamedTuple):
    """The tensor between stages and whether this call made it (then it may be changed in place)."""

    x: Tensor
    owned: bool


def _as_work(w: Work) -> Tensor:
    """A float working tensor that may be modified in place (converting or copying if needed)."""
    if w.owned and w.x.dtype == work_dtype(w.x.dtype):
        return w.x
    return VF.to_work(w.x, copy=not w.owned)


@dataclass(frozen=True)
class Context:
    """What every stage of one call sees besides its parameters.

    Attributes:
        value_range: The range value transforms clamp to, in working units (uint8 works in
            [0, 1]), or None for unbounded.
        dtype: The input video's dtype.
        fov: The field of view as the stage receives the video: a ``(B, 1, 1|T, H, W)`` bool mask
            (moved by the geometric and temporal stages before it), or None. Value stages change
            only the pixels inside it.
        probe: The probe geometry (``vidaug3d.ultrasound.ProbeGeometry``, one per clip) in the
            stage's input coordinates, or None: none was given, or a geometric stage has moved the
            frame since (``probe_moved``).
        probe_moved: True when a probe was given but a geometric stage ran before this one.
        shape: The shape the stage's transforms see (set while a value stage prepares them).
    """

    value_range: ValueRange
    dtype: torch.dtype
    fov: Tensor | None = None
    probe: Any = None
    probe_moved: bool = False
    shape: VideoShape | None = None


# ----------------------------------------------------------------------------------------------- stages
class Stage:
    """A run of consecutive transforms of one kind that executes as one step.

    Subclasses cook the members' parameters for a batch (``cook``) and run the cooked step over
    the batch (``run_batch``) or on one clip (``run_clip``); they move targets and invert
    where they can. ``shapes`` passed to ``cook`` are the shapes the members receive, followed by
    the stage's output shape.
    """

    def __init__(self, transforms: Sequence[Transform], slots: Sequence[int]) -> None:
        self.transforms = tuple(transforms)
        self.slots = tuple(slots)

    @classmethod
    def accepts(cls, members: Sequence[Transform], t: Transform) -> bool:
        """Whether ``t`` can join a stage of ``members`` and fuse with them correctly."""
        return True

    @property
    def names(self) -> str:
        return ", ".join(getattr(t, "name", type(t).__name__) for t in self.transforms)

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self.slots}"

    def cook(self, params: Sequence[TransformParams], shapes: Sequence[VideoShape], ctx: Context) -> Any:
        raise NotImplementedError

    def run_batch(self, w: Work, cooked: Any, ctx: Context) -> Work:
        raise NotImplementedError

    def run_clip(self, w: Work, cooked: Any, b: int, ctx: Context) -> Work:
        raise NotImplementedError

    def move_targets(self, targets: dict[str, Tensor], cooked: Any) -> dict[str, Tensor]:
        return targets

    def invert(self, x: Tensor, cooked: Any) -> Tensor:
        raise VidaugError(
            f"inverse: {self.names} cannot be inverted; pass strict=False to undo only geometry and frame order"
        )


@dataclass(frozen=True)
class FrameMap:
    """A temporal stage cooked for one call: the ``(B, T_out)`` map and, per clip, ``(first, step)`` of its run."""

    index: Tensor
    runs: list[tuple[int, int]]


class TemporalStage(Stage):
    """Frame-index maps composed into one ``(B, T_out)`` map into the stage's input frames."""

    def cook(self, params: Sequence[TransformParams], shapes: Sequence[VideoShape], ctx: Context) -> FrameMap:
        total: Tensor | None = None
        for t, p, s in zip(self.transforms, params, shapes, strict=False):
            m = t.frame_map(p, s).to(torch.int64)  # type: ignore[attr-defined]
            total = m if total is None else total.gather(1, m)  # out = x[m1][m2] = x[m1[m2]]
        assert total is not None
        return FrameMap(total, _runs(total))  # the runs of the whole batch at once, not per clip task

    def run_batch(self, w: Work, cooked: FrameMap, ctx: Context) -> Work:
        return Work(VF.gather_frames(w.x, cooked.index), True)

    def run_clip(self, w: Work, cooked: FrameMap, b: int, ctx: Context) -> Work:
        first, step = cooked.runs[b]
        if step == 1:
            # a window of consecutive frames (a temporal crop at speed 1): a view, no copy; the next
            # stage reads the frames from where they are (a resample or the conversion to float)
            return Work(w.x.narrow(1, first, cooked.index.shape[1]), w.owned)
        return Work(w.x.index_select(1, cooked.index[b]), True)

    def move_targets(self, targets: dict[str, Tensor], cooked: FrameMap) -> dict[str, Tensor]:
        return gather_targets(targets, cooked.index)

    def invert(self, x: Tensor, cooked: FrameMap) -> Tensor:
        index = cooked.index
        T = x.shape[2]
        ident = torch.arange(T).expand(index.shape[0], T)
        if index.shape[1] != T or not torch.equal(torch.sort(index, dim=1).values, ident):
            raise VidaugError(
                f"inverse: the frame map of {self.names} is not a permutation (frames were replaced, "
                "dropped or repeated), so the frame order cannot be undone"
            )
        return VF.gather_frames(x, torch.argsort(index, dim=1))


@dataclass(frozen=True)
class Resampling:
    """A geometric stage cooked for one call: the clips' total matrices and how to apply them."""

    matrix: (
        Tensor  # (B, 3, 3) float64, input centred pixel coordinates -> output ones; (B, T, 3, 3) per frame
    )
    size_in: tuple[int, int]
    size_out: tuple[int, int]
    rows: Tensor | None  # exact stages: (B, H_out) and (B, W_out) input indices
    cols: Tensor | None
    theta: Tensor | None  # (B, 2, 3) affine_grid thetas in the working dtype ((B, T, 2, 3) per frame)
    sigma: Tensor | None  # (B, 2) ((B, T, 2)) antialiasing prefilter sigmas, None when no clip needs one
    # exact stages: per clip (first row, row step, first column, column step); step 0: no run
    runs: list[tuple[int, int, int, int]] | None = None
    grid: Tensor | None = (
        None  # (B, H_out, W_out, 2) CPU sampling grids of per-clip thetas, built for the batch at once
    )


def _runs(idx: Tensor) -> list[tuple[int, int]]:
    """Per row of ``(B, n)`` indices: ``(first, step)`` if they run by +1 or -1, else ``(first, 0)``."""
    if idx.shape[1] < 2:
        return [(int(i), 1) for i in idx[:, 0]] if idx.shape[1] else [(0, 1)] * idx.shape[0]
    d = idx.diff(dim=1)
    up, down = (d == 1).all(1).tolist(), (d == -1).all(1).tolist()
    return [
        (int(f), 1 if u else -1 if dn else 0) for f, u, dn in zip(idx[:, 0].tolist(), up, down, strict=True)
    ]


def _move_axis(x: Tensor, dim: int, idx: Tensor, first: int, step: int) -> Tensor:
    """``x.index_select(dim, idx)`` for one clip, as a view (a slice) or a flip where the indices run."""
    n = idx.shape[0]
    if step == 1:
        return x.narrow(dim, first, n)
    if step == -1:  # index_select along the last axis is ~10x slower than flip here
        return x.narrow(dim, first - n + 1, n).flip(dim)
    return x.index_select(dim, idx)


def _exact_indices(
    matrix: Tensor, size_in: tuple[int, int], size_out: tuple[int, int]
) -> tuple[Tensor, Tensor] | None:
    """Row and column index maps if ``matrix`` sends pixel centres onto pixel centres inside the frame."""
    if matrix.dim() != 3:  # per-frame matrices (a drifting geometry) always resample
        return None
    a = matrix[:, :2, :2]
    diag = torch.stack([a[:, 0, 0], a[:, 1, 1]], 1)
    if bool((a[:, 0, 1] != 0).any() or (a[:, 1, 0] != 0).any() or (diag.abs() != 1).any()):
        return None
    inv = VF.invert_matrix(matrix)
    idx = []
    for axis, (n_in, n_out) in enumerate(zip(size_in, size_out, strict=True)):
        k = 1 - axis  # row 1 of the matrix is y (rows), row 0 is x (columns)
        centres = torch.arange(n_out, dtype=torch.float64) + 0.5 - n_out / 2.0
        src = inv[:, k, k, None] * centres + inv[:, k, 2, None] + n_in / 2.0 - 0.5
        rounded = torch.round(src)
        if bool(((src - rounded).abs() > 1e-9).any() or (rounded < 0).any() or (rounded > n_in - 1).any()):
            return None
        idx.append(rounded.to(torch.int64))
    return idx[0], idx[1]


class GeometricStage(Stage):
    """Forward matrices multiplied into one per clip; one resample of every frame (or exact data movement)."""

    @classmethod
    def accepts(cls, members: Sequence[Transform], t: Transform) -> bool:
        # a fused stage has one interpolation and one padding: join only where they agree (a
        # transform that never samples outside its input, or never interpolates, agrees with any)
        for attr in ("interpolation", "padding_mode"):
            mine = getattr(t, attr, None)
            theirs = {getattr(m, attr, None) for m in members} - {None}
            if mine is not None and theirs and theirs != {mine}:
                return False
        return True

    def _mode(self, attr: str, default: str) -> str:
        modes = {str(getattr(t, attr)) for t in self.transforms if getattr(t, attr, None) is not None}
        return modes.pop() if modes else default

    @property
    def interpolation(self) -> str:
        return self._mode("interpolation", "bilinear")

    @property
    def padding_mode(self) -> str:
        # crops and resizes declare none: alone they repeat the frame's edge (within half a pixel
        # of it), as torchvision's and torch's resize do; fused after an affine, its padding rules
        return self._mode("padding_mode", "border")

    @property
    def antialias(self) -> bool:
        return all(getattr(t, "antialias", True) for t in self.transforms)

    def cook(
        self, params: Sequence[TransformParams], shapes: Sequence[VideoShape], ctx: Context
    ) -> Resampling:
        total: Tensor | None = None
        for t, p, s in zip(self.transforms, params, shapes, strict=False):
            m = t.matrix(p, s).to(torch.float64)  # type: ignore[attr-defined]
            if total is not None and m.dim() != total.dim():  # per clip (B, 3, 3) with per frame (B, T, 3, 3)
                m, total = (m.unsqueeze(1), total) if m.dim() == 3 else (m, total.unsqueeze(1))
            total = m if total is None else m @ total
        assert total is not None
        size_in, size_out = (shapes[0].H, shapes[0].W), (shapes[-1].H, shapes[-1].W)
        exact = _exact_indices(total, size_in, size_out) if all(t.exact for t in self.transforms) else None  # type: ignore[attr-defined]
        if exact is not None:
            runs = [(*r, *c) for r, c in zip(_runs(exact[0]), _runs(exact[1]), strict=True)]
            return Resampling(total, size_in, size_out, exact[0], exact[1], None, None, runs)
        wd = work_dtype(ctx.dtype)
        inv = VF.invert_matrix(total)
        sigma = (
            VF.antialias_sigma(total, inv) if self.antialias and self.interpolation == "bilinear" else None
        )
        if sigma is not None and not bool((sigma > 0).any()):
            sigma = None
        theta = VF._theta(total, size_in, size_out, wd, torch.device("cpu"), inverse=inv)
        return Resampling(total, size_in, size_out, None, None, theta, sigma)

    def run_batch(self, w: Work, cooked: Resampling, ctx: Context) -> Work:
        x = w.x
        if cooked.rows is not None and cooked.cols is not None:
            B, C, T, _, W = x.shape
            Ho, Wo = cooked.size_out
            rows = VF.to_device(cooked.rows, x.device).view(B, 1, 1, Ho, 1).expand(B, C, T, Ho, W)
            x = x.gather(3, rows)
            cols = VF.to_device(cooked.cols, x.device).view(B, 1, 1, 1, Wo).expand(B, C, T, Ho, Wo)
            return Work(x.gather(4, cols), True)
        # the cooked thetas and prefilter sigmas (computed once per call), for the whole batch
        assert cooked.theta is not None
        out = VF.resample_video(
            VF.to_work(x, copy=False),
            cooked.theta,
            cooked.size_out,
            cooked.sigma,
            mode=self.interpolation,
            padding_mode=self.padding_mode,
        )
        return Work(out, True)

    def run_clip(self, w: Work, cooked: Resampling, b: int, ctx: Context) -> Work:
        x = w.x
        if cooked.rows is not None and cooked.cols is not None:
            assert cooked.runs is not None
            r0, rs, c0, cs = cooked.runs[b]
            y = _move_axis(_move_axis(x, 2, cooked.rows[b], r0, rs), 3, cooked.cols[b], c0, cs)
            if rs == 1 and cs == 1:  # no flip and no gather: y is a view of x
                if y.shape == x.shape:  # the identity: pass the clip on as it came
                    return w
                y = y.contiguous()  # a crop: its own memory, so later stages may work on it in place
            return Work(y, True)
        assert cooked.theta is not None
        # one clip's grid and input only: nothing batch-sized beyond the output
        out = VF.resample_video(
            VF.to_work(x, copy=False).unsqueeze(0),
            cooked.theta[b : b + 1],
            cooked.size_out,
            None if cooked.sigma is None else cooked.sigma[b : b + 1],
            mode=self.interpolation,
            padding_mode=self.padding_mode,
        )
        return Work(out[0], True)

    def move_targets(self, targets: dict[str, Tensor], cooked: Resampling) -> dict[str, Tensor]:
        return warp_targets(targets, cooked.matrix, cooked.size_in, cooked.size_out)

    def invert(self, x: Tensor, cooked: Resampling) -> Tensor:
        return VF.warp(x, VF.invert_matrix(cooked.matrix), size=cooked.size_in, padding_mode="zeros")


class ValueStage(Stage):
    """Value transforms in place on one float working tensor (the clip's, on the CPU executor).

    Cooked as ``(prepared, ctx)``: each transform's prepared parameters and the stage's own
    context. With a field of view, only the pixels inside it change.
    """

    def cook(
        self, params: Sequence[TransformParams], shapes: Sequence[VideoShape], ctx: Context
    ) -> tuple[Any, ...]:
        prepared = []
        pctx = dataclasses.replace(ctx, shape=shapes[0])  # value transforms keep the shape
        for t, p in zip(self.transforms, params, strict=True):
            t.check_context(ctx)  # type: ignore[attr-defined]
            prepared.append(t.prepare(p, pctx))  # type: ignore[attr-defined]
        return tuple(prepared)

    def run_batch(self, w: Work, cooked: tuple[Any, ...], ctx: Context) -> Work:
        x = _as_work(w)
        if x.device.type == "cpu" and not x.requires_grad:
            # clip by clip in the pool, as the streamed executor does: each clip cache-resident
            # across the stage's ops, and its reductions summed in the same order
            def one(b: int) -> None:
                clip = x[b]
                y = self.run_clip(Work(clip, True), cooked, b, ctx).x
                if y.data_ptr() != clip.data_ptr():  # a kernel that returned a new tensor
                    clip.copy_(y)

            per_clip(one, x.shape[0], x.device, work=x[0].numel())
            return Work(x, True)
        prepared, sctx = cooked
        orig = x.clone() if sctx.fov is not None else None
        for t, p in zip(self.transforms, prepared, strict=True):
            x = t.apply_(x, p, sctx)  # type: ignore[attr-defined]
        if orig is not None:
            x = torch.where(VF.to_device(sctx.fov, x.device), x, orig)
        return Work(x, True)

    def run_clip(self, w: Work, cooked: tuple[Any, ...], b: int, ctx: Context) -> Work:
        prepared, sctx = cooked
        x = _as_work(w).unsqueeze(0)
        orig = x.clone() if sctx.fov is not None else None
        for t, p in zip(self.transforms, prepared, strict=True):
            x = t.apply_(x, t.clip_params(p, b), sctx)  # type: ignore[attr-defined]
        if orig is not None:  # outside the field of view: as it was
            x = torch.where(sctx.fov[b : b + 1], x, orig)
        return Work(x[0], True)


# ----------------------------------------------------------------------------------------------- the plan
_PRIMED = False


def _prime_allocator() -> None:
    """Raise glibc malloc's dynamic mmap and trim thresholds to their caps, once per process.

    glibc maps a block above its mmap threshold (128 KiB at first) afresh, and raises the threshold to
    the largest such block freed (up to 32 MiB) and its trim threshold to twice that. One batch-sized
    output freed per step then comes back from the heap, but two of them (``TwoViews``) pass the trim
    threshold: the heap goes back to the system and each call faults every output page in again (2-9k
    faults a call for the paper pipeline's batches). Freeing one untouched 32 MiB block (no memory used)
    sets both thresholds to their caps, as glibc itself would after such a free. Other allocators
    (jemalloc, tcmalloc, or thresholds fixed by ``MALLOC_*_`` variables) ignore it.
    """
    global _PRIMED
    _PRIMED = True
    if sys.platform.startswith("linux"):
        block = torch.empty((32 << 20) - (64 << 10), dtype=torch.uint8)  # its chunk stays within the cap
        del block


class Plan:
    """Transforms grouped into stages once; sampling, execution, targets and inverse per call.

    Args:
        transforms: The transforms, applied in order.
        fuse: Group consecutive transforms of a kind (default); False gives one stage each.

    Examples:
        >>> import vidaug3d as va
        >>> Plan([va.TemporalReverse(), va.RandomAffine(5), va.RandomHorizontalFlip(), va.GaussianNoise()]).stages
        (TemporalStage(0,), GeometricStage(1, 2), ValueStage(3,))
    """

    def __init__(self, transforms: Sequence[Transform], fuse: bool = True) -> None:
        leaves: list[Transform] = []
        for t in transforms:  # wrappers (RandomApply, RandomChoice) expand into gated transforms
            expand = getattr(t, "expand", None)
            leaves.extend([t] if expand is None else expand(len(leaves), 0))
        self.transforms = tuple(leaves)
        groups: list[tuple[type[Stage], list[int]]] = []
        for i, t in enumerate(self.transforms):
            kind = t.stage
            if fuse and groups and groups[-1][0] is kind:
                members = [self.transforms[j] for j in groups[-1][1]]
                if kind.accepts(members, t):
                    groups[-1][1].append(i)
                    continue
            groups.append((kind, [i]))
        self.stages: tuple[Stage, ...] = tuple(
            kind([self.transforms[i] for i in idx], idx) for kind, idx in groups
        )
        self._draws: dict[tuple[int, int, int, int], tuple[Draw, ...]] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(getattr(t, "name", type(t).__name__) for t in self.transforms)

    def shapes(self, shape: VideoShape) -> list[VideoShape]:
        """The shape each transform receives, then the output shape; checks each can take its input."""
        out = [shape]
        short: list[str] = []
        need = 1
        for t in self.transforms:
            if t.min_frames > out[-1].T:
                short.append(type(t).__name__)
                need = max(need, t.min_frames)
            out.append(t.output_shape(out[-1]))
        if short:
            raise fail(
                "video",
                f"T = {min(s.T for s in out)} frames",
                f"at least {need} frames for {', '.join(short)}",
            )
        return out

    # ------------------------------------------------------------------ parameters
    @eager  # O(B) host-side work; compiling it buys nothing
    def sample(self, shape: VideoShape, keys: ClipKeys) -> Record:
        """Draw every transform's parameters (on the CPU), each for the shape it receives."""
        shapes = self.shapes(shape)
        # The first call for a frame shape logs the uniform draws the transforms ask for; later calls
        # hash them all in one evaluation (same values, a dozen rounds of small tensor ops fewer).
        sig = (shape.C, shape.T, shape.H, shape.W)
        draws = self._draws.get(sig)
        k = keys.recording() if draws is None else keys.prefetch(draws)
        params = tuple(
            t.sample_params(s, k, slot)
            for slot, (t, s) in enumerate(zip(self.transforms, shapes, strict=False))
        )
        if draws is None and k.log is not None:
            self._draws[sig] = tuple(k.log)
        return Record(self.names, params, shape.as_tuple())

    def check_record(self, record: object, shape: VideoShape) -> Record:
        """The record to replay on a video of ``shape`` (a Record or its ``to_dict()``), checked."""
        if isinstance(record, dict):
            record = Record.from_dict(record)
        if not isinstance(record, Record):
            raise fail(
                "params", type(record).__name__, "a Record returned by this pipeline (or its to_dict())"
            )
        if record.names != self.names:
            raise fail("params", record.names, f"a record of this pipeline's transforms {self.names}")
        if (record.shape[0], *record.shape[2:]) != (shape.B, shape.T, shape.H, shape.W):
            raise fail(
                "params",
                f"a record drawn for (B, C, T, H, W) = {record.shape}",
                f"one for this video's B, T, H, W = {(shape.B, shape.T, shape.H, shape.W)}",
            )
        return record

    def cook(
        self, record: Record, ctx: Context, shape: VideoShape | None = None, values: bool = True
    ) -> list[Any]:
        """Each stage's cooked parameters for ``record``.

        A value stage is cooked with its own context: the field of view moved by the stages before
        it, and the probe geometry only while no geometric stage has moved the frame.
        """
        shapes = self.shapes(VideoShape(*record.shape) if shape is None else shape)
        cooked = []
        for st in self.stages:
            lo, hi = st.slots[0], st.slots[-1]
            if isinstance(st, ValueStage):  # targets and inverse (values=False) need no value pass
                ck = (
                    (st.cook([record.params[i] for i in st.slots], shapes[lo : hi + 2], ctx), ctx)
                    if values
                    else None
                )
                cooked.append(ck)
                continue
            ck = st.cook([record.params[i] for i in st.slots], shapes[lo : hi + 2], ctx)
            if isinstance(st, GeometricStage):
                fov = ctx.fov
                if fov is not None:
                    fov = warp_targets({"masks": fov[:, 0]}, ck.matrix, ck.size_in, ck.size_out)["masks"][
                        :, None
                    ]
                moved = ctx.probe_moved or ctx.probe is not None
                ctx = dataclasses.replace(ctx, fov=fov, probe=None, probe_moved=moved)
            elif ctx.fov is not None and ctx.fov.shape[2] > 1:  # a per-frame mask follows the frames
                ctx = dataclasses.replace(ctx, fov=VF.gather_frames(ctx.fov, ck))
            cooked.append(ck)
        return cooked

    # ------------------------------------------------------------------ execution
    def execute(
        self,
        video: Tensor,
        record: Record,
        ctx: Context,
        out_dtype: torch.dtype | None = None,
        check: bool = False,
    ) -> Tensor:
        """Run the plan on a canonical ``(B, C, T, H, W)`` video with a record.

        With ``check``, the values are checked first (by each clip's task on the CPU executor).
        """
        if streams(video):
            one, (out,) = self.stream(video, record, ctx, out_dtype, check)
            per_clip(one, video.shape[0], video.device, work=video[0].numel())
            return out
        if check:
            check_values(video)
        return self.execute_batched(video, record, ctx, out_dtype)

    def _finish(
        self, w: Work, dtype: torch.dtype, in_dtype: torch.dtype, out: Tensor | None = None
    ) -> Tensor:
        """The last cast to ``dtype``, rescaling between uint8 and float (float input clamped into uint8)."""
        x = w.x
        if x.dtype == in_dtype:  # the input's values, moved at most (for float32/64 also the working tensor)
            if dtype == in_dtype:
                if out is not None:
                    return out.copy_(x)
                return x if w.owned else x.clone()
            x = VF.to_work(x, copy=not w.owned)
        if dtype == torch.uint8 and in_dtype != torch.uint8:
            x = x.clamp_(0.0, 1.0)  # a float input's values may lie anywhere
        return VF.from_work(x, dtype, out=out)

    def stream(
        self,
        video: Tensor,
        record: Record,
        ctx: Context,
        out_dtype: torch.dtype | None,
        check: bool = False,
        views: int = 1,
    ) -> tuple[Callable[[int], None], list[Tensor]]:
        """The streamed executor's per-clip task ``one(r)`` and the outputs it fills, one per view.

        ``record`` may hold several views of the batch (``prepare(views=...)``): record clip ``r``
        is made from clip ``b = r % B`` into ``outs[r // B][b]``, and ``check`` checks each clip once.
        """
        B = video.shape[0]
        cooked = self.cook(record, ctx)
        final = self.shapes(VideoShape.of(video))[-1]
        dtype = out_dtype or video.dtype
        outs = [torch.empty(final.as_tuple(), dtype=dtype) for _ in range(views)]
        if not _PRIMED and outs[0].nbytes >= 1 << 20:
            _prime_allocator()
        steps = list(zip(self.stages, cooked, strict=True))

        def one(r: int) -> None:
            i, b = divmod(r, B)
            x = video[b]
            if check and i == 0:
                check_values(x, clip=b)
            w = Work(x, False)
            for st, ck in steps:
                w = st.run_clip(w, ck, r, ctx)
            self._finish(w, dtype, video.dtype, out=outs[i][b])

        return one, outs

    def execute_batched(
        self, video: Tensor, record: Record, ctx: Context, out_dtype: torch.dtype | None = None
    ) -> Tensor:
        """The CUDA (and autograd) executor: each stage runs once over the whole batch."""
        w = Work(video, False)
        for st, ck in zip(self.stages, self.cook(record, ctx), strict=True):
            w = st.run_batch(w, ck, ctx)
        return self._finish(w, out_dtype or video.dtype, video.dtype)

    def move_targets(self, targets: Mapping[str, Tensor], record: Record) -> dict[str, Tensor]:
        """Move targets (boxes, keypoints, masks, frame labels) as the video moved under ``record``."""
        B, _, T, H, W = record.shape
        out = check_targets(targets, B, T, H, W)
        ctx = Context(None, torch.float32)
        for st, ck in zip(self.stages, self.cook(record, ctx, values=False), strict=True):
            out = st.move_targets(out, ck)
        return out

    def invert(self, x: Tensor, record: Record, strict: bool = True) -> Tensor:
        """Undo the geometry and frame order of a call (see ``vidaug3d.Compose.inverse``)."""
        out = x
        ctx = Context(None, x.dtype)
        for st, ck in reversed(list(zip(self.stages, self.cook(record, ctx, values=False), strict=True))):
            if isinstance(st, ValueStage):
                if strict:
                    st.invert(out, ck)  # raises
                continue
            out = st.invert(out, ck)
        return out if out is not x else x.clone()


# ----------------------------------------------------------------------------------------------- the call
_OUT_DTYPES = (torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64)


@dataclass
class Prepared:
    """A call's checked arguments: the canonical video, its layout, the record and the context."""

    video: Tensor
    layout: Layout
    record: Record
    ctx: Context


def prepare(
    plan: Plan,
    video: Tensor,
    *,
    generator: torch.Generator | None,
    seed: int | None,
    sample_ids: Tensor | Sequence[int] | None,
    epoch: int,
    view: int,
    params: Record | dict[str, Any] | None,
    layout: str | None,
    out_dtype: torch.dtype | None,
    value_range: ValueRange | str,
    probe: Any = None,
    fov: Tensor | None = None,
    views: int = 1,
) -> Prepared:
    """Check a call's arguments and draw (or check) its record.

    With ``views`` > 1 (drawing only), the record holds ``views`` records of the batch one after
    another, views ``view``, ``view + 1``, ...: clip ``b`` of view ``view + i`` is record clip
    ``i * B + b``. Keyed draws depend on the clip's key alone, so each part equals the record of its
    own call, and the parts are drawn together in one pass of the same small tensor ops.
    """
    v, lay = to_canonical(video, layout)
    shape = VideoShape.of(v)
    if out_dtype is not None and out_dtype not in _OUT_DTYPES:
        raise fail("out_dtype", out_dtype, "None, torch.uint8 or a float dtype")
    vr = VF.work_range(v.dtype, value_range)
    if params is not None:
        if generator is not None or seed is not None or sample_ids is not None:
            raise fail(
                "params",
                "a record together with generator/seed/sample_ids",
                "either a record to replay or a source of randomness",
            )
        record = plan.check_record(params, shape)
        given = probe is not None
        if probe is None and fov is None:  # the record's field of view comes back with its parameters
            if record.fov_mask:
                raise fail(
                    "fov",
                    None,
                    "the field-of-view mask the record was drawn with (records keep probe geometries, not masks)",
                )
            probe = record.probe
        probe, fov = _field_of_view(v, probe, fov, vr)
        if given and record.probe is not None and not same_probe(probe, record.probe):
            raise fail("probe", "a geometry other than the record's", "the record's probe, or None to use it")
    else:
        probe, fov = _field_of_view(v, probe, fov, vr)
        keys = make_keys(
            shape.B, generator=generator, seed=seed, sample_ids=sample_ids, epoch=epoch, view=view
        )
        if views > 1:
            # the views share the base seed (the caller's, so that every view can be derived from it)
            assert seed is not None and generator is None, "views > 1 draws from an explicit seed"
            more = [
                make_keys(shape.B, seed=seed, sample_ids=sample_ids, epoch=epoch, view=view + i).keys
                for i in range(1, views)
            ]
            keys = ClipKeys(torch.cat([keys.keys, *more]))
            shape = dataclasses.replace(shape, B=shape.B * views)
            if probe is not None:
                probe = type(probe).cat([probe] * views)
            if fov is not None:
                fov = fov.repeat(views, 1, 1, 1, 1)
        fov_mask = probe is None and fov is not None
        record = dataclasses.replace(plan.sample(shape, keys), probe=probe, fov_mask=fov_mask)
    ctx = Context(vr, v.dtype, fov=fov, probe=probe)
    return Prepared(v, lay, record, ctx)


def _field_of_view(
    video: Tensor, probe: Any, fov: Tensor | None, vr: ValueRange
) -> tuple[Any, Tensor | None]:
    """The call's probe geometry (one per clip) and field-of-view mask, checked or estimated."""
    if probe is None and fov is None:
        return None, None
    from .ultrasound import ProbeGeometry, estimate_fov, fov_mask  # the ultrasound kernels, on demand

    B, _, T, H, W = video.shape
    if isinstance(probe, str):
        if probe != "estimate":
            raise fail("probe", probe, 'a ProbeGeometry, "estimate" or None')
        mask, probe = estimate_fov(
            video.detach(), value_range=vr if video.dtype != torch.uint8 else (0.0, 1.0)
        )
        fov = mask if fov is None else fov
    elif probe is not None:
        if not isinstance(probe, ProbeGeometry) or len(probe) not in (1, B):
            got = (
                f"a geometry of {len(probe)} probes"
                if isinstance(probe, ProbeGeometry)
                else type(probe).__name__
            )
            raise fail("probe", got, f"a ProbeGeometry of 1 or {B} probes (one per clip)")
        if len(probe) == 1 and B > 1:
            probe = ProbeGeometry.cat([probe] * B)
        if fov is None:
            fov = fov_mask(probe, H, W, video.device)
    if fov is not None:
        if fov.dim() == 4:
            fov = fov.unsqueeze(1)
        if (
            fov.dim() != 5
            or fov.shape[0] != B
            or fov.shape[1] != 1
            or fov.shape[2] not in (1, T)
            or tuple(fov.shape[3:]) != (H, W)
        ):
            raise fail(
                "fov", tuple(fov.shape), f"a mask of shape ({B}, 1, 1, {H}, {W}) or ({B}, 1, {T}, {H}, {W})"
            )
        fov = fov.to(torch.bool)
    return probe, fov


def result(
    plan: Plan,
    out: Tensor,
    prep: Prepared,
    targets: Mapping[str, Tensor] | None,
    return_params: bool,
) -> CallResult:
    """The call's return value: the video, then moved targets and the record where asked for."""
    lay = prep.layout
    res: list[Any] = [from_canonical(out, lay)]
    if targets is not None:
        tg = dict(targets)
        if not lay.batched:
            tg = {k: t.unsqueeze(0) for k, t in tg.items()}
        moved = plan.move_targets(tg, prep.record)
        if not lay.batched:
            moved = {k: t.squeeze(0) for k, t in moved.items()}
        res.append(moved)
    if return_params:
        res.append(prep.record)
    return res[0] if len(res) == 1 else tuple(res)


def checks(check_values: bool | None, video: Tensor) -> bool:
    """Whether a call checks the values of ``video`` (by default on CPU tensors only: no device sync)."""
    return bool(check_values or (check_values is None and video.device.type == "cpu"))


def call(
    plan: Plan,
    video: Tensor,
    *,
    check_values: bool | None = None,
    value_range: ValueRange | str = "auto",
    generator: torch.Generator | None = None,
    seed: int | None = None,
    sample_ids: Tensor | Sequence[int] | None = None,
    epoch: int = 0,
    view: int = 0,
    params: Record | dict[str, Any] | None = None,
    return_params: bool = False,
    targets: Mapping[str, Tensor] | None = None,
    layout: str | None = None,
    out_dtype: torch.dtype | None = None,
    probe: Any = None,
    fov: Tensor | None = None,
) -> CallResult:
    """Run ``plan`` on a video: the body of ``vidaug3d.Compose.__call__`` (see there)."""
    prep = prepare(
        plan,
        video,
        generator=generator,
        seed=seed,
        sample_ids=sample_ids,
        epoch=epoch,
        view=view,
        params=params,
        layout=layout,
        out_dtype=out_dtype,
        value_range=value_range,
        probe=probe,
        fov=fov,
    )
    out = plan.execute(prep.video, prep.record, prep.ctx, out_dtype, check=checks(check_values, prep.video))
    return result(plan, out, prep, targets, return_params)
