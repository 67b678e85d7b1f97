"""The call layer: ``Compose`` (a pipeline) and ``TwoViews`` (two views for SSL).

The planning, fusion and executors live in ``vidaug3d.engine``; this module checks a call's
arguments and hands them on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from . import engine
from ._random import ClipKeys, make_keys, per_clip
from ._video import VideoShape, from_canonical, to_canonical
from .base import Transform, check_all
from .engine import CallResult, Plan
from .errors import fail
from .functional import ValueRange, check_value_range
from .params import Record

__all__ = ["CallResult", "Compose", "TwoViews"]


def _check_range_arg(value_range: object) -> ValueRange | str:
    if isinstance(value_range, str):
        if value_range != "auto":
            raise fail("value_range", value_range, '"auto", None or a (low, high) pair')
        return "auto"
    return check_value_range("value_range", value_range)


class Compose:
    """A pipeline of transforms, planned once and fused at call time.

    Args:
        transforms: The transforms, applied in order.
        fuse: Fuse consecutive transforms of a kind (default). False applies them one by one.
        check_values: Check that float input is finite (NaN and inf are refused, naming the clip).
            None (default) checks CPU tensors only: the check reads values and would synchronise
            with a GPU.
        value_range: The range value transforms clamp to: ``"auto"`` (default: ``(0, 1)`` for
            floats, ``(0, 255)`` for uint8), a ``(low, high)`` pair (e.g. for normalised video), or
            None for unbounded (no clamping; transforms that need a range then raise). A call's
            ``value_range=`` overrides it.

    Examples:
        >>> import vidaug3d as va
        >>> aug = va.Compose([va.TemporalReverse(p=0.5), va.RandomAffine(10), va.GaussianNoise(0.03)])
        >>> video = torch.rand(4, 1, 8, 32, 32)
        >>> out, params = aug(video, seed=0, return_params=True)
        >>> torch.equal(aug(video, params=params), out)
        True
    """

    def __init__(
        self,
        transforms: Sequence[Transform],
        *,
        fuse: bool = True,
        check_values: bool | None = None,
        value_range: ValueRange | str = "auto",
    ) -> None:
        self.transforms: tuple[Transform, ...] = tuple(check_all("transforms", transforms))
        self.fuse = bool(fuse)
        self.check_values = check_values
        self.value_range = _check_range_arg(value_range)
        self.plan = Plan(self.transforms, self.fuse)

    @property
    def stages(self) -> tuple[engine.Stage, ...]:
        """The plan's stages (which transforms fuse into one step)."""
        return self.plan.stages

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"Compose([\n  {inner}\n], fuse={self.fuse})"

    def __len__(self) -> int:
        return len(self.transforms)

    def output_shape(self, shape: VideoShape | Sequence[int]) -> VideoShape:
        """The canonical ``(B, C, T, H, W)`` the pipeline returns for an input of ``shape``."""
        s = shape if isinstance(shape, VideoShape) else VideoShape(*(int(v) for v in shape))
        return self.plan.shapes(s)[-1]

    def sample_params(self, shape: VideoShape, keys: ClipKeys) -> Record:
        """Draw every transform's parameters (on the CPU) for a batch of ``shape``."""
        return self.plan.sample(shape, keys)

    def _call_range(self, value_range: object) -> ValueRange | str:
        """A call's ``value_range``: ``"pipeline"`` is this pipeline's own, anything else is checked."""
        if isinstance(value_range, str) and value_range == "pipeline":
            return self.value_range
        return _check_range_arg(value_range)

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
        targets: dict[str, Tensor] | None = None,
        layout: str | None = None,
        out_dtype: torch.dtype | None = None,
        value_range: ValueRange | str | None = "pipeline",
        probe: Any = None,
        fov: Tensor | None = None,
    ) -> CallResult:
        """Augment a batch of clips.

        Args:
            video: ``(B, C, T, H, W)`` (or ``(C, T, H, W)``, or another ``layout``), float (any
                finite values) or uint8.
            generator: A CPU ``torch.Generator``; one base seed is drawn from it per call.
            seed: A base seed instead of a generator.
            sample_ids: ``(B,)`` ids that key each clip's parameters (with ``seed``/``generator``,
                ``epoch`` and ``view``), so that a clip's result does not depend on its batch.
            epoch: Folded into the clips' keys.
            view: Folded into the clips' keys (0 and 1 for two views).
            params: A record from an earlier call (or its ``to_dict()``) to replay exactly.
            return_params: Also return the record.
            targets: Boxes, keypoints, masks and frame labels to move with the video
                (see ``vidaug3d.targets``); returned as a new dict.
            layout: The video's layout name, e.g. ``"BTCHW"``; default by rank.
            out_dtype: Output dtype (default: the input's; e.g. float32 from uint8 input).
            value_range: This call's value range (default: the pipeline's; see ``Compose``).
            probe: Ultrasound probe geometry (``vidaug3d.ultrasound.ProbeGeometry``, one probe or
                one per clip, in the input's pixel coordinates), or ``"estimate"`` to fit one from
                the clip (``vidaug3d.ultrasound.estimate_fov``). The depth and beam transforms
                need it; it also gives the field of view when ``fov`` is not given.
            fov: The field of view, a ``(B, 1, 1|T, H, W)`` (or ``(B, 1|T, H, W)``) bool mask: value
                transforms change only the pixels inside it (outside stays as it was). It moves
                with the geometric and temporal transforms before each value pass.

        Returns:
            The augmented video; ``(video, targets)`` with targets; ``(video, params)`` with
            ``return_params``; ``(video, targets, params)`` with both.
        """
        vr = self._call_range(value_range)
        return engine.call(
            self.plan,
            video,
            check_values=self.check_values,
            value_range=vr,
            generator=generator,
            seed=seed,
            sample_ids=sample_ids,
            epoch=epoch,
            view=view,
            params=params,
            return_params=return_params,
            targets=targets,
            layout=layout,
            out_dtype=out_dtype,
            probe=probe,
            fov=fov,
        )

    def transform_targets(self, targets: dict[str, Tensor], record: Record) -> dict[str, Tensor]:
        """Move targets (boxes, keypoints, masks, frame labels) as the video moved under ``record``."""
        return self.plan.move_targets(targets, record)

    def inverse(
        self,
        video: Tensor,
        params: Record | dict[str, Any],
        *,
        strict: bool = True,
        layout: str | None = None,
    ) -> Tensor:
        """Undo the geometry and the frame order of a call, given its record.

        Geometry is undone by resampling with the inverse matrices back to the input's size (what
        was pushed out or cropped away is lost: zeros come back). Frame order is undone where the
        frame map is a permutation (reverse, shuffle); replaced, dropped or repeated frames cannot
        be recovered and raise. Value transforms (colour, noise, erasing) are not invertible:
        ``strict=True`` raises, ``strict=False`` skips them.

        Args:
            video: The augmented video, in the same layout as the call.
            params: The call's record.
            strict: Raise on non-invertible transforms instead of skipping them.
            layout: The video's layout name.

        Returns:
            The video mapped back to the input's geometry and frame order.
        """
        v, lay = to_canonical(video, layout)
        rec = params if isinstance(params, Record) else Record.from_dict(params)
        if not isinstance(rec, Record):
            raise fail("params", type(params).__name__, "a Record returned by this pipeline")
        out_shape = self.output_shape(rec.shape)
        if tuple(v.shape) != (out_shape.B, v.shape[1], out_shape.T, out_shape.H, out_shape.W):
            raise fail(
                "video",
                f"shape {tuple(v.shape)}",
                f"the call's output shape {out_shape.as_tuple()} for this record",
            )
        rec = self.plan.check_record(rec, VideoShape(*rec.shape))
        return from_canonical(self.plan.invert(v, rec, strict), lay)


