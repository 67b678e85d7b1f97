"""The extension API: the three kinds of transform, and what their methods take.

A transform is configuration plus two methods: ``Transform.sample_params`` turns the clips'
keyed uniform draws (``ClipKeys``) into a typed parameter record (a
``vidaug3d.params.TransformParams`` dataclass of CPU tensors with leading dimension ``B``),
for the ``VideoShape`` the transform receives; and one method that says what the parameters
do, by kind:

- ``TemporalTransform``: ``TemporalTransform.frame_map``, a ``(B, T_out)`` map into the
  ``T`` input frames (with ``Transform.output_shape`` for a new ``T``);
- ``GeometricTransform``: ``GeometricTransform.matrix``, a ``(B, 3, 3)`` forward map from
  the input's to the output's centred pixel coordinates (with ``Transform.output_shape`` for a
  new ``(H, W)``);
- ``ValueTransform``: ``ValueTransform.apply_``, an in-place kernel on a float working
  tensor ``(n, C, T, H, W)`` and the parameters of those ``n`` clips.

Everything else comes with the kind: fusion with its neighbours, both executors, records, replay,
JSON, targets, inverse (where the kind has one) and calling the transform on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor

from ._random import ClipKeys
from ._video import VideoShape, to_canonical
from .engine import CallResult, Context, GeometricStage, Plan, Stage, TemporalStage, ValueStage, call
from .errors import fail
from .params import FrameMapParams, Record, TransformParams

__all__ = [
    "ClipKeys",
    "Context",
    "GeometricTransform",
    "TemporalTransform",
    "Transform",
    "TransformParams",
    "ValueTransform",
    "VideoShape",
]


class Transform:
    """Base class of every transform. Subclass one of the three kinds below, not this."""

    stage: ClassVar[type[Stage]]  # the kind of engine stage the transform joins
    min_frames: ClassVar[int] = 1  # fewest input frames the transform can work with

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> TransformParams:
        """Draw this transform's parameters for a batch of ``shape`` from the clips' keys.

        Args:
            shape: The ``(B, C, T, H, W)`` this transform receives (after the transforms before it).
            keys: The clips' keys; ``keys.uniform(slot, stream, n)`` gives ``(B, n)`` uniforms.
            slot: This transform's position in its pipeline (pass it on to ``keys.uniform``).
        """
        raise NotImplementedError

    def output_shape(self, shape: VideoShape) -> VideoShape:
        """The shape this transform returns for an input of ``shape`` (default: unchanged).

        Raise ``vidaug3d.errors.fail`` here for an input the transform cannot take.
        """
        return shape

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def __call__(self, video: Tensor, **kwargs: Any) -> CallResult:
        """Run this transform alone; same keywords as ``vidaug3d.Compose.__call__``.

        With ``return_params=True`` the parameters returned are this transform's own record, and
        ``params=`` takes such a record (a wrapper, which expands into several transforms, returns
        and takes a ``Record``).
        """
        plan = self.__dict__.get("_plan")
        if plan is None:
            plan = self.__dict__["_plan"] = Plan([self])
        p = kwargs.get("params")
        if isinstance(p, TransformParams):
            shape = (1, *video.shape) if video.dim() == 4 else tuple(video.shape)
            if kwargs.get("layout") is not None:
                shape = tuple(to_canonical(video, kwargs["layout"])[0].shape)
            kwargs["params"] = Record(plan.names, (p,), shape)  # type: ignore[arg-type]
        res = call(plan, video, **kwargs)
        if kwargs.get("return_params") and len(plan.transforms) == 1:
            assert isinstance(res, tuple)
            return (*res[:-1], res[-1].params[0])
        return res

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_plan", None)  # rebuilt on first use
        return state


class TemporalTransform(Transform):
    """A transform given by a ``(B, T_out)`` frame-index map (fused by composing maps).

    Subclasses whose record is a ``vidaug3d.params.FrameMapParams`` need only
    ``sample_params``; a transform that changes ``T`` also overrides ``output_shape``.
    """

    stage: ClassVar[type[Stage]] = TemporalStage

    def frame_map(self, params: TransformParams, shape: VideoShape) -> Tensor:
        """``(B, T_out)`` int64: output frame ``t`` shows input frame ``map[b, t]`` (in ``[0, T)``)."""
        if not isinstance(params, FrameMapParams):
            raise NotImplementedError(
                f"{type(self).__name__} must define frame_map for {type(params).__name__}"
            )
        return params.frame_map


class GeometricTransform(Transform):
    """A transform given by one forward affine matrix per clip (fused by matrix product).

    Attributes:
        exact: Class attribute: True when the map only moves whole pixels (flips, whole-pixel crops),
            so a stage of such transforms moves data instead of interpolating.
        interpolation: ``"bilinear"`` or ``"nearest"``, or None for a transform that never
            interpolates on its own; consecutive transforms fuse only where these agree.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"`` for pixels from outside the
            input, or None for a transform that never samples outside it.
        antialias: Prefilter downscaling by more than ``vidaug3d.functional.ANTIALIAS_FROM``.
    """

    stage: ClassVar[type[Stage]] = GeometricStage
    exact: ClassVar[bool] = False
    interpolation: str | None = "bilinear"
    padding_mode: str | None = None
    antialias: bool = True

    def matrix(self, params: TransformParams, shape: VideoShape) -> Tensor:
        """``(B, 3, 3)`` float64 forward maps from the input's centred pixel coordinates (of
        ``shape``'s ``(H, W)``) to the output's (of ``output_shape``'s ``(H, W)``)."""
        raise NotImplementedError


class ValueTransform(Transform):
    """A transform that changes values, not positions (fused into one in-place pass).

    Attributes:
        needs_range: Class attribute: True when the transform cannot work on unbounded values
            (``value_range=None``); the call then raises a clear error.
    """

    stage: ClassVar[type[Stage]] = ValueStage
    needs_range: ClassVar[bool] = False

    def apply_(self, x: Tensor, params: Any, ctx: Context) -> Tensor:
        """Apply in place to a float working tensor ``(n, C, T, H, W)`` and return it.

        Args:
            x: The working tensor (uint8 video scaled to [0, 1]; floats as they are).
            params: What ``prepare`` made of the record, for these ``n`` clips (the batched
                executor passes the whole batch; the CPU executor one clip at a time, as
                ``clip_params`` gives it). Both must give the same values, so reduce over a
                clip's own elements only.
            ctx: The call's context (``ctx.value_range``: what to clamp to, or None).
        """
        raise NotImplementedError

    def prepare(self, params: TransformParams, ctx: Context) -> Any:
        """Batch-level work done once per call before the kernel runs (default: the record itself).

        Whatever this returns is what ``apply_`` receives: whole (batched executor) or as
        ``clip_params`` gives it for one clip (CPU executor).
        """
        return params

    def clip_params(self, prepared: Any, b: int) -> Any:
        """What ``apply_`` receives for clip ``b`` alone (default: ``prepared.select([b:b+1])``).

        A transform may hand its kernel Python numbers here instead of one-element tensors, for
        fewer small tensor ops per clip, provided the kernel computes the same values with them.
        """
        return prepared.select(slice(b, b + 1))

    def check_context(self, ctx: Context) -> None:
        """Raise if the transform cannot honour the call's context (e.g. an unbounded range)."""
        if self.needs_range and ctx.value_range is None:
            raise fail("value_range", None, f"a bounded (low, high) range: {type(self).__name__} needs one")


def check_all(name: str, items: Sequence[object]) -> list[Transform]:
    """The items as transforms, or the package error naming the first that is not one."""
    out = list(items)
    for i, t in enumerate(out):
        if not isinstance(t, Transform):
            raise fail(f"{name}[{i}]", type(t).__name__, "a vidaug3d Transform")
    return out  # type: ignore[return-value]
