"""Probability wrappers: ``RandomApply`` and ``RandomChoice``, decided per clip and recorded.

A wrapper is not a stage of its own: the plan expands it into its transforms, each *gated* by the
wrapper's per-clip decision, and the gated transforms fuse with their neighbours like any other of
their kind. A gated geometric transform is its matrix where the clip is on and the identity where it
is off (still one resample per clip); a gated temporal transform is its frame map or the identity
map; a gated value transform skips the clips that are off. So ``RandomChoice([blur, affine])`` puts a
gated blur into the value pass and a gated affine into the resample, and every clip gets exactly
one of them.

Each gated transform's record is a ``GatedParams``: ``on`` (B,) and the inner transform's own record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from ._random import ClipKeys
from ._video import VideoShape
from .base import Context, GeometricTransform, TemporalTransform, Transform, ValueTransform, check_all
from .engine import Stage
from .errors import fail
from .params import GatedParams, TransformParams

__all__ = ["RandomApply", "RandomChoice"]

_GATE_STREAM = 1 << 20  # far from the streams transforms use for their own draws


@dataclass(frozen=True)
class Gate:
    """One wrapper's per-clip decision: which of ``len(cum)`` branches a clip takes.

    Attributes:
        slot: The slot the decision is drawn at (the wrapper's first transform's slot).
        depth: Nesting depth (wrappers in wrappers draw from different streams).
        cum: Cumulative branch probabilities (the last is 1).
        branch: The branch that turns this gate on.
        wrapper: The wrapper's name, for records and messages.
    """

    slot: int
    depth: int
    cum: tuple[float, ...]
    branch: int
    wrapper: str

    def on(self, keys: ClipKeys) -> Tensor:
        u = keys.uniform(self.slot, _GATE_STREAM + self.depth, 1)[:, 0].to(torch.float64)
        thresholds = torch.tensor(self.cum[:-1], dtype=torch.float64)
        choice = (u[:, None] >= thresholds[None, :]).sum(dim=1)
        return choice == self.branch


class _Gated:
    """Shared by the gated transforms of the three kinds: the inner transform and its gate."""

    inner: Transform
    gate: Gate

    def _setup(self, inner: Transform, gate: Gate) -> None:
        self.inner, self.gate = inner, gate
        self.min_frames = inner.min_frames  # type: ignore[misc]

    @property
    def name(self) -> str:
        inner = getattr(self.inner, "name", type(self.inner).__name__)
        return f"{self.gate.wrapper}({inner})"

    def __repr__(self) -> str:
        return f"{self.gate.wrapper}[{self.gate.branch}]({self.inner!r})"

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> GatedParams:
        return GatedParams(on=self.gate.on(keys), inner=self.inner.sample_params(shape, keys, slot))

    def output_shape(self, shape: VideoShape) -> VideoShape:
        out = self.inner.output_shape(shape)
        if out != shape:
            raise fail(
                self.gate.wrapper,
                f"{type(self.inner).__name__}, which changes the clip's shape {shape.as_tuple()} -> {out.as_tuple()}",
                "transforms that keep the shape (a batch cannot hold clips of two shapes)",
            )
        return out


class _GatedTemporal(_Gated, TemporalTransform):
    def __init__(self, inner: Transform, gate: Gate) -> None:
        self._setup(inner, gate)

    def frame_map(self, params: TransformParams, shape: VideoShape) -> Tensor:
        assert isinstance(params, GatedParams) and isinstance(self.inner, TemporalTransform)
        inner = self.inner.frame_map(params.inner, shape)
        return torch.where(params.on[:, None], inner, torch.arange(inner.shape[1]))


class _GatedGeometric(_Gated, GeometricTransform):
    def __init__(self, inner: Transform, gate: Gate) -> None:
        assert isinstance(inner, GeometricTransform)
        self._setup(inner, gate)
        self.exact = inner.exact  # type: ignore[misc]
        self.interpolation = inner.interpolation
        self.padding_mode = inner.padding_mode
        self.antialias = inner.antialias

    def matrix(self, params: TransformParams, shape: VideoShape) -> Tensor:
        assert isinstance(params, GatedParams) and isinstance(self.inner, GeometricTransform)
        m = self.inner.matrix(params.inner, shape).to(torch.float64)
        on = params.on.view(-1, *([1] * (m.dim() - 1)))  # (B, 3, 3) per clip or (B, T, 3, 3) per frame
        return torch.where(on, m, torch.eye(3, dtype=torch.float64))


@dataclass(frozen=True)
class _ValueGate:
    on: Tensor  # (n,) bool
    on_list: list[bool]
    inner: Any  # what the inner transform prepared


class _GatedValue(_Gated, ValueTransform):
    def __init__(self, inner: Transform, gate: Gate) -> None:
        assert isinstance(inner, ValueTransform)
        self._setup(inner, gate)
        self.needs_range = inner.needs_range  # type: ignore[misc]

    def check_context(self, ctx: Context) -> None:
        assert isinstance(self.inner, ValueTransform)
        self.inner.check_context(ctx)

    def prepare(self, params: TransformParams, ctx: Context) -> _ValueGate:
        assert isinstance(params, GatedParams) and isinstance(self.inner, ValueTransform)
        return _ValueGate(params.on, params.on.tolist(), self.inner.prepare(params.inner, ctx))

    def clip_params(self, prepared: Any, b: int) -> Any:
        assert isinstance(self.inner, ValueTransform)
        return (
            prepared.on_list[b],
            self.inner.clip_params(prepared.inner, b) if prepared.on_list[b] else None,
        )

    def apply_(self, x: Tensor, params: Any, ctx: Context) -> Tensor:
        assert isinstance(self.inner, ValueTransform)
        if isinstance(params, tuple):  # one clip: on or off
            on, inner = params
            return self.inner.apply_(x, inner, ctx) if on else x
        if not any(params.on_list):
            return x
        if all(params.on_list):
            return self.inner.apply_(x, params.inner, ctx)
        y = self.inner.apply_(x.clone(), params.inner, ctx)
        on = params.on.to(x.device, non_blocking=True).view(-1, *([1] * (x.dim() - 1)))
        return torch.where(on, y, x)


def _gated(t: Transform, gate: Gate) -> Transform:
    stage: type[Stage] = t.stage
    for cls in (_GatedTemporal, _GatedGeometric, _GatedValue):
        if issubclass(stage, cls.stage):
            return cls(t, gate)
    raise fail("transforms", type(t).__name__, "a temporal, geometric or value transform")


def expand(t: Transform, start: int, depth: int) -> list[Transform]:
    """``t`` as the plan's leaf transforms, the first at slot ``start`` (wrappers expand, others stay)."""
    method = getattr(t, "expand", None)
    return [t] if method is None else list(method(start, depth))


