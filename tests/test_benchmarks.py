"""Smoke test of the benchmark harness: it runs, every method produces the right output, the JSON is complete.

No timing is asserted: speed is measured in benchmarks/, never in tests.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_augment.py"
SHAPES = [(2, 1, 8, 24, 24), (2, 3, 8, 20, 20)]
SSL_SHAPES = [(2, 1, 12, 24, 24), (2, 3, 12, 20, 20)]  # the quick run's defaults: 8 frames of 16x16 out


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load("bench_augment", SCRIPT)


def _quick(out: Path, *extra: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--block-time", "0.001", "--json", str(out), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "x kornia" in proc.stdout and "target" in proc.stdout  # the printed tables
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The paper pipeline, with this checkout's own vidaug3d as the --baseline (a second import of it)."""
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    shapes = [",".join(map(str, s)) for s in SHAPES]
    return _quick(out, "--shapes", *shapes, "--baseline", str(REPO))


def _quick_in_process(tmp_path_factory: pytest.TempPathFactory, bench: ModuleType, pipeline: str) -> dict:
    """``--quick --pipeline PIPELINE`` run in this process with one torch thread; its JSON."""
    out = tmp_path_factory.mktemp("bench") / f"quick-{pipeline}.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            bench.main(["--quick", "--block-time", "0.001", "--pipeline", pipeline, "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert "x kornia" in printed.getvalue() and "target" in printed.getvalue()
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def quick_ssl(tmp_path_factory: pytest.TempPathFactory, bench: ModuleType) -> dict:
    """The SSL pipeline's quick run, in this process (the paper's run above covers the script as a command;
    importing torch and kornia again in a second one would double the test's time)."""
    return _quick_in_process(tmp_path_factory, bench, "ssl")


def test_json_records_the_environment(quick_run: dict) -> None:
    env = quick_run["env"]
    for key in (
        "torch",
        "kornia",
        "vidaug3d",
        "python",
        "device",
        "device_name",
        "cpu_model",
        "timestamp_utc",
    ):
        assert env[key], key
    assert env["torch"] == torch.__version__
    assert env["torch_num_threads"] >= 1
    assert "commit" in env["git"] and "dirty" in env["git"]
    assert {"wall_s", "loadavg_start", "loadavg_end"} <= set(quick_run["load"])
    assert quick_run["settings"]["shapes"] == [list(s) for s in SHAPES]


def test_every_method_runs_with_the_right_output(quick_run: dict, bench: ModuleType) -> None:
    rows = quick_run["results"]
    methods = [*bench.ALL_METHODS, "vidaug3d_baseline"]
    expected = {(s, d, v, m) for s in SHAPES for d in ("float32", "uint8") for v in (1, 2) for m in methods}
    got = {(tuple(r["shape"]), r["dtype"], r["views"], r["method"]) for r in rows}
    assert got == expected
    for r in rows:
        where = (r["method"], r["shape"], r["dtype"], r["views"])
        assert r["status"] == "ok", (where, r.get("error"))
        assert r["out_shapes"] == [r["shape"]] * r["views"], where
        assert r["out_dtypes"] == [r["dtype"]] * r["views"], where
        assert r["median_s"] > 0 and r["iqr_s"] >= 0 and r["blocks"] == quick_run["settings"]["repeats"]
        assert math.isclose(r["clips_per_s"], r["shape"][0] * r["views"] / r["median_s"])
        assert r["x_kornia"] > 0 and r["x_floor"] > 0 and r["x_floor_new"] > 0 and r["x_baseline"] > 0
        assert r["peak_extra_bytes"] >= 0


def test_every_ssl_method_runs_with_the_right_output(quick_ssl: dict, bench: ModuleType) -> None:
    assert quick_ssl["settings"]["pipeline"] == "ssl"
    frames, size = quick_ssl["settings"]["ssl_out"]
    assert (frames, size) == bench.SSL_QUICK_OUT
    rows = quick_ssl["results"]
    expected = {
        (s, d, v, m)
        for s in SSL_SHAPES
        for d in ("float32", "uint8")
        for v in (1, 2)
        for m in bench.SSL_METHODS
    }
    assert {(tuple(r["shape"]), r["dtype"], r["views"], r["method"]) for r in rows} == expected
    for r in rows:
        where = (r["method"], r["shape"], r["dtype"], r["views"])
        assert r["status"] == "ok", (where, r.get("error"))
        B, C = r["shape"][:2]
        out_shape = r["shape"] if r["method"] == "copy" else [B, C, frames, size, size]
        assert r["out_shapes"] == [out_shape] * r["views"], where
        assert r["out_dtypes"] == [r["dtype"]] * r["views"], where
        assert r["median_s"] > 0 and r["x_kornia"] > 0 and r["x_floor"] > 0 and r["peak_extra_bytes"] >= 0
    names = {t["target"] for t in quick_ssl["targets"]}
    assert "speed-up over kornia >= 3x" in names and "time / floor <= 1.3x" not in names
    for t in quick_ssl["targets"]:
        assert t["value"] is not None, t
    assert all(rec["status"] == "ok" and rec["pipeline"] == "ssl" for rec in quick_ssl["records"])


