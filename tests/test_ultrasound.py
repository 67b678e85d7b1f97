"""Ultrasound kernels: geometry against a NumPy rasteriser, the value kernels against NumPy formulas, the
kernel contract (batched equals per clip, no mutation, outside the field of view untouched), the field-of-view
estimator on synthetic sectors of known geometry (and, where present, on real videos), and the errors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests._strategies import DTYPES, make_video, seeds, shapes
from tests.conftest import LUS_POCUS
from vidaug3d import ultrasound as U
from vidaug3d.errors import VidaugError


def _geometry(B: int, H: int, W: int, seed: int) -> U.ProbeGeometry:
    """Random probes for an ``H x W`` frame, alternating sector and linear."""
    g = torch.Generator().manual_seed(seed)

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))

    out = []
    for b in range(B):
        if b % 2 == 0:
            a = u(20, 50)
            out.append(
                U.ProbeGeometry.make_sector(
                    apex=(u(0.3, 0.7) * W, u(-0.5, 0.1) * H),
                    angles=(-a, a + u(-5, 5)),
                    depths=(u(0, 0.4) * H, u(0.9, 1.4) * H),
                )
            )
        else:
            out.append(
                U.ProbeGeometry.make_linear(
                    x=(u(0, 0.3) * W, u(0.7, 1) * W), y=(u(0, 0.2) * H, u(0.8, 1) * H)
                )
            )
    return U.ProbeGeometry.cat(out)


def _params(name: str, B: int, T: int, H: int, W: int, seed: int, per_frame: bool) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    s = (B, T) if per_frame else (B,)

    def u(lo: float, hi: float, shape: tuple[int, ...] = s) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)

    geo = _geometry(B, H, W, seed)
    if name == "depth_attenuation":
        return {"geometry": geo, "mu": u(0, 3), "floor": u(0, 0.5)}
    if name == "time_gain_compensation":
        return {"geometry": geo, "gains": u(0.5, 1.8, (*s, 4))}
    if name == "acoustic_shadow":
        return {
            "geometry": geo,
            "position": u(0, 1),
            "width": u(0.05, 0.3),
            "strength": u(0.3, 1),
            "depth": u(0, 0.5),
        }
    if name == "speckle":
        uni = torch.rand(B, 1, T, H, W, generator=g, dtype=torch.float64)
        return {"field": U.rayleigh_field(uni).float(), "strength": u(0, 1)}
    raise KeyError(name)


KERNELS = ["acoustic_shadow", "depth_attenuation", "speckle", "time_gain_compensation"]


def _pick(params: dict[str, Any], sl: slice) -> dict[str, Any]:
    return {k: v[sl] for k, v in params.items()}


def _call(name: str, video: torch.Tensor, params: dict[str, Any], **kw: Any) -> torch.Tensor:
    fn: Callable[..., torch.Tensor] = getattr(U, name)
    p = dict(params)
    if name == "speckle":
        return fn(video, p.pop("field"), p.pop("strength"), **kw)
    geometry = p.pop("geometry")
    return fn(video, geometry, *p.values(), **kw)


# ----------------------------------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", KERNELS)
@given(
    shape=shapes(), seed=seeds, dtype=st.sampled_from(DTYPES), per_frame=st.booleans(), masked=st.booleans()
)
def test_kernel_contract(
    name: str, shape: tuple[int, ...], seed: int, dtype: torch.dtype, per_frame: bool, masked: bool
) -> None:
    B, _, T, H, W = shape
    video = make_video(shape, seed, dtype)
    before, version = video.clone(), video._version
    params = _params(name, B, T, H, W, seed, per_frame)
    fov = U.fov_mask(_geometry(B, H, W, seed), H, W) if masked else None
    rng_state = torch.get_rng_state()
    out = _call(name, video, params, fov=fov)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.equal(video, before) and video._version == version, "input mutated"
    assert out.dtype == dtype and out.device == video.device and out.shape == video.shape
    assert out.data_ptr() != video.data_ptr()
    per_clip = torch.cat(
        [
            _call(
                name,
                video[b : b + 1],
                _pick(params, slice(b, b + 1)),
                fov=None if fov is None else fov[b : b + 1],
            )
            for b in range(B)
        ]
    )
    assert torch.equal(out, per_clip), "batched result differs from per-clip results"
    if fov is not None:
        outside = ~fov.expand_as(video)
        assert torch.equal(out[outside], video[outside]), "the outside of the field of view changed"
    empty = _call(name, video[:0], _pick(params, slice(0, 0)), fov=None if fov is None else fov[:0])
    assert empty.shape == (0, *shape[1:]) and empty.dtype == dtype
    if dtype.is_floating_point:
        assert bool(out.isfinite().all()) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("double", [False, True])
def test_inplace_kernels_on_another_range(name: str, double: bool) -> None:
    B, C, T, H, W = 3, 2, 4, 9, 10
    dtype = torch.float64 if double else torch.float32
    x = make_video((B, C, T, H, W), 5, dtype) * 2 - 1
    params = _params(name, B, T, H, W, 5, True)
    fov = U.fov_mask(params.get("geometry", _geometry(B, H, W, 5)), H, W)
    if name == "speckle":
        params["field"] = params["field"].to(dtype)
    fn = getattr(U, name + "_")
    y = x.clone()
    args = list(params.values())
    assert fn(y, *args, fov=fov, value_range=(-1, 1)) is y
    clips = [x[b : b + 1].clone() for b in range(B)]
    for b in range(B):
        fn(clips[b], *[a[b : b + 1] for a in args], fov=fov[b : b + 1], value_range=(-1, 1))
    assert torch.equal(y, torch.cat(clips))
    assert torch.equal(y[~fov.expand_as(y)], x[~fov.expand_as(x)])
    # darkening about lo = -1: the gain <= 1 kernels move values towards -1, never past it
    if name in ("acoustic_shadow", "depth_attenuation"):
        assert bool(((y + 1) <= (x + 1) + 1e-6).all()) and y.min() >= -1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", KERNELS)
def test_cpu_equals_cuda(name: str) -> None:
    video = make_video((3, 1, 4, 12, 14), 2, torch.float32)
    params = _params(name, 3, 4, 12, 14, 2, True)
    fov = U.fov_mask(_geometry(3, 12, 14, 2), 12, 14)
    cpu = _call(name, video, params, fov=fov)
    gpu = _call(name, video.cuda(), params, fov=fov.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=0)
    mask = U.fov_mask(_geometry(3, 12, 14, 2), 12, 14, "cuda")
    assert torch.equal(mask.cpu(), fov)


# ----------------------------------------------------------------------------------------------- geometry
def _np_coords(geo: U.ProbeGeometry, b: int, H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    f = {k: float(getattr(geo, k)[b]) for k in ("apex_x", "apex_y", "start", "end", "near", "far")}
    if bool(geo.sector[b]):
        lat = np.degrees(np.arctan2(xs - f["apex_x"], ys - f["apex_y"]))
        dep = np.hypot(xs - f["apex_x"], ys - f["apex_y"])
    else:
        lat, dep = xs, ys
    return (lat - f["start"]) / (f["end"] - f["start"]), (dep - f["near"]) / (f["far"] - f["near"])


@given(seed=seeds, H=st.integers(4, 40), W=st.integers(4, 40))
def test_fov_mask_matches_numpy(seed: int, H: int, W: int) -> None:
    geo = _geometry(4, H, W, seed)
    mask = U.fov_mask(geo, H, W)
    u, d = U.beam_coordinates(geo, H, W)
    assert mask.shape == (4, 1, 1, H, W) and mask.dtype == torch.bool
    for b in range(4):
        nu, nd = _np_coords(geo, b, H, W)
        np.testing.assert_allclose(u[b, 0, 0].numpy(), nu, atol=1e-9)
        np.testing.assert_allclose(d[b, 0, 0].numpy(), nd, atol=1e-9)
        # away from the boundary (where rounding may decide) the mask is the inequality
        inside = (nu >= 0) & (nu <= 1) & (nd >= 0) & (nd <= 1)
        clear = np.minimum.reduce([np.abs(nu), np.abs(nu - 1), np.abs(nd), np.abs(nd - 1)]) > 1e-9
        np.testing.assert_array_equal(mask[b, 0, 0].numpy()[clear], inside[clear])


def test_geometry_record_slicing_and_errors() -> None:
    geo = _geometry(3, 20, 20, 0)
    assert len(geo) == 3 and len(geo[1:]) == 2 and bool(geo[1].sector.item()) is False
    assert torch.equal(U.ProbeGeometry.cat([geo[0], geo[1:]]).far, geo.far)
    back = U.ProbeGeometry.from_dict(json.loads(json.dumps(geo.to_dict())))
    assert all(torch.equal(getattr(back, k), getattr(geo, k)) for k in geo.to_dict())
    with pytest.raises(VidaugError, match=r"^data: "):
        U.ProbeGeometry.from_dict({"sector": [True]})
    with pytest.raises(VidaugError, match=r"^end: "):
        U.ProbeGeometry.make_sector(apex=(0, -5), angles=(10, 5), depths=(0, 10))
    with pytest.raises(VidaugError, match=r"^far: "):
        U.ProbeGeometry.make_linear(x=(0, 5), y=(10, 10))
    with pytest.raises(VidaugError, match=r"^near: "):
        U.ProbeGeometry.make_sector(apex=(0, -5), angles=(-10, 10), depths=(-1, 10))
    with pytest.raises(VidaugError, match=r"^angles: "):
        U.ProbeGeometry.make_sector(apex=(0, -5), angles=(-95, 10), depths=(0, 10))
    with pytest.raises(VidaugError, match=r"^geometry: "):
        U.ProbeGeometry.make_linear(x=(torch.zeros(2), torch.ones(3)), y=(0, 1))
    with pytest.raises(VidaugError, match=r"^sector: "):
        U.ProbeGeometry(*([torch.zeros(1)] * 7))


# ----------------------------------------------------------------------------------------------- value references
def test_value_kernels_match_numpy_formulas() -> None:
    B, T, H, W = 2, 3, 11, 13
    v = make_video((B, 1, T, H, W), 3, torch.float64)
    x = v.numpy()
    p = _params("depth_attenuation", B, T, H, W, 3, True)
    geo = p["geometry"]
    dn = np.stack([np.clip(_np_coords(geo, b, H, W)[1], 0, 1) for b in range(B)])[:, None, None]
    un = np.stack([_np_coords(geo, b, H, W)[0] for b in range(B)])[:, None, None]
    mu, fl = p["mu"].numpy()[:, None, :, None, None], p["floor"].numpy()[:, None, :, None, None]
    got = U.depth_attenuation(v, geo, p["mu"], p["floor"])
    np.testing.assert_allclose(got.numpy(), np.clip(x * ((1 - fl) * np.exp(-mu * dn) + fl), 0, 1), atol=1e-12)

    s = _params("acoustic_shadow", B, T, H, W, 3, False)
    pos, wid, st_, dep = (
        s[k].numpy().reshape(B, 1, 1, 1, 1) for k in ("position", "width", "strength", "depth")
    )
    gain = 1 - st_ * np.exp(-0.5 * ((un - pos) / wid) ** 2) * (dn >= dep)
    got = U.acoustic_shadow(v, geo, s["position"], s["width"], s["strength"], s["depth"])
    np.testing.assert_allclose(got.numpy(), x * gain, atol=1e-12)

    field = _params("speckle", B, T, H, W, 3, False)["field"].double()
    k = torch.tensor([0.3, 1.0], dtype=torch.float64)
    got = U.speckle(v, field, k)
    ref = np.clip(x * (1 + k.numpy().reshape(B, 1, 1, 1, 1) * (field.numpy() - 1)), 0, 1)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-12)


def _tgc_ref(d: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Smoothstep between knots at k / (K - 1), written as a loop over the knots' intervals."""
    K = knots.shape[-1]
    out = np.empty_like(d)
    for i in range(K - 1):
        lo, hi = i / (K - 1), (i + 1) / (K - 1)
        sel = (d >= lo) & ((d < hi) | (i == K - 2))
        t = (d[sel] - lo) / (hi - lo)
        out[sel] = knots[i] + (knots[i + 1] - knots[i]) * (3 * t**2 - 2 * t**3)
    return out


