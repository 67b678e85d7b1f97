"""Keyed noise fields: standard normals and uniforms as a pure function of (seed, element index).

Element ``i`` of a clip's flattened field is a function of the clip's seed and ``i`` alone, so a
clip's noise is the same whatever the batch it is in, the chunks it is generated in, the thread
count and the device. There is no generator state: a batch of clips is one elementwise evaluation
(one kernel under ``torch.compile``, a fixed number of tensor ops in eager mode, whatever ``B`` is).

How element ``i`` of the field of ``seed`` is made:

1. The seed (63 bits) is folded into a 32-bit clip key ``k`` with the project's hash
   (``vidaug3d._random._mix``, Wellons' lowbias32, and its ``_combine``), salted by the field's
   kind (normal or uniform) so that the two fields of one seed are unrelated.
2. The field is cut into rows of ``ROW = 4096`` elements. Row ``j`` has the key
   ``r_j = combine(k, j)``; lane ``l`` has the fixed constant ``g_l = mix(l + c)``. Hash ``l`` of
   row ``j`` is the 32-bit ``h = mix(r_j ^ g_l)``. Both inputs of the last ``mix`` are hash
   outputs, so fields of different seeds or rows share no structure (a plain ``mix(k + i)`` would
   make the field of another seed a shifted copy of this one). Per hash this costs one XOR with a
   cached lane constant and one ``mix`` less its first step (row keys and lane constants are stored
   with that linear step applied), in ``int32`` arithmetic (which wraps like the ``uint32`` hash;
   bit-exact on every device and backend).
3. Normal: two normals per hash. Element ``i = j * ROW + 2 m + e`` (``e`` in {0, 1}) takes the
   16-bit half ``q = (h >> 16 e) & 0xFFFF`` of hash ``m`` of row ``j`` (the low half for even
   elements), and ``z = Z[q]``: ``Z`` is the inverse-CDF table of the standard normal on 2**16
   equiprobable cells, each cell's value its conditional mean, all scaled to unit variance
   (``Z[65535 - q] = -Z[q]``, ``|z| <= 4.5``). The field is then exactly a draw from a symmetric
   distribution with mean 0 and variance 1 on 65536 equiprobable values whose CDF is within 2**-17
   of the normal's everywhere; the part of the normal beyond the outermost cells (probability
   2**-15) is folded into them. One gather per value and no arithmetic: the eager, compiled and
   CUDA paths agree bit for bit. Uniform: one per hash over all 4096 lanes, ``u = (m + 1/2) /
   2**23`` with ``m`` the top 23 bits of ``h``: strictly inside (0, 1).

Values are computed in float32 and then cast to the requested dtype: a float64 field holds the
float32 values exactly, float16/bfloat16 fields are their rounding. On one device the eager and the
compiled paths agree bit for bit; CPU and CUDA should too (tested where CUDA is present).

The eager CPU path works in chunks of ``CHUNK`` elements (its buffers, 12 bytes per element, are
reused per thread) and, with several torch threads, runs chunks in parallel on the project's clip
pool. The flattened index is used rather than ``(c, t, y, x)`` so that any sub-range of a clip is
one contiguous range of counters: chunks, and the batched path's ``(B, rows, ROW)`` broadcast, need
no index arithmetic.
"""

from __future__ import annotations

import functools
import math
import sys
import threading
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ._random import _GOLDEN, _M32, _combine, _combine_int, _mix, _mix_int, in_order, per_clip
from .errors import fail

__all__ = ["CHUNK", "ROW", "normal_field", "uniform_field"]

ROW_BITS = 12
ROW = 1 << ROW_BITS  # elements per row key (part of the definition of the field)
CHUNK = 1 << 18  # elements per eager CPU chunk: fewer, longer ops beat L2-sized ones here
MAX_BLOCK = 1 << 20  # the most elements evaluated as one block where the chunks would run in order

_NORMAL, _UNIFORM = 1, 2  # kind salts
_LANE_SALT = 0x2545F491
_PER_HASH = {_NORMAL: 2, _UNIFORM: 1}  # values per 32-bit hash
_CELLS = 1 << 16  # normal: one table cell per 16-bit half of a hash
_MAX_END = 1 << (ROW_BITS + 32)  # row numbers are 32-bit
_ONE_MINUS_HALF_ULP = 1.0 - 2.0**-24

