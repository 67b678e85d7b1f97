"""Clips per second a training epoch gets from a folder of real videos: decoding every clip from its file
(``VideoFolder``) against reading it from the decoded clip cache (``VideoFolder(cache=...)``), with 0 and 2
DataLoader workers. One process, one run per configuration, side by side.

    python reference/bench_data.py --data ../shared/data/lus-pocus --size 64 --cache runs/clip-cache/lus-pocus-64px
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch.utils.data import DataLoader


def clips_per_s(ds: object, workers: int, batch_size: int, epochs: int) -> float:
    """Clips/s over ``epochs`` full passes (each epoch a fresh set of random clips)."""
    n = 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        ds.set_epoch(epoch)  # type: ignore[attr-defined]
        loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)  # type: ignore[arg-type]
        for batch in loader:
            n += int(batch["video"].shape[0])
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict[str, float]:
    from vidaug3d.datasets import VideoFolder

    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/lus-pocus")
    p.add_argument("--cache", default="runs/clip-cache/lus-pocus-64px")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--stride", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs-decode", type=int, default=1)
    p.add_argument("--epochs-cache", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    kw = dict(
        num_frames=a.frames, stride=a.stride, size=a.size, label_column="consolidation", on_error="skip"
    )
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    cached = VideoFolder(a.data, "labels.csv", cache=a.cache, **kw)  # type: ignore[arg-type]
    out["cache_open_s"] = time.perf_counter() - t0
    plain = VideoFolder(a.data, "labels.csv", **kw)  # type: ignore[arg-type]
    for workers in (0, 2):
        out[f"decode_w{workers}"] = clips_per_s(plain, workers, a.batch_size, a.epochs_decode)
        out[f"cache_w{workers}"] = clips_per_s(cached, workers, a.batch_size, a.epochs_cache)
        print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