@pytest.mark.parametrize("per_frame", [False, True])
def test_tgc_matches_reference_and_passes_its_knots(per_frame: bool) -> None:
    B, T, H, W = 2, 3, 17, 9
    v = torch.full((B, 1, T, H, W), 0.25, dtype=torch.float64)
    p = _params("time_gain_compensation", B, T, H, W, 4, per_frame)
    got = U.time_gain_compensation(v, p["geometry"], p["gains"]).numpy()
    for b in range(B):
        d = np.clip(_np_coords(p["geometry"], b, H, W)[1], 0, 1)
        for t in range(T):
            knots = p["gains"][b, t].numpy() if per_frame else p["gains"][b].numpy()
            np.testing.assert_allclose(got[b, 0, t], np.clip(0.25 * _tgc_ref(d, knots), 0, 1), atol=1e-12)
    # flat knots: unchanged; a linear probe of 5 rows at knots 0, 1/4, ...: the knot values themselves
    geo = U.ProbeGeometry.make_linear(x=(0.0, 1.0), y=(0.5, 4.5))
    one = torch.full((1, 1, 1, 5, 1), 0.5, dtype=torch.float64)
    knots = torch.tensor([[1.0, 1.5, 0.5, 1.2, 1.9]], dtype=torch.float64)
    assert (U.time_gain_compensation(one, geo, knots).flatten() * 2).tolist() == pytest.approx(
        knots[0].clamp(max=2).tolist()
    )
    assert torch.equal(U.time_gain_compensation(one, geo, torch.ones(1, 3)), one)


