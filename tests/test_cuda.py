"""CUDA behaviour: same parameters as on the CPU, same output apart from the noise field, no host sync.

Skipped where no CUDA device is present.
"""

from __future__ import annotations

import pytest
import torch

import vidaug3d as va

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.uint8])
def test_cuda_matches_cpu_without_noise(dtype: torch.dtype) -> None:
    aug = va.Compose([t for t in va.presets.paper().transforms if not isinstance(t, va.GaussianNoise)])
    video = torch.rand(4, 1, 8, 32, 32)
    video = (video * 255).to(torch.uint8) if dtype == torch.uint8 else video.to(dtype)
    cpu, rec_cpu = aug(video, seed=3, return_params=True)
    gpu, rec_gpu = aug(video.cuda(), seed=3, return_params=True)
    assert rec_cpu == rec_gpu  # the same parameters on every device
    assert gpu.device.type == "cuda" and gpu.dtype == dtype
    atol = {torch.float32: 1e-4, torch.float16: 2e-3, torch.bfloat16: 2e-2, torch.uint8: 1}[dtype]
    torch.testing.assert_close(gpu.cpu().double(), cpu.double(), atol=atol, rtol=0)


def test_cuda_noise_equals_cpu_noise() -> None:
    # the keyed noise field is the same on every device, to float tolerance
    aug = va.Compose([va.GaussianNoise(0.1)], value_range=None)
    video = torch.zeros(3, 1, 8, 32, 32)
    cpu, rec = aug(video, seed=1, return_params=True)
    gpu = aug(video.cuda(), params=rec)
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=0)


def test_cuda_noise_replays_and_is_batch_independent() -> None:
    aug = va.presets.paper()
    video = torch.rand(6, 1, 8, 32, 32, device="cuda")
    out, rec = aug(video, seed=0, sample_ids=torch.arange(6), return_params=True)
    assert torch.equal(aug(video, params=rec), out)
    part = aug(video[2:4], seed=0, sample_ids=torch.arange(2, 4))
    torch.testing.assert_close(part, out[2:4])


def test_no_host_device_sync_in_forward() -> None:
    aug = va.presets.paper()
    video = torch.rand(8, 1, 16, 64, 64, device="cuda")
    aug(video, seed=0)  # warm-up (lazy CUDA init)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        aug(video, seed=1)
        va.TwoViews(aug)(video, seed=2)
        aug((video * 255).to(torch.uint8), seed=3)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_cuda_shape_changing_pipeline_matches_cpu(dtype: torch.dtype) -> None:
    aug = va.Compose(
        [
            va.RandomTemporalCrop(8, speed=(0.8, 1.25)),
            va.RandomResizedCrop(48, scale=(0.2, 1.0)),
            va.RandomHorizontalFlip(),
            va.Resize((24, 24)),  # a 2x downscale: the antialiasing prefilter runs
            va.ColorJitter(0.4, 0.4),
        ]
    )
    video = torch.rand(4, 3, 16, 64, 64)
    video = (video * 255).to(torch.uint8) if dtype == torch.uint8 else video
    boxes = torch.tensor([[[10.0, 12.0, 40.0, 50.0]]]).expand(4, 1, 4)
    cpu, t_cpu, rec = aug(video, seed=3, targets={"boxes": boxes}, return_params=True)
    gpu, t_gpu = aug(video.cuda(), params=rec, targets={"boxes": boxes.cuda()})
    assert gpu.shape == cpu.shape == (4, 3, 8, 24, 24) and gpu.dtype == dtype
    torch.testing.assert_close(
        gpu.cpu().double(), cpu.double(), atol=1 if dtype == torch.uint8 else 1e-4, rtol=0
    )
    torch.testing.assert_close(t_gpu["boxes"].cpu(), t_cpu["boxes"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_cuda_time_varying_pipeline_matches_cpu(dtype: torch.dtype) -> None:
    # per-frame matrices, drifting and per-frame value parameters, the random colour order: as on the CPU
    aug = va.Compose(
        [
            va.RandomAffine(15, (0.1, 0.1), (0.8, 1.2), vary="drift"),
            va.RandomResizedCrop(32, scale=(0.3, 1.0), vary="drift"),
            va.ColorJitter(0.4, 0.4, 0.3, 0.1, vary="frame", order="random"),
            va.GaussianBlur(3, vary="drift"),
            va.RandomErasing(p=0.7, vary="drift"),
        ]
    )
    video = torch.rand(4, 3, 8, 48, 48)
    video = (video * 255).to(torch.uint8) if dtype == torch.uint8 else video
    boxes = torch.tensor([[[10.0, 12.0, 30.0, 36.0]]]).expand(4, 1, 4)
    cpu, t_cpu, rec = aug(video, seed=5, targets={"boxes": boxes}, return_params=True)
    gpu, t_gpu = aug(video.cuda(), params=rec, targets={"boxes": boxes.cuda()})
    assert gpu.shape == cpu.shape == (4, 3, 8, 32, 32) and t_gpu["boxes"].shape == (4, 8, 1, 4)
    torch.testing.assert_close(
        gpu.cpu().double(), cpu.double(), atol=1 if dtype == torch.uint8 else 1e-4, rtol=0
    )
    torch.testing.assert_close(t_gpu["boxes"].cpu(), t_cpu["boxes"])
