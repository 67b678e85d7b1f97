"""Shared test configuration: hypothesis profiles, devices, data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

# dev: quick and varied; ci: reproducible (derandomised), no deadline (the machine is shared and slow).
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REPO = Path(__file__).resolve().parents[1]
LUS_POCUS = REPO.parent / "shared" / "data" / "lus-pocus"

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    # Tests run under xdist on 2 cores: keep each worker to one intra-op thread.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _clip_pool_for_small_clips(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CPU executor runs clips serially when they are small (MIN_PARALLEL_WORK elements); the
    # tests' videos are small, and the tests that set two threads are there to exercise the pool.
    import vidaug3d._random

    monkeypatch.setattr(vidaug3d._random, "MIN_PARALLEL_WORK", 0)
