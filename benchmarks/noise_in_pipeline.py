"""What the keyed noise costs inside the paper pipeline: the rebuilt engine with its keyed normal field, the
same engine with the field swapped for one ``torch.randn`` per clip (the old noise), and an older vidaug3d
(``--baseline DIR``, e.g. bb35158) as its own package, timed interleaved in one process.

    python benchmarks/noise_in_pipeline.py --baseline /tmp/vidaug3d-bb35158 --threads 2
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

import torch

import vidaug3d as va
import vidaug3d.transforms as T


def _randn_clip_field(self, seed, rows, shape, dtype):  # type: ignore[no-untyped-def]
    """The old noise for one clip (the CPU executor's path): ``torch.randn`` from a generator seeded with the
    clip's seed (values differ)."""
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed), dtype=dtype)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--baseline", type=Path, required=True, help="a folder holding another vidaug3d package")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pkg = args.baseline / "vidaug3d"
    spec = importlib.util.spec_from_file_location(
        "vidaug3d_baseline", pkg / "__init__.py", submodule_search_locations=[str(pkg)]
    )
    assert spec is not None and spec.loader is not None
    old = importlib.util.module_from_spec(spec)
    sys.modules["vidaug3d_baseline"] = old
    spec.loader.exec_module(old)
    keyed = T.GaussianNoise._clip_field
    new, base = va.presets.paper(), old.presets.paper()
    print(
        f"torch {torch.__version__}, {args.threads} threads, {args.repeats} interleaved rounds, median ms per batch"
    )
    print(
        "| shape | dtype | baseline | engine + randn noise | engine + keyed noise | randn / baseline | keyed / baseline |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for shape, dtype in [
        ((8, 1, 16, 128, 128), torch.float32),
        ((8, 1, 16, 128, 128), torch.uint8),
        ((8, 3, 16, 112, 112), torch.float32),
        ((8, 3, 16, 112, 112), torch.uint8),
    ]:
        v = torch.rand(shape)
        v = (v * 255).to(torch.uint8) if dtype == torch.uint8 else v
        times: dict[str, list[float]] = {"baseline": [], "randn": [], "keyed": []}
        for i in range(args.repeats + 2):
            for k in times:
                T.GaussianNoise._clip_field = _randn_clip_field if k == "randn" else keyed
                aug = base if k == "baseline" else new
                t = time.perf_counter()
                aug(v, seed=i)
                if i >= 2:  # the first rounds warm up
                    times[k].append(time.perf_counter() - t)
        T.GaussianNoise._clip_field = keyed
        m = {k: statistics.median(x) * 1e3 for k, x in times.items()}
        print(
            f"| {'x'.join(map(str, shape))} | {str(dtype).removeprefix('torch.')} | {m['baseline']:.1f} | {m['randn']:.1f} | "
            f"{m['keyed']:.1f} | {m['randn'] / m['baseline']:.2f}x | {m['keyed'] / m['baseline']:.2f}x |"
        )


if __name__ == "__main__":
    main()
