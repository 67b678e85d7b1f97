"""Composition with a fusion plan, two-view sampling, replay and inverse.

A :class:`Compose` plans once, at construction: consecutive transforms of the same kind form a
stage. At call time each stage runs once over the whole batch:

- **temporal** stage: the clips' ``(B, T)`` frame maps are composed into one map, one gather;
- **geometric** stage: the clips' matrices are multiplied into one matrix per clip and every frame
  of the batch is resampled once (``grid_sample`` over ``(B, C*T, H, W)``, one grid per clip);
  a stage of flips only is done by exact data movement instead;
- **pointwise** stage: colour, noise and erasing run in place on one working buffer.

Composing matrices before resampling interpolates once instead of once per transform, so two
interpolating transforms in a row give a sharper (and different) result from applying them one by
one; with at most one interpolating transform per stage (as in the paper preset, affine then flip)
the fused result equals the sequential one to float precision. ``fuse=False`` runs the transforms
one by one.

Two executors run a plan, with identical results. On CUDA (and for inputs that require grad) each
stage runs once over the batch, as above. On the CPU the whole plan runs clip by clip in a thread
pool: a clip is gathered, converted, resampled, coloured, noised and erased while it is in cache,
then written to the output, so memory traffic is one read of the input and one write of the output,
and the extra memory is the output plus a few clip-sized buffers per thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from . import functional as VF
from ._random import ClipKeys, Draw, eager, make_keys, per_clip
from ._video import Layout, VideoShape, check_values, from_canonical, to_canonical, work_dtype
from .errors import VidaugError, fail
from .params import FlipParams, FrameMapParams, Record
from .targets import check_targets, gather_targets, warp_targets
from .transforms import GeometricTransform, Transform

__all__ = ["CallResult", "Compose", "TwoViews"]

CallResult = Union[Tensor, tuple[Any, ...]]  # noqa: UP007 (a runtime alias on Python 3.10)

# CPU inputs without autograd run through the streamed (clip-by-clip) executor; tests switch it off
# to compare it with the batched one.
_STREAM_CPU = True


def _streams(video: Tensor) -> bool:
    """Whether the clip-streamed CPU executor runs this canonical video."""
    return video.device.type == "cpu" and not video.requires_grad and video.shape[0] > 0 and _STREAM_CPU


@dataclass(frozen=True)
class Stage:
    """A run of consecutive transforms of one kind, executed as one fused step."""

    kind: Literal["temporal", "geometric", "pointwise"]
    indices: tuple[int, ...]


def plan(transforms: Sequence[Transform], fuse: bool = True) -> tuple[Stage, ...]:
    """Group consecutive transforms of the same kind (or none, with ``fuse=False``).

    Example:
        >>> from vidaug3d import TemporalReverse, RandomAffine, RandomHorizontalFlip, GaussianNoise
        >>> stages = plan([TemporalReverse(), RandomAffine(5), RandomHorizontalFlip(), GaussianNoise()])
        >>> " ".join(f"{s.kind}{s.indices}" for s in stages)
        'temporal(0,) geometric(1, 2) pointwise(3,)'
    """
    stages: list[Stage] = []
    for i, t in enumerate(transforms):
        if fuse and stages and stages[-1].kind == t.kind:
            stages[-1] = Stage(t.kind, (*stages[-1].indices, i))
        else:
            stages.append(Stage(t.kind, (i,)))
    return tuple(stages)


def compose_frame_maps(maps: Sequence[Tensor]) -> Tensor:
    """One frame map equal to applying ``maps`` in order: ``out = x[m1][m2] = x[m1[m2]]``."""
    total = maps[0]
    for m in maps[1:]:
        total = total.gather(1, m)
    return total


def _run_clip_ops(x: Tensor, ops: Sequence[Callable[[Tensor, int], None]], b: int) -> None:
    clip = x[b]
    for op in ops:
        op(clip, b)


class Compose:
    """A pipeline of transforms, planned once and fused at call time.

    Args:
        transforms: The transforms, applied in order.
        fuse: Fuse consecutive transforms of a kind (default). False applies them one by one.
        check_values: Check that float input is finite and within [0, 1]. None (default) checks
            CPU tensors only, because the check reads values and would synchronise with a GPU.

    Example:
        >>> import vidaug3d as va
        >>> aug = va.Compose([va.TemporalReverse(p=0.5), va.RandomAffine(10), va.GaussianNoise(0.03)])
        >>> video = torch.rand(4, 1, 8, 32, 32)
        >>> out, params = aug(video, seed=0, return_params=True)
        >>> torch.equal(aug(video, params=params), out)
        True
    """

    def __init__(
        self, transforms: Sequence[Transform], *, fuse: bool = True, check_values: bool | None = None
    ):
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not isinstance(t, Transform):
                raise fail(f"transforms[{i}]", type(t).__name__, "a vidaug3d Transform")
        self.transforms: tuple[Transform, ...] = tuple(transforms)
        self.fuse = bool(fuse)
        self.check_values = check_values
        self.stages = plan(self.transforms, self.fuse)
        self.min_frames = max((t.min_frames for t in self.transforms), default=1)
        self._draws: dict[tuple[int, int, int, int], tuple[Draw, ...]] = {}

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"Compose([\n  {inner}\n], fuse={self.fuse})"

    def __len__(self) -> int:
        return len(self.transforms)

    # ------------------------------------------------------------------ parameters
    @eager  # O(B) host-side work; compiling it buys nothing
    def sample_params(self, shape: VideoShape, keys: ClipKeys) -> Record:
        """Draw every transform's parameters (on the CPU) for a batch of ``shape``."""
        # The first call for a frame shape logs the uniform draws the transforms ask for; later calls
        # hash them all in one evaluation (same values, a dozen rounds of small tensor ops fewer).
        sig = (shape.C, shape.T, shape.H, shape.W)
        plans = self.__dict__.setdefault("_draws", {})  # (unpickled from before the attribute existed)
        draws = plans.get(sig)
        k = keys.recording() if draws is None else keys.prefetch(draws)
        params = tuple(t.sample_params(shape, k, slot) for slot, t in enumerate(self.transforms))
        if draws is None and k.log is not None:
            plans[sig] = tuple(k.log)
        return Record(tuple(type(t).__name__ for t in self.transforms), params, shape.as_tuple())

    def _check_record(self, record: object, shape: VideoShape) -> Record:
        if isinstance(record, dict):
            record = Record.from_dict(record)
        if not isinstance(record, Record):
            raise fail(
                "params", type(record).__name__, "a Record returned by this pipeline (or its to_dict())"
            )
        names = tuple(type(t).__name__ for t in self.transforms)
        if record.names != names:
            raise fail("params", record.names, f"a record of this pipeline's transforms {names}")
        if (record.shape[0], *record.shape[2:]) != (shape.B, shape.T, shape.H, shape.W):
            raise fail(
                "params",
                f"a record drawn for (B, C, T, H, W) = {record.shape}",
                f"one for this video's B, T, H, W = {(shape.B, shape.T, shape.H, shape.W)}",
            )
        return record

    # ------------------------------------------------------------------ execution
    def _stage_matrix(self, stage: Stage, record: Record, shape: VideoShape) -> Tensor:
        total: Tensor | None = None
        for i in stage.indices:
            t = self.transforms[i]
            assert isinstance(t, GeometricTransform)
            m = t.matrix(record.params[i], shape)
            total = m if total is None else m @ total
        assert total is not None
        return total

    def _stage_map(self, stage: Stage, record: Record) -> Tensor:
        maps = []
        for i in stage.indices:
            p = record.params[i]
            assert isinstance(p, FrameMapParams)
            maps.append(p.frame_map)
        return compose_frame_maps(maps)

    def _stage_flip(self, stage: Stage, record: Record) -> Tensor | None:
        """``(B,)`` bool: the net mirror of a stage of flips only; None if a transform interpolates."""
        if not all(self.transforms[i].exact for i in stage.indices):  # type: ignore[attr-defined]
            return None
        flip = torch.zeros(record.shape[0], dtype=torch.bool)
        for i in stage.indices:
            p = record.params[i]
            assert isinstance(p, FlipParams)
            flip = flip ^ p.flip
        return flip

    def _padding(self, stage: Stage) -> str:
        modes = {getattr(self.transforms[i], "padding_mode", "zeros") for i in stage.indices}
        return modes.pop() if len(modes) == 1 else "zeros"

    def execute(self, video: Tensor, record: Record, out_dtype: torch.dtype | None = None) -> Tensor:
        """Run the plan on a canonical ``(B, C, T, H, W)`` video with a given record (no checks)."""
        if _streams(video):
            return self._execute_streamed(video, record, out_dtype)
        return self._execute_batched(video, record, out_dtype)

    def _execute_streamed(
        self, video: Tensor, record: Record, out_dtype: torch.dtype | None, check: bool = False
    ) -> Tensor:
        """The CPU executor: the whole plan runs clip by clip, each clip in a thread of a pool.

        The same stages and kernels as :meth:`_execute_batched`, one clip at a time: the clip's
        frames are gathered, converted, resampled and coloured while they are in cache, and only
        the output batch (plus a few clip-sized buffers per thread) is ever allocated. Results are
        identical to the batched executor (a test checks it).
        """
        one, out = self._stream_plan(video, record, out_dtype, check)
        per_clip(one, video.shape[0], video.device, work=video[0].numel())
        return out

    def _stream_plan(
        self, video: Tensor, record: Record, out_dtype: torch.dtype | None, check: bool = False
    ) -> tuple[Callable[[int], None], Tensor]:
        """The streamed executor's per-clip task ``one(b)`` and the output it fills.

        With ``check``, each task first checks its clip's values (:func:`check_values`).
        """
        shape = VideoShape.of(video)
        B, C, T, H, W = shape.as_tuple()
        steps: list[tuple[str, Any]] = []
        for stage in self.stages:
            if stage.kind == "temporal":
                fmap = self._stage_map(stage, record).to(torch.int64)
                T = fmap.shape[1]
                steps.append(("gather", fmap))
            elif stage.kind == "geometric":
                flip = self._stage_flip(stage, record)
                if flip is not None:
                    steps.append(("flip", flip.tolist()))
                else:
                    m = self._stage_matrix(stage, record, shape)
                    theta = VF._theta(m, H, W, work_dtype(video.dtype), video.device)
                    steps.append(("warp", (theta, self._padding(stage))))
            else:
                pts = [self.transforms[i] for i in stage.indices]
                ps = [record.params[i] for i in stage.indices]
                ops = [t.clip_op(p) for t, p in zip(pts, ps, strict=True)]  # type: ignore[attr-defined]
                steps.append(("pointwise", ops))
        dtype = out_dtype or video.dtype
        out = torch.empty((B, C, T, H, W), dtype=dtype)

        def one(b: int) -> None:
            x = video[b]
            if check:
                check_values(x, clip=b)
            working = False  # as in _execute_batched: x is a float working clip we own
            for kind, arg in steps:
                if kind == "gather":
                    x, working = VF.to_work(x.index_select(1, arg[b]), copy=False), True
                elif kind == "flip":
                    x, working = (VF.to_work(x.flip(-1), copy=False) if arg[b] else VF.to_work(x)), True
                elif kind == "warp":
                    theta, padding = arg
                    c, t, h, w = x.shape
                    # one clip's grid and input only: nothing batch-sized beyond the output
                    x = F.grid_sample(
                        VF.to_work(x, copy=False).reshape(1, c * t, h, w),
                        VF._affine_grid(theta[b : b + 1], h, w),
                        mode="bilinear",
                        padding_mode=padding,
                        align_corners=False,
                    ).view(c, t, h, w)
                    working = True
                else:
                    if not working:
                        x, working = VF.to_work(x), True
                    for op in arg:
                        op(x, b)
            if not working and dtype != video.dtype:  # an empty plan, another dtype: rescale as VF does
                x, working = VF.to_work(x), True
            if working:
                VF.from_work(x, dtype, out=out[b])  # the last cast straight into the output
            else:
                out[b] = x

        return one, out

    def _execute_batched(self, video: Tensor, record: Record, out_dtype: torch.dtype | None) -> Tensor:
        """The CUDA (and autograd) executor: each stage runs once over the whole batch."""
        shape = VideoShape.of(video)
        x = video
        working = False  # x is a float working tensor in [0, 1] that we own and may modify in place
        for stage in self.stages:
            if stage.kind == "temporal":
                # the gather's output is a fresh tensor: convert it without a further copy
                x, working = VF.to_work(VF.gather_frames(x, self._stage_map(stage, record)), copy=False), True
            elif stage.kind == "geometric":
                flip = self._stage_flip(stage, record)
                if flip is not None:
                    x, working = VF.to_work(VF.hflip(x, flip), copy=False), True  # hflip's output is fresh
                else:
                    m = self._stage_matrix(stage, record, shape)
                    xin = VF.to_work(x, copy=False)
                    x, working = VF.warp_work(xin, m, padding_mode=self._padding(stage)), True
            else:
                if not working:
                    x, working = VF.to_work(x), True
                pts = [self.transforms[i] for i in stage.indices]
                ps = [record.params[i] for i in stage.indices]
                if x.device.type == "cpu" and not x.requires_grad:
                    # CPU (batched executor only when streaming is off): the stage runs clip by clip in
                    # a thread pool, each clip cache-resident across all the stage's ops.
                    ops = [t.clip_op(p) for t, p in zip(pts, ps, strict=True)]  # type: ignore[attr-defined]
                    per_clip(functools.partial(_run_clip_ops, x, ops), shape.B, x.device)
                else:
                    for t, p in zip(pts, ps, strict=True):
                        x = t.apply_(x, p)  # type: ignore[attr-defined]
        dtype = out_dtype or video.dtype
        if not working and dtype == video.dtype:  # nothing ran (an empty plan): a copy
            return x.to(dtype, copy=True)
        return VF.from_work(x if working else VF.to_work(x), dtype)  # uint8 <-> float rescales

    def transform_targets(self, targets: Mapping[str, Tensor], record: Record) -> dict[str, Tensor]:
        """Move targets (boxes, keypoints, masks, frame labels) as the video moved under ``record``."""
        B, _, T, H, W = record.shape
        out = check_targets(targets, B, T, H, W)
        shape = VideoShape(*record.shape)
        for stage in self.stages:
            if stage.kind == "temporal":
                out = gather_targets(out, self._stage_map(stage, record))
            elif stage.kind == "geometric":
                out = warp_targets(out, self._stage_matrix(stage, record, shape), H, W)
        return out

    # ------------------------------------------------------------------ the call
    def __call__(
        self,
        video: Tensor,
        *,
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
    ) -> CallResult:
        """Augment a batch of clips.

        Args:
            video: ``(B, C, T, H, W)`` (or ``(C, T, H, W)``, or another ``layout``), float in
                [0, 1] or uint8.
            generator: A CPU ``torch.Generator``; one base seed is drawn from it per call.
            seed: A base seed instead of a generator.
            sample_ids: ``(B,)`` ids that key each clip's parameters (with ``seed``/``generator``,
                ``epoch`` and ``view``), so that a clip's result does not depend on its batch.
            epoch: Folded into the clips' keys.
            view: Folded into the clips' keys (0 and 1 for two views).
            params: A record from an earlier call (or its ``to_dict()``) to replay exactly.
            return_params: Also return the record.
            targets: Boxes, keypoints, masks and frame labels to move with the video
                (see :mod:`vidaug3d.targets`); returned as a new dict.
            layout: The video's layout name, e.g. ``"BTCHW"``; default by rank.
            out_dtype: Output dtype (default: the input's; e.g. float32 from uint8 input).

        Returns:
            The augmented video; ``(video, targets)`` with targets; ``(video, params)`` with
            ``return_params``; ``(video, targets, params)`` with both.
        """
        v, lay, record = self._prepare(
            video,
            generator=generator,
            seed=seed,
            sample_ids=sample_ids,
            epoch=epoch,
            view=view,
            params=params,
            layout=layout,
            out_dtype=out_dtype,
        )
        check = self._checks(v)
        if _streams(v):
            out = self._execute_streamed(v, record, out_dtype, check=check)  # checks clip by clip
        else:
            if check:
                check_values(v)
            out = self._execute_batched(v, record, out_dtype)
        return self._result(from_canonical(out, lay), lay, record, targets, return_params)

    def _checks(self, v: Tensor) -> bool:
        """Whether a call checks the values of ``v`` (by default on CPU tensors only)."""
        return bool(self.check_values or (self.check_values is None and v.device.type == "cpu"))

    def _prepare(
        self,
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
    ) -> tuple[Tensor, Layout, Record]:
        """Check a call's arguments: the canonical video, its layout and the record to run."""
        v, lay = to_canonical(video, layout)
        shape = VideoShape.of(v)
        if self.min_frames > shape.T:
            needs = [type(t).__name__ for t in self.transforms if t.min_frames > shape.T]
            raise fail(
                "video", f"T = {shape.T} frames", f"at least {self.min_frames} frames for {', '.join(needs)}"
            )
        if out_dtype is not None and out_dtype not in (
            torch.uint8,
            torch.float32,
            torch.float16,
            torch.bfloat16,
            torch.float64,
        ):
            raise fail("out_dtype", out_dtype, "None, torch.uint8 or a float dtype")
        if params is not None:
            if generator is not None or seed is not None or sample_ids is not None:
                raise fail(
                    "params",
                    "a record together with generator/seed/sample_ids",
                    "either a record to replay or a source of randomness",
                )
            record = self._check_record(params, shape)
        else:
            record = self.sample_params(
                shape,
                make_keys(
                    shape.B, generator=generator, seed=seed, sample_ids=sample_ids, epoch=epoch, view=view
                ),
            )
        return v, lay, record

    def _result(
        self,
        out: Tensor,
        lay: Layout,
        record: Record,
        targets: Mapping[str, Tensor] | None,
        return_params: bool,
    ) -> CallResult:
        result: list[Any] = [out]
        if targets is not None:
            tg = dict(targets)
            if not lay.batched:
                tg = {k: t.unsqueeze(0) for k, t in tg.items()}
            moved = self.transform_targets(tg, record)
            if not lay.batched:
                moved = {k: t.squeeze(0) for k, t in moved.items()}
            result.append(moved)
        if return_params:
            result.append(record)
        return result[0] if len(result) == 1 else tuple(result)

    # ------------------------------------------------------------------ inverse
    def inverse(
        self,
        video: Tensor,
        params: Record | dict[str, Any],
        *,
        strict: bool = True,
        layout: str | None = None,
    ) -> Tensor:
        """Undo the geometry and the frame order of a call, given its record.

        Geometry is undone by resampling with the inverse matrices (the part of the frame that was
        pushed out is lost: zeros come back). Frame order is undone where the frame map is a
        permutation (reverse, shuffle); a replaced frame cannot be recovered and raises. Colour,
        noise and erasing are not invertible: ``strict=True`` raises, ``strict=False`` skips them.

        Args:
            video: The augmented video, in the same layout as the call.
            params: The call's record.
            strict: Raise on non-invertible transforms instead of skipping them.
            layout: The video's layout name.

        Returns:
            The video mapped back to the input's geometry and frame order.
        """
        v, lay = to_canonical(video, layout)
        shape = VideoShape.of(v)
        record = self._check_record(params, shape)
        x = v
        for stage in reversed(self.stages):
            if stage.kind == "pointwise":
                if strict:
                    names = [type(self.transforms[i]).__name__ for i in stage.indices]
                    raise VidaugError(
                        f"inverse: {', '.join(names)} cannot be inverted; pass strict=False to undo only geometry and frame order"
                    )
                continue
            if stage.kind == "geometric":
                m = VF.invert_matrix(self._stage_matrix(stage, record, shape))
                x = VF.warp(x, m, padding_mode="zeros")
            else:
                fmap = self._stage_map(stage, record)
                ok = torch.equal(torch.sort(fmap, dim=1).values, torch.arange(shape.T).expand_as(fmap))
                if not ok:
                    names = [type(self.transforms[i]).__name__ for i in stage.indices]
                    raise VidaugError(
                        f"inverse: the frame map of {', '.join(names)} is not a permutation (frames were replaced), "
                        "so the frame order cannot be undone"
                    )
                x = VF.gather_frames(x, torch.argsort(fmap, dim=1))
        return from_canonical(x if x is not v else x.clone(), lay)