class TwoViews:
    """Two independently augmented views of one batch, for BYOL / SimCLR.

    Both views use one base seed (drawn once from ``generator``) with ``view=0`` and ``view=1``, so
    every clip gets independent parameters in each view and the pair is reproducible.

    Args:
        first: The pipeline of the first view.
        second: The pipeline of the second view (default: the same as the first): a different
            pipeline gives asymmetric views.

    Examples:
        >>> import vidaug3d as va
        >>> v1, v2 = va.TwoViews(va.presets.paper())(torch.rand(2, 1, 8, 32, 32), seed=0)
        >>> v1.shape == v2.shape and not torch.equal(v1, v2)
        True
    """

    def __init__(self, first: Compose | Transform, second: Compose | Transform | None = None) -> None:
        for name, t in (("first", first), ("second", second)):
            if t is not None and not isinstance(t, (Compose, Transform)):
                raise fail(name, type(t).__name__, "a vidaug3d Compose or Transform")
        self.first = first if isinstance(first, Compose) else Compose([first])
        sec = first if second is None else second
        self.second = sec if isinstance(sec, Compose) else Compose([sec])

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
        value_range: ValueRange | str | None = "pipeline",
        probe: Any = None,
        fov: Tensor | None = None,
    ) -> tuple[Any, Any]:
        """Return ``(view1, view2)``; with ``return_params``, ``((view1, params1), (view2, params2))``.

        The keywords are those of ``Compose.__call__`` (``probe``, ``fov`` and an explicit
        ``value_range`` hold for both views; ``"pipeline"`` keeps each view's own).
        """
        if generator is not None:
            if seed is not None:
                raise fail("generator/seed", (generator, seed), "at most one of generator and seed")
            seed = int(make_keys(1, generator=generator).keys[0])  # one draw from the generator
        elif seed is None:
            seed = int(make_keys(1).keys[0])
        a, b = self.first, self.second
        kw: dict[str, Any] = dict(
            seed=seed,
            sample_ids=sample_ids,
            epoch=epoch,
            layout=layout,
            out_dtype=out_dtype,
            probe=probe,
            fov=fov,
        )
        v, _ = to_canonical(video, layout)
        if not engine.streams(v):
            return (
                a(video, view=0, return_params=return_params, value_range=value_range, **kw),
                b(video, view=1, return_params=return_params, value_range=value_range, **kw),
            )
        # Both views in one pass over the clips: each clip is read once, while it is in cache, and
        # both of its views are made from it. Identical to two separate calls.
        if a is b:
            # one pipeline: both views' records drawn and cooked together (one round of the small
            # per-call tensor ops instead of two), the clip tasks interleaved so that a clip's two
            # views run one after the other
            prep = engine.prepare(
                a.plan,
                video,
                generator=None,
                params=None,
                view=0,
                views=2,
                value_range=a._call_range(value_range),
                **kw,
            )
            B = v.shape[0]
            check = engine.checks(a.check_values, v)
            one, outs = a.plan.stream(prep.video, prep.record, prep.ctx, out_dtype, check, views=2)
            per_clip(lambda j: one((j & 1) * B + (j >> 1)), 2 * B, v.device, work=v[0].numel())
            views = []
            for i, out in enumerate(outs):
                # copies, not views of one record: a saved record holds its own clips only
                rec = prep.record.select(torch.arange(i * B, (i + 1) * B)) if return_params else prep.record
                views.append(
                    engine.result(a.plan, out, dataclasses.replace(prep, record=rec), None, return_params)
                )
            return views[0], views[1]
        preps = [
            engine.prepare(
                p.plan,
                video,
                generator=None,
                params=None,
                view=i,
                value_range=p._call_range(value_range),
                **kw,
            )
            for i, p in enumerate((a, b))
        ]
        check = engine.checks(a.check_values, v) or engine.checks(b.check_values, v)
        one1, (out1,) = a.plan.stream(preps[0].video, preps[0].record, preps[0].ctx, out_dtype, check)
        one2, (out2,) = b.plan.stream(preps[1].video, preps[1].record, preps[1].ctx, out_dtype)

        def both(i: int) -> None:
            one1(i)
            one2(i)

        per_clip(both, v.shape[0], v.device, work=2 * v[0].numel())
        return (
            engine.result(a.plan, out1, preps[0], None, return_params),
            engine.result(b.plan, out2, preps[1], None, return_params),
        )
