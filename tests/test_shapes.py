"""The shape-changing transforms and the engine that threads shapes: crops, resizes, temporal crops.

Each new transform is checked against an independent NumPy reference computed from its record
(nothing here calls the engine's kernels), plus replay, JSON, batch independence, both executors,
targets and inverse. Pipelines mixing crops, resizes, affine, flips and temporal crops in any order
are checked fused (one resample per geometric stage, against the NumPy composition of the
transforms' maps) and unfused (one resample per transform, against the NumPy sequence).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

import vidaug3d as va
from tests._strategies import DTYPES, both_executors, box_targets, make_video, seeds
from tests.reference_impl import affine_forward, bilinear_warp, crop_forward, flip_forward
from vidaug3d import functional as VF
from vidaug3d.base import Context
from vidaug3d.engine import GeometricStage


def vflip_forward(flip: bool) -> np.ndarray:
    return np.diag([1.0, -1.0 if flip else 1.0, 1.0])


# The transforms a mixed pipeline draws from. Sizes keep every downscale below the antialiasing
# threshold (1.25x), so the references need no prefilter (the prefilter has its own test below).
MIX = {
    "RandomTemporalCrop": lambda: va.RandomTemporalCrop(6, speed=(0.8, 1.25), short="pad"),
    "UniformTemporalSubsample": lambda: va.UniformTemporalSubsample(5),
    "TemporalReverse": lambda: va.TemporalReverse(p=0.5),
    "RandomResizedCrop": lambda: va.RandomResizedCrop(22, scale=(0.6, 1.0)),
    "Resize": lambda: va.Resize((26, 25)),
    "CenterCrop": lambda: va.CenterCrop((20, 21)),
    "RandomAffine": lambda: va.RandomAffine(10, (0.1, 0.1), (0.9, 1.1)),
    "RandomHorizontalFlip": lambda: va.RandomHorizontalFlip(p=0.5),
    "RandomVerticalFlip": lambda: va.RandomVerticalFlip(p=0.5),
}
GEOMETRIC = {
    "RandomResizedCrop",
    "Resize",
    "CenterCrop",
    "RandomAffine",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
}


def forward_of(
    t: va.Transform, p: va.TransformParams, b: int, shape: va.VideoShape
) -> tuple[np.ndarray, tuple[int, int]]:
    """The NumPy forward map of a geometric transform for clip b, and its output (H, W)."""
    name = type(t).__name__
    frame = (shape.H, shape.W)
    if name == "RandomAffine":
        return affine_forward(
            float(p.angle[b]), float(p.translate[b, 0]), float(p.translate[b, 1]), float(p.scale[b])
        ), frame
    if name == "RandomHorizontalFlip":
        return flip_forward(bool(p.flip[b])), frame
    if name == "RandomVerticalFlip":
        return vflip_forward(bool(p.flip[b])), frame
    size = t.output_shape(shape)
    out = (size.H, size.W)
    return crop_forward(tuple(float(v) for v in p.box[b]), out, frame), out


def reference(aug: va.Compose, video: torch.Tensor, record: va.Record, fused: bool) -> np.ndarray:
    """Apply a pipeline of MIX transforms clip by clip in NumPy from its record.

    ``fused``: consecutive geometric transforms compose into one map and one resample (the plan's
    semantics); otherwise each transform resamples on its own.
    """
    x = video.double().numpy() / (255.0 if video.dtype == torch.uint8 else 1.0)
    shapes = [va.VideoShape(*record.shape)]
    for t in aug.transforms:
        shapes.append(t.output_shape(shapes[-1]))
    outs = []
    for b in range(x.shape[0]):
        clip = x[b]
        pending: tuple[np.ndarray, tuple[int, int], str] | None = None
        for i, (t, p) in enumerate(zip(aug.transforms, record.params, strict=True)):
            name = type(t).__name__
            if name in GEOMETRIC:
                m, size = forward_of(t, p, b, shapes[i])
                # crops and resizes repeat the frame's edge; an affine in the stage pads with zeros
                pad = "zeros" if name == "RandomAffine" else "border"
                if pending is None:
                    pending = (m, size, pad)
                else:
                    pending = (m @ pending[0], size, "zeros" if "zeros" in (pad, pending[2]) else "border")
                if not fused:
                    clip, pending = bilinear_warp(clip, *pending), None
                continue
            if pending is not None:
                clip, pending = bilinear_warp(clip, *pending), None
            if name == "UniformTemporalSubsample":  # pytorchvideo's formula, written out
                T = clip.shape[1]
                clip = clip[:, np.clip(np.linspace(0, T - 1, t.num_frames), 0, T - 1).astype(np.int64)]
            else:  # the other temporal transforms: their record is the frame map
                clip = clip[:, p.frame_map[b].numpy()]
        if pending is not None:
            clip = bilinear_warp(clip, *pending)
        outs.append(clip)
    return np.stack(outs)


@st.composite
def mixed_pipelines(draw: st.DrawFn) -> list[str]:
    return draw(st.lists(st.sampled_from(sorted(MIX)), min_size=1, max_size=5))


def build(names: list[str], fuse: bool = True) -> va.Compose:
    return va.Compose([MIX[n]() for n in names], fuse=fuse)


@given(names=mixed_pipelines(), seed=seeds, B=st.integers(1, 3))
def test_fused_and_sequential_equal_their_numpy_references(names: list[str], seed: int, B: int) -> None:
    video = make_video((B, 2, 8, 24, 24), seed, torch.float64)
    fused = build(names)
    out, rec = fused(video, seed=seed, return_params=True)
    assert out.shape == fused.output_shape(video.shape).as_tuple()
    np.testing.assert_allclose(out.numpy(), reference(fused, video, rec, fused=True), atol=1e-9, rtol=0)
    seq = build(names, fuse=False)
    out_seq = seq(video, params=rec)
    np.testing.assert_allclose(out_seq.numpy(), reference(seq, video, rec, fused=False), atol=1e-9, rtol=0)


@given(names=mixed_pipelines(), seed=seeds, dtype=st.sampled_from(DTYPES), threads=st.sampled_from([1, 2]))
def test_both_executors_identical_and_replay_exact(
    names: list[str], seed: int, dtype: torch.dtype, threads: int
) -> None:
    video = make_video((3, 2, 8, 24, 24), seed, dtype)  # two channels: a frame window is then a strided view
    aug = build([*names, "RandomAffine"])  # at least one interpolating resample
    streamed, rec, batched = both_executors(aug, video, seed, threads)
    assert torch.equal(streamed, batched) and streamed.dtype == dtype
    assert torch.equal(aug(video, params=rec), streamed)
    back = va.Record.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back == rec and torch.equal(aug(video, params=back), streamed)


@given(names=mixed_pipelines(), seed=seeds)
def test_clip_results_do_not_depend_on_the_batch(names: list[str], seed: int) -> None:
    video = make_video((4, 1, 8, 24, 24), seed)
    aug = build(names)
    ids = torch.tensor([7, 3, 11, 5])
    full = aug(video, seed=seed, sample_ids=ids, epoch=2)
    order = [2, 0]
    part = aug(video[order], seed=seed, sample_ids=ids[order], epoch=2)
    assert torch.equal(part, full[order])


# ------------------------------------------------------------------------------------------- each transform
def torchvision_rrc_box(rng: random.Random, H: int, W: int, scale, ratio) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params written out with Python's RNG: (x0, y0, x1, y1)."""
    area = H * W
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= W and 0 < h <= H:
            i = rng.randint(0, H - h)
            j = rng.randint(0, W - w)
            return (j, i, j + w, i + h)
    in_ratio = W / H
    if in_ratio < min(ratio):
        w, h = W, round(W / min(ratio))
    elif in_ratio > max(ratio):
        h, w = H, round(H * max(ratio))
    else:
        w, h = W, H
    i, j = (H - h) // 2, (W - w) // 2
    return (j, i, j + w, i + h)