def test_shadow_follows_the_beam_and_drifts() -> None:
    H = W = 64
    geo = U.ProbeGeometry.make_sector(apex=(32.0, -10.0), angles=(-40.0, 40.0), depths=(12.0, 72.0))
    fov = U.fov_mask(geo, H, W)
    v = torch.ones(1, 1, 2, H, W) * fov
    out = U.acoustic_shadow(
        v,
        geo,
        torch.tensor([[0.5, 0.75]]),
        torch.tensor([0.02]),
        torch.tensor([1.0]),
        torch.tensor([0.3]),
        fov=fov,
    )
    u, d = U.beam_coordinates(geo, H, W)
    dark = out[0, 0] < 0.5
    # frame 0: the central beam (angle 0) beyond 30% depth; frame 1: the beam at +20 degrees
    assert bool(dark[0][((u[0, 0, 0] - 0.5).abs() < 0.01) & (d[0, 0, 0] > 0.35) & fov[0, 0, 0]].all())
    assert not bool(dark[0][(d[0, 0, 0] < 0.25) & fov[0, 0, 0]].any())
    assert bool(dark[1][((u[0, 0, 0] - 0.75).abs() < 0.01) & (d[0, 0, 0] > 0.35) & fov[0, 0, 0]].all())
    assert not bool(dark[1][((u[0, 0, 0] - 0.5).abs() < 0.05) & fov[0, 0, 0]].any())


