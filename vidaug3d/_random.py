"""Counter-based, device-independent random draws keyed per clip.

Every random number the library draws for a parameter is a pure function of
``(seed, sample id, epoch, view, transform slot, counter)``, computed with a 32-bit integer hash
(Wellons' "lowbias32" finaliser) on the CPU: the per-clip keys and noise seeds in Python ints (a
handful of values per clip), the draws in vectorised ``int64`` tensor arithmetic. Nothing here
touches a global RNG, and the draws for one clip never depend on the other clips of its batch, the
batch size, the worker count or the device: the parameters of a clip are the same wherever it goes.

Noise fields are drawn the same way, by element: each clip gets a 63-bit seed (a pure function of its
key, ``ClipKeys.seeds``) from which ``vidaug3d._noise`` hashes every element's value.
"""

from __future__ import annotations

import functools
import itertools
import os
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import torch
from torch import Tensor

from .errors import fail

__all__ = ["ClipKeys", "make_keys", "per_clip"]

_F = TypeVar("_F", bound=Callable[..., Any])


def eager(fn: _F) -> _F:
    """Keep ``fn`` out of ``torch.compile`` graphs (host-side work): ``torch.compiler.disable``, lazily.

    ``torch.compiler.disable`` imports ``torch._dynamo`` (most of ``import vidaug3d``'s time) when it
    wraps a function. Here an eager call runs ``fn`` directly and never imports it;
    inside a compiled region (where dynamo is loaded already) the call goes through torch's lazy
    disable wrapper, which dynamo does not trace, so ``fn`` runs eagerly there as before.
    """
    lazy = torch._disable_dynamo(fn)  # type: ignore[attr-defined]

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if torch.compiler.is_compiling():
            return lazy(*args, **kwargs)
        return fn(*args, **kwargs)

    return cast(_F, call)


_M32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9
_U24 = 1.0 / (1 << 24)


def _mul32(x: Tensor, c: int) -> Tensor:
    """Low 32 bits of ``x * c`` for ``x`` and ``c`` in [0, 2**32), without int64 overflow."""
    if c < (1 << 31):
        return (x * c) & _M32  # the product is below 2**63
    # c - 2**32 is congruent to c mod 2**32 and above -2**31, so the product stays above -2**63;
    # the & keeps the low 32 bits of its two's complement, which are those of x * c
    return (x * (c - (1 << 32))) & _M32


def _mix(x: Tensor) -> Tensor:
    """The lowbias32 integer finaliser: a bijection of [0, 2**32) with good avalanche."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _mix_int(x: int) -> int:
    """``_mix`` on a Python int (the same bijection, bit for bit)."""
    x &= _M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def _combine(h: Tensor, v: Tensor | int) -> Tensor:
    """Fold the 32-bit value ``v`` into the hash state ``h``."""
    if isinstance(v, int):
        return _mix(h ^ _mix_int(v + _GOLDEN))
    return _mix(h ^ _mix((v + _GOLDEN) & _M32))


def _combine_int(h: int, v: int) -> int:
    """``_combine`` on Python ints (the same bits)."""
    return _mix_int(h ^ _mix_int(v + _GOLDEN))


def _salt(slot: int, stream: int) -> int:
    """The 32-bit constant of one (transform slot, stream) pair."""
    return _mix_int(_mix_int(slot + _GOLDEN) ^ (stream + _GOLDEN))


@functools.lru_cache(maxsize=256)
def _stream_constants(slot: int, stream: int, n: int) -> Tensor:
    """``(n,)`` well-mixed constants for draws ``0..n-1`` of one stream of one transform slot.

    A clip's draw ``j`` is ``mix(key ^ c[j])``: the clip keys and the constants are both outputs of
    the finaliser, so one more round decorrelates them; caching the constants leaves one vectorised
    mix per draw call.
    """
    counter = torch.arange(n, dtype=torch.int64)
    return _mix(_mix((counter + _GOLDEN) & _M32) ^ _salt(slot, stream))


Draw = tuple[int, int, int]  # (slot, stream, n) of one ClipKeys.uniform request


@functools.lru_cache(maxsize=64)
def _joint_constants(draws: tuple[Draw, ...]) -> tuple[Tensor, tuple[tuple[int, int], ...]]:
    """The stream constants of several draws side by side, and each draw's column range."""
    parts = [_stream_constants(*d) for d in draws]
    ends = list(itertools.accumulate(p.numel() for p in parts))
    offsets = tuple(zip([0, *ends][: len(ends)], ends, strict=True))  # () for no draws
    consts = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)
    return consts, offsets


