"""Property tests of the transforms' semantics (per clip, over time, seeding, records, fusion)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import vidaug3d as va
from tests._strategies import DTYPES, make_video, seeds, shapes
from tests.reference_impl import paper_pipeline_reference

ALL = {
    "RandomAffine": lambda p: va.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.8, 1.2), p=p),
    "RandomHorizontalFlip": lambda p: va.RandomHorizontalFlip(p=p),
    "ColorJitter": lambda p: va.ColorJitter(0.3, 0.3, p=p),
    "GaussianNoise": lambda p: va.GaussianNoise(0.03, p=p),
    "RandomErasing": lambda p: va.RandomErasing(p=p, scale=(0.02, 0.1)),
    "TemporalReverse": lambda p: va.TemporalReverse(p=p),
    "TemporalShuffle": lambda p: va.TemporalShuffle(p=p, max_frames=4),
    "FrameReplace": lambda p: va.FrameReplace(p=p, max_frames=4),
}


def tol(dtype: torch.dtype) -> dict[str, float]:
    """Tolerances by dtype, in one table (values in [0, 1]; uint8 compared as integers)."""
    return {
        torch.float64: dict(atol=1e-9, rtol=0),
        torch.float32: dict(atol=1e-5, rtol=0),
        torch.float16: dict(atol=2e-3, rtol=0),
        torch.bfloat16: dict(atol=1e-2, rtol=0),
        torch.uint8: dict(atol=1, rtol=0),
    }[dtype]


# ------------------------------------------------------------------------------------------- identity
@pytest.mark.parametrize("name", sorted(ALL))
@given(shape=shapes(min_t=2), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_p_zero_is_identity(name: str, shape: tuple[int, ...], seed: int, dtype: torch.dtype) -> None:
    video = make_video(shape, seed, dtype)
    out = ALL[name](0.0)(video, seed=seed)
    assert out.dtype == video.dtype and out.shape == video.shape
    if name == "RandomAffine" and dtype.is_floating_point:
        # identity matrix through grid_sample: exact up to the grid's float rounding
        torch.testing.assert_close(out.double(), video.double(), **tol(dtype))
    else:
        assert torch.equal(out, video)


@given(shape=shapes(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_flip_twice_is_identity(shape: tuple[int, ...], seed: int, dtype: torch.dtype) -> None:
    video = make_video(shape, seed, dtype)
    flip = va.Compose([va.RandomHorizontalFlip(p=1.0), va.RandomHorizontalFlip(p=1.0)], fuse=False)
    assert torch.equal(flip(video, seed=seed), video)
    once = va.RandomHorizontalFlip(p=1.0)(video, seed=seed)
    assert torch.equal(once, video.flip(-1))


def smooth_video(B: int, T: int, H: int, W: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    f = torch.rand(B, 1, T, 3, generator=g) * 2 + 0.5
    ph = torch.rand(B, 1, T, 2, generator=g) * 6
    v = 0.5 + 0.25 * torch.cos(f[..., 0, None, None] * xx * 3 + ph[..., 0, None, None]) * torch.cos(
        f[..., 1, None, None] * yy * 3 + ph[..., 1, None, None]
    )
    return v.double()


@given(seed=seeds, B=st.integers(1, 3))
def test_affine_then_inverse_recovers_interior(seed: int, B: int) -> None:
    H = W = 48
    video = smooth_video(B, 3, H, W, seed)
    aug = va.Compose(
        [va.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.8, 1.2)), va.RandomHorizontalFlip()]
    )
    out, rec = aug(video, seed=seed, return_params=True)
    back = aug.inverse(out, rec)
    # interior: pixels that stay inside the frame under the forward map (translation <= 10%, scale >= 0.8)
    c = slice(H // 4, 3 * H // 4)
    err = (back[..., c, c] - video[..., c, c]).abs().max().item()
    assert err < 0.03, err  # two bilinear resamplings of a smooth image
    moved = (out[..., c, c] - video[..., c, c]).abs().max().item()
    assert (
        err <= moved + 1e-9
    )  # and the inverse did undo something: the forward moved the interior at least as much


# ------------------------------------------------------------------------------------------- per clip / over time
@given(shape=shapes(min_t=2), seed=seeds)
def test_static_clip_stays_static_through_spatial_transforms(shape: tuple[int, ...], seed: int) -> None:
    B, C, T, H, W = shape
    frame = make_video((B, C, 1, H, W), seed)
    video = frame.expand(B, C, T, H, W).contiguous()
    spatial = va.Compose(
        [
            va.RandomAffine(10, (0.1, 0.1), (0.8, 1.2)),
            va.RandomHorizontalFlip(),
            va.ColorJitter(0.3, 0.3),
            va.RandomErasing(p=0.7, scale=(0.02, 0.3)),
        ]
    )
    out = spatial(video, seed=seed)
    assert torch.equal(out, out[:, :, :1].expand_as(out))
    # noise, on the other hand, is independent per frame
    noisy = va.GaussianNoise(0.05)(torch.full((B, C, T, H, W), 0.5), seed=seed)
    assert not torch.equal(noisy[:, :, 0], noisy[:, :, 1])


def test_parameters_differ_between_clips() -> None:
    aug = va.presets.paper()
    _, rec = aug(torch.rand(16, 1, 8, 16, 16), seed=0, return_params=True)
    affine = rec[3]
    assert len(set(affine.angle.tolist())) == 16
    assert 2 < int(rec[4].flip.sum()) < 14
    assert len(set(rec[5].brightness.tolist())) == 16
    assert len(set(rec[6].seed.tolist())) == 16


def test_parameter_ranges_follow_the_paper() -> None:
    aug = va.presets.paper()
    _, rec = aug(torch.rand(512, 1, 16, 8, 8), seed=1, return_params=True)
    a = rec[3]
    assert a.angle.abs().max() <= 10 and a.angle.abs().max() > 9
    assert (a.translate[:, 0].abs() <= 0.1 * 8).all() and (a.scale >= 0.8).all() and (a.scale <= 1.2).all()
    c = rec[5]
    assert c.brightness.min() >= 0.7 and c.brightness.max() <= 1.3 and c.contrast.min() >= 0.7
    e = rec[7].box
    erased = (e[:, 2] > e[:, 0]).float().mean()
    assert 0.35 < erased < 0.65
    area = ((e[:, 2] - e[:, 0]) * (e[:, 3] - e[:, 1]))[e[:, 2] > e[:, 0]].float() / 64
    assert area.min() >= 0.0 and area.max() <= 0.2  # (0.02, 0.1) of 8x8, after rounding to whole pixels
    # reverse: p = 0.5; shuffle: p = 0.5 and k in {2, 3, 4} of {0..4}; replace: p = 0.5 and k in {1..4}
    for i, expect in ((0, 0.5), (1, 0.5 * 3 / 5), (2, 0.5 * 4 / 5)):
        moved = (rec[i].frame_map != torch.arange(16)).any(dim=1).float().mean()
        assert abs(moved - expect) < 0.08, (i, moved, expect)


# ------------------------------------------------------------------------------------------- temporal maps
@given(T=st.integers(2, 20), B=st.integers(1, 6), seed=seeds, p=st.sampled_from([0.5, 1.0]))
def test_temporal_maps_are_valid(T: int, B: int, seed: int, p: float) -> None:
    video = torch.arange(T, dtype=torch.float32).view(1, 1, T, 1, 1).expand(B, 1, T, 2, 2) / T
    t = torch.arange(T)
    rev, rp = va.TemporalReverse(p=p)(video, seed=seed, return_params=True)
    for b in range(B):
        m = rp.frame_map[b]
        assert torch.equal(m, t) or torch.equal(m, t.flip(0))
    assert torch.equal(rev, video[torch.arange(B)[:, None], :, rp.frame_map].permute(0, 2, 1, 3, 4))

    sh, sp = va.TemporalShuffle(p=p, max_frames=4)(video, seed=seed, return_params=True)
    for b in range(B):
        m = sp.frame_map[b]
        assert sorted(m.tolist()) == list(range(T))  # a permutation
        assert int((m != t).sum()) in (0, 2, 3, 4)  # of at most 4 frames, each of which moves
        assert torch.equal(sh[b, 0, :, 0, 0], video[b, 0, m, 0, 0])

    rep, rpp = va.FrameReplace(p=p, max_frames=4)(video, seed=seed, return_params=True)
    for b in range(B):
        m = rpp.frame_map[b]
        assert ((m >= 0) & (m < T)).all()
        assert int((m != t).sum()) <= 4  # at most 4 frames replaced, each by another frame
        assert torch.equal(rep[b, 0, :, 0, 0], video[b, 0, m, 0, 0])


def test_shuffle_and_replace_use_all_counts_0_to_4() -> None:
    _, p = va.TemporalShuffle(p=1.0, max_frames=4)(torch.rand(400, 1, 16, 1, 1), seed=0, return_params=True)
    moved = (p.frame_map != torch.arange(16)).sum(dim=1)
    assert set(moved.tolist()) == {0, 2, 3, 4}  # k = 1 moves nothing; otherwise every chosen frame moves
    _, p = va.FrameReplace(p=1.0, max_frames=4)(torch.rand(400, 1, 16, 1, 1), seed=0, return_params=True)
    assert set((p.frame_map != torch.arange(16)).sum(dim=1).tolist()) == {0, 1, 2, 3, 4}


@given(T=st.integers(2, 12), seed=seeds)
def test_inverse_of_frame_order(T: int, seed: int) -> None:
    video = torch.rand(3, 1, T, 4, 4)
    aug = va.Compose([va.TemporalReverse(p=0.5), va.TemporalShuffle(p=1.0)])
    out, rec = aug(video, seed=seed, return_params=True)
    assert torch.equal(aug.inverse(out, rec), video)
    rep = va.Compose([va.FrameReplace(p=1.0, max_frames=4)])
    out, rec = rep(video, seed=seed, return_params=True)
    fmap = rec[0].frame_map
    if torch.equal(fmap.sort(dim=1).values, torch.arange(T).expand_as(fmap)):  # e.g. two frames swapped
        assert torch.equal(rep.inverse(out, rec), video)
    else:
        with pytest.raises(va.VidaugError, match="not a permutation"):
            rep.inverse(out, rec)


# ------------------------------------------------------------------------------------------- seeding and records
@given(shape=shapes(min_t=2), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_replay_is_bit_exact_and_records_serialise(
    shape: tuple[int, ...], seed: int, dtype: torch.dtype
) -> None:
    video = make_video(shape, seed, dtype)
    aug = va.presets.paper()
    out, rec = aug(video, generator=torch.Generator().manual_seed(seed), return_params=True)
    assert torch.equal(aug(video, params=rec), out)
    d = json.loads(json.dumps(rec.to_dict()))
    rec2 = va.Record.from_dict(d)
    assert rec2 == rec
    assert torch.equal(aug(video, params=d), out)
    # same generator seed, same parameters; the generator advances between calls
    g = torch.Generator().manual_seed(seed)
    _, r1 = aug(video, generator=g, return_params=True)
    _, r2 = aug(video, generator=g, return_params=True)
    assert r1 == rec and r2 != rec


def test_record_is_small() -> None:
    _, rec = va.presets.paper()(torch.rand(8, 1, 16, 32, 32), seed=0, return_params=True)
    assert rec.nbytes() / 8 < 1024
    assert len(json.dumps(rec.to_dict())) / 8 < 1024 * 2  # as text, including the field names


@given(shape=shapes(min_t=2), seed=seeds, dtype=st.sampled_from([torch.float32, torch.uint8]))
def test_batched_equals_per_clip(shape: tuple[int, ...], seed: int, dtype: torch.dtype) -> None:
    video = make_video(shape, seed, dtype)
    aug = va.presets.paper()
    out, rec = aug(video, seed=seed, return_params=True)
    for b in range(shape[0]):
        one = aug(video[b : b + 1], params=rec.select([b]))
        torch.testing.assert_close(one[0], out[b], **tol(dtype))


@given(shape=shapes(min_t=2, max_b=6), seed=seeds, data=st.data())
def test_results_do_not_depend_on_batch_composition(
    shape: tuple[int, ...], seed: int, data: st.DataObject
) -> None:
    B = shape[0]
    video = make_video(shape, seed)
    ids = torch.tensor(data.draw(st.lists(st.integers(0, 10**6), min_size=B, max_size=B, unique=True)))
    aug = va.presets.paper()
    full = aug(video, seed=seed, sample_ids=ids, epoch=3)
    keep = data.draw(st.lists(st.integers(0, B - 1), min_size=1, max_size=B, unique=True))
    part = aug(video[keep], seed=seed, sample_ids=ids[keep], epoch=3)
    torch.testing.assert_close(part, full[keep], **tol(torch.float32))
    other_epoch = aug(video, seed=seed, sample_ids=ids, epoch=4)
    assert not torch.equal(other_epoch, full)


def test_global_rng_untouched() -> None:
    torch.manual_seed(123)
    expect = torch.rand(3)
    torch.manual_seed(123)
    va.presets.paper()(torch.rand(2, 1, 8, 16, 16, generator=torch.Generator().manual_seed(0)), seed=5)
    va.TwoViews(va.presets.paper())(torch.zeros(2, 1, 8, 16, 16), generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.rand(3), expect)


def test_two_views_are_independent_and_reproducible() -> None:
    video = torch.rand(4, 1, 8, 32, 32)
    tv = va.TwoViews(va.presets.paper())
    (a1, p1), (a2, p2) = tv(video, generator=torch.Generator().manual_seed(0), return_params=True)
    (b1, q1), (b2, _q2) = tv(video, generator=torch.Generator().manual_seed(0), return_params=True)
    assert torch.equal(a1, b1) and torch.equal(a2, b2) and p1 == q1
    assert p1 != p2 and not torch.equal(a1, a2)
    assert (p1[3].angle != p2[3].angle).all()
    assert torch.equal(va.presets.paper()(video, params=p2), a2)


# ------------------------------------------------------------------------------------------- fusion
@given(
    shape=shapes(min_t=2, max_hw=10),
    seed=seeds,
    dtype=st.sampled_from([torch.float32, torch.float64, torch.uint8]),
)
def test_fused_equals_independent_sequential_reference(
    shape: tuple[int, ...], seed: int, dtype: torch.dtype
) -> None:
    video = make_video(shape, seed, dtype)
    aug = va.presets.paper()
    out, rec = aug(video, seed=seed, return_params=True)
    ref = paper_pipeline_reference(video, rec)
    if dtype == torch.uint8:
        got = out.double().numpy()
        want = np.round(ref * 255)
        diff = np.abs(got - want)
        assert diff.max() <= 1 and (diff > 0).mean() < 0.02
    else:
        np.testing.assert_allclose(out.double().numpy(), ref, atol=1e-4 if dtype == torch.float32 else 1e-9)


@given(shape=shapes(min_t=2), seed=seeds)
def test_fused_equals_unfused(shape: tuple[int, ...], seed: int) -> None:
    video = make_video(shape, seed, torch.float64)
    fused = va.presets.paper()
    plain = va.presets.paper(fuse=False)
    assert len(fused.stages) == 3 and len(plain.stages) == 8
    out, rec = fused(video, seed=seed, return_params=True)
    torch.testing.assert_close(plain(video, params=rec), out, atol=1e-9, rtol=0)


# ------------------------------------------------------------------------------------------- dtypes, layouts, autograd
@given(shape=shapes(min_t=2), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_range_dtype_and_input_kept(shape: tuple[int, ...], seed: int, dtype: torch.dtype) -> None:
    video = make_video(shape, seed, dtype)
    before = video.clone()
    out = va.presets.paper()(video, seed=seed)
    assert torch.equal(video, before)
    assert out.dtype == dtype and out.shape == video.shape and out.device == video.device
    if dtype.is_floating_point:
        assert out.min() >= 0 and out.max() <= 1


def test_uint8_to_float_output() -> None:
    video = (torch.rand(2, 1, 4, 8, 8) * 255).to(torch.uint8)
    aug = va.presets.paper()
    f, rec = aug(video, seed=0, out_dtype=torch.float32, return_params=True)
    u = aug(video, params=rec)
    assert f.dtype == torch.float32
    assert torch.equal((f * 255).round().to(torch.uint8), u)


def test_unbatched_and_named_layouts() -> None:
    video = torch.rand(3, 1, 6, 10, 12)
    aug = va.presets.paper()
    ref = aug(video, seed=4)
    assert torch.equal(aug(video[0], seed=4), aug(video[:1], seed=4)[0])
    btchw = aug(video.permute(0, 2, 1, 3, 4), seed=4, layout="B T C H W")
    assert btchw.shape == (3, 6, 1, 10, 12)
    assert torch.equal(btchw.permute(0, 2, 1, 3, 4), ref)
    tchw = aug(video[0].permute(1, 0, 2, 3), seed=4, layout="TCHW")
    assert torch.equal(tchw.permute(1, 0, 2, 3), aug(video[:1], seed=4)[0])


def test_differentiable_on_float_paths() -> None:
    video = (0.25 + 0.5 * torch.rand(2, 1, 4, 8, 8, dtype=torch.float64)).requires_grad_()
    aug = va.presets.paper()
    _, rec = aug(video.detach(), seed=2, return_params=True)
    assert torch.autograd.gradcheck(lambda v: aug(v, params=rec), (video,), eps=1e-6, atol=1e-5)
    out = va.presets.paper()(video.float(), seed=0)
    out.sum().backward()
    assert video.grad is not None and video.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------- targets
def _square_video(B: int, T: int, H: int, W: int, box: tuple[int, int, int, int]) -> torch.Tensor:
    v = torch.zeros(B, 1, T, H, W)
    x0, y0, x1, y1 = box
    v[..., y0:y1, x0:x1] = 1.0
    return v


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    ix = (torch.minimum(a[2], b[2]) - torch.maximum(a[0], b[0])).clamp(min=0)
    iy = (torch.minimum(a[3], b[3]) - torch.maximum(a[1], b[1])).clamp(min=0)
    inter = float(ix * iy)
    area = lambda z: float((z[2] - z[0]) * (z[3] - z[1]))  # noqa: E731
    return inter / (area(a) + area(b) - inter)


@given(seed=seeds)
def test_boxes_masks_keypoints_follow_the_video(seed: int) -> None:
    B, T, H, W = 4, 6, 48, 48
    box = (14, 18, 30, 28)
    video = _square_video(B, T, H, W, box)
    boxes = torch.tensor(box, dtype=torch.float32).expand(B, 1, 4).clone()
    masks = video[:, 0] > 0.5
    kp = torch.tensor([[22.0, 23.0]]).expand(B, 1, 2).clone()  # centre of the square
    aug = va.Compose(
        [va.TemporalReverse(), va.RandomAffine(10, (0.1, 0.1), (0.8, 1.2)), va.RandomHorizontalFlip()]
    )
    out, tg = aug(video, seed=seed, targets={"boxes": boxes, "masks": masks, "keypoints": kp})
    for b in range(B):
        on = out[b, 0, 0] > 0.5
        ys, xs = torch.nonzero(on, as_tuple=True)
        seen = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
        assert _iou(tg["boxes"][b, 0], seen) > 0.75  # bbox of the rotated square vs the moved bbox
        m = tg["masks"][b, 0]
        assert m.dtype == torch.bool and (m & on).sum() / (m | on).sum() > 0.8
        cx, cy = tg["keypoints"][b, 0]
        assert abs(cx - xs.float().mean() - 0.5) < 1.0 and abs(cy - ys.float().mean() - 0.5) < 1.0


@given(T=st.integers(2, 10), seed=seeds)
def test_frame_level_targets_follow_frame_order(T: int, seed: int) -> None:
    B = 3
    video = torch.rand(B, 1, T, 8, 8)
    labels = torch.arange(T).expand(B, T).clone()
    per_frame = torch.rand(B, T, 2, 4) * 4
    per_frame[..., 2:] += 4
    aug = va.Compose([va.TemporalReverse(), va.TemporalShuffle(), va.FrameReplace()])
    out, tg, rec = aug(
        video, seed=seed, targets={"frame_labels": labels, "boxes": per_frame}, return_params=True
    )
    fmap = rec[0].frame_map.gather(1, rec[1].frame_map).gather(1, rec[2].frame_map)
    assert torch.equal(tg["frame_labels"], fmap)
    assert torch.equal(tg["boxes"], per_frame[torch.arange(B)[:, None], fmap])
    assert torch.equal(out, video[torch.arange(B)[:, None], :, fmap].permute(0, 2, 1, 3, 4))


def test_threaded_noise_equals_serial_noise() -> None:
    video = torch.rand(6, 1, 8, 24, 24)
    aug = va.presets.paper()
    serial = aug(video, seed=9)  # the autouse fixture sets one thread
    torch.set_num_threads(2)
    try:
        threaded = aug(video, seed=9)
    finally:
        torch.set_num_threads(1)
    assert torch.equal(threaded, serial)
    # and the differentiable (batch-field) path draws the same field
    grad_in = video.clone().requires_grad_()
    torch.testing.assert_close(aug(grad_in, seed=9).detach(), serial, atol=1e-6, rtol=0)


def test_draws_are_uniform_and_uncorrelated() -> None:
    from vidaug3d._random import make_keys

    keys = make_keys(20000, seed=3)
    u = keys.uniform(0, 0, 4)
    hist = torch.histc(u.flatten(), 20, 0, 1)
    expected = u.numel() / 20
    chi2 = float((((hist - expected) ** 2) / expected).sum())
    assert chi2 < 50  # 19 degrees of freedom: p < 1e-4 beyond 50
    for other in (keys.uniform(1, 0, 4), keys.uniform(0, 1, 4), make_keys(20000, seed=4).uniform(0, 0, 4)):
        r = torch.corrcoef(torch.stack([u.flatten(), other.flatten()]))[0, 1]
        assert abs(float(r)) < 0.02  # 5.6 standard errors at n = 80000


@given(shape=shapes(min_t=2), seed=seeds)
def test_batched_pointwise_path_equals_clip_by_clip_path(shape: tuple[int, ...], seed: int) -> None:
    # The CPU executor runs pointwise stages clip by clip; CUDA and autograd use batched tensor ops.
    video = make_video(shape, seed, torch.float64)
    aug = va.Compose(
        [va.ColorJitter(0.3, 0.3, p=0.7), va.GaussianNoise(0.05, p=0.7), va.RandomErasing(p=0.7)]
    )
    clipwise, rec = aug(video, seed=seed, return_params=True)
    batched = aug(video.clone().requires_grad_(), params=rec).detach()
    torch.testing.assert_close(batched, clipwise, atol=1e-12, rtol=0)
    frame = va.ColorJitter(0.3, 0.3, vary="frame")
    a, rec = frame(video, seed=seed, return_params=True)
    torch.testing.assert_close(
        frame(video.clone().requires_grad_(), params=rec).detach(), a, atol=1e-12, rtol=0
    )


_ORDERS = [
    lambda: va.presets.paper(),
    lambda: va.presets.paper(fuse=False),
    lambda: va.Compose(  # geometry first, a flip-only stage, temporal ops between pointwise ones
        [
            va.RandomHorizontalFlip(p=0.5),
            va.GaussianNoise(0.05, p=0.7),
            va.TemporalReverse(p=0.5),
            va.RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1), padding_mode="border"),
            va.ColorJitter(0.3, 0.3, p=0.7, vary="frame"),
            va.FrameReplace(max_frames=2, p=0.7),
            va.RandomErasing(p=0.7),
        ]
    ),
    lambda: va.Compose([va.TemporalShuffle(max_frames=3, p=0.8)]),  # temporal only: no float stage
]


@given(
    shape=shapes(min_t=4),
    seed=seeds,
    dtype=st.sampled_from(DTYPES),
    order=st.integers(0, len(_ORDERS) - 1),
    threads=st.sampled_from([1, 2]),
    out_float=st.booleans(),
)
def test_streamed_cpu_executor_equals_batched_executor(
    shape: tuple[int, ...], seed: int, dtype: torch.dtype, order: int, threads: int, out_float: bool
) -> None:
    # The CPU executor runs the whole plan clip by clip (threads over clips); the batched executor
    # runs each stage once over the batch. Same kernels, so the outputs must be identical.
    import vidaug3d.compose as vc

    aug = _ORDERS[order]()
    video = make_video(shape, seed, dtype)
    out_dtype = torch.float32 if out_float else None
    torch.set_num_threads(threads)
    try:
        streamed, rec = aug(video, seed=seed, return_params=True, out_dtype=out_dtype)
        vc._STREAM_CPU = False
        batched = aug(video, params=rec, out_dtype=out_dtype)
    finally:
        vc._STREAM_CPU = True
        torch.set_num_threads(1)
    assert streamed.dtype == batched.dtype == (out_dtype or dtype)
    assert streamed.shape == batched.shape == video.shape
    assert torch.equal(streamed, batched)


@given(
    shape=shapes(min_t=4, max_b=5),
    seed=seeds,
    dtype=st.sampled_from(DTYPES),
    threads=st.sampled_from([1, 2]),
    same=st.booleans(),
    btchw=st.booleans(),
)
def test_two_views_in_one_pass_equal_two_separate_calls(
    shape: tuple[int, ...], seed: int, dtype: torch.dtype, threads: int, same: bool, btchw: bool
) -> None:
    # On the CPU TwoViews makes both views of a clip in one task; it must equal calling each view's
    # pipeline on its own with view=0 and view=1.
    first = va.presets.paper()
    second = first if same else _ORDERS[2]()
    video = make_video(shape, seed, dtype)
    layout = None
    if btchw:
        video, layout = video.transpose(1, 2), "BTCHW"  # a non-contiguous view in another layout
    ids = list(range(10, 10 + shape[0]))
    torch.set_num_threads(threads)
    try:
        (v1, r1), (v2, r2) = va.TwoViews(first, second)(
            video, seed=seed, sample_ids=ids, epoch=2, return_params=True, layout=layout
        )
    finally:
        torch.set_num_threads(1)
    s1, q1 = first(video, seed=seed, sample_ids=ids, epoch=2, view=0, return_params=True, layout=layout)
    s2, q2 = second(video, seed=seed, sample_ids=ids, epoch=2, view=1, return_params=True, layout=layout)
    assert r1 == q1 and r2 == q2
    assert torch.equal(v1, s1) and torch.equal(v2, s2)
    assert v1.shape == video.shape and v1.dtype == dtype


@pytest.mark.parametrize("stream", [True, False])
def test_empty_pipeline_converts_dtypes_like_any_other(stream: bool) -> None:
    # uint8 <-> float conversion rescales between [0, 255] and [0, 1] whether or not a transform ran.
    import vidaug3d.compose as vc

    u8 = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 3, 1, 1)
    f = u8.float() / 255
    vc._STREAM_CPU = stream
    try:
        for aug in (va.Compose([]), va.Compose([va.TemporalReverse(p=0.0)])):
            to_float = aug(u8, seed=0, out_dtype=torch.float32)
            assert to_float.dtype == torch.float32
            torch.testing.assert_close(to_float, f, rtol=0, atol=1e-7)  # x * (1 / 255): within an ulp
            assert torch.equal(aug(f, seed=0, out_dtype=torch.uint8), u8)
            assert torch.equal(aug(u8, seed=0), u8) and torch.equal(aug(f, seed=0), f)
    finally:
        vc._STREAM_CPU = True


@pytest.mark.parametrize("mode", ["inference_mode", "no_grad"])
def test_runs_under_inference_mode_and_no_grad_with_threads(mode: str) -> None:
    # The CPU executor's pool threads do not inherit the caller's thread-local grad/inference mode;
    # under inference_mode the output is an inference tensor that they must be allowed to fill.
    video = torch.rand(3, 1, 4, 12, 12)
    aug = va.presets.paper()
    expected = aug(video, seed=4)
    (e1, e2) = va.TwoViews(aug)(video, seed=4)
    torch.set_num_threads(2)
    try:
        with torch.inference_mode() if mode == "inference_mode" else torch.no_grad():
            out = aug(video, seed=4)
            v1, v2 = va.TwoViews(aug)(video, seed=4)
    finally:
        torch.set_num_threads(1)
    assert torch.equal(out, expected) and torch.equal(v1, e1) and torch.equal(v2, e2)


@pytest.mark.parametrize("shape", [(3, 1, 16, 64, 64), (3, 1, 16, 48, 48), (1, 3, 8, 64, 64)])
def test_output_does_not_depend_on_thread_count_or_batch(
    shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Clips big enough for torch to split a reduction (the contrast's mean) across threads: every
    # clip task runs on one thread, in the pool or not, so the sums add up in one order.
    import vidaug3d._random as vr

    monkeypatch.setattr(vr, "MIN_PARALLEL_WORK", 1 << 16)  # the real threshold: some shapes go serial
    video = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    aug = va.Compose([va.ColorJitter(0.4, 0.4, p=1.0), va.RandomAffine(10), va.GaussianNoise(0.05)])
    ids = list(range(shape[0]))
    outs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            outs.append(aug(video, seed=3, sample_ids=ids))
            alone = aug(video[-1:], seed=3, sample_ids=ids[-1:])  # the last clip in a batch of one
        finally:
            torch.set_num_threads(1)
        assert torch.equal(alone[0], outs[-1][-1]), threads
    assert torch.equal(outs[0], outs[1])