@pytest.mark.parametrize(
    ("H", "W", "scale", "ratio"), [(48, 64, (0.08, 1.0), (3 / 4, 4 / 3)), (32, 96, (0.5, 1.0), (0.5, 2.0))]
)
def test_random_resized_crop_follows_torchvisions_sampling(H: int, W: int, scale, ratio) -> None:
    n = 4000
    _, p = va.RandomResizedCrop(16, scale=scale, ratio=ratio)(
        torch.rand(n, 1, 1, H, W), seed=3, return_params=True
    )
    ours = p.box.double()
    rng = random.Random(0)
    theirs = torch.tensor(
        [torchvision_rrc_box(rng, H, W, scale, ratio) for _ in range(n)], dtype=torch.float64
    )
    assert bool(((ours[:, 0] >= 0) & (ours[:, 1] >= 0) & (ours[:, 2] <= W) & (ours[:, 3] <= H)).all())

    def stats(b: torch.Tensor) -> torch.Tensor:
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        cx, cy = (b[:, 0] + b[:, 2]) / 2 / W, (b[:, 1] + b[:, 3]) / 2 / H
        return torch.stack([w * h / (H * W), torch.log(w / h), cx, cy, (w == W).double()])

    # the same distribution: means and quartiles of area, log-aspect and centre agree to sampling error
    a, t = stats(ours), stats(theirs)
    torch.testing.assert_close(a.mean(1), t.mean(1), atol=0.025, rtol=0)
    q = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
    torch.testing.assert_close(a[:4].quantile(q, dim=1), t[:4].quantile(q, dim=1), atol=0.04, rtol=0)


