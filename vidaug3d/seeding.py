"""Reproducibility helpers for data pipelines."""

from __future__ import annotations

import random

import torch

from ._random import make_keys

__all__ = ["clip_generator", "clip_seed", "worker_init_fn"]


def clip_seed(seed: int, sample_id: int, epoch: int = 0, view: int = 0) -> int:
    """A 32-bit seed that is a pure function of ``(seed, sample_id, epoch, view)``.

    The same function keys ``vidaug3d.Compose`` parameters, so a dataset that seeds its own
    per-sample randomness (clip start, ...) with it stays independent of batch size, batch
    composition and worker count.

    Examples:
        >>> clip_seed(0, 5, epoch=1) == clip_seed(0, 5, epoch=1) != clip_seed(0, 5, epoch=2)
        True
    """
    return int(make_keys(1, seed=seed, sample_ids=[sample_id], epoch=epoch, view=view).keys[0])


def clip_generator(seed: int, sample_id: int, epoch: int = 0, view: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``clip_seed``."""
    g = torch.Generator()
    g.manual_seed(clip_seed(seed, sample_id, epoch, view))
    return g


def worker_init_fn(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=...)``: seed Python's and NumPy's RNGs in each worker.

    PyTorch already gives each worker its own torch seed (``base_seed + worker_id``); Python's
    ``random`` and NumPy are not reseeded by PyTorch and would repeat across workers. This derives
    both from the worker's torch seed. For results that do not depend on ``num_workers`` at all,
    draw per-sample randomness from ``clip_generator`` keyed by the sample index and epoch,
    not from any worker-level RNG.
    """
    s = torch.initial_seed() % (1 << 32)
    random.seed(s)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is optional
        return
    np.random.seed(s)  # noqa: NPY002 (the legacy global RNG is what user code in workers reads)