@pytest.fixture(scope="module")
def quick_byol(tmp_path_factory: pytest.TempPathFactory, bench: ModuleType) -> dict:
    """presets.byol_video's quick run, in this process (one RGB shape, two views: about 3 s)."""
    return _quick_in_process(tmp_path_factory, bench, "byol")


def test_every_byol_method_runs_with_the_right_output(quick_byol: dict, bench: ModuleType) -> None:
    assert quick_byol["settings"]["pipeline"] == "byol" and quick_byol["settings"]["views"] == [2]
    frames, size = quick_byol["settings"]["ssl_out"]
    rows = quick_byol["results"]
    expected = {
        (s, d, 2, m)
        for s in bench.BYOL_QUICK_SHAPES
        for d in ("float32", "uint8")
        for m in bench.BYOL_METHODS
    }
    assert {(tuple(r["shape"]), r["dtype"], r["views"], r["method"]) for r in rows} == expected
    for r in rows:
        where = (r["method"], r["shape"], r["dtype"])
        assert r["status"] == "ok", (where, r.get("error"))
        B, C = r["shape"][:2]
        out_shape = r["shape"] if r["method"] == "copy" else [B, C, frames, size, size]
        assert r["out_shapes"] == [out_shape] * 2 and r["out_dtypes"] == [r["dtype"]] * 2, where
        assert r["median_s"] > 0 and r["x_kornia"] > 0 and r["x_floor"] > 0
    for t in quick_byol["targets"]:
        assert t["value"] is not None, t
    assert all(rec["status"] == "ok" and rec["views"] == 2 for rec in quick_byol["records"])


def test_kornia_byol_views_take_the_presets_settings(bench: ModuleType) -> None:
    """kornia's two views are built from the preset itself: the same probabilities, kernel and ranges."""
    import kornia.augmentation as K

    import vidaug3d as va

    two = bench.byol_views(va, 16, 112)
    first, second = (bench.kornia_byol_view(K, v) for v in (two.first, two.second))
    names = [type(m).__name__ for m in second]
    assert names == [
        "RandomResizedCrop",
        "RandomHorizontalFlip",
        "ColorJitter",
        "RandomGrayscale",
        "RandomGaussianBlur",
        "RandomSolarize",
    ]
    assert [type(m).__name__ for m in first] == names[:-1]  # solarize p = 0 on the first view
    assert [m.p for m in first][-1] == 1.0 and [m.p for m in second][-2:] == [0.1, 0.2]


