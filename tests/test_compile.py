"""The pipeline works under torch.compile (parameter sampling and noise stay eager, the rest compiles)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import vidaug3d as va


@pytest.mark.slow
def test_compiled_pipeline_matches_eager() -> None:
    torch._dynamo.reset()
    aug = va.presets.paper()
    compiled = torch.compile(aug)
    video = torch.rand(2, 1, 8, 32, 32)
    for seed in (1, 2):  # the second call reuses the compiled graph
        torch.testing.assert_close(compiled(video, seed=seed), aug(video, seed=seed), atol=1e-5, rtol=0)
    out, rec = aug(video, seed=3, return_params=True)
    replay = torch.compile(lambda v: aug(v, params=rec))
    torch.testing.assert_close(replay(video), out, atol=1e-5, rtol=0)


def test_eager_functions_run_outside_the_graph() -> None:
    # is_compiling() is constant-folded to True where dynamo traces a function, False where it runs eagerly
    from vidaug3d._random import eager

    seen: list[bool] = []

    @eager
    def host(x: torch.Tensor) -> torch.Tensor:
        seen.append(torch.compiler.is_compiling())
        return x + 1

    torch._dynamo.reset()
    compiled = torch.compile(lambda x: host(x * 2) * 3, backend="eager")
    assert torch.equal(compiled(torch.ones(2)), torch.full((2,), 9.0))
    assert seen == [False]
    assert torch.equal(host(torch.ones(2)), torch.full((2,), 2.0))
    assert seen == [False, False]


def test_import_does_not_load_dynamo() -> None:
    # torch.compiler.disable imports torch._dynamo (seconds); vidaug3d's decorator defers it to compile time
    code = "import sys, torch, vidaug3d; vidaug3d.presets.paper()(torch.rand(2, 1, 4, 16, 16), seed=0); print('torch._dynamo' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "False", proc.stdout + proc.stderr
