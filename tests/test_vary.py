"""Time variation (``vary="clip" | "frame" | "drift"``): every mode replays, serialises, is the same in
both executors and batch-independent; drift is the linear blend of its two recorded ends (checked
against an independent per-frame NumPy warp for geometry and against the frame mode for values);
geometry that varies per frame moves targets per frame; records of drift stay O(B)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import vidaug3d as va
from tests._strategies import DTYPES, both_executors, box_targets, make_video, seeds
from tests.reference_impl import affine_forward, bilinear_warp, crop_forward
from vidaug3d import params as P

_PROBE = {"probe": "estimate"}

# name -> (factory taking vary, keywords of the call)
_VARYING = {
    "RandomAffine": (lambda v: va.RandomAffine(15, (0.1, 0.1), (0.8, 1.2), p=0.8, vary=v), {}),
    "RandomResizedCrop": (lambda v: va.RandomResizedCrop((8, 10), scale=(0.3, 1.0), vary=v), {}),
    "ColorJitter": (lambda v: va.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8, vary=v), {}),
    "ColorJitterRandomOrder": (
        lambda v: va.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8, vary=v, order="random"),
        {},
    ),
    "RandomGamma": (lambda v: va.RandomGamma((0.5, 2.0), (0.8, 1.2), p=0.7, vary=v), {}),
    "GaussianBlur": (lambda v: va.GaussianBlur(3, sigma=(0.3, 2.0), p=0.7, vary=v), {}),
    "GaussianNoise": (lambda v: va.GaussianNoise((0.01, 0.1), p=0.8, vary=v), {}),
    "SpeckleNoise": (lambda v: va.SpeckleNoise(p=0.8, vary=v), {}),
    "RandomErasing": (lambda v: va.RandomErasing(p=0.8, scale=(0.05, 0.2), vary=v), {}),
    "DepthAttenuation": (lambda v: va.DepthAttenuation(p=0.8, vary=v), _PROBE),
    "TimeGainCompensation": (lambda v: va.TimeGainCompensation(p=0.8, vary=v), _PROBE),
    "AcousticShadow": (lambda v: va.AcousticShadow(p=0.8, vary=v, drift=0.3), _PROBE),
}
_MODES = {
    "RandomResizedCrop": ("clip", "drift"),
    "AcousticShadow": ("clip", "drift"),
}
_CASES = [(n, m) for n in sorted(_VARYING) for m in _MODES.get(n, ("clip", "frame", "drift"))]


def _make(name: str, vary: str) -> tuple[va.Transform, dict]:
    factory, kw = _VARYING[name]
    return factory(vary), kw


@pytest.mark.parametrize(("name", "vary"), _CASES)
@given(seed=seeds, dtype=st.sampled_from(DTYPES), threads=st.sampled_from([1, 2]))
def test_every_mode_replays_serialises_and_both_executors_agree(
    name: str, vary: str, seed: int, dtype: torch.dtype, threads: int
) -> None:
    t, kw = _make(name, vary)
    aug = va.Compose([va.TemporalReverse(), t, va.RandomHorizontalFlip()])
    video = make_video((4, 3, 6, 14, 12), seed, dtype)
    out, rec, batched = both_executors(aug, video, seed, threads, **kw)
    assert torch.equal(out, batched) and out.dtype == dtype
    back = va.Record.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert torch.equal(aug(video, params=back, **kw), out)
    ids = torch.tensor([3, 1, 4, 1])
    full = aug(video, seed=seed, sample_ids=ids, **kw)
    assert torch.equal(aug(video[2:], seed=seed, sample_ids=ids[2:], **kw), full[2:])


@pytest.mark.parametrize("name", sorted(_VARYING))
def test_drift_records_are_o_of_b_and_clip_mode_is_the_drift_start(name: str) -> None:
    video = make_video((3, 3, 9, 14, 12), 1, torch.float32)
    t_clip, kw = _make(name, "clip")
    t_drift, _ = _make(name, "drift")
    _, pc = t_clip(video, seed=5, return_params=True, **kw)
    _, pd = t_drift(video, seed=5, return_params=True, **kw)
    for k, v in pd.tensors().items():
        c = pc.tensors()[k]
        if k == "position_end":  # AcousticShadow records its two ends as two (B,) fields
            continue
        if v.shape == c.shape:  # a parameter that does not drift (a seed, the shadow's width)
            assert torch.equal(v, c)
            continue
        # drift holds (start, end) where the clip mode holds one value: the start is the clip's
        assert v.shape[:2] == (3, 2) and v.shape[2:] == c.shape[1:], (k, v.shape, c.shape)
        assert torch.equal(v[:, 0], c), k
    longer = make_video((3, 3, 17, 14, 12), 1, torch.float32)
    _, pl = t_drift(longer, seed=5, return_params=True, **kw)
    assert pl.nbytes() == pd.nbytes()  # independent of T


def _frames_record(name: str, drift: P.TransformParams, T: int) -> P.TransformParams:
    """The drift record blended to one value per frame, by hand: what vary="frame" replays."""
    w = torch.linspace(0.0, 1.0, T, dtype=torch.float64)

    def blend(v: torch.Tensor) -> torch.Tensor:
        w_ = w.view(1, T, *([1] * (v.dim() - 2)))
        a, b = v[:, :1].double(), v[:, 1:2].double()
        return (a + (b - a) * w_).to(v.dtype)

    return type(drift)(
        **{
            k: blend(v) if v.dim() >= 2 and v.shape[1] == 2 and k != "seed" else v
            for k, v in drift.tensors().items()
        }
    )


@pytest.mark.parametrize(
    "name",
    [
        "ColorJitter",
        "RandomGamma",
        "GaussianBlur",
        "GaussianNoise",
        "SpeckleNoise",
        "DepthAttenuation",
        "TimeGainCompensation",
    ],
)
@given(seed=seeds)
def test_value_drift_is_the_frame_mode_on_the_blended_record(name: str, seed: int) -> None:
    T = 7
    video = make_video((3, 3, T, 10, 9), seed, torch.float64)
    t_drift, kw = _make(name, "drift")
    t_frame, _ = _make(name, "frame")
    out, rec = t_drift(video, seed=seed, return_params=True, **kw)
    assert torch.equal(t_frame(video, params=_frames_record(name, rec, T), **kw), out)


@given(seed=seeds, T=st.integers(2, 6))
def test_drifting_affine_is_a_per_frame_warp(seed: int, T: int) -> None:
    # independent reference: each frame warped by NumPy with its own blended parameters (zoom
    # >= 0.8: no antialiasing prefilter)
    video = make_video((2, 2, T, 11, 13), seed, torch.float64)
    out, p = va.RandomAffine(20, (0.2, 0.1), (0.8, 1.3), vary="drift")(video, seed=seed, return_params=True)
    for b in range(2):
        for f in range(T):
            w = f / (T - 1)
            ang, sc = (float(v[b, 0] + (v[b, 1] - v[b, 0]) * w) for v in (p.angle.double(), p.scale.double()))
            tr = p.translate[b].double()
            tx, ty = (float(tr[0, i] + (tr[1, i] - tr[0, i]) * w) for i in range(2))
            ref = bilinear_warp(video[b, :, f : f + 1].numpy(), affine_forward(ang, tx, ty, sc))
            np.testing.assert_allclose(out[b, :, f : f + 1].numpy(), ref, atol=1e-5, rtol=0)


@given(seed=seeds)
def test_sliding_crop_keeps_its_size_and_is_a_per_frame_crop(seed: int) -> None:
    T, H, W = 5, 20, 24
    video = make_video((3, 1, T, H, W), seed, torch.float64)
    t = va.RandomResizedCrop((10, 12), scale=(0.2, 0.6), vary="drift")
    out, p = t(video, seed=seed, return_params=True)
    box = p.box
    assert torch.equal(box[:, 0, 2:] - box[:, 0, :2], box[:, 1, 2:] - box[:, 1, :2])  # same size
    assert bool((box[..., :2] >= 0).all() and (box[..., 2] <= W).all() and (box[..., 3] <= H).all())
    for b in range(3):
        for f in range(T):
            bf = (box[b, 0] + (box[b, 1] - box[b, 0]) * (f / (T - 1))).double().tolist()
            fwd = crop_forward(tuple(bf), (10, 12), (H, W))
            scale = max((bf[2] - bf[0]) / 12, (bf[3] - bf[1]) / 10)
            if scale > 1.25:  # the antialiasing prefilter runs: not a plain bilinear warp
                continue
            ref = bilinear_warp(video[b, :, f : f + 1].numpy(), fwd, (10, 12), padding="border")
            np.testing.assert_allclose(out[b, :, f : f + 1].numpy(), ref, atol=1e-5, rtol=0)


@given(seed=seeds)
def test_targets_follow_a_drifting_geometry_frame_by_frame(seed: int) -> None:
    B, T, H, W = 3, 6, 24, 24
    targets = box_targets(B, T, H, W, seed, (8, 7), 4, 10)
    aug = va.Compose(
        [
            va.RandomAffine(25, (0.1, 0.1), (0.9, 1.1), vary="drift"),
            va.RandomResizedCrop(20, (0.5, 1.0), vary="drift"),
        ]
    )
    _, moved = aug(
        make_video((B, 1, T, H, W), seed),
        seed=seed,
        targets=targets,
    )
    assert moved["boxes"].shape == (B, T, 1, 4) and moved["keypoints"].shape == (B, T, 1, 2)
    m = moved["masks"].bool()
    yy, xx = torch.meshgrid(torch.arange(20) + 0.5, torch.arange(20) + 0.5, indexing="ij")
    for b in range(B):
        for f in range(T):
            bx0, by0, bx1, by1 = moved["boxes"][b, f, 0].tolist()
            on = m[b, f]
            assert bool(
                (
                    (xx[on] >= bx0 - 0.5)
                    & (xx[on] <= bx1 + 0.5)
                    & (yy[on] >= by0 - 0.5)
                    & (yy[on] <= by1 + 0.5)
                ).all()
            )
            kx, ky = moved["keypoints"][b, f, 0].tolist()
            if 0 < kx < 20 and 0 < ky < 20:
                assert bx0 - 1e-6 <= kx <= bx1 + 1e-6 and by0 - 1e-6 <= ky <= by1 + 1e-6
    # the frames really differ: the box moves over the clip
    assert not torch.equal(moved["boxes"][:, 0], moved["boxes"][:, -1])


def test_drifting_geometry_inverts_and_fuses_into_one_stage() -> None:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 40), torch.linspace(0, 1, 40), indexing="ij")
    frame = 0.5 + 0.25 * torch.cos(3 * xx) * torch.cos(2 * yy)
    video = frame.expand(2, 1, 5, 40, 40).contiguous()
    aug = va.Compose(
        [va.RandomAffine(10, vary="drift"), va.RandomHorizontalFlip(), va.RandomAffine(5, vary="frame")]
    )
    assert len(aug.stages) == 1  # per-clip and per-frame matrices multiply into one stage
    out, rec = aug(video, seed=3, return_params=True)
    back = aug.inverse(out, rec)
    inner = (slice(None), slice(None), slice(None), slice(12, -12), slice(12, -12))
    torch.testing.assert_close(back[inner], video[inner], atol=0.02, rtol=0)
    # a static clip under drift is no longer static; under "clip" it is
    static = va.RandomAffine(10)(video, seed=3)
    assert torch.equal(static[:, :, 0], static[:, :, -1])
    assert not torch.equal(out[:, :, 0], out[:, :, -1])


def test_erasing_drift_slides_a_box_of_one_size_and_frame_mode_draws_per_frame() -> None:
    video = torch.ones(4, 1, 6, 20, 20)
    out = va.RandomErasing(p=1.0, scale=(0.05, 0.1), vary="drift")(video, seed=2)
    area = (out == 0).sum(dim=(1, 3, 4))  # erased pixels per frame
    assert bool((area == area[:, :1]).all()) and bool((area > 0).all())
    out_f, pf = va.RandomErasing(p=1.0, scale=(0.05, 0.1), vary="frame")(video, seed=2, return_params=True)
    assert pf.box.shape == (4, 6, 4)
    for b in range(4):
        for f in range(6):
            y0, x0, y1, x1 = pf.box[b, f].tolist()
            expect = torch.ones(20, 20)
            expect[y0:y1, x0:x1] = 0
            assert torch.equal(out_f[b, 0, f], expect)


def test_vary_errors_name_the_argument_and_the_choices() -> None:
    with pytest.raises(va.VidaugError, match=r'^vary: got \'wobble\', expected "clip" or "frame" or "drift"'):
        va.RandomAffine(5, vary="wobble")
    with pytest.raises(
        va.VidaugError, match=r"^vary: got 'frame', expected \"clip\" or \"drift\" \(a crop per frame"
    ):
        va.RandomResizedCrop(8, vary="frame")
    with pytest.raises(
        va.VidaugError, match=r"^vary: got 'frame', expected \"clip\" or \"drift\" \(a shadow"
    ):
        va.AcousticShadow(vary="frame")
    with pytest.raises(va.VidaugError, match=r'^order: got \'shuffled\', expected "fixed" or "random"'):
        va.ColorJitter(0.4, order="shuffled")
    for t in (va.ColorJitter, va.GaussianNoise, va.RandomGamma, va.GaussianBlur):
        with pytest.raises(va.VidaugError, match=r"^vary: got 'x'"):
            t(vary="x") if t is not va.GaussianBlur else t(3, vary="x")


def test_drift_of_one_frame_is_the_start() -> None:
    video = make_video((2, 1, 1, 12, 12), 0, torch.float64)
    t = va.RandomAffine(30, vary="drift")
    out, p = t(video, seed=4, return_params=True)
    start = va.Record(
        ("RandomAffine",),
        (P.AffineParams(p.angle[:, 0], p.translate[:, 0], p.scale[:, 0]),),
        (2, 1, 1, 12, 12),
    )
    assert torch.equal(va.RandomAffine(30)(video, params=start), out)
    assert math.isfinite(float(out.sum()))