def test_random_resized_crop_fallback_is_torchvisions() -> None:
    # no candidate can fit: area 1 with a wide aspect on a square frame -> the largest centred
    # box with the nearest aspect in range (w = W, h = round(W / 2))
    t = va.RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(2.0, 3.0))
    _, p = t(torch.rand(3, 1, 1, 20, 20), seed=0, return_params=True)
    assert p.box.tolist() == [[0, 5, 20, 15]] * 3


@given(seed=seeds, dtype=st.sampled_from(DTYPES))
def test_center_crop_is_torchvisions_and_exact(seed: int, dtype: torch.dtype) -> None:
    video = make_video((2, 3, 3, 11, 14), seed, dtype)
    out = va.CenterCrop((6, 9))(video, seed=0)
    top, left = round((11 - 6) / 2.0), round((14 - 9) / 2.0)
    assert torch.equal(out, video[..., top : top + 6, left : left + 9])


@given(seed=seeds, dtype=st.sampled_from(DTYPES))
def test_vertical_flip_is_exact(seed: int, dtype: torch.dtype) -> None:
    video = make_video((5, 1, 3, 7, 6), seed, dtype)
    out, p = va.RandomVerticalFlip(p=0.5)(video, seed=seed, return_params=True)
    for b in range(5):
        assert torch.equal(out[b], video[b].flip(-2) if p.flip[b] else video[b])


def test_resize_follows_torchvisions_sizes() -> None:
    assert va.Resize(16)(torch.rand(1, 1, 1, 32, 48), seed=0).shape[-2:] == (16, 24)
    assert va.Resize(16)(torch.rand(1, 1, 1, 50, 30), seed=0).shape[-2:] == (26, 16)
    assert va.Resize((10, 12))(torch.rand(1, 1, 1, 50, 30), seed=0).shape[-2:] == (10, 12)
    # upscaling is plain bilinear: torch's interpolate (align_corners=False) is the reference
    v = torch.rand(2, 3, 2, 9, 7, dtype=torch.float64)
    out = va.Resize((13, 11))(v, seed=0)
    ref = F.interpolate(v.flatten(1, 2), (13, 11), mode="bilinear", align_corners=False).view(2, 3, 2, 13, 11)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("T", [3, 8, 16])