def test_speckle_fields_have_unit_mean() -> None:
    g = torch.Generator().manual_seed(0)
    u = torch.rand(4, 200_000, generator=g, dtype=torch.float64)
    r = U.rayleigh_field(u[0])
    assert abs(r.mean().item() - 1) < 0.01 and abs(r.std().item() - math.sqrt(4 / math.pi - 1)) < 0.01
    gm = U.gamma_field(u)
    assert abs(gm.mean().item() - 1) < 0.01 and abs(gm.var().item() - 0.25) < 0.01
    assert bool(torch.isfinite(U.rayleigh_field(torch.tensor([0.0, 1.0 - 1e-16, 1.0]))).all())
    with pytest.raises(VidaugError, match=r"^uniforms: "):
        U.gamma_field(torch.zeros(0, 3))


def test_unbounded_range_gains_about_zero_without_clamp() -> None:
    x = make_video((2, 1, 2, 8, 8), 1, torch.float64) * 4 - 2
    field = torch.full_like(x, 3.0)
    out = U.speckle_(x.clone(), field, value_range=None)
    torch.testing.assert_close(out, x * 3.0, atol=0, rtol=0)


# ----------------------------------------------------------------------------------------------- estimation
def _speckled(geo: U.ProbeGeometry, T: int, H: int, W: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    fov = U.fov_mask(geo, H, W)
    v = (0.2 + 0.6 * torch.rand(len(geo), 1, T, H, W, generator=g)) * fov
    v[:, :, :, 50:58, 45:60] *= 0.02  # a dark, anechoic region inside: a hole the clean-up fills
    # burnt-in text outside the field of view: bright but static, so not taken for it
    text = torch.zeros_like(fov)
    text[..., 0:6, 0:12] = True
    return torch.where(text & ~fov, 0.9, v)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimate_fov_recovers_known_geometry(seed: int) -> None:
    H, W = 96, 112
    g = torch.Generator().manual_seed(seed)
    a = 25 + 20 * float(torch.rand((), generator=g))
    truth = U.ProbeGeometry.cat(
        [
            U.ProbeGeometry.make_sector(
                apex=(56.0, -15.0 - 20 * float(torch.rand((), generator=g))),
                angles=(-a, a + 3),
                depths=(30.0, 100.0),
            ),
            U.ProbeGeometry.make_sector(
                apex=(50.0, 2.0), angles=(-40.0, 38.0), depths=(0.0, 90.0)
            ),  # phased array
            U.ProbeGeometry.make_linear(x=(16.0, 97.0), y=(4.0, 90.0)),
        ]
    )
    video = _speckled(truth, 6, H, W, seed)
    mask, fit = U.estimate_fov((video * 255).round().to(torch.uint8))
    assert fit.sector.tolist() == [True, True, False]
    for k in ("apex_x", "apex_y", "near", "far"):
        np.testing.assert_allclose(
            getattr(fit, k)[:2].numpy(), getattr(truth, k)[:2].numpy(), atol=2.0, err_msg=k
        )
    for k in ("start", "end"):
        np.testing.assert_allclose(
            getattr(fit, k)[:2].numpy(), getattr(truth, k)[:2].numpy(), atol=1.0, err_msg=k
        )
    np.testing.assert_allclose(
        torch.stack([fit.start, fit.end, fit.near, fit.far])[:, 2].numpy(), [16, 97, 4, 90], atol=1.0
    )
    want = U.fov_mask(truth, H, W)
    iou = (mask & want).sum((1, 2, 3, 4)).double() / (mask | want).sum((1, 2, 3, 4)).double()
    assert bool((iou > 0.97).all()), iou


def test_estimate_fov_errors() -> None:
    with pytest.raises(VidaugError, match=r"^mask: "):
        U.estimate_fov(torch.zeros(1, 1, 3, 20, 20))
    with pytest.raises(VidaugError, match=r"^video: "):
        U.estimate_fov(torch.zeros(3, 20, 20))
    with pytest.raises(VidaugError, match=r"^value_range: "):
        U.estimate_fov(torch.zeros(1, 1, 3, 20, 20), value_range=None)
    with pytest.raises(VidaugError, match=r"^mask: "):
        U.fit_probe(torch.zeros(1, 20, 20))
    assert len(U.fit_probe(torch.zeros(0, 20, 20, dtype=torch.bool))) == 0


REAL = ["convex/Cov-Atlas+(44).gif", "linear/Cov-Atlas-pleural.mp4"]


@pytest.mark.data
@pytest.mark.skipif(not LUS_POCUS.is_dir(), reason=f"no real videos at {LUS_POCUS}")
def test_estimate_fov_on_real_videos() -> None:
    from vidaug3d.io import read_clip

    for name in REAL:
        clip = read_clip(LUS_POCUS / name, 8, stride=2, start=0, size=128)
        mask, _ = U.estimate_fov(clip[None])
        frac = mask.float().mean().item()
        assert 0.15 < frac < 0.95, (name, frac)
        # the fitted field of view holds most of what ever moves in the clip
        x = clip[None].float() / 255
        moving = ((x.amax(2) - x.amin(2)) > 0.1).any(1, keepdim=True)
        assert (moving & mask[:, :, 0]).sum() >= 0.85 * moving.sum(), name


# ----------------------------------------------------------------------------------------------- errors
def test_value_kernel_errors_name_the_argument() -> None:
    B, T, H, W = 2, 3, 8, 8
    v = make_video((B, 1, T, H, W), 0)
    geo = _geometry(B, H, W, 0)
    one = torch.ones(B)

    def expect(fn: Callable[[], object], argument: str) -> None:
        with pytest.raises(VidaugError, match=f"^{argument}: "):
            fn()

    expect(lambda: U.depth_attenuation(v, geo[:1], one, one), "geometry")
    expect(lambda: U.depth_attenuation(v, "sector", one, one), "geometry")  # type: ignore[arg-type]
    expect(lambda: U.depth_attenuation(v, geo, -one, one), "mu")
    expect(lambda: U.depth_attenuation(v, geo, one, torch.ones(B, T + 1)), "floor")
    expect(
        lambda: U.depth_attenuation(v, geo, one, one, fov=torch.ones(B, 1, 1, H, W + 1, dtype=torch.bool)),
        "fov",
    )
    expect(lambda: U.time_gain_compensation(v, geo, torch.ones(B, 1)), "gains")
    expect(lambda: U.time_gain_compensation(v, geo, -torch.ones(B, 3)), "gains")
    expect(lambda: U.time_gain_compensation(v, geo, torch.ones(B + 1, 3)), "gains")
    expect(lambda: U.acoustic_shadow(v, geo, one, 0 * one, one, one), "width")
    expect(lambda: U.acoustic_shadow(v, geo, one, one, -one, one), "strength")
    expect(lambda: U.speckle(v, torch.ones(B, 2, T, H, W)), "field")
    expect(lambda: U.speckle(v, torch.ones(B, 1, T, H, W), -one), "strength")
    expect(
        lambda: U.speckle((v * 255).to(torch.uint8), torch.ones(B, 1, T, H, W), value_range=(0, 255)),
        "value_range",
    )
    expect(lambda: U.speckle_(v.to(torch.uint8), torch.ones(B, 1, T, H, W)), "x")


def test_records_keep_the_probe_so_a_replay_needs_no_probe_argument() -> None:
    import vidaug3d as va

    B, T, H, W = 3, 4, 40, 48
    geom = _geometry(B, H, W, seed=5)
    video = make_video((B, 1, T, H, W), 5)
    aug = va.Compose(
        [va.DepthAttenuation(), va.AcousticShadow(p=1.0), va.RandomAffine(10), va.GaussianNoise()]
    )
    out, rec = aug(video, seed=2, probe=geom, return_params=True)
    assert rec.probe is not None and len(rec.probe) == B
    assert torch.equal(aug(video, params=rec), out)  # the recorded probe, not None: same field of view
    back = va.Record.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back == rec and torch.equal(aug(video, params=back), out)
    assert torch.equal(aug(video, params=rec, probe=geom), out)  # the same probe again is fine
    assert torch.equal(aug(video[1:], params=rec.select([1, 2])), out[1:])  # selecting clips keeps theirs
    other = _geometry(B, H, W, seed=6)
    with pytest.raises(VidaugError, match=r"^probe:"):
        aug(video, params=rec, probe=other)
    # a field-of-view mask is not kept: a replay without it is refused, naming fov
    fov = torch.ones(B, 1, 1, H, W, dtype=torch.bool)
    fov[..., : W // 4] = False
    plain = va.Compose([va.RandomAffine(10), va.GaussianNoise()])
    out2, rec2 = plain(video, seed=2, fov=fov, return_params=True)
    assert rec2.fov_mask and rec2.probe is None
    with pytest.raises(VidaugError, match=r"^fov: got None, expected the field-of-view mask"):
        plain(video, params=rec2)
    assert torch.equal(plain(video, params=rec2, fov=fov), out2)
