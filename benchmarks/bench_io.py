"""Video input speed: decode throughput on the POCUS folder and phantom generation speed.

Usage:
    python benchmarks/bench_io.py                       # POCUS at ../shared/data/lus-pocus, writes JSON too
    python benchmarks/bench_io.py --data DIR --epochs 2 --phantom-videos 256 --json out.json

Decode: one epoch (one clip per video) through a DataLoader with num_workers 0 and 2, batch 8, clips of
16 frames at 112x112 grayscale with a random start; clips/s = clips / wall time of the epoch (the first epoch per
setting warms the page cache and the worker start-up is included, as a user sees it); the main process uses one
torch thread while decoding. Phantom: videos/s of
vidaug3d.phantom.make_dataset at 16x112x112 with 1 and 2 torch threads. Prints a Markdown table and writes JSON
with versions, threads, load average and the git commit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidaug3d import datasets as vds  # noqa: E402
from vidaug3d import phantom  # noqa: E402


def git_commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True).strip()
    except Exception:
        return "unknown"


def bench_decode(root: Path, workers: int, epochs: int, num_frames: int, size: int) -> dict:
    ds = vds.lus_pocus(root, num_frames=num_frames, size=size, validate="none", seed=0)
    times = []
    for epoch in range(epochs + 1):  # epoch 0 warms the page cache
        ds.set_epoch(epoch)
        dl = DataLoader(ds, batch_size=8, num_workers=workers, shuffle=False)
        t = time.perf_counter()
        n = sum(int(b["video"].shape[0]) for b in dl)
        if epoch:
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {
        "workers": workers,
        "clips": n,
        "epochs": epochs,
        "median_s": med,
        "clips_per_s": n / med,
        "all_s": times,
    }


def bench_preload(root: Path, epochs: int, num_frames: int, size: int) -> dict:
    t = time.perf_counter()
    ds = vds.lus_pocus(root, num_frames=num_frames, size=size, seed=0, preload=True)
    load = time.perf_counter() - t
    times = []
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        t = time.perf_counter()
        n = sum(int(b["video"].shape[0]) for b in DataLoader(ds, batch_size=8, num_workers=0))
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    mem = sum(f.numel() for f in ds.frames or []) / 2**20
    return {"preload_s": load, "clips": n, "median_s": med, "clips_per_s": n / med, "memory_mib": mem}


def bench_phantom(n: int, threads: int, num_frames: int, size: int) -> dict:
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        phantom.make_dataset(4, num_frames=num_frames, size=size)  # warm-up
        t = time.perf_counter()
        phantom.make_dataset(n, num_frames=num_frames, size=size, seed=0, num_threads=threads)
        dt = time.perf_counter() - t
    finally:
        torch.set_num_threads(old)
    return {"threads": threads, "videos": n, "seconds": dt, "videos_per_s": n / dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "lus-pocus")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--num-frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--phantom-videos", type=int, default=256)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "io.json")
    args = ap.parse_args()

    result: dict = {
        "commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": os.getloadavg(),
        "clip": {"num_frames": args.num_frames, "size": args.size, "grayscale": True, "start": "random"},
    }
    try:
        import av

        result["av"] = av.__version__
    except ImportError:
        result["av"] = None
    rows = []
    # decoding does not use torch's threads; with 2 OpenMP threads on a loaded 2-core machine, the collate's
    # torch.stack was seen to run 30x slower (threads spinning against other processes), so pin 1 thread here
    torch.set_num_threads(1)
    if (args.data / "labels.csv").exists() and result["av"]:
        result["decode"] = [
            bench_decode(args.data, w, args.epochs, args.num_frames, args.size) for w in (0, 2)
        ]
        p = result["preload"] = bench_preload(args.data, args.epochs, args.num_frames, args.size)
        rows.append(
            f"| POCUS with preload=True, num_workers=0 | {p['clips_per_s']:.0f} clips/s "
            f"| after decoding every frame once in {p['preload_s']:.1f} s ({p['memory_mib']:.0f} MiB) |"
        )
        for r in result["decode"]:
            rows.append(
                f"| decode POCUS, DataLoader num_workers={r['workers']} | {r['clips_per_s']:.1f} clips/s "
                f"| {r['clips']} clips in {r['median_s']:.1f} s (median of {r['epochs']}) |"
            )
    else:
        print(f"skipping decode: no labels.csv under {args.data} or PyAV missing", file=sys.stderr)
    result["phantom"] = [bench_phantom(args.phantom_videos, t, args.num_frames, args.size) for t in (1, 2)]
    for r in result["phantom"]:
        rows.append(
            f"| phantom make_dataset, {r['threads']} torch thread(s) | {r['videos_per_s']:.1f} videos/s "
            f"| {r['videos']} videos in {r['seconds']:.1f} s |"
        )
    result["load_average_after"] = os.getloadavg()
    print(
        f"{args.num_frames}x{args.size}x{args.size} grayscale clips; torch {torch.__version__}, "
        f"PyAV {result['av']}, {os.cpu_count()} CPUs, commit {result['commit']}, "
        f"load average before/after {result['load_average_before'][0]:.1f}/{result['load_average_after'][0]:.1f}"
    )
    print("| what | speed | detail |\n| --- | --- | --- |")
    print("\n".join(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