@dataclass(frozen=True)
class ClipKeys:
    """One 32-bit key per clip, from which all of that clip's random draws derive.

    Attributes:
        keys: ``(B,)`` int64 in [0, 2**32), on the CPU.
    """

    keys: Tensor
    # uniform() draws computed ahead in one hash evaluation (see prefetch), and a log of the draws
    # asked for (see recording); neither changes any value
    drawn: Mapping[Draw, Tensor] | None = field(default=None, compare=False, repr=False)
    log: list[Draw] | None = field(default=None, compare=False, repr=False)

    @property
    def batch_size(self) -> int:
        return int(self.keys.shape[0])

    def uniform(self, slot: int, stream: int, n: int) -> Tensor:
        """``(B, n)`` float32 uniforms in [0, 1) with 24-bit resolution.

        Args:
            slot: The position of the transform in its pipeline.
            stream: A per-transform stream number, so that different draws never share numbers.
            n: How many numbers per clip.
        """
        if self.drawn is not None and (slot, stream, n) in self.drawn:
            return self.drawn[(slot, stream, n)]
        if self.log is not None:
            self.log.append((slot, stream, n))
        h = _mix(self.keys[:, None] ^ _stream_constants(slot, stream, n)[None, :])
        return (h >> 8).to(torch.float32) * _U24

    def recording(self) -> ClipKeys:
        """The same keys, logging every ``uniform`` request in ``log``."""
        return ClipKeys(self.keys, log=[])

    def prefetch(self, draws: Sequence[Draw]) -> ClipKeys:
        """The same keys with the ``draws`` (``(slot, stream, n)``) computed in one hash evaluation.

        A pipeline makes a dozen small draws per call; hashing them together costs one round of
        tensor ops instead of one per draw. Each draw's values are exactly what ``uniform``
        computes on its own (the hash is elementwise); a draw not listed is computed when asked.
        """
        draws = tuple(dict.fromkeys(draws))
        consts, offsets = _joint_constants(draws)
        h = _mix(self.keys[:, None] ^ consts[None, :])
        u = (h >> 8).to(torch.float32) * _U24
        drawn = {d: u[:, a:b] for d, (a, b) in zip(draws, offsets, strict=True)}
        return ClipKeys(self.keys, drawn=drawn)

    def seeds(self, slot: int, stream: int) -> Tensor:
        """``(B,)`` int64 seeds in [0, 2**63) for the clips' noise fields (``vidaug3d._noise``)."""
        # O(B) Python ints: for a batch of clips, a few microseconds where a dozen tiny tensor ops
        # take a hundred
        salt = _salt(slot, stream)
        out = []
        for k in self.keys.tolist():
            h = _mix_int(k ^ salt)
            out.append(((_combine_int(h, 1) & 0x7FFFFFFF) << 32) | _combine_int(h, 2))
        return torch.tensor(out, dtype=torch.int64)


@eager  # host-side integer hashing: nothing to compile, and .item() would break the graph
def make_keys(
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    sample_ids: Tensor | Sequence[int] | None = None,
    epoch: int = 0,
    view: int = 0,
) -> ClipKeys:
    """Derive the per-clip keys of one call.

    Exactly one of ``generator`` and ``seed`` may be given. With a generator, one 62-bit base seed
    is drawn from it (so the generator advances by one draw per call). With neither, a fresh base
    seed is taken from the operating system: the call is then not reproducible, but its record
    still replays it exactly. ``sample_ids`` default to ``0..B-1``.

    Args:
        batch_size: B.
        generator: A CPU ``torch.Generator``.
        seed: A non-negative integer base seed.
        sample_ids: ``(B,)`` non-negative integer ids of the clips (e.g. dataset indices).
        epoch: A non-negative epoch number.
        view: A non-negative view number (0 and 1 for the two views of self-supervised learning).

    Returns:
        The clips' keys.

    Examples:
        >>> a = make_keys(4, seed=7, sample_ids=[10, 11, 12, 13])
        >>> b = make_keys(2, seed=7, sample_ids=[12, 13])
        >>> bool((a.keys[2:] == b.keys).all())
        True
    """
    if generator is not None and seed is not None:
        raise fail("generator/seed", (generator, seed), "at most one of generator and seed")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise fail("generator", type(generator).__name__, "a torch.Generator")
        if generator.device.type != "cpu":
            raise fail(
                "generator",
                str(generator.device),
                "a CPU torch.Generator (parameters are drawn on the CPU so that they are the same on every device)",
            )
        base = int(torch.randint(0, 1 << 62, (1,), generator=generator).item())
    elif seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise fail("seed", seed, "a non-negative int")
        base = seed
    else:
        base = secrets.randbits(62)
    for name, value in (("epoch", epoch), ("view", view)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(name, value, "a non-negative int")
    if sample_ids is None:
        ids = list(range(batch_size))
    else:
        t = torch.as_tensor(sample_ids)
        if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
            raise fail("sample_ids", str(t.dtype), "integer sample ids")
        ids = t.to(device="cpu", dtype=torch.int64).reshape(-1).tolist()
        if len(ids) != batch_size:
            raise fail("sample_ids", (len(ids),), f"one id per clip, shape ({batch_size},)")
        if any(i < 0 for i in ids):
            raise fail("sample_ids", ids, "non-negative ids")
    # O(B) Python ints (a few microseconds per clip): the same bits as the tensor hash, without the
    # fifty tiny tensor ops that took most of this function's time
    h0 = _combine_int(_mix_int(base & _M32), (base >> 32) & _M32)
    keys = []
    for i in ids:
        h = _combine_int(_combine_int(h0, i & _M32), i >> 32)
        keys.append(_combine_int(_combine_int(h, epoch), view))
    return ClipKeys(torch.tensor(keys, dtype=torch.int64))


_POOL: ThreadPoolExecutor | None = None
_IN_WORKER = threading.local()  # .active is True on the pool's own threads


def _mark_worker() -> None:
    _IN_WORKER.active = True


def _pool() -> ThreadPoolExecutor:
    global _POOL
    workers = max(1, torch.get_num_threads() - 1)  # the calling thread is the other worker
    if _POOL is None or _POOL._max_workers != workers:
        if _POOL is not None:
            _POOL.shutdown(wait=False)  # its threads finish what they hold, then exit
        _POOL = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="vidaug3d", initializer=_mark_worker
        )
    return _POOL


