"""Keyed noise fields: the definition against an independent reference, invariances, statistics."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from scipy import special, stats  # type: ignore[import-untyped]

import vidaug3d._noise as nz
from vidaug3d._noise import ROW, normal_field, uniform_field
from vidaug3d._random import _combine, _mix
from vidaug3d.errors import VidaugError

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
N_BIG = 1 << 21  # the statistics run on 2M values: ~0.3 s per field at one thread


@pytest.fixture(scope="module")
def big() -> torch.Tensor:
    return normal_field(12345, (N_BIG,))


# ---------------------------------------------------------------------------------------------------------------
# The definition, against a reference written from the module docstring with the int64 hash and scipy
# ---------------------------------------------------------------------------------------------------------------


def _reference_hash(seed: int, kind: int, idx: np.ndarray, per_row: int = ROW) -> np.ndarray:
    """uint32 ``mix(combine(k, row) ^ mix(mix(lane + golden) ^ salt))`` hash by hash, in int64 (``per_row`` per row)."""
    s = torch.tensor([seed], dtype=torch.int64)
    k = _combine(_combine(_mix(s & 0xFFFFFFFF), (s >> 32) & 0xFFFFFFFF), kind)
    i = torch.from_numpy(idx.astype(np.int64))
    row_key = _combine(k.expand(i.shape[0]), i // per_row)
    lane = _mix(_mix(((i % per_row) + 0x9E3779B9) & 0xFFFFFFFF) ^ 0x2545F491)
    return _mix(row_key ^ lane).numpy().astype(np.uint32)


def _reference_table() -> np.ndarray:
    """The cells' conditional normal means with scipy: ``2**16 (phi(lo) - phi(hi))``, scaled to unit variance."""
    edges = special.ndtri(np.arange(65537) / 65536.0)
    z = 65536.0 * (stats.norm.pdf(edges[:-1]) - stats.norm.pdf(edges[1:]))
    return z / np.sqrt(np.mean(z**2))


