"""Reproducibility across DataLoader workers and batch sizes."""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import vidaug3d as va


class ClipsWithRandomStart(Dataset[tuple[int, torch.Tensor]]):
    """A dataset that draws its own per-sample randomness (a clip start) from va.clip_generator."""

    def __init__(self, n: int, epoch: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.videos = torch.rand(n, 1, 24, 8, 8, generator=g)
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        g = va.clip_generator(seed=7, sample_id=i, epoch=self.epoch)
        start = int(torch.randint(0, 24 - 8 + 1, (1,), generator=g))
        return i, self.videos[i, :, start : start + 8]


def _run(num_workers: int, batch_size: int, epoch: int) -> dict[int, torch.Tensor]:
    ds = ClipsWithRandomStart(10, epoch)
    dl = DataLoader(ds, batch_size=batch_size, num_workers=num_workers, worker_init_fn=va.worker_init_fn)
    aug = va.presets.paper()
    out = {}
    for ids, clips in dl:
        augmented = aug(clips, seed=11, sample_ids=ids, epoch=epoch)
        for i, a in zip(ids.tolist(), augmented, strict=True):
            out[i] = a
    return out


def test_results_do_not_depend_on_workers_or_batch_size() -> None:
    ref = _run(num_workers=0, batch_size=4, epoch=1)
    for workers, bs in ((2, 4), (2, 3), (0, 10)):
        got = _run(num_workers=workers, batch_size=bs, epoch=1)
        assert got.keys() == ref.keys()
        for i in ref:
            torch.testing.assert_close(got[i], ref[i], atol=1e-6, rtol=0)
    other = _run(num_workers=0, batch_size=4, epoch=2)
    assert any(not torch.equal(other[i], ref[i]) for i in ref)


class _WorkerRandom(Dataset[tuple[float, float]]):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[float, float]:
        return random.random(), float(np.random.rand())  # noqa: NPY002 (what user code in workers often does)


def test_worker_init_fn_gives_each_worker_its_own_python_and_numpy_streams() -> None:
    dl = DataLoader(_WorkerRandom(), batch_size=2, num_workers=2, worker_init_fn=va.worker_init_fn)
    batches = [b for b in dl]
    first = [(float(b[0][0]), float(b[1][0])) for b in batches]
    assert first[0] != first[1]  # the two workers' streams differ
    dl2 = DataLoader(
        _WorkerRandom(),
        batch_size=2,
        num_workers=2,
        worker_init_fn=va.worker_init_fn,
        generator=torch.Generator().manual_seed(5),
    )
    dl3 = DataLoader(
        _WorkerRandom(),
        batch_size=2,
        num_workers=2,
        worker_init_fn=va.worker_init_fn,
        generator=torch.Generator().manual_seed(5),
    )
    a = [tuple(map(float, b[0])) for b in dl2]
    b = [tuple(map(float, b[0])) for b in dl3]
    assert a == b  # and a seeded loader repeats


def test_clip_seed_is_a_pure_function() -> None:
    assert va.clip_seed(1, 2, 3, 0) == va.clip_seed(1, 2, 3, 0)
    seeds = {va.clip_seed(1, i, e, v) for i in range(20) for e in range(3) for v in range(2)}
    assert len(seeds) == 120


def test_thread_pool_survives_fork() -> None:
    # The CPU executor's thread pool is created in the parent; a forked DataLoader worker that runs the
    # pipeline with two threads must get a pool of its own instead of waiting on the parent's threads.
    import multiprocessing as mp

    torch.set_num_threads(2)
    try:
        va.presets.paper()(torch.rand(4, 1, 8, 16, 16), seed=0)  # creates the pool in this process
        ctx = mp.get_context("fork")
        with ctx.Pool(1) as pool:
            result = pool.apply_async(_augment_with_two_threads)
            shape = result.get(timeout=60)
    finally:
        torch.set_num_threads(1)
    assert shape == (4, 1, 8, 16, 16)


def _augment_with_two_threads() -> tuple[int, ...]:
    torch.set_num_threads(2)
    return tuple(va.presets.paper()(torch.rand(4, 1, 8, 16, 16), seed=1).shape)


def test_clip_pool_called_from_its_own_threads_runs_inline() -> None:
    # A clip task that runs a batched op which itself goes clip by clip must not wait on the pool it
    # runs in (with every worker waiting, nothing would run: a deadlock).
    import threading

    from vidaug3d._random import per_clip

    cpu = torch.device("cpu")
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def outer(a: int) -> None:
        def inner(b: int) -> None:
            with lock:
                seen.append((a, b))

        per_clip(inner, 3, cpu)

    torch.set_num_threads(2)
    try:
        t = threading.Thread(target=per_clip, args=(outer, 4, cpu), daemon=True)
        t.start()
        t.join(timeout=60)
    finally:
        torch.set_num_threads(1)
    assert not t.is_alive(), "nested per_clip deadlocked"
    assert sorted(seen) == [(a, b) for a in range(4) for b in range(3)]


def test_vectorised_hash_equals_the_python_int_hash() -> None:
    # The parameter draws rest on _mix (int64 tensor ops that must never overflow); the reference is
    # the same finaliser on Python's unbounded ints.
    from vidaug3d._random import _mix, _mix_int

    g = torch.Generator().manual_seed(0)
    edges = [0, 1, 2, 3, 0xFFFF, 0x10000, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 2, 2**32 - 1]
    xs = torch.cat([torch.tensor(edges), torch.randint(0, 2**32, (5000,), generator=g)])
    got = _mix(xs).tolist()
    assert got == [_mix_int(int(v)) for v in xs.tolist()]
    assert all(0 <= v < 2**32 for v in got)


def test_an_error_in_one_clip_task_reaches_the_caller_after_the_others_stop() -> None:
    import threading
    import time

    from vidaug3d._random import per_clip

    ran: list[int] = []
    lock = threading.Lock()

    def fn(b: int) -> None:
        if b == 2:
            raise ValueError("clip 2")
        time.sleep(0.002)  # a clip's work (releases the GIL, as torch ops do)
        with lock:
            ran.append(b)

    torch.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match="clip 2"):
            per_clip(fn, 50, torch.device("cpu"))
        done = list(ran)
        time.sleep(0.3)  # nothing is still running in the background
        assert ran == done
        per_clip(lambda b: None, 4, torch.device("cpu"))  # the pool still works afterwards
    finally:
        torch.set_num_threads(1)
    assert 2 not in done and len(done) < 20  # the clips after the failure were not run


