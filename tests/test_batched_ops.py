"""The batched executor (CUDA and autograd inputs) runs no Python loop over clips: its operator count per
call does not grow with the batch size (counted with the profiler on an input that requires grad)."""

from __future__ import annotations

import collections

import torch
from torch.profiler import ProfilerActivity, profile

import vidaug3d as va


def _ops(aug: va.Compose, B: int) -> int:
    video = torch.rand(B, 3, 4, 16, 16, requires_grad=True)
    aug(video, seed=0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        aug(video, seed=1)
    return sum(collections.Counter(e.name for e in prof.events() if e.name.startswith("aten::")).values())


def test_batched_executor_operator_count_does_not_grow_with_batch() -> None:
    pipelines = [
        va.presets.paper(),
        va.Compose(
            [
                va.RandomTemporalCrop(3),
                va.RandomResizedCrop(8),
                va.ColorJitter(0.4, 0.4, 0.4, 0.1),
                va.GaussianBlur(3),
            ]
        ),
        va.Compose(
            [
                va.RandomApply([va.RandomAffine(10)], p=0.5),
                va.RandomChoice([va.GaussianNoise(), va.RandomErasing(p=1.0)]),
            ]
        ),
    ]
    for aug in pipelines:
        counts = {B: _ops(aug, B) for B in (2, 5, 12)}
        # equal up to a data-dependent branch or two (e.g. whether any clip drew an empty box); a loop
        # over clips would add at least one op per clip: ten more from B = 2 to B = 12
        assert max(counts.values()) - min(counts.values()) <= 3, (aug, counts)