def _reference_normal(seed: int, start: int, n: int) -> np.ndarray:
    i = np.arange(start, start + n)
    # hash m of row j covers elements 2m and 2m + 1
    h = _reference_hash(seed, nz._NORMAL, i // 2, per_row=ROW // 2)
    q = (h >> (16 * (i % 2)).astype(np.uint32)) & 0xFFFF
    return _reference_table()[q]


def test_int32_mix_is_the_projects_hash() -> None:
    x = torch.randint(0, 1 << 32, (100_000,), dtype=torch.int64)
    x[:4] = torch.tensor([0, 1, (1 << 31) - 1, (1 << 32) - 1])
    h = nz._to_int32(x)
    nz._mix32_(h, torch.empty_like(h))
    assert torch.equal(h.to(torch.int64) & 0xFFFFFFFF, _mix(x))


@pytest.mark.parametrize(("seed", "start"), [(0, 0), (7, 4001), ((1 << 63) - 1, 123_456_789)])
def test_normal_is_the_table_entry_of_each_16_bit_half(seed: int, start: int) -> None:
    n = 3 * ROW + 17  # odd start and odd length: blocks that begin and end half-way through a hash
    z = normal_field(seed, (n,), start=start).double().numpy()
    # the table is float32: each value is the reference's float64 mean rounded (scipy and torch ndtri may differ
    # in the last float64 bits, so allow one float32 ulp)
    np.testing.assert_allclose(z, _reference_normal(seed, start, n), rtol=2.0**-23, atol=0)


def test_table_is_an_antisymmetric_increasing_unit_variance_quantizer() -> None:
    z = nz._normal_table(torch.device("cpu"))
    assert z.shape == (65536,) and z.dtype == torch.float32
    assert torch.equal(z, -z.flip(0))  # mirror image: the field's distribution is symmetric, mean 0
    assert bool((z.diff() > 0).all())
    assert abs(float(z.double().square().mean()) - 1) < 1e-7  # variance 1 up to the float32 rounding
    # each value lies inside its equiprobable cell, so the CDF of the field is within one cell (2**-16) of the
    # normal's everywhere
    cdf = stats.norm.cdf(z.double().numpy())
    q = np.arange(65536)
    assert np.all(cdf > q / 65536) and np.all(cdf < (q + 1) / 65536)
    assert float(z.max()) < 4.39  # the outermost cell's mean, where the normal's tail beyond it is collapsed


def test_uniform_is_the_top_23_bits_exactly() -> None:
    n = 2 * ROW + 5
    u = uniform_field(99, (n,), start=ROW - 3).double().numpy()
    h = _reference_hash(99, nz._UNIFORM, np.arange(ROW - 3, ROW - 3 + n))
    assert np.array_equal(u, ((h >> 9).astype(np.float64) + 0.5) / 2.0**23)


# ---------------------------------------------------------------------------------------------------------------
# Invariances: chunking, batching, threads, dtype, determinism
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", [normal_field, uniform_field])
def test_chunks_equal_the_whole(field: Callable[..., torch.Tensor], monkeypatch: pytest.MonkeyPatch) -> None:
    shape = (3, 5, 37, 41)  # 22755 elements: not a multiple of ROW
    whole = field(5, shape).flatten()
    for lo, hi in [(0, 1), (1, ROW + 1), (ROW - 1, 3 * ROW + 2), (5000, 22755), (22754, 22755)]:
        assert torch.equal(field(5, (hi - lo,), start=lo), whole[lo:hi])
    monkeypatch.setattr(nz, "CHUNK", 3 * ROW)  # the executor's own chunking, with ragged ends
    assert torch.equal(field(5, shape).flatten(), whole)  # one block: the chunks would run in order
    monkeypatch.setattr(nz, "MAX_BLOCK", 0)  # chunk by chunk all the same
    assert torch.equal(field(5, shape).flatten(), whole)
    pieces = [field(5, (n,), start=s) for s, n in [(0, 7000), (7000, 1), (7001, 15754)]]
    assert torch.equal(torch.cat(pieces), whole)


@pytest.mark.parametrize("field", [normal_field, uniform_field])
def test_batched_equals_per_clip(field: Callable[..., torch.Tensor]) -> None:
    seeds = torch.tensor([3, 1 << 40, 3, 0, 17])
    batch = field(seeds, (2, 3, 30, 30), start=11)
    assert batch.shape == (5, 2, 3, 30, 30)
    for b, s in enumerate(seeds.tolist()):
        assert torch.equal(batch[b], field(s, (2, 3, 30, 30), start=11))
    assert torch.equal(field(seeds.flip(0), (2, 3, 30, 30), start=11), batch.flip(0))
    assert torch.equal(field(seeds[:0], (4,)), torch.empty(0, 4))


def test_threads_do_not_change_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nz, "CHUNK", ROW)  # many chunks, so that two threads share them
    seeds = torch.tensor([1, 2, 3])
    one = normal_field(seeds, (4, 64, 64))
    torch.set_num_threads(2)
    assert torch.equal(normal_field(seeds, (4, 64, 64)), one)
    assert torch.equal(uniform_field(seeds, (4, 64, 64)), uniform_field(seeds, (4, 64, 64)))


def test_dtypes_are_roundings_of_the_float32_field() -> None:
    z32 = normal_field(8, (5000,))
    assert torch.equal(normal_field(8, (5000,), dtype=torch.float64), z32.double())
    for low in (torch.float16, torch.bfloat16):
        assert torch.equal(normal_field(8, (5000,), dtype=low), z32.to(low))
    out = torch.full((2, 5000), float("nan"), dtype=torch.float64)
    assert normal_field(torch.tensor([8, 8]), (5000,), out=out) is out
    assert torch.equal(out[1], z32.double())


def test_same_seed_same_bits_other_seeds_differ() -> None:
    a = normal_field(42, (10_000,))
    assert torch.equal(a, normal_field(42, (10_000,)))
    for other in (43, 42 + (1 << 32), 42 ^ (1 << 62)):
        assert (normal_field(other, (10_000,)) == a).float().mean() < 1e-3
    assert (uniform_field(42, (10_000,)) != (a - a.min()) / (a.max() - a.min())).all()


