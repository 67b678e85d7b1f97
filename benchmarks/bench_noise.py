"""Keyed noise fields against torch.randn: eager, compiled, and a hash + Box-Muller alternative.

Run: ``python benchmarks/bench_noise.py [--repeats 15] [--threads 1 2] [--json out.json]``.

``--pool``: also the throughput of two Python threads each making one clip's fields (one torch thread
each, as the CPU executor's clip pool runs them) against one thread, eager and compiled.

Per shape and thread count the candidates run interleaved (one call of each per round, ``--repeats``
rounds) into a preallocated output, and the median is reported, in ms per call and ns per value,
with the environment and the machine load (the CPU is shared). The process CPU time (all threads)
is reported too: on a loaded machine it leaves out the time spent waiting for a core. The first compiled call in the
process is timed separately (compile time, after ``torch._dynamo.reset()``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import LoadMeter, environment

import vidaug3d._noise as nz

SHAPES = {"2M": (1 << 21,), "clip (16, 128, 128)": (16, 128, 128)}


def box_muller(seed: int, out: torch.Tensor) -> None:
    """The rejected alternative: the same keyed hash, two per pair of normals, then Box-Muller (eager)."""
    n = out.numel()
    keys = nz._clip_keys(torch.tensor([seed]), nz._NORMAL)
    rows = nz._row_keys(keys, 0, (n + nz.ROW - 1) // nz.ROW)
    h = torch.empty(1, n, dtype=torch.int32)
    tmp = torch.empty_like(h)
    nz._fill_inputs(h, rows, 0, 0, nz._lanes(torch.device("cpu")))
    nz._mix32_(h, tmp, premixed=True)
    u = out.view(1, n)
    torch.bitwise_right_shift(h, 8, out=tmp)
    tmp.bitwise_and_(0xFFFFFF)
    u.copy_(tmp).add_(0.5).mul_(2.0**-24)  # (0, 1)
    half = n // 2
    u1, u2 = u[0, :half], u[0, half : 2 * half]
    r = torch.log(u1).mul_(-2.0).sqrt_()
    ang = u2.mul(2 * math.pi)
    torch.mul(r, torch.cos(ang), out=u1)
    torch.mul(r, torch.sin(ang, out=ang), out=u2)


def bench(shape: tuple[int, ...], threads: int, repeats: int) -> dict[str, dict[str, float]]:
    torch.set_num_threads(threads)
    out = torch.empty(shape)
    n = out.numel()
    fns: dict[str, Callable[[], object]] = {
        "torch.randn": lambda: torch.randn(shape, out=out),
        "normal_field eager": lambda: nz.normal_field(3, shape, out=out),
        "normal_field compiled": lambda: nz.normal_field(3, shape, out=out, compiled=True),
        "uniform_field eager": lambda: nz.uniform_field(3, shape, out=out),
        "uniform_field compiled": lambda: nz.uniform_field(3, shape, out=out, compiled=True),
        "torch.rand": lambda: torch.rand(shape, out=out),
        "hash + Box-Muller eager": lambda: box_muller(3, out),
    }
    for f in fns.values():  # warm-up (compiles for this shape if the dynamic graph needs it)
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return {
        k: {
            "cpu_ms": round(statistics.median(cpu[k]) * 1e3, 3),
            "ms": round(statistics.median(v) * 1e3, 3),
            "ns_per_value": round(statistics.median(v) / n * 1e9, 3),
            "ms_per_2M": round(statistics.median(v) / n * (1 << 21) * 1e3, 3),
            "iqr_ms": round((statistics.quantiles(v, n=4)[2] - statistics.quantiles(v, n=4)[0]) * 1e3, 3),
        }
        for k, v in times.items()
    }


def pool_scaling(shape: tuple[int, ...], calls: int, repeats: int) -> dict[str, dict[str, float]]:
    """Fields per second of two Python threads (one torch thread each) over one thread's, interleaved."""
    kinds: dict[str, Callable[[torch.Tensor], object]] = {
        "normal_field eager": lambda o: nz.normal_field(3, shape, out=o),
        "normal_field compiled": lambda o: nz.normal_field(3, shape, out=o, compiled=True),
    }
    outs = [torch.empty(shape) for _ in range(2)]

    def run(f: Callable[[torch.Tensor], object], o: torch.Tensor) -> None:
        torch.set_num_threads(1)  # per thread, as in the clip pool
        for _ in range(calls):
            f(o)

    one: dict[str, list[float]] = {k: [] for k in kinds}
    two: dict[str, list[float]] = {k: [] for k in kinds}
    for f in kinds.values():
        run(f, outs[0])
    for _ in range(repeats):
        for k, f in kinds.items():
            t0 = time.perf_counter()
            run(f, outs[0])
            one[k].append(time.perf_counter() - t0)
            workers = [threading.Thread(target=run, args=(f, o)) for o in outs]
            t0 = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            two[k].append(time.perf_counter() - t0)
    return {
        k: {
            "one_thread_ms_per_field": round(statistics.median(one[k]) / calls * 1e3, 3),
            "two_threads_ms_per_field": round(statistics.median(two[k]) / (2 * calls) * 1e3, 3),
            "speedup_two_threads": round(2 * statistics.median(one[k]) / statistics.median(two[k]), 3),
        }
        for k in kinds
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--pool", action="store_true", help="two Python threads against one (see the docstring)"
    )
    args = parser.parse_args()

    torch._dynamo.reset()
    nz._reset_compiled()
    t0 = time.perf_counter()
    nz.normal_field(1, (1000,), compiled=True)
    compile_normal = time.perf_counter() - t0
    t0 = time.perf_counter()
    nz.uniform_field(1, (1000,), compiled=True)
    compile_uniform = time.perf_counter() - t0
    print(f"first compiled call: normal {compile_normal:.1f} s, uniform {compile_uniform:.1f} s")
    if nz.compile_failed() is not None:
        print(f"compile failed, compiled rows are the eager fallback: {nz.compile_failed()!r}")

    meter = LoadMeter().start()
    results = []
    for threads in args.threads:
        for name, shape in SHAPES.items():
            r = bench(shape, threads, args.repeats)
            results.append({"shape": name, "threads": threads, "results": r})
            print(f"\n{name} {shape}, {threads} thread(s), median of {args.repeats} interleaved")
            base, cpu_base = r["torch.randn"]["ms"], r["torch.randn"]["cpu_ms"]
            for k, v in r.items():
                print(
                    f"  {k:26s} {v['ms']:8.2f} ms  {v['ns_per_value']:6.2f} ns/value  "
                    f"{v['ms_per_2M']:7.2f} ms/2M  {v['ms'] / base:5.2f}x randn  (IQR {v['iqr_ms']:.2f} ms)  "
                    f"CPU {v['cpu_ms']:7.2f} ms = {v['cpu_ms'] / cpu_base:5.2f}x randn"
                )
    pool = None
    if args.pool:
        shape = SHAPES["clip (16, 128, 128)"]
        pool = pool_scaling(shape, 50, max(3, args.repeats // 3))
        print(f"\ntwo Python threads against one, {shape} fields, one torch thread each")
        for k, v in pool.items():
            print(
                f"  {k:26s} {v['one_thread_ms_per_field']:.3f} ms per field on one thread, "
                f"{v['two_threads_ms_per_field']:.3f} on two: {v['speedup_two_threads']:.2f}x the throughput"
            )
    load = meter.stop()
    env = environment(torch.device("cpu"))
    print(f"\nload: {load}")
    print(f"torch {env['torch']}, {env['cpu_model']}, {env['cpu_count']} CPUs, git {env['git']}")
    if args.json is not None:
        record = {
            "env": env,
            "load": load,
            "compile_s": {"normal": compile_normal, "uniform": compile_uniform},
            "runs": results,
            "pool": pool,
        }
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