def test_prefetched_draws_equal_draws_made_one_by_one() -> None:
    from vidaug3d._random import make_keys
    from vidaug3d._video import VideoShape

    keys = make_keys(7, seed=11, sample_ids=list(range(100, 107)), epoch=3)
    wanted = [(0, 0, 1), (3, 1, 16), (0, 0, 1), (7, 2, 23)]  # a repeat is computed once
    ahead = keys.prefetch(wanted)
    assert keys.prefetch([]).uniform(0, 0, 3).shape == (7, 3)  # a pipeline that draws nothing
    for d in [*wanted, (5, 0, 4)]:  # (5, 0, 4) was not prefetched: computed when asked
        assert torch.equal(ahead.uniform(*d), keys.uniform(*d)), d
    # a pipeline's first call logs its draws, later calls prefetch them: the records are the same
    aug = va.presets.paper()
    shape = VideoShape.of(torch.empty(7, 3, 16, 20, 24))
    first = aug.sample_params(shape, keys)
    assert aug.plan._draws  # the plan was recorded
    assert aug.sample_params(shape, keys) == first
    assert va.presets.paper().sample_params(shape, keys) == first


def test_small_clips_run_on_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    import vidaug3d._random as vr

    monkeypatch.setattr(vr, "MIN_PARALLEL_WORK", 1000)
    names: list[str] = []
    torch.set_num_threads(2)
    try:
        vr.per_clip(lambda b: names.append(threading.current_thread().name), 6, torch.device("cpu"), work=999)
        small = set(names)
        names.clear()

        def slow(b: int) -> None:
            time.sleep(0.002)  # a clip's work, releasing the GIL as torch ops do
            names.append(threading.current_thread().name)

        vr.per_clip(slow, 60, torch.device("cpu"), work=1000)
    finally:
        torch.set_num_threads(1)
    assert small == {threading.current_thread().name}
    assert len(names) == 60 and len(set(names)) == 2  # the caller and one pool thread