def test_errors_name_the_argument() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"seed": -1, "shape": (3,)}, "seed"),
        ({"seed": 1.5, "shape": (3,)}, "seed"),
        ({"seed": torch.zeros(2, 2, dtype=torch.int64), "shape": (3,)}, "seed"),
        ({"seed": 1, "shape": (3, -1)}, "shape"),
        ({"seed": 1, "shape": (3,), "start": -2}, "start"),
        ({"seed": 1, "shape": (3,), "dtype": torch.int32}, "dtype"),
        ({"seed": 1, "shape": (3,), "out": torch.empty(4)}, "out"),
        ({"seed": 1, "shape": (3,), "start": 1 << 44}, "start + numel"),
    ]
    for kwargs, name in cases:
        with pytest.raises(VidaugError, match="^" + re.escape(name) + ":"):
            normal_field(**kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Statistics (deterministic: fixed seeds; bounds are 5 standard errors of the statistic)
# ---------------------------------------------------------------------------------------------------------------


def test_moments_and_tails(big: torch.Tensor) -> None:
    z = big.double().numpy()
    n = z.size
    se = 1 / np.sqrt(n)
    assert abs(z.mean()) < 5 * se
    assert abs(z.std() - 1) < 5 * se / np.sqrt(2)
    assert abs(stats.skew(z)) < 5 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(z, fisher=False) - 3) < 5 * np.sqrt(24 / n)
    for k in (3.0, 4.0):  # 4 sigma lies inside the last few cells (P(|z| > 4) = 6e-5, the end cells 3e-5)
        p = 2 * stats.norm.sf(k)
        count = int((np.abs(z) > k).sum())
        assert abs(count - p * n) < 5 * np.sqrt(p * n), (k, count, p * n)
    assert np.abs(z).max() == float(nz._normal_table(torch.device("cpu")).max())  # 2M values reach the ends


def test_normality_per_clip_and_pooled(big: torch.Tensor) -> None:
    clips = normal_field(torch.arange(16), (1, 16, 64, 64)).reshape(16, -1).double().numpy()
    pvals = [stats.kstest(c, "norm").pvalue for c in clips]
    assert min(pvals) > 1e-3  # 16 tests: a 1e-3 floor fails by chance with probability 1.6%
    assert stats.kstest(pvals, "uniform").pvalue > 1e-3  # and the p-values themselves look uniform
    assert stats.kstest(clips.ravel(), "norm").pvalue > 1e-3
    # chi-square on 200 equiprobable bins of the 2M values: sensitive where KS is not (the tails)
    edges = stats.norm.ppf(np.linspace(0, 1, 201))
    counts, _ = np.histogram(big.double().numpy(), edges)
    assert stats.chisquare(counts).pvalue > 1e-3


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.double().flatten().numpy(), b.double().flatten().numpy())[0, 1])


def test_no_correlation_between_neighbours() -> None:
    c, t, h, w = 1, 16, 128, 128
    z = normal_field(torch.arange(8), (c, t, h, w))  # 2M values
    bound = 5 / np.sqrt(z.numel())
    assert abs(_corr(z[..., 1:], z[..., :-1])) < bound  # pixels
    assert abs(_corr(z[..., 1:, :], z[..., :-1, :])) < bound  # rows of an image
    assert abs(_corr(z[:, :, 1:], z[:, :, :-1])) < bound  # frames
    assert abs(_corr(z[1:], z[:-1])) < bound  # clips with seeds s and s + 1
    flat = z.flatten()  # the two halves of one hash: elements 2m and 2m + 1
    assert abs(_corr(flat[0::2], flat[1::2])) < bound * np.sqrt(2)
    assert abs(_corr(flat[0::2] ** 2, flat[1::2] ** 2)) < bound * np.sqrt(2) * 1.5
    rows = z.reshape(-1, ROW)  # row keys: element l of row j against element l of row j + 1
    assert abs(_corr(rows[1:], rows[:-1])) < bound
    # squares too: a dependence between magnitudes would not show in the plain correlation
    assert abs(_corr(z[..., 1:] ** 2, z[..., :-1] ** 2)) < bound * np.sqrt(2) * 1.5
    u = uniform_field(torch.arange(8), (c, t, h, w))
    assert abs(_corr(u, z)) < bound  # the two kinds of one seed
    assert abs(_corr(u[..., 1:], u[..., :-1])) < bound


def test_uniform_statistics() -> None:
    u = uniform_field(torch.arange(4), (4, 128, 128)).double().numpy().ravel()
    assert u.min() > 0 and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / u.size)


# ---------------------------------------------------------------------------------------------------------------
# Compiled path and its fallback; CUDA
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_compiled_matches_eager() -> None:
    nz._reset_compiled()
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a silent fallback would make this test vacuous
        seeds = torch.tensor([4, 9])
        zc = normal_field(seeds, (3, 5000), start=ROW - 1, compiled=True)
        uc = uniform_field(seeds, (3, 5000), start=ROW - 1, compiled=True)
    assert nz.compile_failed() is None
    assert torch.equal(zc, normal_field(seeds, (3, 5000), start=ROW - 1))  # a lookup: no rounding to differ
    assert torch.equal(uc, uniform_field(seeds, (3, 5000), start=ROW - 1))