def _forget_pool_after_fork() -> None:
    # A forked child (e.g. a DataLoader worker) inherits the pool object but not its threads:
    # submitting to it would wait forever, so the child starts a pool of its own when it needs one.
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


# Elements per clip task below which per_clip runs serially: measured crossover on a 2-core CPU for the
# paper pipeline (8 clips of 16 frames: 16x48x48 ran 1.3x faster serially, 16x64x64 1.15x faster in
# two threads).
MIN_PARALLEL_WORK = 1 << 16


def in_order(n: int, work: int | None = None) -> bool:
    """Whether ``per_clip`` runs ``n`` CPU tasks of ``work`` elements in order on the calling thread."""
    return (
        torch.get_num_threads() == 1
        or n < 2
        or (work is not None and work < MIN_PARALLEL_WORK)
        or getattr(_IN_WORKER, "active", False)
    )


@eager  # a thread pool over clips: runs eagerly inside a compiled pipeline
def per_clip(fn: Callable[[int], None], n: int, device: torch.device, work: int | None = None) -> None:
    """Run ``fn(b)`` for every clip: in parallel threads on a multi-threaded CPU, else in order.

    ``work`` is the number of elements one call of ``fn`` touches: below ``MIN_PARALLEL_WORK``
    the clips run in order on the calling thread, since handing small clips between threads costs
    more than it saves. Called from one of the pool's own threads (a clip task that runs a batched
    op which itself goes clip by clip), it runs in order on that thread: waiting on the pool from
    inside it could deadlock.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        for b in range(n):
            fn(b)
        return
    if in_order(n, work):
        # in order, and on one thread like the pool's tasks: a clip's reductions (e.g. its mean for
        # the contrast) then add up in the same order whatever the thread count or batch size
        torch.set_num_threads(1)
        try:
            for b in range(n):
                fn(b)
        finally:
            torch.set_num_threads(threads)
        return
    # The calling thread and (threads - 1) pool threads take clips from one queue until it is empty:
    # a few wake-ups per call instead of one future per clip, and no thread idles while clips remain.
    todo = iter(range(n))
    lock = threading.Lock()
    failed = threading.Event()

    def drain() -> None:
        while not failed.is_set():
            with lock:
                b = next(todo, None)
            if b is None:
                return
            try:
                fn(b)
            except BaseException:
                failed.set()  # the others stop taking clips
                raise

    # grad and inference modes are thread-local: the helpers run in the caller's (writing into an
    # output made under inference_mode from outside it is an error)
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def helper() -> None:
        if torch.get_num_threads() != 1:  # a clip's ops run serially on its thread (see below)
            torch.set_num_threads(1)
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            drain()

    pool = _pool()
    helpers = [pool.submit(helper) for _ in range(min(threads, n) - 1)]
    error: BaseException | None = None
    # The parallelism is across clips: each clip's ops run on one thread. Otherwise every clip thread
    # starts its own OpenMP team of `threads` (threads**2 threads on `threads` cores, and their
    # spinning slowed the caller's next ops: the reference trainer ran 1.4x faster with this), and a
    # clip's reductions would depend on the thread count. torch.set_num_threads is per thread for
    # OpenMP (its global part only seeds threads that start later); the caller's is restored below.
    torch.set_num_threads(1)
    try:
        try:
            drain()
        except BaseException as exc:  # let the helpers finish before the error leaves this call
            error = exc
        for h in helpers:
            try:
                h.result()
            except BaseException as exc:
                error = error or exc
    finally:
        torch.set_num_threads(threads)
    if error is not None:
        raise error