@pytest.mark.parametrize("n", [1, 4, 8, 20])
def test_uniform_temporal_subsample_is_pytorchvideos(T: int, n: int) -> None:
    video = torch.arange(T, dtype=torch.float32).view(1, 1, T, 1, 1).expand(2, 1, T, 2, 2) / 32
    out = va.UniformTemporalSubsample(n)(video, seed=0)
    idx = torch.clamp(torch.linspace(0, T - 1, n), 0, T - 1).long()  # pytorchvideo's own code
    assert torch.equal(out, video[:, :, idx])


@given(T=st.integers(6, 40), n=st.integers(1, 6), seed=seeds, lo=st.floats(0.5, 1.0), hi=st.floats(1.0, 2.0))
def test_random_temporal_crop_windows(T: int, n: int, seed: int, lo: float, hi: float) -> None:
    video = torch.arange(T, dtype=torch.float64).view(1, 1, T, 1, 1).expand(16, 1, T, 1, 1) / 64
    out, p = va.RandomTemporalCrop(n, speed=(lo, hi))(video, seed=seed, return_params=True)
    fm = p.frame_map
    assert fm.shape == (16, n) and bool(((fm >= 0) & (fm < T)).all())
    assert torch.equal(out, (fm.double() / 64).view(16, 1, n, 1, 1))
    steps = fm.diff(dim=1).double()
    assert bool((steps >= 0).all())  # plays forward
    # each step is floor/ceil of the clip's speed (capped so that the window fits the clip)
    cap = min(hi, T / n)
    assert bool((steps <= math.ceil(cap) + 1e-9).all())
    # the window spans (n - 1) * s frames, s within the speed range, to a frame's rounding
    span = (fm[:, -1] - fm[:, 0]).double()
    assert bool((span >= (n - 1) * lo - 1 - 1e-9).all()) and bool((span <= (n - 1) * cap + 1 + 1e-9).all())
    _plain, q = va.RandomTemporalCrop(n)(video, seed=seed, return_params=True)
    assert bool((q.frame_map.diff(dim=1) == 1).all())  # speed 1: consecutive frames
    starts = q.frame_map[:, 0]
    assert bool((starts <= T - n).all())


def test_random_temporal_crop_on_short_clips() -> None:
    video = torch.arange(3.0).view(1, 1, 3, 1, 1) / 8
    with pytest.raises(va.VidaugError, match=r"^video: got 'T = 3 frames', expected at least num_frames = 5"):
        va.RandomTemporalCrop(5)(video, seed=0)
    _, p = va.RandomTemporalCrop(5, short="loop")(video, seed=0, return_params=True)
    assert p.frame_map.tolist() == [[0, 1, 2, 0, 1]]
    _, p = va.RandomTemporalCrop(5, short="pad")(video, seed=0, return_params=True)
    assert p.frame_map.tolist() == [[0, 1, 2, 2, 2]]


def test_shapes_thread_through_sampling() -> None:
    aug = va.Compose(
        [va.RandomTemporalCrop(8), va.FrameReplace(p=1.0), va.RandomResizedCrop(64), va.RandomErasing(p=1.0)]
    )
    video = torch.rand(32, 1, 20, 100, 90)
    out, rec = aug(video, seed=1, return_params=True)
    assert out.shape == (32, 1, 8, 64, 64)
    fmap = rec[1].frame_map
    assert fmap.shape == (32, 8) and int(fmap.max()) < 8  # drawn over the cropped clip's 8 frames
    _y0, _x0, y1, x1 = rec[3].box.unbind(1)
    assert bool((y1 <= 64).all() and (x1 <= 64).all())  # boxes inside the resized 64 x 64 frame
    assert int(y1.max()) > 40 or int(x1.max()) > 40  # and spread over it (not the 100 x 90 input)