def test_clip_tasks_run_single_threaded_and_the_callers_threads_come_back() -> None:
    import threading
    import time

    from vidaug3d._random import per_clip

    seen: dict[str, int] = {}
    lock = threading.Lock()

    def fn(b: int) -> None:
        time.sleep(0.002)
        with lock:
            seen[threading.current_thread().name] = torch.get_num_threads()

    torch.set_num_threads(2)
    try:
        per_clip(fn, 40, torch.device("cpu"))
        after = torch.get_num_threads()
        with pytest.raises(ZeroDivisionError):
            per_clip(lambda b: 1 // 0, 4, torch.device("cpu"))
        after_error = torch.get_num_threads()
    finally:
        torch.set_num_threads(1)
    assert len(seen) == 2 and set(seen.values()) == {1}  # the caller and one pool thread, each serial
    assert after == after_error == 2


def test_keys_and_seeds_equal_the_tensor_hash_chain() -> None:
    # make_keys, ClipKeys.seeds and the noise's clip keys hash in Python ints; the reference is the
    # same chain written with the vectorised tensor hash (_mix, _combine), on edge values of every input
    from vidaug3d import _noise
    from vidaug3d._random import _GOLDEN, _M32, _combine, _mix, make_keys

    g = torch.Generator().manual_seed(1)
    ids = torch.cat(
        [
            torch.tensor([0, 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**63 - 1]),
            torch.randint(0, 2**63 - 1, (9,), generator=g),
        ]
    )
    for seed in (0, 5, 2**31, 2**32 - 1, 2**32 + 7, 2**62 - 1, 2**64 + 3):
        for epoch, view in ((0, 0), (3, 1), (2**32 - 1, 2**31)):
            keys = make_keys(len(ids), seed=seed, sample_ids=ids, epoch=epoch, view=view)
            s64 = seed & (2**64 - 1)
            h = _combine(_mix(torch.tensor(s64 & _M32)), s64 >> 32).expand(len(ids))
            h = _combine(_combine(h, ids & _M32), (ids >> 32) & _M32)
            want = _combine(_combine(h, epoch), view)
            assert keys.keys.dtype == torch.int64 and torch.equal(keys.keys, want)
            for slot, stream in ((0, 0), (6, 1), (2**31, 7)):
                salt = _mix(_mix(torch.tensor(slot + _GOLDEN) & _M32) ^ ((stream + _GOLDEN) & _M32))
                hs = _mix(want ^ salt)
                seeds = ((_combine(hs, 1) & 0x7FFFFFFF) << 32) | _combine(hs, 2)
                assert torch.equal(keys.seeds(slot, stream), seeds)
                rows = _noise.clip_rows(_noise._NORMAL, seeds, 3 * _noise.ROW + 1)
                ref = _noise._row_keys(_noise._clip_keys(seeds, _noise._NORMAL), 0, 4)
                assert torch.equal(rows, ref)
    assert make_keys(0, seed=1).keys.shape == (0,)


_FAULTS = """
import resource, sys, torch, vidaug3d as va, vidaug3d.engine as ve
ve._PRIMED = sys.argv[1] == "off"  # True: the executor skips priming glibc's thresholds
torch.set_num_threads(1)
video, tv = torch.rand(8, 3, 16, 112, 112), va.TwoViews(va.presets.paper())
for _ in range(3):
    tv(video, seed=0)
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    tv(video, seed=0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only"
)
def test_two_views_do_not_fault_their_outputs_in_again_each_call() -> None:
    # Two freed batch-sized outputs pass glibc's default trim threshold, so without the executor's one-time
    # priming every call faults in both outputs' pages again (~9k faults a call here; see _prime_allocator).
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}

    def faults(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, env=env, check=True
        )
        return int(out.stdout.split()[-1])

    pages = 2 * 8 * 3 * 16 * 112 * 112 * 4 // 4096  # both outputs of one call
    unprimed = faults("off")
    if unprimed < pages:  # this glibc keeps the heap anyway: nothing to show
        pytest.skip(f"no refaulting without priming here ({unprimed} faults in 3 calls)")
    assert faults("on") < pages // 10, unprimed
