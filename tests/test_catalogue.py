"""The transforms of the catalogue beyond the paper's eight: each against an independent reference,
replayed, serialised, batch-independent and the same in both executors."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import vidaug3d as va
from tests._strategies import DTYPES, both_executors, make_video, seeds

kornia = pytest.importorskip("kornia")


@given(seed=seeds, ks=st.sampled_from([(3, 3), (5, 7), (7, 3), (9, 9)]))
def test_gaussian_blur_is_kornias(seed: int, ks: tuple[int, int]) -> None:
    video = make_video((3, 2, 4, 12, 11), seed, torch.float64)
    out, p = va.GaussianBlur(ks, sigma=(0.2, 3.0), p=0.8)(video, seed=seed, return_params=True)
    for b in range(3):
        s = float(p.sigma[b])
        if s == 0:
            assert torch.equal(out[b], video[b])  # not blurred: exactly as it was
            continue
        ref = kornia.filters.gaussian_blur2d(video[b].transpose(0, 1), ks, (s, s), border_type="reflect")
        torch.testing.assert_close(out[b], ref.transpose(0, 1), atol=1e-12, rtol=0)


_CATALOGUE = {
    "GaussianBlur": lambda: va.GaussianBlur(5, sigma=(0.1, 2.0), p=0.7),
    "ColorJitter": lambda: va.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
    "ColorJitterFrame": lambda: va.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8, vary="frame"),
    "ColorJitterRandomOrder": lambda: va.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8, order="random"),
    "RandomGrayscale": lambda: va.RandomGrayscale(p=0.5),
    "RandomAutocontrast": lambda: va.RandomAutocontrast(p=0.5),
    "RandomEqualize": lambda: va.RandomEqualize(p=0.5),
    "RandomSolarize": lambda: va.RandomSolarize(0.6, p=0.5),
    "RandomGamma": lambda: va.RandomGamma((0.5, 2.0), (0.8, 1.2), p=0.7),
    "RandomAdjustSharpness": lambda: va.RandomAdjustSharpness(2.0, p=0.5),
}


def _kernel_reference(name: str, video: torch.Tensor, p: va.TransformParams) -> torch.Tensor:
    """The transform's record through the public kernel it documents (float64 video in [0, 1])."""
    from vidaug3d import _photometric as PF
    from vidaug3d import functional as VF

    if name == "ColorJitterRandomOrder":  # clip by clip, torchvision's way: each step on its own, in order
        clips = []
        for b in range(video.shape[0]):
            y = video[b : b + 1]
            one = torch.ones(1, dtype=torch.float64)
            for op in p.order[b].tolist():
                if op == 0:
                    y = VF.adjust_brightness_contrast(y, p.brightness[b : b + 1], one)
                elif op == 1:
                    y = VF.adjust_brightness_contrast(y, one, p.contrast[b : b + 1])
                elif op == 2:
                    y = PF.adjust_saturation(y, p.saturation[b : b + 1])
                elif float(p.hue[b]) != 0.0:
                    y = PF.adjust_hue(y, p.hue[b : b + 1])
            clips.append(y)
        return torch.cat(clips)
    if name.startswith("ColorJitter"):
        out = VF.adjust_brightness_contrast(video, p.brightness, p.contrast)
        return PF.adjust_hue(PF.adjust_saturation(out, p.saturation), p.hue)
    if name == "RandomGrayscale":
        return PF.grayscale(video, enabled=p.on)
    if name == "RandomAutocontrast":
        return PF.autocontrast(video, enabled=p.on)
    if name == "RandomEqualize":
        return PF.equalize(video, enabled=p.on)
    if name == "RandomSolarize":
        full = PF.solarize(video, torch.full((video.shape[0],), 0.6, dtype=torch.float64))
        return torch.where(p.on.view(-1, 1, 1, 1, 1), full, video)
    if name == "RandomGamma":
        return PF.adjust_gamma(video, p.gamma, p.gain)
    if name == "RandomAdjustSharpness":
        return PF.adjust_sharpness(video, p.factor)
    raise KeyError(name)


@pytest.mark.parametrize("name", sorted(set(_CATALOGUE) - {"GaussianBlur"}))
@given(seed=seeds)
def test_catalogue_transform_applies_its_kernel_with_its_record(name: str, seed: int) -> None:
    video = make_video((5, 3, 3, 9, 8), seed, torch.float64)
    out, p = _CATALOGUE[name]()(video, seed=seed, return_params=True)
    torch.testing.assert_close(out, _kernel_reference(name, video, p), atol=1e-12, rtol=0)
    zero = _CATALOGUE[name]()
    zero.p = 0.0
    assert torch.equal(zero(video, seed=seed), video)  # p = 0: every clip exactly as it was