def test_baseline_is_a_second_independent_import(bench: ModuleType) -> None:
    """--baseline imports a vidaug3d package under another name: here the checkout itself, so the two agree."""
    import vidaug3d as va

    old = bench.load_baseline(REPO)
    assert old.__name__ == "vidaug3d_baseline" and old is not va and old.Compose is not va.Compose
    video = torch.rand(2, 1, 8, 16, 16, generator=torch.Generator().manual_seed(0))
    fn = bench.build_vidaug3d_baseline(video, 1, REPO)
    assert torch.equal(fn(), va.presets.paper()(video, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(bench.Unavailable):
        bench.load_baseline(REPO / "benchmarks")


@pytest.mark.parametrize(
    "argv",
    [
        ["--pipeline", "ssl", "--methods", "loop"],
        ["--pipeline", "ssl", "--baseline", "."],
        ["--pipeline", "ssl", "--ssl-out", "16"],
        ["--pipeline", "byol", "--views", "1"],
        ["--pipeline", "byol", "--methods", "vidaug3d_unfused"],
    ],
)
def test_arguments_that_do_not_fit_the_pipeline_are_refused(bench: ModuleType, argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(argv)


@pytest.mark.parametrize("seed", range(10))
def test_ssl_floor_crop_box_is_inside_and_in_range(bench: ModuleType, seed: int) -> None:
    import random

    rng, H, W = random.Random(seed), 128, 160
    for _ in range(20):
        (sx, _, cx), (_, sy, cy) = bench.crop_theta(H, W, rng)
        assert abs(cx) + sx <= 1 + 1e-9 and abs(cy) + sy <= 1 + 1e-9  # inside the frame
        assert 0 < sx <= 1 and 0 < sy <= 1
        if sx < 1 and sy < 1:  # not clamped to the frame: the area fraction is in SSL_CROP_SCALE
            assert 0.2 - 1e-9 <= sx * sy <= 1.0 + 1e-9


def test_ssl_temporal_crop_index_is_a_window(bench: ModuleType) -> None:
    index = bench.crop_index(64, 32, 16, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert index.shape == (64, 16)
    assert bool((index.diff(dim=1) == 1).all()) and int(index.min()) >= 0 and int(index.max()) <= 31
    assert len(set(index[:, 0].tolist())) > 1  # a start per clip


def test_peak_memory_of_a_copy_is_its_output(quick_run: dict) -> None:
    """The memory measurement is checked on the one method whose answer is known: clone allocates its output."""
    for r in quick_run["results"]:
        if r["method"] == "copy":
            assert r["peak_extra_bytes"] == r["input_bytes"] * r["views"], r


def test_peak_memory_counts_the_clip_thread_pool(bench: ModuleType) -> None:
    """vidaug3d's CPU executor works on pool threads, which the profiler does not see: the measurement
    runs the call with one thread, so each clip's float working buffer is counted with the output."""
    import vidaug3d as va

    common = sys.modules[bench.peak_extra_memory.__module__]
    video = torch.randint(0, 256, (4, 1, 8, 24, 24), dtype=torch.uint8)
    aug = va.presets.paper()
    torch.set_num_threads(2)
    try:
        mem = common.peak_extra_memory(lambda: aug(video, seed=0), torch.device("cpu"))
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(1)
    clip_float = 1 * 8 * 24 * 24 * 4  # a clip converted to float, and its resampled copy, coexist
    assert mem["bytes"] >= video.nbytes + 2 * clip_float, mem  # the calling thread alone sees ~38 KB


def test_record_size_and_targets_are_reported(quick_run: dict) -> None:
    records = quick_run["records"]
    assert len(records) == len(SHAPES) * 2
    for rec in records:
        assert rec["status"] == "ok", rec.get("error")
        assert rec["json_bytes_per_clip"] > 0 and rec["tensor_bytes_per_clip"] > 0
    names = {t["target"] for t in quick_run["targets"]}
    assert "speed-up over kornia >= 5x" in names and "record JSON bytes per clip <= 1024" in names
    assert "time / new floor <= 2x" in names
    for t in quick_run["targets"]:
        assert t["met"] in (True, False, None)
        assert t["value"] is not None, t  # every target is measurable in the quick run


@pytest.mark.parametrize("seed", range(20))
def test_peer_temporal_maps_are_valid(bench: ModuleType, seed: int) -> None:
    import random

    rng, T = random.Random(seed), 8
    ident = torch.arange(T)
    rev = bench.reverse_index(T, rng)
    assert torch.equal(rev, ident) or torch.equal(rev, ident.flip(0))
    shuf = bench.shuffle_index(T, rng)
    assert torch.equal(shuf.sort().values, ident)  # a permutation
    assert int((shuf != ident).sum()) <= 4
    rep = bench.replace_index(T, rng)
    changed = rep != ident
    assert int(changed.sum()) <= 4
    assert bool(((rep >= 0) & (rep < T)).all())


@pytest.mark.parametrize("seed", range(10))
def test_peer_affine_is_the_inverse_of_the_sampled_map(bench: ModuleType, seed: int) -> None:
    import random

    theta = torch.tensor(bench.affine_theta(random.Random(seed)), dtype=torch.float64)
    A = torch.cat([theta, torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)])
    forward = torch.linalg.inv(A)
    s = torch.linalg.det(forward[:2, :2]).sqrt()
    assert 0.8 - 1e-9 <= s <= 1.2 + 1e-9
    assert bool((forward[:2, 2].abs() <= 0.2 + 1e-9).all())  # translation of 10% = 0.2 in [-1, 1] coordinates
    angle = math.degrees(math.atan2(float(forward[1, 0]), float(forward[0, 0])))
    assert abs(angle) <= 10 + 1e-6


@pytest.mark.parametrize("seed", range(10))
def test_peer_erase_box_is_inside_and_in_range(bench: ModuleType, seed: int) -> None:
    import random

    rng, H, W = random.Random(seed), 64, 48
    for _ in range(20):
        box = bench.erase_box(H, W, rng)
        if box is None:
            continue
        y0, x0, h, w = box
        assert y0 >= 0 and x0 >= 0 and y0 + h <= H and x0 + w <= W
        assert 0.015 * H * W <= h * w <= 0.12 * H * W  # (0.02, 0.1) of the frame, up to rounding


def test_batched_gather_matches_per_clip_indexing(bench: ModuleType) -> None:
    g = torch.Generator().manual_seed(0)
    video = torch.rand(3, 2, 6, 4, 5, generator=g)
    index = torch.stack([torch.randperm(6, generator=g) for _ in range(3)])
    out = bench.gather_frames(video, index)
    for b in range(3):
        assert torch.equal(out[b], video[b][:, index[b]])


def test_report_reprints_a_saved_run(quick_run: dict, bench: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(quick_run))
    text = bench.report(path)
    assert "x kornia" in text and "record JSON bytes per clip" in text
    assert text.count("| vidaug3d |") == len(SHAPES) * 2 * 2  # shapes x dtypes x views


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_forward_has_no_host_device_sync() -> None:
    """The issue's GPU check: the paper pipeline's forward (one and two views, float32 and uint8) never syncs."""
    import vidaug3d as va

    aug = va.presets.paper()
    two = va.TwoViews(aug)
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.uint8):
        video = torch.rand(4, 1, 8, 32, 32, device="cuda")
        if dtype == torch.uint8:
            video = (video * 255).to(torch.uint8)
        aug(video, generator=g)  # warm-up outside the check (lazy CUDA initialisation may sync)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            out = aug(video, generator=g)
            v1, v2 = two(video, generator=g)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        assert out.shape == v1.shape == v2.shape == video.shape and out.dtype == dtype