# ------------------------------------------------------------------------------------------- antialiasing
def zone_plate(n: int) -> torch.Tensor:
    r = torch.linspace(-1, 1, n, dtype=torch.float64)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    return (0.5 + 0.5 * torch.cos(math.pi * n / 2 * (xx**2 + yy**2))).view(1, 1, 1, n, n)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_downscaling_does_not_alias(factor: int) -> None:
    # A zone plate whose frequency reaches Nyquist at the edge: downscaled, the fine rings must
    # fade to grey (as an antialiased reference resize does), not fold back into coarse rings.
    n = 96
    video = zone_plate(n)
    size = (n // factor, n // factor)
    ref = F.interpolate(video[:, :, 0], size, mode="bilinear", antialias=True, align_corners=False)
    out = va.Resize(size)(video, seed=0)[:, :, 0]
    plain = F.interpolate(video[:, :, 0], size, mode="bilinear", antialias=False, align_corners=False)
    err = float((out - ref).abs().mean())
    aliased = float((plain - ref).abs().mean())
    assert err < 0.35 * aliased, (err, aliased)
    assert err < 0.05
    # the same through a random resized crop and a rotation, one resample per clip
    rrc = va.Compose([va.RandomResizedCrop(size, scale=(1.0, 1.0), ratio=(1.0, 1.0)), va.RandomAffine(5)])
    outr = rrc(video.expand(2, 1, 1, n, n), seed=0)
    assert float(outr[..., 4:-4, 4:-4].std()) < float(plain.std()) * 0.6


def test_prefilter_is_off_up_to_the_threshold() -> None:
    # the paper's zoom range (scale >= 0.8: 1.25x) resamples exactly as before, no prefilter
    m = VF.affine_matrix(torch.zeros(3), torch.zeros(3, 2), torch.tensor([0.8, 1.0, 0.5]))
    s = VF.antialias_sigma(m)
    assert float(s[0].max()) == 0.0 and float(s[1].max()) == 0.0 and float(s[2].min()) > 0.5


# ------------------------------------------------------------------------------------------- targets and inverse
@given(names=mixed_pipelines(), seed=seeds)
@example(  # three geometric stages: the nearest-neighbour mask drifted 0.53 px off the box, within their slack
    names=["RandomResizedCrop", "RandomTemporalCrop", "RandomResizedCrop", "RandomTemporalCrop"], seed=332
)
def test_a_box_drawn_into_a_mask_stays_on_its_box(names: list[str], seed: int) -> None:
    B, T, H, W = 3, 8, 24, 24
    targets = box_targets(B, T, H, W, seed, (10, 9), 2, 10)
    aug = build([*names, "RandomAffine"])
    out, moved, rec = aug(
        make_video((B, 1, T, H, W), seed),
        seed=seed,
        targets=targets,
        return_params=True,
    )
    _, _, To, Ho, Wo = out.shape
    geometric_stages = sum(isinstance(st, GeometricStage) for st in aug.stages)
    # each geometric stage resamples the mask nearest-neighbour: an edge moves by up to half a pixel of that
    # stage's output, which the later stages then zoom; the box is moved exactly
    zooms = [
        torch.linalg.matrix_norm(ck.matrix[..., :2, :2], ord=2)
        for st, ck in zip(
            aug.stages, aug.plan.cook(rec, Context(None, torch.float32), values=False), strict=True
        )
        if isinstance(st, GeometricStage)
    ]
    slack = torch.zeros(B, dtype=torch.float64)
    for z in zooms:
        slack = slack * z + 0.5
    assert moved["masks"].shape == (B, To, Ho, Wo) and moved["masks"].dtype == torch.uint8
    m = moved["masks"].bool()
    yy, xx = torch.meshgrid(torch.arange(Ho) + 0.5, torch.arange(Wo) + 0.5, indexing="ij")
    for b in range(B):
        bx0, by0, bx1, by1 = moved["boxes"][b, 0].tolist()
        on = m[b].any(dim=0)
        # every mask pixel's centre within its moved box, up to the nearest-neighbour slack (half a pixel for one
        # geometric stage)
        e = float(slack[b]) + 1e-9
        assert bool(
            ((xx[on] >= bx0 - e) & (xx[on] <= bx1 + e) & (yy[on] >= by0 - e) & (yy[on] <= by1 + e)).all()
        )
        kx, ky = moved["keypoints"][b, 0].tolist()
        # the box centre stays inside the box, where the box was clipped to the frame at most once
        # (by the last stage): a stage between two geometric stages clips the box, not the point
        if geometric_stages == 1 and 0 < kx < Wo and 0 < ky < Ho:
            assert bx0 - 1e-6 <= kx <= bx1 + 1e-6 and by0 - 1e-6 <= ky <= by1 + 1e-6


def test_inverse_of_crops_and_where_it_is_not_defined() -> None:
    H = W = 48
    yy, xx = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    video = (
        (0.5 + 0.25 * torch.cos(3 * xx) * torch.cos(2 * yy))
        .double()
        .view(1, 1, 1, H, W)
        .expand(2, 1, 3, H, W)
    )
    aug = va.Compose(
        [va.RandomResizedCrop(64, scale=(0.5, 0.6)), va.RandomHorizontalFlip(), va.RandomVerticalFlip()]
    )
    out, rec = aug(video, seed=2, return_params=True)
    back = aug.inverse(out, rec)
    assert back.shape == video.shape
    for b in range(2):  # inside the crop box the content comes back; outside it is lost (zeros)
        x0, y0, x1, y1 = rec[0].box[b].tolist()
        inner = (slice(None), slice(None), slice(y0 + 2, y1 - 2), slice(x0 + 2, x1 - 2))
        assert float((back[b][inner] - video[b][inner]).abs().max()) < 0.01
    temporal = va.Compose([va.RandomTemporalCrop(2), va.RandomHorizontalFlip()])
    out, rec = temporal(video, seed=0, return_params=True)
    with pytest.raises(va.VidaugError, match=r"RandomTemporalCrop.*not a permutation"):
        temporal.inverse(out, rec)
    with pytest.raises(va.VidaugError, match=r"^video: got 'shape"):
        aug.inverse(video, aug(video, seed=0, return_params=True)[1])


# ------------------------------------------------------------------------------------------- value range
def test_normalised_video_through_every_transform_that_needs_no_range() -> None:
    g = torch.Generator().manual_seed(0)
    video = torch.randn(2, 3, 8, 24, 24, generator=g, dtype=torch.float64) * 2  # values beyond +-5
    for name in sorted(MIX):
        aug = build([name])
        out, rec = aug(video, seed=1, return_params=True)
        np.testing.assert_allclose(out.numpy(), reference(aug, video, rec, fused=True), atol=1e-9, rtol=0)
    # value transforms: unbounded leaves values alone, a declared range clamps to it
    jitter = va.ColorJitter(0.5, 0.5, p=1.0)
    free, p = jitter(video, seed=2, return_params=True, value_range=None)
    b, c = p.brightness.view(-1, 1, 1, 1, 1).double(), p.contrast.view(-1, 1, 1, 1, 1).double()
    w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1, 1)
    m = b * (video * w).sum(1, keepdim=True).mean(dim=(2, 3, 4), keepdim=True)
    torch.testing.assert_close(free, c * (b * video - m) + m, atol=1e-12, rtol=0)
    assert free.abs().max() > 3
    clamped = jitter(video, seed=2, value_range=(-3.0, 3.0))
    torch.testing.assert_close(clamped, free.clamp(-3, 3), atol=1e-12, rtol=0)
    pipe = va.Compose([va.GaussianNoise(0.1), va.RandomErasing(p=1.0, value=0.0)], value_range=None)
    assert pipe(video, seed=0).abs().max() > 3