@pytest.mark.parametrize("name", sorted(_CATALOGUE))
@given(seed=seeds, dtype=st.sampled_from(DTYPES), threads=st.sampled_from([1, 2]))
def test_catalogue_replays_and_both_executors_agree(
    name: str, seed: int, dtype: torch.dtype, threads: int
) -> None:
    aug = va.Compose([va.RandomAffine(10), _CATALOGUE[name](), va.GaussianNoise(0.02)])
    video = make_video((4, 3, 3, 10, 12), seed, dtype)
    out, rec, batched = both_executors(aug, video, seed, threads)
    assert torch.equal(out, batched) and out.dtype == dtype
    back = va.Record.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert torch.equal(aug(video, params=back), out)
    ids = torch.tensor([3, 1, 4, 1])
    full = aug(video, seed=seed, sample_ids=ids)
    assert torch.equal(aug(video[2:], seed=seed, sample_ids=ids[2:]), full[2:])


def test_catalogue_errors() -> None:
    with pytest.raises(va.VidaugError, match=r"^kernel_size: got 4, expected odd"):
        va.GaussianBlur(4)
    with pytest.raises(va.VidaugError, match=r"^kernel_size: got 0"):
        va.GaussianBlur(0)
    with pytest.raises(va.VidaugError, match=r"^sigma: got"):
        va.GaussianBlur(3, sigma=(2.0, 1.0))
    with pytest.raises(va.VidaugError, match=r"^hue: got 0.7"):
        va.ColorJitter(hue=0.7)
    with pytest.raises(va.VidaugError, match=r"^video: got '1 channel\(s\)', expected 3 \(RGB\) channels"):
        va.ColorJitter(saturation=0.4)(torch.rand(2, 1, 2, 4, 4), seed=0)
    for t in (va.RandomEqualize(), va.RandomSolarize(0.5), va.RandomGamma(), va.RandomAutocontrast()):
        with pytest.raises(va.VidaugError, match=r"^value_range: got None, expected a bounded"):
            t(torch.rand(2, 1, 2, 4, 4), seed=0, value_range=None)
    with pytest.raises(va.VidaugError, match=r"^threshold: got nan"):
        va.RandomSolarize(float("nan"))
    with pytest.raises(va.VidaugError, match=r"^sharpness_factor: got -1"):
        va.RandomAdjustSharpness(-1)


# ------------------------------------------------------------------------------------------- ultrasound
from vidaug3d import ultrasound as US  # noqa: E402

_US = {
    "DepthAttenuation": lambda: va.DepthAttenuation(p=0.8),
    "TimeGainCompensation": lambda: va.TimeGainCompensation(p=0.8),
    "AcousticShadow": lambda: va.AcousticShadow(p=0.8),
    "AcousticShadowDrift": lambda: va.AcousticShadow(p=0.8, vary="drift", drift=0.3),
    "SpeckleNoise": lambda: va.SpeckleNoise(p=0.8),
    "SpeckleNoise4": lambda: va.SpeckleNoise(looks=4, p=0.8),
}


def _probe(B: int) -> US.ProbeGeometry:
    sector = US.ProbeGeometry.make_sector(apex=(12.0, -8.0), angles=(-35.0, 35.0), depths=(10.0, 30.0))
    linear = US.ProbeGeometry.make_linear(x=(2.0, 20.0), y=(1.0, 18.0))
    return US.ProbeGeometry.cat([sector if b % 2 == 0 else linear for b in range(B)])


def _us_reference(
    name: str, video: torch.Tensor, p: va.TransformParams, probe: US.ProbeGeometry
) -> torch.Tensor:
    if name == "DepthAttenuation":
        return US.depth_attenuation(video, probe, p.gamma, p.gain)
    if name == "TimeGainCompensation":
        return US.time_gain_compensation(video, probe, p.factor.double())
    if name.startswith("AcousticShadow"):
        t = torch.linspace(0, 1, video.shape[2], dtype=torch.float64)
        position = p.position[:, None] + (p.position_end - p.position)[:, None] * t  # drift, written out
        return US.acoustic_shadow(video, probe, position, p.width, p.strength, p.depth)
    # speckle: the keyed uniform field through the documented Rayleigh / gamma construction
    from vidaug3d._noise import uniform_field

    looks = 1 if name == "SpeckleNoise" else 4
    u = uniform_field(p.seed, (looks, *video.shape[1:]), dtype=torch.float64).transpose(0, 1)
    field = US.rayleigh_field(u[0]) if looks == 1 else US.gamma_field(u)
    return US.speckle(video, field, p.std.double())


@pytest.mark.parametrize("name", sorted(_US))
@given(seed=seeds, dtype=st.sampled_from(DTYPES), threads=st.sampled_from([1, 2]))
def test_ultrasound_transforms(name: str, seed: int, dtype: torch.dtype, threads: int) -> None:
    B = 4
    probe = _probe(B)
    fov = US.fov_mask(probe, 24, 22)
    video = make_video((B, 1, 3, 24, 22), seed, dtype) * fov.to(
        torch.uint8 if dtype == torch.uint8 else dtype
    )
    aug = va.Compose([_US[name](), va.GaussianNoise(0.02)])
    out, rec, batched = both_executors(aug, video, seed, threads, probe=probe)
    assert torch.equal(out, batched)
    outside = ~fov.expand_as(video)
    assert torch.equal(out[outside], video[outside])  # the black outside stays black, noise included
    back = va.Record.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert torch.equal(aug(video, params=back, probe=probe), out)
    if dtype == torch.float64:  # the transform is its kernel with its record
        alone, p = va.Compose([_US[name]()])(video, seed=seed, return_params=True, probe=probe)
        ref = _us_reference(name, video, p[0], probe)
        torch.testing.assert_close(alone, torch.where(fov, ref, video), atol=1e-12, rtol=0)