def test_compile_failure_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_compiler(fn: object, **kwargs: object) -> object:
        def fail(*args: object) -> object:
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")  # as inductor says it

        return fail

    nz._reset_compiled()
    monkeypatch.setattr(torch, "compile", no_compiler)
    with pytest.warns(RuntimeWarning, match="eager"):
        z = normal_field(3, (2, 100), compiled=True)
    assert torch.equal(z, normal_field(3, (2, 100)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once; later calls go straight to eager
        assert torch.equal(normal_field(3, (2, 100), compiled=True), z)
    nz._reset_compiled()


@pytest.mark.slow
def test_missing_cxx_compiler_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # the real failure: inductor pointed at a compiler that does not exist
    from torch._inductor import config

    monkeypatch.setattr(config.cpp, "cxx", ("/nonexistent/g++",))
    monkeypatch.setattr(config, "fx_graph_cache", False)  # a cached kernel would need no compiler
    nz._reset_compiled()
    torch._dynamo.reset()
    with pytest.warns(RuntimeWarning, match="eager"):
        z = normal_field(5, (999,), compiled=True)
    assert nz.compile_failed() is not None
    assert torch.equal(z, normal_field(5, (999,)))
    nz._reset_compiled()
    torch._dynamo.reset()


@CUDA
@pytest.mark.cuda
def test_cuda_matches_cpu() -> None:
    seeds = torch.tensor([1, 2, 3])
    zg = normal_field(seeds, (3, 16, 64, 64), device="cuda", start=77)
    assert torch.equal(zg.cpu(), normal_field(seeds, (3, 16, 64, 64), start=77))  # the same table, gathered
    ug = uniform_field(seeds, (3, 16, 64, 64), device="cuda")
    assert torch.equal(ug.cpu(), uniform_field(seeds, (3, 16, 64, 64)))
    assert torch.equal(normal_field(seeds.cuda(), (3, 16, 64, 64), start=77), zg)
    assert torch.equal(normal_field(seeds[1:2], (3, 16, 64, 64), device="cuda", start=77)[0], zg[1])


def test_int_seed_keys_equal_tensor_seed_keys() -> None:
    seeds = [0, 1, (1 << 32) + 5, (1 << 63) - 1]
    keys = nz._clip_keys(torch.tensor(seeds), nz._UNIFORM).tolist()
    assert [nz._clip_key_int(s, nz._UNIFORM) for s in seeds] == keys


@pytest.mark.parametrize(("kind", "field"), [(nz._NORMAL, normal_field), (nz._UNIFORM, uniform_field)])
def test_fields_from_prepared_row_keys_are_the_fields(kind: int, field: Callable[..., torch.Tensor]) -> None:
    # the CPU executor prepares a batch's row keys once and makes each clip's field from its row
    seeds = torch.tensor([3, 7, (1 << 63) - 1])
    n = 3 * ROW + 101  # a partial last row
    rows = nz.clip_rows(kind, seeds, n)
    assert rows.shape == (3, 4) and rows.dtype == torch.int32
    whole = field(seeds, (n,))
    for b in range(3):
        out = torch.empty(1, n)
        assert torch.equal(nz.field_from_rows(kind, rows[b : b + 1], out)[0], whole[b])
        assert torch.equal(whole[b], field(int(seeds[b]), (n,)))


def test_scratch_is_one_set_per_thread_grown_to_the_largest_block() -> None:
    # the per-thread buffers serve every block size: fields of many clip sizes keep one set, not one per size
    sizes = [nz.CHUNK + ROW * k for k in (1, 5, 9)] + [1000, 3 * nz.CHUNK]
    nz._SCRATCH.buffers.clear()  # this thread's set, as a fresh thread starts
    for n in sizes:
        ref = normal_field(4, (n,))
        nz._eval_block(
            nz._NORMAL,
            nz._row_keys(nz._clip_keys(torch.tensor([4]), nz._NORMAL), 0, -(-n // ROW)),
            0,
            0,
            out := torch.empty(1, n),
        )
        assert torch.equal(out[0], ref)
    held = nz._SCRATCH.buffers
    assert list(held) == [torch.device("cpu")]
    assert all(b.numel() == 3 * nz.CHUNK for b in held[torch.device("cpu")])
