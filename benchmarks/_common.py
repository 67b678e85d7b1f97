"""Shared helpers for the benchmark scripts: environment record, machine load, timing and memory.

Every figure a benchmark prints is stored with the environment it was measured in (versions, device, threads,
CPU model, git commit, machine load), so that a number can always be traced back to how it was made.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------------------
# Environment record
# --------------------------------------------------------------------------------------------------------------


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:  # missing or broken install: record it as absent rather than crash the benchmark
        return None
    return str(getattr(mod, "__version__", "unknown"))


def _module_path(module: str) -> str | None:
    mod = sys.modules.get(module)
    return None if mod is None else str(getattr(mod, "__file__", None))


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (Linux), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> dict[str, Any]:
    """The repository's HEAD commit and whether the working tree differs from it."""

    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def device_name(device: torch.device) -> str:
    """A human-readable name of the device: the GPU's name on CUDA, the CPU model on the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def environment(device: torch.device) -> dict[str, Any]:
    """Everything a reader needs to interpret a timing: versions, device, threads, commit, time.

    Args:
        device: the device the benchmark runs on.

    Returns:
        A JSON-serialisable dict.
    """
    env: dict[str, Any] = {
        "timestamp_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "kornia": _version("kornia"),
        "vidaug3d": _version("vidaug3d"),
        "vidaug3d_path": _module_path("vidaug3d"),
        "numpy": _version("numpy"),
        "device": str(device),
        "device_name": device_name(device),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "git": git_commit(),
        "argv": sys.argv,
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env


# --------------------------------------------------------------------------------------------------------------
# Machine load: how much of the CPU other processes took while we measured
# --------------------------------------------------------------------------------------------------------------


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies over all CPUs since boot, from ``/proc/stat``."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _own_ticks() -> int | None:
    """user + system jiffies used by this process (all its threads) and its waited-for children."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # after the command name: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(fields[i]) for i in (11, 12, 13, 14))


@dataclass
class LoadMeter:
    """Measures how busy the machine was, and how much of that was other processes, between start and stop.

    ``others_cores`` is the average number of CPU cores that processes other than this one kept busy; on a
    machine shared with other jobs it says how much the timings were disturbed (0 is an idle machine).
    """

    start_busy: int = 0
    start_total: int = 0
    start_own: int = 0
    start_wall: float = 0.0
    loadavg_start: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def start(self) -> LoadMeter:
        ticks, own = _cpu_ticks(), _own_ticks()
        if ticks is not None and own is not None:
            self.start_busy, self.start_total = ticks
            self.start_own = own
        self.start_wall = time.perf_counter()
        self.loadavg_start = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
        return self

    def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.start_wall
        out: dict[str, Any] = {
            "wall_s": round(wall, 2),
            "loadavg_start": [round(v, 2) for v in self.loadavg_start],
            "loadavg_end": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        }
        ticks, own = _cpu_ticks(), _own_ticks()
        if ticks is not None and own is not None and self.start_total:
            busy, total = ticks[0] - self.start_busy, ticks[1] - self.start_total
            own_d = own - self.start_own
            ncpu = os.cpu_count() or 1
            if total > 0:
                out["machine_busy_cores"] = round(ncpu * busy / total, 2)
                out["own_cores"] = round(ncpu * own_d / total, 2)
                out["others_cores"] = round(max(0.0, ncpu * (busy - own_d) / total), 2)
        return out


# --------------------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_block(fn: Callable[[], object], number: int, device: torch.device) -> tuple[float, float]:
    """Seconds per call of ``fn`` over one block of ``number`` calls (GC off, device synced).

    Returns:
        ``(wall, cpu)``: wall-clock seconds per call, and this process's CPU seconds per call (all threads).
        On a machine shared with other jobs the CPU time is the steadier of the two: it does not count the
        time the process waited for a core, though it still feels cache and memory-bandwidth contention.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        synchronize(device)
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(number):
            fn()
        synchronize(device)
        return (time.perf_counter() - t0) / number, (time.process_time() - c0) / number
    finally:
        if gc_was_enabled:
            gc.enable()


def calibrate(fn: Callable[[], object], device: torch.device, block_time: float, warmup: int) -> int:
    """Run ``warmup`` calls, then choose how many calls fill a block of about ``block_time`` seconds."""
    for _ in range(max(1, warmup)):
        fn()
    synchronize(device)
    once, _ = time_block(fn, 1, device)
    return max(1, round(block_time / max(once, 1e-9)))


def summarise(times: Iterable[float]) -> dict[str, float]:
    """Median, interquartile range, min and max (seconds) of per-call times from repeated blocks."""
    ts = sorted(times)
    if len(ts) >= 2:
        q1, _, q3 = statistics.quantiles(ts, n=4, method="inclusive")
    else:
        q1 = q3 = ts[0]
    return {
        "median_s": statistics.median(ts),
        "iqr_s": q3 - q1,
        "min_s": ts[0],
        "max_s": ts[-1],
        "blocks": len(ts),
    }


# --------------------------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------------------------


def peak_extra_memory(fn: Callable[[], object], device: torch.device) -> dict[str, Any]:
    """Peak bytes allocated by one call of ``fn`` beyond what was allocated before it (output included).

    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus the allocation before.
    CPU: ``tracemalloc`` does not see torch's allocator, so one call runs under ``torch.profiler`` with
    ``profile_memory=True``; its ``[memory]`` events (allocations > 0, frees < 0) are summed in time order and
    the running maximum is the peak. The profiler only sees the calling thread, so the call runs with one torch
    thread: vidaug3d's clip thread pool then runs every clip on the calling thread, and every tensor the call
    allocates is counted (including those freed before it returns, and the returned output). Memory outside
    torch's allocator (OpenMP/MKL scratch, Python objects) is not counted. With N threads the pool holds up to
    N clips' buffers at once instead of one (see ``threads_bound`` in the caller).

    The garbage collector is off during the call (a collection inside it would free objects allocated before,
    which the running sum would count against the call); no ``gc.collect()`` before it either, as that costs
    about 0.5 s per call here with torch and kornia loaded and does not change a difference of allocations.

    Returns:
        ``{"bytes": int, "method": str}``.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _peak_extra_memory(fn, device)
    finally:
        if gc_was_enabled:
            gc.enable()


def _peak_extra_memory(fn: Callable[[], object], device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        out = fn()
        synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
        del out
        return {"bytes": int(peak), "method": "torch.cuda.max_memory_allocated"}

    from torch.profiler import ProfilerActivity, profile

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = fn()
            del out
    finally:
        torch.set_num_threads(threads)
    # the raw kineto events keep every allocation (+nbytes) and free (-nbytes) with its time stamp
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    running = peak = 0
    for e in events:
        if e.device_type() == torch.autograd.DeviceType.CPU:
            running += int(e.nbytes())
            peak = max(peak, running)
    return {"bytes": int(peak), "method": "torch.profiler(profile_memory=True), one torch thread"}


# --------------------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------------------


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table; numeric-looking columns are right-aligned."""

    def numeric(col: int) -> bool:
        cells = [r[col] for r in rows if r[col] not in ("", "-")]
        return bool(cells) and all(
            c.replace(".", "").replace("x", "").replace(",", "").isdigit() for c in cells
        )

    align = ["---:" if numeric(i) else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