def test_field_of_view_from_the_clip_and_errors() -> None:
    probe = _probe(2)
    fov = US.fov_mask(probe, 40, 40)
    video = torch.rand(2, 1, 6, 40, 40, generator=torch.Generator().manual_seed(0)) * fov
    out = va.Compose([va.GaussianNoise(0.2), va.RandomErasing(p=1.0, value=0.7)])(
        video, seed=0, probe="estimate"
    )
    outside = ~fov.expand_as(video)
    assert float((out[outside] != 0).double().mean()) < 0.02  # estimated: outside (nearly) untouched
    with pytest.raises(
        va.VidaugError,
        match=r"^probe: got None, expected the probe geometry for DepthAttenuation: use it before",
    ):
        va.Compose([va.RandomAffine(5), va.DepthAttenuation()])(video, seed=0, probe=probe)
    with pytest.raises(va.VidaugError, match=r"^probe: got 'a geometry of 3 probes'"):
        va.DepthAttenuation()(video, seed=0, probe=_probe(3))
    with pytest.raises(va.VidaugError, match=r"^fov: got \(2, 1, 1, 40, 41\)"):
        va.GaussianNoise()(video, seed=0, fov=torch.ones(2, 1, 1, 40, 41, dtype=torch.bool))
    # a field of view moves with the geometry before the value pass
    moved = va.Compose([va.RandomHorizontalFlip(p=1.0), va.GaussianNoise(0.2)])(video, seed=0, fov=fov)
    assert torch.equal(moved[outside.flip(-1)], video.flip(-1)[outside.flip(-1)])


def test_presets() -> None:
    views = va.presets.byol_video(32, 4)
    first, second = views.first, views.second
    blur = (
        next(t for t in first.transforms if isinstance(t, va.GaussianBlur)),
        next(t for t in second.transforms if isinstance(t, va.GaussianBlur)),
    )
    assert (blur[0].p, blur[1].p) == (1.0, 0.1)  # BYOL's asymmetry
    assert not any(isinstance(t, va.RandomSolarize) for t in first.transforms)
    assert [t.p for t in second.transforms if isinstance(t, va.RandomSolarize)] == [0.2]
    video = torch.rand(3, 3, 8, 48, 40)
    (v1, r1), (v2, r2) = views(video, seed=1, return_params=True)
    assert v1.shape == v2.shape == (3, 3, 4, 32, 32)
    assert not torch.equal(r1[0].frame_map, r2[0].frame_map)  # windows at independent starts
    # the ultrasound preset keeps its noise, speckle and fills inside the (moved) sector
    probe = _probe(3)
    fov = US.fov_mask(probe, 24, 22)
    us = make_video((3, 1, 8, 24, 22), 0) * fov
    out, moved = va.presets.ultrasound()(
        us, seed=0, probe=probe, targets={"masks": fov[:, 0].expand(3, 8, 24, 22)}
    )
    outside = ~moved["masks"].bool().unsqueeze(1)
    # all black but the sector's edge, where bilinear resampling blends in the sector's pixels (the
    # mask moves by nearest neighbour); without the field of view the noise would leave no zeros
    assert float((out[outside] == 0).double().mean()) > 0.8
    (a, b) = va.TwoViews(va.presets.ultrasound())(us, seed=0, probe=probe)
    assert a.shape == b.shape == us.shape and not torch.equal(a, b)


@pytest.mark.parametrize("where", ["probe", "fov", "estimate"])
def test_two_views_of_one_pipeline_with_a_field_of_view_equal_two_separate_calls(where: str) -> None:
    # TwoViews draws and cooks one pipeline's two views together, the probe geometry or mask repeated
    # for the second view; each view must still be what its own call makes, record included.
    probe = _probe(3)
    fov = US.fov_mask(probe, 24, 22)
    us = (make_video((3, 1, 8, 24, 22), 1) * fov * 255).to(torch.uint8)
    kw = {"probe": {"probe": probe}, "fov": {"fov": fov}, "estimate": {"probe": "estimate"}}[where]
    aug = va.presets.paper() if where == "fov" else va.presets.ultrasound()  # its transforms need a probe
    torch.set_num_threads(2)
    try:
        (v1, r1), (v2, r2) = va.TwoViews(aug)(us, seed=5, epoch=1, return_params=True, **kw)
    finally:
        torch.set_num_threads(1)
    s1, q1 = aug(us, seed=5, epoch=1, view=0, return_params=True, **kw)
    s2, q2 = aug(us, seed=5, epoch=1, view=1, return_params=True, **kw)
    assert r1 == q1 and r2 == q2 and r1.batch_size == 3
    assert torch.equal(v1, s1) and torch.equal(v2, s2) and not torch.equal(v1, v2)
    assert v1.untyped_storage().data_ptr() != v2.untyped_storage().data_ptr()  # two tensors, not one split