# lowbias32's constants as int32 (0x846CA68B does not fit: its wrapped value has the same low bits)
_C1 = 0x7FEB352D
_C2 = 0x846CA68B - (1 << 32)


def _to_int32(x: Tensor) -> Tensor:
    """int64 values in [0, 2**32) as the int32 with the same bits."""
    return (x - ((x >> 31) << 32)).to(torch.int32)


# --------------------------------------------------------------------------------------------------------------
# Keys and constants (int64, the project's hash)
# --------------------------------------------------------------------------------------------------------------


def _clip_keys(seeds: Tensor, kind: int) -> Tensor:
    """``(B,)`` int64 seeds -> ``(B,)`` int64 clip keys in [0, 2**32) for one field kind."""
    lo, hi = seeds & _M32, (seeds >> 32) & _M32
    return _combine(_combine(_mix(lo), hi), kind)


def _clip_key_int(seed: int, kind: int) -> int:
    """``_clip_keys`` of one int seed in Python ints (the same bits, without a dozen tiny tensor ops)."""
    return _combine_int(_combine_int(_mix_int(seed & _M32), (seed >> 32) & _M32), kind)


@functools.lru_cache(maxsize=64)
def _row_constants(first: int, n: int, device: torch.device) -> Tensor:
    """``(n,)`` int64 ``mix(j + golden)`` of rows ``first ..``: the key-independent half of ``combine``."""
    rows = torch.arange(first, first + n, dtype=torch.int64, device=device)
    return _mix((rows + _GOLDEN) & _M32)


def _premix(x: Tensor) -> Tensor:
    """``x ^ (x >> 16)``, the first step of ``mix``: linear over XOR, so ``premix(r ^ g) = premix(r) ^ premix(g)``.

    Row keys and lane constants are stored premixed, which takes that step (three passes in int32)
    off every element.
    """
    return x ^ (x >> 16)


def _row_keys(keys: Tensor, first: int, n: int) -> Tensor:
    """``(B, n)`` int32 premixed keys ``combine(k, j)`` of rows ``j = first .. first + n - 1`` of each clip."""
    return _to_int32(_premix(_mix(keys[:, None] ^ _row_constants(first, n, keys.device)[None, :])))


@functools.lru_cache(maxsize=8)
def _lanes(device: torch.device) -> Tensor:
    """``(ROW,)`` int32 premixed lane constants ``mix(mix(l + golden) ^ salt)``."""
    lane = torch.arange(ROW, dtype=torch.int64)
    return _to_int32(_premix(_mix(_mix((lane + _GOLDEN) & _M32) ^ _LANE_SALT))).to(device)


@functools.lru_cache(maxsize=8)
def _normal_table(device: torch.device) -> Tensor:
    """``(2**16,)`` float32 ``Z``: cell ``q``'s conditional mean of the standard normal, scaled to unit variance.

    Cell ``q`` is ``[ndtri(q / 2**16), ndtri((q + 1) / 2**16)]``; its mean is
    ``2**16 * (phi(lo) - phi(hi))``, which also covers the two infinite end cells. Computed in float64
    for the lower half and mirrored, so the table is exactly antisymmetric.
    """
    half = _CELLS // 2
    edges = torch.special.ndtri(torch.arange(half + 1, dtype=torch.float64) / _CELLS)  # -inf .. 0
    pdf = torch.exp(-0.5 * edges.square()) / math.sqrt(2 * math.pi)  # phi(-inf) = 0
    lower = _CELLS * (pdf[:-1] - pdf[1:])
    z = torch.cat([lower, -lower.flip(0)])
    z = z / z.square().mean().sqrt()  # the discrete distribution has variance 1 exactly (in float64)
    return z.to(torch.float32).to(device)


# --------------------------------------------------------------------------------------------------------------
# Eager kernels: in place, on preallocated buffers
# --------------------------------------------------------------------------------------------------------------


def _xorshift_(x: Tensor, tmp: Tensor, k: int) -> None:
    torch.bitwise_right_shift(x, k, out=tmp)
    tmp.bitwise_and_((1 << (32 - k)) - 1)  # the int32 shift is arithmetic: keep it logical
    x.bitwise_xor_(tmp)