# ------------------------------------------------------------------------------------------- kernels and errors
@pytest.mark.parametrize("kernel", ["resized_crop", "resize"])
@given(seed=seeds, dtype=st.sampled_from(DTYPES))
def test_shape_kernel_contract(kernel: str, seed: int, dtype: torch.dtype) -> None:
    video = make_video((3, 2, 2, 10, 12), seed, dtype)
    before, version = video.clone(), video._version
    boxes = torch.tensor([[0, 0, 12, 10], [2, 1, 9, 8], [5, 3, 11, 10]])
    run = (
        (lambda v, bx: VF.resized_crop(v, bx, (7, 9)))
        if kernel == "resized_crop"
        else (lambda v, bx: VF.resize(v, (7, 9)))
    )
    out = run(video, boxes)
    assert torch.equal(video, before) and video._version == version
    assert out.shape == (3, 2, 2, 7, 9) and out.dtype == dtype
    assert torch.equal(out, torch.cat([run(video[b : b + 1], boxes[b : b + 1]) for b in range(3)]))
    assert run(video[:0], boxes[:0]).shape == (0, 2, 2, 7, 9)


@pytest.mark.parametrize(
    ("make", "arg"),
    [
        (lambda: va.RandomResizedCrop(0), "size"),
        (lambda: va.RandomResizedCrop((4, -1)), "size"),
        (lambda: va.RandomResizedCrop(8, scale=(0.9, 0.1)), "scale"),
        (lambda: va.RandomResizedCrop(8, scale=(0.0, 0.0)), "scale"),
        (lambda: va.RandomResizedCrop(8, ratio=(2.0, 1.0)), "ratio"),
        (lambda: va.RandomResizedCrop(8, ratio=(0.0, 1.0)), "ratio"),
        (lambda: va.Resize(0), "size"),
        (lambda: va.CenterCrop((3, 0)), "size"),
        (lambda: va.UniformTemporalSubsample(0), "num_frames"),
        (lambda: va.RandomTemporalCrop(0), "num_frames"),
        (lambda: va.RandomTemporalCrop(4, speed=(1.5, 1.0)), "speed"),
        (lambda: va.RandomTemporalCrop(4, speed=(0.0, 1.0)), "speed"),
        (lambda: va.RandomTemporalCrop(4, short="wrap"), "short"),
        (lambda: va.RandomVerticalFlip(p=1.1), "p"),
    ],
)
def test_bad_configuration(make, arg: str) -> None:
    with pytest.raises(va.VidaugError, match=rf"^{arg}: got .*expected"):
        make()


