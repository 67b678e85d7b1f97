"""The transforms of the catalogue beyond the paper's eight: each against an independent reference,
replayed, serialised, batch-independent and the same in both executors."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import vidaug3d as va
import vidaug3d.engine as ve
from tests._strategies import DTYPES, make_video, seeds

kornia = pytest.importorskip("kornia")


@given(seed=seeds, ks=st.sampled_from([(3, 3), (5, 7), (7, 3), (9, 9)]))
def test_gaussian_blur_is_kornias(seed: int, ks: tuple[int, int]) -> None:
    video = make_video((3, 2, 4, 12, 11), seed, torch.float64)
    out, p = va.GaussianBlur(ks, sigma=(0.2, 3.0), p=0.8)(video, seed=seed, return_params=True)
    for b in range(3):
        s = float(p.sigma[b])
        if s == 0:
            assert torch.equal(out[b], video[b])  # not blurred: exactly as it was
            continue
        ref = kornia.filters.gaussian_blur2d(video[b].transpose(0, 1), ks, (s, s), border_type="reflect")
        torch.testing.assert_close(out[b], ref.transpose(0, 1), atol=1e-12, rtol=0)


_CATALOGUE = {
    "GaussianBlur": lambda: va.GaussianBlur(5, sigma=(0.1, 2.0), p=0.7),
}


@pytest.mark.parametrize("name", sorted(_CATALOGUE))
@given(seed=seeds, dtype=st.sampled_from(DTYPES), threads=st.sampled_from([1, 2]))
def test_catalogue_replays_and_both_executors_agree(
    name: str, seed: int, dtype: torch.dtype, threads: int
) -> None:
    aug = va.Compose([va.RandomAffine(10), _CATALOGUE[name](), va.GaussianNoise(0.02)])
    video = make_video((4, 3, 3, 10, 12), seed, dtype)
    torch.set_num_threads(threads)
    try:
        out, rec = aug(video, seed=seed, return_params=True)
        ve._STREAM_CPU = False
        batched = aug(video, params=rec)
    finally:
        ve._STREAM_CPU = True
        torch.set_num_threads(1)
    assert torch.equal(out, batched) and out.dtype == dtype
    back = va.Record.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert torch.equal(aug(video, params=back), out)
    ids = torch.tensor([3, 1, 4, 1])
    full = aug(video, seed=seed, sample_ids=ids)
    assert torch.equal(aug(video[2:], seed=seed, sample_ids=ids[2:]), full[2:])


def test_catalogue_errors() -> None:
    with pytest.raises(va.VidaugError, match=r"^kernel_size: got 4, expected odd"):
        va.GaussianBlur(4)
    with pytest.raises(va.VidaugError, match=r"^kernel_size: got 0"):
        va.GaussianBlur(0)
    with pytest.raises(va.VidaugError, match=r"^sigma: got"):
        va.GaussianBlur(3, sigma=(2.0, 1.0))