def _mix32_(x: Tensor, tmp: Tensor, premixed: bool = False) -> None:
    """lowbias32 in place on int32 ``x`` (``tmp``: int32 scratch of its shape); ``premixed``: skip its first step."""
    if not premixed:
        _xorshift_(x, tmp, 16)
    x.mul_(_C1)
    _xorshift_(x, tmp, 15)
    x.mul_(_C2)
    _xorshift_(x, tmp, 16)


def _fill_inputs(h: Tensor, rows: Tensor, first_row: int, start: int, lanes: Tensor) -> None:
    """``h[b, p] = rows[b, (start + p) // L - first_row] ^ lanes[(start + p) % L]`` (premixed), ``L = len(lanes)``.

    Args:
        h: ``(B, n)`` int32 output (rows may be strided).
        rows: ``(B, R)`` int32 row keys from row ``first_row`` on.
        first_row: The row of ``rows[:, 0]``.
        start: The hash index (in the row-major ``(rows, L)`` grid) of ``h[:, 0]``.
        lanes: ``(L,)`` lane constants: ``ROW`` of them for uniforms, ``ROW // 2`` for normals.
    """
    n, per_row = h.shape[1], lanes.shape[0]
    pos = 0
    while pos < n:
        i = start + pos
        row, lane = divmod(i, per_row)
        r = row - first_row
        if lane == 0 and n - pos >= per_row:  # whole rows: one broadcast XOR
            full = (n - pos) // per_row
            dst = h[:, pos : pos + full * per_row].view(h.shape[0], full, per_row)
            torch.bitwise_xor(rows[:, r : r + full, None], lanes, out=dst)
            pos += full * per_row
        else:  # a partial row at either end
            m = min(per_row - lane, n - pos)
            torch.bitwise_xor(rows[:, r : r + 1], lanes[lane : lane + m], out=h[:, pos : pos + m])
            pos += m


def _halves_(h: Tensor, out: Tensor) -> None:
    """``out[2m + e] = (h[m] >> 16 e) & 0xFFFF`` (int32 ``out`` of twice the length of ``h``)."""
    if sys.byteorder == "little":  # the uint16 view is [low, high] per int32: one conversion pass
        out.copy_(h.view(torch.uint16))
        return
    pairs = out.view(-1, 2)
    torch.bitwise_and(h, 0xFFFF, out=pairs[:, 0])
    torch.bitwise_right_shift(h, 16, out=pairs[:, 1])
    pairs[:, 1].bitwise_and_(0xFFFF)


def _uniform_from_hash_(h: Tensor, out: Tensor) -> None:
    """``out = ((h >>> 9) + 1/2) / 2**23`` (float32), built from the bits: ``1.m`` minus ``1 - 2**-24``."""
    h.bitwise_right_shift_(9).bitwise_and_(0x7FFFFF).bitwise_or_(0x3F800000)
    torch.sub(h.view(torch.float32), _ONE_MINUS_HALF_ULP, out=out)