def test_bad_calls() -> None:
    video = torch.rand(2, 1, 4, 16, 16)
    with pytest.raises(va.VidaugError, match=r"^video: got .*CenterCrop\(size=\(20, 8\)\)"):
        va.CenterCrop((20, 8))(video, seed=0)
    aug = va.Compose([va.RandomResizedCrop(8), va.RandomTemporalCrop(2)])
    _, rec = aug(video, seed=0, return_params=True)
    with pytest.raises(va.VidaugError, match=r"^params: got .*record drawn for"):
        aug(torch.rand(2, 1, 4, 20, 16), params=rec)  # a record replayed on another input shape
    with pytest.raises(va.VidaugError, match=r"^generator: got"):
        aug(video, generator="cpu")  # type: ignore[arg-type]


EXACT_MOVES = [  # (transforms, the same move written with tensor indexing)
    (lambda: [va.RandomHorizontalFlip(0.0)], lambda v: v),  # the identity: the clip passes on as it came
    (lambda: [va.RandomHorizontalFlip(1.0)], lambda v: v.flip(-1)),  # a flip of the last axis
    (lambda: [va.RandomVerticalFlip(1.0)], lambda v: v.flip(-2)),
    (lambda: [va.CenterCrop((6, 7))], lambda v: v[..., 2:8, 2:9]),  # a slice
    (lambda: [va.RandomVerticalFlip(1.0), va.CenterCrop((4, 9))], lambda v: v.flip(-2)[..., 3:7, 1:10]),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize(("moves", "ref"), EXACT_MOVES)
def test_exact_moves_equal_indexing_and_leave_the_input_alone(
    moves: Any, ref: Any, dtype: torch.dtype
) -> None:
    """The CPU executor moves exact stages by slices and flips: the values of plain indexing and of the batched
    executor's gather, and a value stage after them never writes into the caller's video."""
    v = torch.rand(3, 2, 4, 10, 11)
    v = (v * 255).to(torch.uint8) if dtype == torch.uint8 else v
    keep = v.clone()
    assert torch.equal(va.Compose(moves())(v, seed=3), ref(v))
    streamed, _, batched = both_executors(
        va.Compose([*moves(), va.ColorJitter(0.5, 0.5)]), v, seed=3, threads=2
    )
    assert torch.equal(v, keep)
    assert torch.equal(streamed, batched)


@pytest.mark.parametrize("kind", ["uint8", "normalised"])
def test_issue_pipeline_on_a_full_batch(kind: str) -> None:
    """The 0.2 SSL recipe on an (8, 3, 32, 128, 128) batch: shapes, dtype, replay, targets and two views."""
    aug = va.Compose(
        [
            va.RandomTemporalCrop(16, speed=(0.8, 1.25)),
            va.RandomResizedCrop(112, scale=(0.2, 1.0)),
            va.RandomHorizontalFlip(),
            va.ColorJitter(0.4, 0.4),
        ]
    )
    g = torch.Generator().manual_seed(5)
    clips = torch.randint(0, 256, (8, 3, 32, 128, 128), dtype=torch.uint8, generator=g)
    video = clips if kind == "uint8" else (clips.float() / 255 - 0.45) / 0.225
    vr = {} if kind == "uint8" else {"value_range": None}
    t = box_targets(8, 32, 128, 128, seed=1, size=(30, 24), lo=20, hi=70)
    out, params = aug(video, seed=3, return_params=True, **vr)
    assert out.shape == (8, 3, 16, 112, 112) and out.dtype == video.dtype
    assert torch.equal(aug(video, params=params, **vr), out)
    again, moved = aug(video, params=params, targets={"boxes": t["boxes"], "masks": t["masks"]}, **vr)
    assert torch.equal(again, out)
    assert moved["masks"].shape == (8, 16, 112, 112)
    # the moved box covers the moved mask: every mask pixel lies inside its clip's box (one pixel of slack
    # for the bilinear edge), wherever the crop and the flip put it
    kept = 0
    for b in range(8):
        ys, xs = torch.nonzero(moved["masks"][b].amax(0) > 0, as_tuple=True)
        if len(xs) == 0:  # the crop missed the box
            continue
        kept += 1
        x0, y0, x1, y1 = moved["boxes"][b, 0].tolist()
        assert x0 - 1 <= xs.min() and xs.max() + 0.5 <= x1 + 1, (b, x0, x1, xs.min(), xs.max())
        assert y0 - 1 <= ys.min() and ys.max() + 0.5 <= y1 + 1, (b, y0, y1, ys.min(), ys.max())
    assert kept >= 4, kept  # the check above ran on most clips, not on none
    if kind == "normalised":
        assert out.min() < 0 and out.max() > 1  # value_range=None: nothing clamped to [0, 1]
    v1, v2 = va.TwoViews(aug)(video, seed=3, **vr)
    assert v1.shape == v2.shape == (8, 3, 16, 112, 112) and not torch.equal(v1, v2)
    # the one-pass two-view executor equals one call per view
    assert torch.equal(v1, aug(video, seed=3, view=0, **vr))
    assert torch.equal(v2, aug(video, seed=3, view=1, **vr))


def test_call_keywords_agree_across_compose_engine_and_twoviews() -> None:
    # The keywords are spelled out in three signatures (for help() and type checkers); a keyword added to one
    # and not the others is how TwoViews once refused value_range. Defaults must agree too.
    import inspect

    from vidaug3d import engine

    def keywords(fn: object) -> dict[str, object]:
        sig = inspect.signature(fn)  # type: ignore[arg-type]
        return {n: p.default for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}

    compose = keywords(va.Compose.__call__)
    call = keywords(engine.call)
    two = keywords(va.TwoViews.__call__)
    # engine.call adds the pipeline's check_values; its value_range is the one Compose resolved
    assert set(call) == set(compose) | {"check_values"}
    assert {n: d for n, d in call.items() if n not in ("check_values", "value_range")} == {
        n: d for n, d in compose.items() if n != "value_range"
    }
    # TwoViews picks the view itself, draws both records and moves no targets
    assert two == {n: d for n, d in compose.items() if n not in ("view", "params", "targets")}