class _Wrapper(Transform):
    """Shared by the wrappers: branches of transforms, one taken per clip."""

    wrapper: ClassVar[str]
    branches: tuple[tuple[Transform, ...], ...]
    cum: tuple[float, ...]

    def expand(self, start: int, depth: int) -> list[Transform]:
        leaves: list[Transform] = []
        for i, branch in enumerate(self.branches):
            gate = Gate(start, depth, self.cum, i, self.wrapper)
            for t in branch:
                for leaf in expand(t, start + len(leaves), depth + 1):
                    leaves.append(_gated(leaf, gate))
        return leaves

    def sample_params(self, shape: VideoShape, keys: ClipKeys, slot: int) -> TransformParams:
        raise NotImplementedError(f"{type(self).__name__} is expanded by the plan, not sampled")


class RandomApply(_Wrapper):
    """Apply ``transforms`` (in order) to a clip with probability ``p``, decided per clip.

    torchvision's ``RandomApply``, per clip: each clip draws its own decision, recorded with the
    transforms' parameters. The transforms must keep the clip's shape.

    Args:
        transforms: A transform or a sequence of them.
        p: Probability that a clip gets them.

    Examples:
        >>> import vidaug3d as va
        >>> aug = va.Compose([va.RandomApply([va.RandomAffine(20)], p=0.5), va.RandomHorizontalFlip()])
        >>> len(aug.stages)  # the gated affine and the flip: one resample
        1
        >>> out, rec = aug(torch.rand(6, 1, 4, 16, 16), seed=3, return_params=True)
        >>> rec.names[0], rec[0].on.tolist()
        ('RandomApply(RandomAffine)', [False, False, True, False, False, True])
    """

    wrapper = "RandomApply"

    def __init__(self, transforms: Transform | Sequence[Transform], p: float = 0.5) -> None:
        ts = [transforms] if isinstance(transforms, Transform) else check_all("transforms", transforms)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
            raise fail("p", p, "a probability in [0, 1]")
        self.transforms = tuple(ts)
        self.p = float(p)
        self.branches = (self.transforms,)
        self.cum = (self.p, 1.0)


class RandomChoice(_Wrapper):
    """Apply one of ``transforms`` to each clip, chosen per clip (torchvision's ``RandomChoice``).

    Transforms of different kinds still fuse with their neighbours: each is gated to the clips that
    chose it (see the module's description). The transforms must keep the clip's shape.

    Args:
        transforms: The choices.
        p: Their probabilities (normalised to sum to 1); default uniform.

    Examples:
        >>> import vidaug3d as va
        >>> aug = va.RandomChoice([va.TemporalReverse(p=1.0), va.RandomHorizontalFlip(p=1.0)])
        >>> out, rec = aug(torch.rand(4, 1, 3, 8, 8), seed=1, return_params=True)
        >>> (rec[0].on ^ rec[1].on).all().item()  # every clip took exactly one
        True
    """

    wrapper = "RandomChoice"

    def __init__(self, transforms: Sequence[Transform], p: Sequence[float] | None = None) -> None:
        ts = check_all("transforms", transforms)
        if not ts:
            raise fail("transforms", [], "at least one transform to choose from")
        if p is None:
            probs = [1.0 / len(ts)] * len(ts)
        else:
            if (
                len(p) != len(ts)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in p)
                or sum(p) <= 0
            ):
                raise fail("p", p, f"{len(ts)} non-negative weights, not all zero")
            probs = [float(v) / float(sum(p)) for v in p]
        self.transforms = tuple(ts)
        self.p = tuple(probs)
        self.branches = tuple((t,) for t in ts)
        cum, acc = [], 0.0
        for v in probs[:-1]:
            acc += v
            cum.append(acc)
        self.cum = (*cum, 1.0)