class _Scratch(threading.local):
    """Per-thread block buffers, reused across calls (fresh 1 MB buffers would each be a new mapping).

    One set per device, grown to the largest block asked for (at most ``MAX_BLOCK`` elements, or a
    chunk of ``CHUNK``): blocks of every size share it.
    """

    def __init__(self) -> None:
        self.buffers: dict[torch.device, tuple[Tensor, Tensor, Tensor]] = {}

    def get(self, n: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        have = self.buffers.get(device)
        if have is None or have[0].numel() < n:
            n = max(n, CHUNK)
            self.buffers[device] = (
                torch.empty(n, dtype=torch.int32, device=device),
                torch.empty(n, dtype=torch.int32, device=device),
                torch.empty(n, dtype=torch.float32, device=device),
            )
        return self.buffers[device]


_SCRATCH = _Scratch()


def _lanes_of(kind: int, device: torch.device) -> Tensor:
    return _lanes(device)[: ROW // _PER_HASH[kind]]


def _eval_block(kind: int, rows: Tensor, first_row: int, start: int, out: Tensor) -> None:
    """Fill ``out`` (``(B, n)``, any float dtype) with elements ``start ..`` of the clips' fields.

    Normals come two per hash: a block that starts or ends half-way through a hash computes that
    hash whole and drops the value it does not need.
    """
    bsz, n = out.shape
    device = out.device
    per = _PER_HASH[kind]
    lo, hi = start // per, -(-(start + n) // per)  # the hashes that cover the block
    m, skip = hi - lo, start - lo * per
    if device.type == "cpu":
        h, tmp, f32 = (buf[: bsz * m * per] for buf in _SCRATCH.get(bsz * m * per, device))
    else:
        h, tmp = (torch.empty(bsz * m * per, dtype=torch.int32, device=device) for _ in range(2))
        f32 = torch.empty(bsz * m * per, device=device)
    whole = skip == 0 and m * per == n
    dst = out if whole and out.dtype == torch.float32 and out.is_contiguous() else f32.view(bsz, m * per)
    h = h[: bsz * m].view(bsz, m)
    _fill_inputs(h, rows, first_row, lo, _lanes_of(kind, device))
    h = h.view(-1)
    _mix32_(h, tmp[: h.numel()], premixed=True)
    flat = dst.reshape(-1)  # a view: dst is contiguous or the scratch
    if kind == _NORMAL:
        _halves_(h, tmp)  # the 16-bit cell indices, over the hash's scratch
        torch.index_select(_normal_table(device), 0, tmp, out=flat)
    else:
        _uniform_from_hash_(h, flat)
    if dst is not out:
        out.copy_(dst[:, skip : skip + n])


def clip_rows(kind: int, seeds: Tensor, n: int) -> Tensor:
    """``(B, R)`` int32 premixed row keys of the first ``n`` elements of each seed's field.

    A batch's row keys in one evaluation (the clip keys in Python ints, then a dozen small ops
    whatever ``B`` is), so that a clip-by-clip caller (the CPU executor's value stage) hands each
    clip its row and its field then costs only the elementwise passes: on two threads the per-op
    overhead of small ops, not their arithmetic, is what limits a clip task.
    """
    keys = torch.tensor([_clip_key_int(s, kind) for s in seeds.tolist()], dtype=torch.int64)
    return _row_keys(keys, 0, (n + ROW - 1) >> ROW_BITS)


def field_from_rows(kind: int, rows: Tensor, out: Tensor) -> Tensor:
    """Fill the flat ``(B, n)`` float ``out`` with elements ``0 .. n - 1`` of the fields whose row keys are ``rows``."""
    _eager(kind, None, 0, out, rows=rows.to(out.device))
    return out


def _eager(kind: int, keys: Tensor | None, start: int, out: Tensor, rows: Tensor | None = None) -> None:
    """Fill ``out`` (``(B, n)``) eagerly: chunks of ``CHUNK`` on the CPU (in parallel), one block on CUDA.

    ``rows``: the row keys from row ``start >> ROW_BITS`` on, if the caller has them (else from ``keys``).
    """
    bsz, n = out.shape
    first_row = start >> ROW_BITS
    if rows is None:
        assert keys is not None
        rows = _row_keys(keys, first_row, ((start + n - 1) >> ROW_BITS) - first_row + 1 if n else 0)
        rows = rows.to(out.device)
    if out.device.type != "cpu":
        _eval_block(kind, rows, first_row, start, out)
        return
    # A task is one range of element indices for every clip of the batch at once (so the number of
    # ops does not grow with B), CHUNK elements in all: edges on multiples of the step (itself whole
    # rows), so every chunk but the ends is whole rows; the chunking changes no value (every element
    # is computed on its own)
    step = max(ROW, (CHUNK // bsz) // ROW * ROW)
    edges = list(range(start - start % step + step, start + n, step))
    bounds = list(zip([start, *edges], [*edges, start + n], strict=True))
    if len(bounds) > 1 and bsz * n <= MAX_BLOCK and in_order(len(bounds), CHUNK):
        # the chunks would run one after another here (e.g. a clip task of the CPU executor): one
        # block of the same values in fewer, longer ops
        _eval_block(kind, rows, first_row, start, out)
        return

    def task(k: int) -> None:
        lo, hi = bounds[k]
        _eval_block(kind, rows, first_row, lo, out[:, lo - start : hi - start])

    per_clip(task, len(bounds), out.device, work=CHUNK)


# --------------------------------------------------------------------------------------------------------------
# Compiled kernel: the same values as one fused elementwise pass
# --------------------------------------------------------------------------------------------------------------


def _shr(x: Tensor, k: int) -> Tensor:
    return (x >> k) & ((1 << (32 - k)) - 1)


def _field_fused(kind: int, rows: Tensor, lanes: Tensor, table: Tensor, lo: int, out: Tensor) -> None:
    """``out = field[:, lo : lo + n]`` of the ``(B, R * ROW)`` float32 field of whole rows, as one kernel.

    Row keys and lanes broadcast (``(B, R, 1) ^ (L,)``) rather than being gathered per element, so
    the only indirect load left is the normal's table lookup; the cut and the cast into ``out`` fuse
    into the same loop.
    """
    out.copy_(_rows_field(kind, rows, lanes, table)[:, lo : lo + out.shape[1]])


def _rows_field(kind: int, rows: Tensor, lanes: Tensor, table: Tensor) -> Tensor:
    h = (rows[:, :, None] ^ lanes).flatten(1)  # premixed: mix's first step is done
    h = h * _C1
    h = h ^ _shr(h, 15)
    h = h * _C2
    h = h ^ _shr(h, 16)
    if kind == _NORMAL:
        q = torch.stack([h & 0xFFFF, _shr(h, 16)], dim=-1).flatten(1)  # low half first
        return table[q]
    return (_shr(h, 9) | 0x3F800000).view(torch.float32) - _ONE_MINUS_HALF_ULP


_compile_state = threading.Lock()
_compiled_fn: Callable[..., None] | None = None
_compile_failed: BaseException | None = None


def _compiled(kind: int, keys: Tensor, start: int, out: Tensor) -> bool:
    """Fill ``out`` with the compiled kernel; False (after one warning) where compiling is impossible."""
    global _compiled_fn, _compile_failed
    if _compile_failed is not None:
        return False
    with _compile_state:
        if _compiled_fn is None:
            _compiled_fn = torch.compile(_field_fused)  # sizes static until one changes
    n = out.shape[1]
    device = out.device
    first_row = start >> ROW_BITS
    rows = _row_keys(keys, first_row, ((start + n - 1) >> ROW_BITS) - first_row + 1 if n else 0).to(device)
    table = _normal_table(device) if kind == _NORMAL else _lanes(device)  # (the uniform reads no table)
    try:
        _compiled_fn(kind, rows, _lanes_of(kind, device), table, start - first_row * ROW, out)
    except Exception as exc:  # no C++ compiler, a broken toolchain, an unsupported backend: stay eager
        _compile_failed = exc
        warnings.warn(
            f"vidaug3d noise: torch.compile failed ({type(exc).__name__}); using the eager kernel, "
            "which computes the same values",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


def compile_failed() -> BaseException | None:
    """The error that made the compiled path fall back to eager, or None."""
    return _compile_failed


def _reset_compiled() -> None:
    """Forget the compiled kernel and any failure (tests; after changing the compiler set-up)."""
    global _compiled_fn, _compile_failed
    _compiled_fn, _compile_failed = None, None


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def _field(
    kind: int,
    seed: int | Tensor,
    shape: Sequence[int] | int,
    start: int,
    dtype: torch.dtype,
    device: torch.device | str | None,
    out: Tensor | None,
    compiled: bool,
) -> Tensor:
    shape_t = (shape,) if isinstance(shape, int) else tuple(shape)
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in shape_t):
        raise fail("shape", shape, "a sequence of non-negative ints")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise fail("start", start, "a non-negative int")
    n = math.prod(shape_t)
    if start + n > _MAX_END:
        raise fail("start + numel", start + n, f"at most 2**{ROW_BITS + 32} elements per field")
    if not dtype.is_floating_point:
        raise fail("dtype", dtype, "a floating-point dtype")
    if isinstance(seed, Tensor):
        if seed.dim() != 1 or seed.is_floating_point() or seed.dtype == torch.bool or seed.is_complex():
            raise fail("seed", f"{tuple(seed.shape)} {seed.dtype}", "an int or a (B,) integer tensor")
        seeds, batched, seed_int = seed.to(torch.int64), True, 0
        dev = torch.device(device) if device is not None else seed.device
    else:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 63:
            raise fail("seed", seed, "an int in [0, 2**63) or a (B,) integer tensor")
        seeds, batched, seed_int = torch.empty(1, dtype=torch.int64), False, seed
        dev = torch.device(device) if device is not None else torch.device("cpu")
    full = (seeds.shape[0], *shape_t) if batched else shape_t
    if out is None:
        out = torch.empty(full, dtype=dtype, device=dev)
    elif tuple(out.shape) != full or not out.dtype.is_floating_point or not out.is_contiguous():
        raise fail("out", f"{tuple(out.shape)} {out.dtype}", f"a contiguous float tensor of shape {full}")
    flat = out.view(seeds.shape[0], n)
    if flat.numel() == 0:
        return out
    if batched:
        keys = _clip_keys(seeds.to(flat.device), kind)
    else:
        keys = torch.tensor([_clip_key_int(seed_int, kind)], dtype=torch.int64, device=flat.device)
    if not (compiled and _compiled(kind, keys, start, flat)):
        _eager(kind, keys, start, flat)
    return out


def normal_field(
    seed: int | Tensor,
    shape: Sequence[int] | int,
    *,
    start: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    out: Tensor | None = None,
    compiled: bool = False,
) -> Tensor:
    """Standard normal noise that is a pure function of ``(seed, element index)``.

    Flat element ``p`` of the result (of one clip) is element ``start + p`` of the seed's field:
    ``normal_field(s, (n,), start=k)`` is ``normal_field(s, (N,)).flatten()[k : k + n]`` exactly,
    so a clip can be generated in chunks, and the values do not depend on the shape the field is
    viewed as, the batch, the thread count or the device (see the module docstring for the
    construction and the tolerances).

    Args:
        seed: An int in [0, 2**63) for one field of shape ``shape``, or a ``(B,)`` integer tensor
            of seeds for a ``(B, *shape)`` batch (one elementwise evaluation, no loop over clips).
        shape: The shape of one clip's field, e.g. ``(C, T, H, W)``.
        start: The index, in the seed's flattened field, of the first element.
        dtype: A floating-point dtype. The values are computed in float32 and cast.
        device: Where the field is made: default the seed tensor's device, else the CPU.
        out: A contiguous float tensor of the result's shape to write into (then returned).
        compiled: Evaluate with ``torch.compile`` (one fused kernel); if compiling fails (e.g. no
            C++ compiler) warn once and use the eager kernel, which gives the same values.

    Returns:
        ``shape`` (int seed) or ``(B, *shape)`` (tensor seed) standard normals.

    Examples:
        >>> z = normal_field(7, (2, 4, 8, 8))
        >>> tail = normal_field(7, (100,), start=412)
        >>> torch.equal(z.flatten()[412:], tail)
        True
        >>> batch = normal_field(torch.tensor([3, 7]), (2, 4, 8, 8))
        >>> torch.equal(batch[1], z)
        True
    """
    return _field(_NORMAL, seed, shape, start, dtype, device, out, compiled)


def uniform_field(
    seed: int | Tensor,
    shape: Sequence[int] | int,
    *,
    start: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    out: Tensor | None = None,
    compiled: bool = False,
) -> Tensor:
    """Uniform noise in the open interval (0, 1), a pure function of ``(seed, element index)``.

    The values are ``(m + 1/2) / 2**23`` for 23-bit integers ``m``, so ``log(u)`` and
    ``log(1 - u)`` are finite (speckle: Rayleigh and gamma draws). The field of a seed is unrelated
    to its ``normal_field``. Arguments, shapes and guarantees are those of
    ``normal_field``; eager and compiled values are bit-identical.

    Examples:
        >>> u = uniform_field(torch.tensor([5]), (3, 64))
        >>> bool(((u > 0) & (u < 1)).all()), torch.equal(u[0, 1:], uniform_field(5, (2, 64), start=64))
        (True, True)
    """
    return _field(_UNIFORM, seed, shape, start, dtype, device, out, compiled)
