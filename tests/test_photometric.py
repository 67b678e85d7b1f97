"""Photometric kernels: independent references, the kernel contract, and the errors for bad arguments.

References: NumPy formulas written here (saturation, grayscale, gamma, solarize, autocontrast,
sharpness), Python's ``colorsys`` for hue, PIL's ``ImageOps.equalize`` for equalize, and kornia 0.9
(``adjust_hue``, ``adjust_gamma``, ``solarize``, ``sharpness``) where its semantics are the same.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import vidaug3d as va
from tests._strategies import DTYPES, make_video, seeds, shapes
from vidaug3d import _photometric as P
from vidaug3d import functional as VF
from vidaug3d.errors import VidaugError

Params = dict[str, Any]


def _draw(name: str, B: int, T: int, seed: int, per_frame: bool) -> Params:
    g = torch.Generator().manual_seed(seed)
    s = (B, T) if per_frame else (B,)

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(s, generator=g, dtype=torch.float64)

    gate = torch.rand(B, generator=g) < 0.7
    return {
        "adjust_saturation": {"factor": u(0.0, 2.0)},
        "adjust_hue": {"factor": u(-0.5, 0.5)},
        "grayscale": {"enabled": gate},
        "adjust_gamma": {"gamma": u(0.3, 3.0), "gain": u(0.8, 1.2)},
        "solarize": {"threshold": u(0.2, 1.0)},
        "autocontrast": {"enabled": gate},
        "equalize": {"enabled": gate},
        "adjust_sharpness": {"factor": u(0.0, 3.0)},
    }[name]


RGB_ONLY = {"adjust_saturation", "adjust_hue"}
PER_FRAME = {"adjust_saturation", "adjust_hue", "adjust_gamma", "solarize", "adjust_sharpness"}
KERNELS = sorted(PER_FRAME | {"grayscale", "autocontrast", "equalize"})


def _pick(params: Params, sl: slice) -> Params:
    return {k: v[sl] for k, v in params.items()}


# ----------------------------------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", KERNELS)
@given(shape=shapes(), seed=seeds, dtype=st.sampled_from(DTYPES), per_frame=st.booleans())
def test_kernel_contract(
    name: str, shape: tuple[int, ...], seed: int, dtype: torch.dtype, per_frame: bool
) -> None:
    B, _, T, H, W = shape
    if name in RGB_ONLY:
        shape = (B, 3, T, H, W)
    per_frame = per_frame and name in PER_FRAME
    video = make_video(shape, seed, dtype)
    before, version = video.clone(), video._version
    params = _draw(name, B, T, seed, per_frame)
    kernel = getattr(P, name)
    rng_state = torch.get_rng_state()
    out = kernel(video, **params)
    assert torch.equal(torch.get_rng_state(), rng_state), "kernels must not draw from the global RNG"
    assert torch.equal(video, before) and video._version == version, "input mutated"
    assert out.dtype == video.dtype and out.device == video.device and out.shape == video.shape
    assert out.data_ptr() != video.data_ptr()
    per_clip = torch.cat([kernel(video[b : b + 1], **_pick(params, slice(b, b + 1))) for b in range(B)])
    assert torch.equal(out, per_clip), "batched result differs from per-clip results"
    empty = kernel(video[:0], **_pick(params, slice(0, 0)))
    assert empty.shape == (0, *shape[1:]) and empty.dtype == dtype
    if dtype.is_floating_point:
        assert bool(out.isfinite().all()) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", KERNELS)
@given(shape=shapes(max_b=3), seed=seeds, double=st.booleans(), per_frame=st.booleans())
def test_inplace_kernel_contract(
    name: str, shape: tuple[int, ...], seed: int, double: bool, per_frame: bool
) -> None:
    # The engine's form: a float working tensor, a range other than [0, 1], batch == clip by clip.
    B, _, T, H, W = shape
    if name in RGB_ONLY:
        shape = (B, 3, T, H, W)
    dtype = torch.float64 if double else torch.float32
    x = make_video(shape, seed, dtype) * 4.0 - 2.0
    params = _draw(name, B, T, seed, per_frame and name in PER_FRAME)
    if name == "solarize":
        params = {"threshold": params["threshold"] * 4.0 - 2.0}
    kernel = getattr(P, name + "_")
    y = x.clone()
    assert kernel(y, **params, value_range=(-2.0, 2.0)) is y
    clips = [x[b : b + 1].clone() for b in range(B)]
    for b in range(B):
        kernel(clips[b], **_pick(params, slice(b, b + 1)), value_range=(-2.0, 2.0))
    assert torch.equal(y, torch.cat(clips))
    assert y.dtype == dtype and y.min() >= -2.0 and y.max() <= 2.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_cpu_equals_cuda(name: str, dtype: torch.dtype) -> None:
    video = make_video((3, 3, 4, 9, 11), 1, dtype)
    params = _draw(name, 3, 4, 1, name in PER_FRAME)
    cpu = getattr(P, name)(video, **params)
    gpu = getattr(P, name)(video.cuda(), **params)  # CPU params: moved by the kernel
    assert gpu.device.type == "cuda" and gpu.dtype == dtype
    tol = 1 if dtype == torch.uint8 else 1e-5
    # equalize: a level that rounds the other way on the GPU moves a pixel to the next bin
    torch.testing.assert_close(gpu.cpu().double(), cpu.double(), atol=tol, rtol=0)


# ----------------------------------------------------------------------------------------------- references
def _np(v: torch.Tensor) -> np.ndarray:
    return v.double().numpy()


def _view(p: torch.Tensor) -> np.ndarray:
    a = p.double().numpy()
    return a.reshape(a.shape[0], 1, 1, 1, 1) if a.ndim == 1 else a.reshape(a.shape[0], 1, a.shape[1], 1, 1)


W601 = np.array([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1, 1)


@pytest.mark.parametrize("per_frame", [False, True])
def test_saturation_matches_gray_blend(per_frame: bool) -> None:
    v = make_video((3, 3, 4, 6, 7), 2, torch.float64)
    f = _draw("adjust_saturation", 3, 4, 2, per_frame)["factor"]
    x = _np(v)
    gray = (x * W601).sum(1, keepdims=True)
    ref = np.clip(_view(f) * x + (1 - _view(f)) * gray, 0, 1)
    np.testing.assert_allclose(P.adjust_saturation(v, f).numpy(), ref, atol=1e-12)


def _hue_ref(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    B, _, T, H, W = x.shape
    for b in range(B):
        for t in range(T):
            shift = float(f[b, 0, min(t, f.shape[2] - 1), 0, 0])
            for i in range(H):
                for j in range(W):
                    h, s, val = colorsys.rgb_to_hsv(*x[b, :, t, i, j])
                    out[b, :, t, i, j] = colorsys.hsv_to_rgb((h + shift) % 1.0, s, val)
    return out


@pytest.mark.parametrize("per_frame", [False, True])
def test_hue_matches_colorsys_and_kornia(per_frame: bool) -> None:
    import kornia.enhance as KE

    v = make_video((2, 3, 3, 5, 6), 3, torch.float64)
    v[0, :, 0, 0, 0] = 0.5  # a gray pixel keeps its value
    f = _draw("adjust_hue", 2, 3, 3, per_frame)["factor"]
    out = P.adjust_hue(v, f)
    np.testing.assert_allclose(out.numpy(), _hue_ref(_np(v), _view(f)), atol=1e-9)
    # kornia takes radians, one factor per image
    frames = v.permute(0, 2, 1, 3, 4).reshape(-1, 3, 5, 6)
    rad = (f if per_frame else f[:, None].expand(2, 3)).reshape(-1) * 2 * math.pi
    k = KE.adjust_hue(frames, rad).reshape(2, 3, 3, 5, 6).permute(0, 2, 1, 3, 4)
    torch.testing.assert_close(out, k, atol=1e-6, rtol=0)


def test_hue_on_another_range_and_known_colours() -> None:
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1, 1)
    for turns, want in [(1 / 3, [0, 1, 0]), (2 / 3, [0, 0, 1]), (1 / 6, [1, 1, 0]), (-1 / 6, [1, 0, 1])]:
        got = P.adjust_hue(red, torch.tensor([turns]))
        torch.testing.assert_close(got.flatten(), torch.tensor(want, dtype=torch.float32), atol=1e-6, rtol=0)
    v = make_video((2, 3, 2, 4, 4), 4, torch.float64)
    f = torch.tensor([0.2, -0.4], dtype=torch.float64)
    wide = P.adjust_hue_(v * 510 - 255, f, value_range=(-255, 255))
    torch.testing.assert_close((wide + 255) / 510, P.adjust_hue(v, f), atol=1e-12, rtol=0)


def test_grayscale_matches_weights_and_gate() -> None:
    v = make_video((3, 3, 2, 4, 5), 5, torch.float64)
    gate = torch.tensor([True, False, True])
    out = P.grayscale(v, enabled=gate)
    gray = (_np(v) * W601).sum(1, keepdims=True)
    np.testing.assert_allclose(out[gate].numpy(), np.broadcast_to(gray, v.shape)[gate.numpy()], atol=1e-12)
    assert torch.equal(out[1], v[1])
    one = make_video((2, 1, 2, 4, 5), 5)
    assert torch.equal(P.grayscale(one), one)
    u8 = make_video((2, 3, 2, 4, 5), 5, torch.uint8)
    want = np.round((u8.double().numpy() * W601).sum(1))
    assert np.abs(P.grayscale(u8)[:, 0].double().numpy() - want).max() <= 1


@pytest.mark.parametrize("per_frame", [False, True])
def test_gamma_matches_numpy_and_kornia(per_frame: bool) -> None:
    import kornia.enhance as KE

    v = make_video((3, 2, 4, 5, 5), 6, torch.float64)
    p = _draw("adjust_gamma", 3, 4, 6, per_frame)
    ref = np.clip(_view(p["gain"]) * _np(v) ** _view(p["gamma"]), 0, 1)
    out = P.adjust_gamma(v, p["gamma"], p["gain"])
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
    if not per_frame:
        k = KE.adjust_gamma(v.flatten(1, 2), p["gamma"], p["gain"]).view_as(v)
        torch.testing.assert_close(out, k, atol=1e-12, rtol=0)
    # another range: mapped to [0, 1] and back
    wide = P.adjust_gamma_(v * 2 - 1, p["gamma"], p["gain"], value_range=(-1, 1))
    torch.testing.assert_close((wide + 1) / 2, out, atol=1e-12, rtol=0)


def test_solarize_matches_numpy_kornia_and_uint8() -> None:
    import kornia.enhance as KE

    v = make_video((3, 1, 3, 6, 6), 7, torch.float64)
    t = torch.tensor([0.3, 0.5, 1.5], dtype=torch.float64)
    x, tt = _np(v), _view(t)
    out = P.solarize(v, t)
    np.testing.assert_array_equal(out.numpy(), np.where(x >= tt, 1 - x, x))
    assert torch.equal(out[2], v[2])  # a threshold above the range: unchanged
    torch.testing.assert_close(out, KE.solarize(v.flatten(1, 2), t).view_as(v), atol=1e-12, rtol=0)
    u8 = make_video((2, 1, 3, 6, 6), 7, torch.uint8)
    got = P.solarize(u8, torch.tensor([127.5 / 255, 200.5 / 255]))
    a = u8.numpy().astype(np.int64)
    want = np.where(a >= np.array([128, 201]).reshape(2, 1, 1, 1, 1), 255 - a, a)
    np.testing.assert_array_equal(got.numpy(), want)
    mixed = P.solarize_(v * 10 - 5, torch.tensor([0.0, 2.0, -5.0]), value_range=(-5, 5))
    np.testing.assert_allclose(
        mixed[0].numpy(), np.where(x[0] * 10 - 5 >= 0, -(x[0] * 10 - 5), x[0] * 10 - 5)
    )


def test_autocontrast_matches_per_clip_channel_stretch() -> None:
    v = make_video((3, 3, 4, 5, 5), 8, torch.float64) * 0.5 + 0.2
    v[1, 2] = 0.4  # a constant channel stays
    out = P.autocontrast(v)
    x = _np(v)
    mn, mx = x.min(axis=(2, 3, 4), keepdims=True), x.max(axis=(2, 3, 4), keepdims=True)
    flat = mx == mn
    ref = np.where(flat, x, (x - mn) / np.where(flat, 1, mx - mn))
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
    assert out[0].amax(dim=(1, 2, 3)).tolist() == [1.0, 1.0, 1.0]
    gated = P.autocontrast(v, enabled=torch.tensor([True, False, False]))
    assert torch.equal(gated[0], out[0]) and torch.equal(gated[1:], v[1:])
    wide = P.autocontrast_(v * 100, value_range=(-50, 150))
    torch.testing.assert_close(wide[0].amin(dim=(1, 2, 3)), torch.full((3,), -50.0, dtype=torch.float64))


def _pil_equalize_clip(clip: np.ndarray) -> np.ndarray:
    from PIL import Image, ImageOps

    C, T, H, W = clip.shape
    out = np.empty_like(clip)
    for c in range(C):  # the clip's frames tiled into one image: one histogram over the clip
        img = Image.fromarray(np.ascontiguousarray(clip[c].reshape(T * H, W)), mode="L")
        out[c] = np.asarray(ImageOps.equalize(img)).reshape(T, H, W)
    return out


@given(shape=shapes(max_hw=24), seed=seeds, levels=st.sampled_from([3, 17, 256]))
def test_equalize_matches_pil_on_uint8(shape: tuple[int, ...], seed: int, levels: int) -> None:
    g = torch.Generator().manual_seed(seed)
    # few levels and skewed counts reach PIL's step == 0 and clamp branches
    v = (torch.rand(shape, generator=g) ** 3 * (levels - 1)).round().mul(255 // (levels - 1)).to(torch.uint8)
    out = P.equalize(v)
    ref = np.stack([_pil_equalize_clip(c) for c in v.numpy()])
    np.testing.assert_array_equal(out.numpy(), ref)


def test_equalize_float_is_the_uint8_result_on_the_range() -> None:
    u8 = make_video((2, 3, 3, 16, 16), 9, torch.uint8)
    ref = P.equalize(u8).double() / 255
    f = u8.double() / 255
    torch.testing.assert_close(P.equalize(f), ref, atol=1e-12, rtol=0)
    wide = P.equalize_(f * 2 - 1, value_range=(-1, 1))
    torch.testing.assert_close((wide + 1) / 2, ref, atol=1e-12, rtol=0)


def _sharp_ref(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    k = np.ones((3, 3))
    k[1, 1] = 5
    k /= 13
    H, W = x.shape[-2:]
    blur = x.copy()
    inner = np.zeros_like(x[..., 1:-1, 1:-1])
    for dy in range(3):
        for dx in range(3):
            inner += k[dy, dx] * x[..., dy : H - 2 + dy, dx : W - 2 + dx]
    blur[..., 1:-1, 1:-1] = inner
    return np.clip(blur + f * (x - blur), 0, 1)


@pytest.mark.parametrize("per_frame", [False, True])
def test_sharpness_matches_numpy_and_kornia(per_frame: bool) -> None:
    import kornia.enhance as KE

    v = make_video((3, 2, 3, 7, 8), 10, torch.float64)
    f = _draw("adjust_sharpness", 3, 3, 10, per_frame)["factor"]
    out = P.adjust_sharpness(v, f)
    np.testing.assert_allclose(out.numpy(), _sharp_ref(_np(v), _view(f)), atol=1e-12)
    assert torch.equal(out[..., 0, :], v[..., 0, :]) and torch.equal(out[..., :, -1], v[..., :, -1])
    frames = v.permute(0, 2, 1, 3, 4).reshape(-1, 2, 7, 8)
    ff = (f if per_frame else f[:, None].expand(3, 3)).reshape(-1)
    k = KE.sharpness(frames, ff).reshape(3, 3, 2, 7, 8).permute(0, 2, 1, 3, 4)
    torch.testing.assert_close(out, k, atol=1e-12, rtol=0)
    tiny = make_video((2, 1, 2, 2, 9), 1)
    assert torch.equal(P.adjust_sharpness(tiny, torch.tensor([0.0, 2.0])), tiny)


# ----------------------------------------------------------------------------------------------- errors
def _expect(fn: Callable[[], object], argument: str) -> None:
    with pytest.raises(VidaugError, match=f"^{argument}: "):
        fn()


def test_errors_name_the_argument() -> None:
    rgb, gray = make_video((2, 3, 2, 4, 4), 0), make_video((2, 1, 2, 4, 4), 0)
    two = torch.ones(2)
    for name in ("adjust_saturation", "adjust_hue"):
        _expect(lambda name=name: getattr(P, name)(gray, two), "video")
    _expect(lambda: P.grayscale(make_video((1, 2, 1, 3, 3), 0)), "video")
    for name in ("adjust_hue_", "adjust_gamma_", "solarize_"):
        _expect(lambda name=name: getattr(P, name)(rgb.clone(), two, value_range=None), "value_range")
    for name in ("autocontrast_", "equalize_"):
        _expect(lambda name=name: getattr(P, name)(rgb.clone(), value_range=None), "value_range")
    _expect(lambda: P.adjust_gamma(rgb, torch.ones(3)), "gamma")
    _expect(lambda: P.adjust_gamma(rgb, torch.tensor([1.0, 0.0])), "gamma")
    _expect(lambda: P.adjust_gamma(rgb, two, torch.ones(2, 3)), "gain")
    _expect(lambda: P.adjust_saturation(rgb, torch.tensor([1.0, -0.1])), "factor")
    _expect(lambda: P.adjust_sharpness(rgb, torch.tensor([1.0, math.nan])), "factor")
    _expect(lambda: P.solarize(rgb, torch.ones(2, 5)), "threshold")
    _expect(lambda: P.equalize(rgb, enabled=torch.ones(2)), "enabled")
    _expect(lambda: P.solarize(rgb, two, value_range=(1, 1)), "value_range")
    _expect(lambda: P.solarize(rgb, two, value_range=(0, math.inf)), "value_range")
    _expect(lambda: P.solarize((rgb * 255).to(torch.uint8), two, value_range=(0, 255)), "value_range")
    _expect(lambda: P.solarize(rgb[0], two), "video")
    _expect(lambda: P.solarize(rgb.to(torch.int32), two), "video")
    _expect(lambda: P.solarize_(rgb.to(torch.uint8), two), "x")


def test_unbounded_linear_kernels_do_not_clamp() -> None:
    v = make_video((2, 3, 2, 5, 5), 3) * 10 - 5
    out = P.adjust_saturation_(v.clone(), torch.tensor([2.0, 3.0]), value_range=None)
    assert out.abs().max() > 5
    sharp = P.adjust_sharpness_(v.clone(), torch.tensor([3.0, 3.0]), value_range=None)
    assert sharp.abs().max() > 5


def test_hue_and_blur_under_autograd_equal_the_in_place_kernels_and_pass_gradcheck() -> None:
    # the CPU kernels write in place and in chunks; with an input that requires grad they take the
    # out-of-place path, which must give the same values and correct gradients
    aug = va.Compose([va.RandomTemporalCrop(3), va.ColorJitter(0.4, 0.4, 0.4, 0.1), va.GaussianBlur(3)])
    v = torch.rand(4, 3, 4, 16, 16, requires_grad=True)
    out, rec = aug(v, seed=0, return_params=True)
    out.sum().backward()
    assert v.grad is not None and bool(v.grad.abs().sum() > 0)
    assert torch.equal(out.detach(), aug(v.detach(), params=rec))
    x = torch.rand(1, 3, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    factor = torch.tensor([0.1], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: P.adjust_hue_(t * 0.98 + 0.01, factor), (x,))
    y = torch.rand(1, 4, 7, 8, dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor([[1.0, 0.7]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: VF.blur_planes(t, sigma, radius=2), (y,))
