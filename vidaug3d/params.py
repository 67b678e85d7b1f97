"""Parameter records: what one call drew, small, on the CPU, replayable and serialisable.

A record holds O(B) scalars per transform plus ``(B, T)`` frame-index maps, never a noise tensor:
the noise field is regenerated from a per-clip seed. A parameter's shape says how it varies:
``(B,)`` per clip, ``(B, T)`` per frame. Records convert to plain Python (JSON-safe) with
``to_dict`` and back with ``from_dict``, exactly (float32 values survive the round trip).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor

from .errors import fail

__all__ = [
    "AffineParams",
    "BlurParams",
    "ColorOrderParams",
    "ColorParams",
    "CropParams",
    "EraseParams",
    "FactorParams",
    "FlipParams",
    "FrameMapParams",
    "GammaParams",
    "GatedParams",
    "NoiseParams",
    "Record",
    "ShadowParams",
    "SwitchParams",
    "TransformParams",
]

P = TypeVar("P", bound="TransformParams")

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "int64": torch.int64,
    "bool": torch.bool,
}


@dataclass(frozen=True)
class TransformParams:
    """Base of the per-transform records: a frozen dataclass of CPU tensors with leading dim B."""

    registry: ClassVar[dict[str, type[TransformParams]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        TransformParams.registry[cls.__name__] = cls

    def tensors(self) -> dict[str, Tensor]:
        """The record's tensor fields (nested records are in ``fields``)."""
        return {k: v for k, v in self.fields().items() if isinstance(v, Tensor)}

    def fields(self) -> dict[str, Tensor | TransformParams]:
        """Every field: tensors with the batch first, or nested records (a wrapper's inner transform)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def batch_size(self) -> int:
        v = next(iter(self.fields().values()))
        return v.batch_size if isinstance(v, TransformParams) else int(v.shape[0])

    def select(self: P, index: Tensor | slice | list[int]) -> P:
        """The record of a subset of the clips (``index`` along the batch dimension)."""
        return type(self)(
            **{k: v[index] if isinstance(v, Tensor) else v.select(index) for k, v in self.fields().items()}
        )

    def nbytes(self) -> int:
        """Bytes held by the record's tensors."""
        return sum(
            v.numel() * v.element_size() if isinstance(v, Tensor) else v.nbytes()
            for v in self.fields().values()
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain Python: ``{"type": ..., "fields": {name: {"dtype": ..., "data": nested lists}}}``."""
        fields: dict[str, Any] = {}
        for k, v in self.fields().items():
            if isinstance(v, TransformParams):
                fields[k] = {"record": v.to_dict()}
            else:
                fields[k] = {
                    "dtype": str(v.dtype).removeprefix("torch."),
                    "shape": list(v.shape),
                    "data": v.tolist(),
                }
        return {"type": type(self).__name__, "fields": fields}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> TransformParams:
        """Inverse of ``to_dict``."""
        try:
            cls = TransformParams.registry[d["type"]]
            kwargs: dict[str, Any] = {}
            for k, spec in d["fields"].items():
                if "record" in spec:
                    kwargs[k] = TransformParams.from_dict(spec["record"])
                    continue
                t = torch.tensor(spec["data"], dtype=_DTYPES[spec["dtype"]])
                kwargs[k] = t.reshape(spec["shape"])
            return cls(**kwargs)
        except (KeyError, TypeError) as e:
            raise fail(
                "record", d if len(repr(d)) < 200 else "a dict", f"a dict made by to_dict() ({e!r})"
            ) from e

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, TransformParams)
        a, b = self.fields(), other.fields()
        for k, v in a.items():
            w = b[k]
            if isinstance(v, Tensor):
                if not (isinstance(w, Tensor) and v.dtype == w.dtype and torch.equal(v, w)):
                    return False
            elif v != w:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class AffineParams(TransformParams):
    """Per-clip affine: ``angle`` (B,) degrees, ``translate`` (B, 2) pixels, ``scale`` (B,)."""

    angle: Tensor
    translate: Tensor
    scale: Tensor


@dataclass(frozen=True, eq=False)
class FlipParams(TransformParams):
    """``flip`` (B,) bool."""

    flip: Tensor


@dataclass(frozen=True, eq=False)
class CropParams(TransformParams):
    """``box`` (B, 4) int64 ``(x0, y0, x1, y1)``: the pixels of the input frame that fill the output."""

    box: Tensor


@dataclass(frozen=True, eq=False)
class ColorParams(TransformParams):
    """``brightness``, ``contrast``, ``saturation`` factors and ``hue`` shifts (turns), (B,) per clip or (B, T) per frame."""

    brightness: Tensor
    contrast: Tensor
    saturation: Tensor
    hue: Tensor


@dataclass(frozen=True, eq=False)
class ColorOrderParams(ColorParams):
    """``ColorParams`` plus ``order`` (B, 4) int64: the clip's order of brightness (0), contrast (1),
    saturation (2) and hue (3) (``ColorJitter(order="random")``)."""

    order: Tensor


@dataclass(frozen=True, eq=False)
class BlurParams(TransformParams):
    """``sigma`` (B,) Gaussian standard deviation in pixels (0: not blurred)."""

    sigma: Tensor


@dataclass(frozen=True, eq=False)
class SwitchParams(TransformParams):
    """``on`` (B,) bool: whether the clip gets the transform."""

    on: Tensor


@dataclass(frozen=True, eq=False)
class FactorParams(TransformParams):
    """``factor`` (B,) (or (B, T)): one factor per clip (frame); the identity value where off."""

    factor: Tensor


@dataclass(frozen=True, eq=False)
class GammaParams(TransformParams):
    """``gamma`` and ``gain`` (B,): ``gain * x ** gamma``; 1 and 1 where off."""

    gamma: Tensor
    gain: Tensor


@dataclass(frozen=True, eq=False)
class ShadowParams(TransformParams):
    """An acoustic shadow: ``position`` and ``position_end`` (B,) (equal unless it drifts over the clip),
    ``width``, ``strength`` (0 where off), ``depth`` (B,)."""

    position: Tensor
    position_end: Tensor
    width: Tensor
    strength: Tensor
    depth: Tensor


@dataclass(frozen=True, eq=False)
class NoiseParams(TransformParams):
    """``std`` (B,) and ``seed`` (B,) int64: the seed of each clip's noise generator."""

    std: Tensor
    seed: Tensor


@dataclass(frozen=True, eq=False)
class EraseParams(TransformParams):
    """``box`` (B, 4) int64 half-open ``(y0, x0, y1, x1)``; empty where the clip is not erased."""

    box: Tensor


@dataclass(frozen=True, eq=False)
class GatedParams(TransformParams):
    """A wrapper's record: ``on`` (B,) bool, where the ``inner`` transform's record applies."""

    on: Tensor
    inner: TransformParams


@dataclass(frozen=True, eq=False)
class FrameMapParams(TransformParams):
    """``frame_map`` (B, T) int64: output frame t shows input frame ``frame_map[b, t]``."""

    frame_map: Tensor


@dataclass(frozen=True)
class Record:
    """What a pipeline call drew: one entry per transform, and the canonical shape it was drawn for.

    Attributes:
        names: The transforms' class names, in pipeline order.
        params: Their parameter records, in pipeline order.
        shape: ``(B, C, T, H, W)`` of the video the record was drawn for.
        probe: The call's probe geometry (``vidaug3d.ultrasound.ProbeGeometry``, one per clip, given
            or estimated), or None. A replay without ``probe=`` uses it, so the field of view and the
            ultrasound transforms' geometry come back with the parameters.
        fov_mask: Whether the call was given a field-of-view mask (``fov=``). Masks are not kept (a
            mask per clip and pixel); a replay of such a record must be given the mask again.
    """

    names: tuple[str, ...]
    params: tuple[TransformParams, ...]
    shape: tuple[int, int, int, int, int]
    probe: Any = None
    fov_mask: bool = False

    @property
    def batch_size(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> TransformParams:
        return self.params[i]

    def __len__(self) -> int:
        return len(self.params)

    def select(self, index: Tensor | slice | list[int]) -> Record:
        """The record of a subset of the clips."""
        params = tuple(p.select(index) for p in self.params)
        B = params[0].batch_size if params else len(torch.arange(self.shape[0])[index])
        probe = None if self.probe is None else self.probe[index]
        return Record(self.names, params, (B, *self.shape[1:]), probe, self.fov_mask)  # type: ignore[arg-type]

    def nbytes(self) -> int:
        """Bytes held by the record's tensors (all transforms)."""
        return sum(p.nbytes() for p in self.params)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python, JSON-safe. ``Record.from_dict(r.to_dict()) == r``."""
        return {
            "format": "vidaug3d.record/1",
            "shape": list(self.shape),
            "transforms": [
                {"name": n, "params": p.to_dict()} for n, p in zip(self.names, self.params, strict=True)
            ],
            "probe": None if self.probe is None else self.probe.to_dict(),
            "fov_mask": self.fov_mask,
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Record:
        """Inverse of ``to_dict``."""
        if not isinstance(d, dict) or d.get("format") != "vidaug3d.record/1":
            raise fail(
                "record", type(d).__name__, 'a dict made by Record.to_dict() (format "vidaug3d.record/1")'
            )
        names = tuple(str(t["name"]) for t in d["transforms"])
        params = tuple(TransformParams.from_dict(t["params"]) for t in d["transforms"])
        shape = tuple(int(s) for s in d["shape"])
        probe = None
        if d.get("probe") is not None:
            from .ultrasound import ProbeGeometry  # ultrasound imports params: import when needed

            probe = ProbeGeometry.from_dict(d["probe"])
        return Record(names, params, shape, probe, bool(d.get("fov_mask", False)))  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self.names == other.names
            and self.shape == other.shape
            and self.params == other.params
            and same_probe(self.probe, other.probe)
            and self.fov_mask == other.fov_mask
        )

    __hash__ = None  # type: ignore[assignment]


def same_probe(a: Any, b: Any) -> bool:
    """Whether two probe geometries (or Nones) are equal, field by field."""
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(
        torch.equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
    )
