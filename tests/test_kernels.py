"""The kernel contract, checked on every functional kernel (after torchvision's ``check_kernel``).

For each kernel and dtype: the input is not mutated; dtype, device and shape are kept; the batched
result equals the per-clip results stacked; an empty batch gives an empty result; no RNG is used.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests._strategies import DTYPES, make_video, seeds, shapes
from vidaug3d import functional as VF

Kernel = Callable[[torch.Tensor, int], tuple[torch.Tensor, ...]]


def _params(name: str, B: int, T: int, H: int, W: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    if name == "gather_frames":
        return {"frame_map": torch.randint(0, T, (B, T), generator=g)}
    if name == "warp":
        m = VF.affine_matrix((u(B) - 0.5) * 20, (u(B, 2) - 0.5) * 4, 0.8 + 0.4 * u(B))
        return {"matrix": m}
    if name == "hflip":
        return {"flip": u(B) < 0.5}
    if name == "adjust_brightness_contrast":
        return {"brightness": 0.7 + 0.6 * u(B, T), "contrast": 0.7 + 0.6 * u(B, T)}
    if name == "adjust_brightness":
        return {"factor": 0.7 + 0.6 * u(B)}
    if name == "adjust_contrast":
        return {"factor": 0.7 + 0.6 * u(B)}
    if name == "add_noise":
        return {"noise": torch.randn(B, 1, 1, 1, 1, generator=g), "std": 0.05 * u(B)}
    if name == "erase":
        y0 = torch.randint(0, H, (B,), generator=g)
        x0 = torch.randint(0, W, (B,), generator=g)
        return {"boxes": torch.stack([y0, x0, (y0 + 2).clamp(max=H), (x0 + 3).clamp(max=W)], 1)}
    raise KeyError(name)


KERNELS = [
    "gather_frames",
    "warp",
    "hflip",
    "adjust_brightness_contrast",
    "adjust_brightness",
    "adjust_contrast",
    "add_noise",
    "erase",
]


def _run(name: str, video: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    if name == "add_noise":  # the kernel takes a full noise field; build it from the per-clip scalar
        params = {"noise": params["noise"].expand(video.shape).to(torch.float32), "std": params["std"]}
    return getattr(VF, name)(video, **params)


def _select(params: dict[str, torch.Tensor], b: int) -> dict[str, torch.Tensor]:
    return {k: v[b : b + 1] for k, v in params.items()}


@pytest.mark.parametrize("name", KERNELS)
@given(shape=shapes(), seed=seeds, dtype=st.sampled_from(DTYPES))
def test_kernel_contract(name: str, shape: tuple[int, ...], seed: int, dtype: torch.dtype) -> None:
    B, C, T, H, W = shape
    video = make_video(shape, seed, dtype)
    before = video.clone()
    params = _params(name, B, T, H, W, seed)
    rng_state = torch.get_rng_state()
    out = _run(name, video, params)
    assert torch.equal(torch.get_rng_state(), rng_state), "kernels must not draw from the global RNG"
    assert torch.equal(video, before), "input mutated"
    assert out.dtype == video.dtype and out.device == video.device and out.shape == video.shape
    assert out.data_ptr() != video.data_ptr() or out.numel() == 0
    # batched equals per-clip
    per_clip = torch.cat([_run(name, video[b : b + 1], _select(params, b)) for b in range(B)])
    assert torch.equal(out, per_clip)
    # empty batch
    empty = _run(name, video[:0], {k: v[:0] for k, v in params.items()})
    assert empty.shape == (0, C, T, H, W) and empty.dtype == dtype
    if dtype.is_floating_point:
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_kernel_cpu_equals_cuda(name: str, dtype: torch.dtype) -> None:
    shape = (3, 1, 5, 16, 20)
    video = make_video(shape, 0, dtype)
    params = _params(name, 3, 5, 16, 20, 0)
    cpu = _run(name, video, params)
    gpu = _run(name, video.cuda(), {k: v.cuda() for k, v in params.items()})
    assert gpu.device.type == "cuda" and gpu.dtype == dtype
    torch.testing.assert_close(
        gpu.cpu().double(), cpu.double(), atol=1 if dtype == torch.uint8 else 1e-5, rtol=0
    )


def test_warp_matches_rigid_shift_exactly() -> None:
    # An integer translation is pure data movement: exact, zeros coming in.
    v = torch.rand(1, 1, 2, 6, 7)
    m = VF.affine_matrix(torch.zeros(1), torch.tensor([[2.0, -1.0]]), torch.ones(1))
    out = VF.warp(v, m)
    torch.testing.assert_close(out[..., : 6 - 1, 2:], v[..., 1:, : 7 - 2], atol=1e-6, rtol=0)
    assert out[..., :, :2].abs().max() < 1e-6 and out[..., -1:, :].abs().max() < 1e-6


def test_rotation_direction_is_counter_clockwise() -> None:
    v = torch.zeros(1, 1, 1, 9, 9)
    v[..., 4, 7] = 1.0  # a dot right of the centre
    m = VF.affine_matrix(torch.tensor([90.0]), torch.zeros(1, 2), torch.ones(1))
    out = VF.warp(v, m)
    r, c = divmod(int(out.flatten().argmax()), 9)
    assert (r, c) == (1, 4)  # now above the centre


def test_contrast_blends_with_clip_mean_luminance() -> None:
    v = torch.rand(2, 3, 4, 5, 5)
    out = VF.adjust_contrast(v, torch.zeros(2))
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1, 1)
    mean = (v * w).sum(1, keepdim=True).mean(dim=(2, 3, 4), keepdim=True)
    torch.testing.assert_close(out, mean.expand_as(v))


@given(seed=seeds, h=st.integers(1, 40), w=st.integers(1, 40))
def test_affine_grid_matches_torch_on_both_branches(seed: int, h: int, w: int) -> None:
    """The eager in-place grid equals the stacked one bit for bit, and both match ``F.affine_grid``."""
    theta = torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    inplace = VF._affine_grid(theta, h, w)
    stacked = VF._affine_grid(theta.clone().requires_grad_(), h, w).detach()
    assert torch.equal(inplace, stacked)
    ref = torch.nn.functional.affine_grid(theta, [3, 1, h, w], align_corners=False)
    torch.testing.assert_close(inplace, ref, rtol=0, atol=1e-12)