class TwoViews:
    """Two independently augmented views of one batch, for BYOL / SimCLR.

    Both views use one base seed (drawn once from ``generator``) with ``view=0`` and ``view=1``, so
    every clip gets independent parameters in each view and the pair is reproducible.

    Args:
        first: The pipeline of the first view.
        second: The pipeline of the second view (default: the same as the first).

    Example:
        >>> import vidaug3d as va
        >>> v1, v2 = va.TwoViews(va.presets.paper())(torch.rand(2, 1, 8, 32, 32), seed=0)
        >>> v1.shape == v2.shape and not torch.equal(v1, v2)
        True
    """

    def __init__(self, first: Compose | Transform, second: Compose | Transform | None = None) -> None:
        for name, t in (("first", first), ("second", second)):
            if t is not None and not isinstance(t, (Compose, Transform)):
                raise fail(name, type(t).__name__, "a vidaug3d Compose or Transform")
        self.first = first
        self.second = first if second is None else second

    def __repr__(self) -> str:
        return f"TwoViews(first={self.first!r}, second={self.second!r})"

    def __call__(
        self,
        video: Tensor,
        *,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        sample_ids: Tensor | Sequence[int] | None = None,
        epoch: int = 0,
        return_params: bool = False,
        layout: str | None = None,
        out_dtype: torch.dtype | None = None,
    ) -> tuple[Any, Any]:
        """Return ``(view1, view2)``; with ``return_params``, ``((view1, params1), (view2, params2))``."""
        if generator is not None:
            if seed is not None:
                raise fail("generator/seed", (generator, seed), "at most one of generator and seed")
            seed = int(make_keys(1, generator=generator).keys[0])  # one draw from the generator
        elif seed is None:
            seed = int(make_keys(1).keys[0])
        kw: dict[str, Any] = dict(
            seed=seed,
            sample_ids=sample_ids,
            epoch=epoch,
            return_params=return_params,
            layout=layout,
            out_dtype=out_dtype,
        )
        a, b = self.first, self.second
        if (
            isinstance(a, Compose)
            and isinstance(b, Compose)
            and video.device.type == "cpu"
            and not video.requires_grad
            and _STREAM_CPU
        ):
            # Both views in one pass over the clips: each clip is read once, while it is in cache,
            # and both of its views are made from it. Identical to two separate calls.
            pk = {k: val for k, val in kw.items() if k != "return_params"}
            v, lay, rec1 = a._prepare(video, generator=None, params=None, view=0, **pk)
            _, _, rec2 = b._prepare(video, generator=None, params=None, view=1, **pk)
            if v.shape[0] > 0:
                check = a._checks(v) or b._checks(v)
                one1, out1 = a._stream_plan(v, rec1, out_dtype, check)  # checks each clip once
                one2, out2 = b._stream_plan(v, rec2, out_dtype)

                def both(i: int) -> None:
                    one1(i)
                    one2(i)

                per_clip(both, v.shape[0], v.device, work=2 * v[0].numel())
                return (
                    a._result(from_canonical(out1, lay), lay, rec1, None, return_params),
                    b._result(from_canonical(out2, lay), lay, rec2, None, return_params),
                )
        return self.first(video, view=0, **kw), self.second(video, view=1, **kw)
