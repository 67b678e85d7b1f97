"""Operator launches per call of the batched executor (the CUDA and autograd path) as a function of B.

Run on the CPU with an input that requires grad, which takes the batched executor, under torch.profiler;
prints the number of aten operators per call for each batch size, with and without Gaussian noise (on the
CPU the keyed noise is generated in chunks per clip, in parallel, which is the one place that still grows with
B there; on CUDA the field is one block).

    python benchmarks/count_ops.py
"""

from __future__ import annotations

import collections

import torch
from torch.profiler import ProfilerActivity, profile

import vidaug3d as va


def count(aug: va.Compose, B: int, calls: int = 3) -> tuple[int, collections.Counter[str]]:
    video = torch.rand(B, 1, 8, 32, 32, requires_grad=True)
    aug(video, seed=0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(calls):
            aug(video, seed=i)
    c = collections.Counter(e.name for e in prof.events() if e.name.startswith("aten::"))
    return sum(c.values()) // calls, c


def main() -> None:
    torch.set_num_threads(1)
    paper = va.presets.paper()
    no_noise = va.Compose([t for t in paper.transforms if not isinstance(t, va.GaussianNoise)])
    print(f"torch {torch.__version__}, 1 thread, input (B, 1, 8, 32, 32) float32 with requires_grad")
    print("| B | paper pipeline | without GaussianNoise |")
    print("| ---: | ---: | ---: |")
    for B in (1, 2, 4, 8, 16, 32):
        print(f"| {B} | {count(paper, B)[0]} | {count(no_noise, B)[0]} |")


if __name__ == "__main__":
    main()
