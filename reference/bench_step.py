"""Seconds per BYOL training step (the trainer's ``train_step``: two views, online, predictor, target, EMA, Adam),
in the default memory format against ``channels_last_3d``, interleaved step by step in one process so that a
shared machine's load falls on both alike; and how far their losses drift apart from the same start.

    python reference/bench_step.py --threads 1 --steps 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from reference.config import Config
from reference.train_byol import TrainState, augmentation, build_networks, train_step


def make_state(cfg: Config, channels_last: bool) -> TrainState:
    import vidaug3d as va

    torch.manual_seed(cfg.seed)
    online, target = build_networks(cfg, 1)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    online.to(memory_format=fmt)
    assert target is not None
    target.to(memory_format=fmt)
    opt = torch.optim.Adam(online.parameters(), lr=cfg.lr)
    n = 10_000
    return TrainState(
        cfg, online, online, target, va.TwoViews(augmentation(True)), torch.Generator().manual_seed(1), opt, None,
        [cfg.lr] * n, [cfg.momentum] * n, torch.device("cpu"), None, fmt,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--frames", type=int, default=16)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = Config()
    clips = torch.randint(0, 256, (a.batch_size, 1, a.frames, a.size, a.size), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))  # fmt: skip
    states = {"default": make_state(cfg, False), "channels_last_3d": make_state(cfg, True)}
    times: dict[str, list[float]] = {k: [] for k in states}
    losses: dict[str, list[float]] = {k: [] for k in states}
    for _ in range(a.steps + 1):  # the first step of each is warm-up
        for name, st in states.items():
            t0 = time.perf_counter()
            rec = train_step(st, clips, 0)
            times[name].append(time.perf_counter() - t0)
            losses[name].append(rec["loss"])
    out: dict[str, object] = {
        "threads": a.threads,
        "batch": [a.batch_size, 1, a.frames, a.size, a.size],
        **{f"{k}_median_s": statistics.median(v[1:]) for k, v in times.items()},
        **{f"{k}_range_s": [min(v[1:]), max(v[1:])] for k, v in times.items()},
        "speedup": statistics.median(times["default"][1:]) / statistics.median(times["channels_last_3d"][1:]),
        "loss_step1_diff": abs(losses["default"][0] - losses["channels_last_3d"][0]),
        "loss_last_diff": abs(losses["default"][-1] - losses["channels_last_3d"][-1]),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
