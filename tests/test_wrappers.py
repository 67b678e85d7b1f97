"""RandomApply and RandomChoice: per-clip decisions, recorded, fused with their neighbours."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import vidaug3d as va
from tests._strategies import DTYPES, both_executors, make_video, seeds


def test_random_apply_gates_each_clip_and_off_clips_are_untouched() -> None:
    video = torch.rand(400, 1, 2, 6, 6)
    inner = va.ColorJitter(0.5, 0.5)
    aug = va.Compose([va.RandomApply([inner], p=0.3)])
    out, rec = aug(video, seed=0, return_params=True)
    on = rec[0].on
    assert abs(float(on.double().mean()) - 0.3) < 0.07
    assert torch.equal(out[~on], video[~on])  # exactly as they were
    # the clips that are on got the inner transform with the inner record: compare with it alone
    alone = inner(video[on], params=rec[0].inner.select(on))
    assert torch.equal(out[on], alone)


def test_random_choice_takes_exactly_one_branch_with_its_probability() -> None:
    video = torch.rand(600, 1, 3, 5, 5)
    aug = va.Compose(
        [
            va.RandomChoice(
                [va.TemporalReverse(p=1.0), va.RandomHorizontalFlip(p=1.0), va.GaussianNoise(0.1)],
                p=[1, 2, 1],
            )
        ]
    )
    out, rec = aug(video, seed=1, return_params=True)
    ons = torch.stack([rec[i].on for i in range(3)], 1)
    assert bool((ons.sum(1) == 1).all())
    torch.testing.assert_close(
        ons.double().mean(0), torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64), atol=0.06, rtol=0
    )
    rev, flip = ons[:, 0], ons[:, 1]
    assert torch.equal(out[rev], video[rev].flip(2)) and torch.equal(out[flip], video[flip].flip(-1))


def test_a_choice_between_kinds_fuses_with_its_neighbours() -> None:
    aug = va.Compose(
        [
            va.RandomAffine(5),
            va.RandomChoice([va.RandomHorizontalFlip(p=1.0), va.ColorJitter(0.4)]),
            va.GaussianNoise(0.02),
        ]
    )
    kinds = [type(s).__name__ for s in aug.stages]
    # affine + gated flip: one resample; gated colour + noise: one value pass
    assert kinds == ["GeometricStage", "ValueStage"] and [len(s.transforms) for s in aug.stages] == [2, 2]


_PIPES = [
    lambda: va.Compose(
        [va.RandomApply([va.RandomAffine(15), va.ColorJitter(0.3, 0.3)], p=0.5), va.RandomHorizontalFlip()]
    ),
    lambda: va.Compose(
        [
            va.RandomChoice([va.TemporalReverse(p=1.0), va.FrameReplace(p=1.0), va.RandomErasing(p=1.0)]),
            va.GaussianNoise(0.05),
        ]
    ),
    lambda: va.Compose(
        [va.RandomApply([va.RandomChoice([va.RandomVerticalFlip(p=1.0), va.ColorJitter(0.5)])], p=0.7)]
    ),
]


@given(
    seed=seeds,
    dtype=st.sampled_from(DTYPES),
    which=st.integers(0, len(_PIPES) - 1),
    threads=st.sampled_from([1, 2]),
)
def test_wrappers_replay_serialise_and_both_executors_agree(
    seed: int, dtype: torch.dtype, which: int, threads: int
) -> None:
    aug = _PIPES[which]()
    video = make_video((4, 3, 5, 10, 9), seed, dtype)
    out, rec, batched = both_executors(aug, video, seed, threads)
    assert torch.equal(out, batched)
    back = va.Record.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back == rec and torch.equal(aug(video, params=back), out)
    ids = torch.tensor([5, 9, 2, 7])
    full = aug(video, seed=seed, sample_ids=ids)
    assert torch.equal(aug(video[1:3], seed=seed, sample_ids=ids[1:3]), full[1:3])


def test_gated_geometry_moves_targets_only_where_on() -> None:
    video = torch.rand(64, 1, 2, 16, 16)
    boxes = torch.tensor([[[2.0, 3.0, 6.0, 9.0]]]).expand(64, 1, 4)
    aug = va.Compose([va.RandomApply([va.RandomHorizontalFlip(p=1.0)], p=0.5)])
    out, moved, rec = aug(video, seed=0, targets={"boxes": boxes}, return_params=True)
    on = rec[0].on
    assert 10 < int(on.sum()) < 54
    assert torch.equal(moved["boxes"][~on], boxes[~on])
    assert torch.equal(
        moved["boxes"][on], torch.tensor([[[10.0, 3.0, 14.0, 9.0]]]).expand(int(on.sum()), 1, 4)
    )
    assert torch.equal(out[on], video[on].flip(-1)) and torch.equal(out[~on], video[~on])


def test_asymmetric_two_views() -> None:
    # BYOL's asymmetry: noise always on the first view, rarely on the second
    first = va.Compose([va.RandomApply([va.GaussianNoise(0.1)], p=1.0)])
    second = va.Compose([va.RandomApply([va.GaussianNoise(0.1)], p=0.1)])
    video = torch.full((300, 1, 2, 4, 4), 0.5)
    (v1, r1), (v2, r2) = va.TwoViews(first, second)(video, seed=0, return_params=True)
    assert bool(r1[0].on.all()) and 0.03 < float(r2[0].on.double().mean()) < 0.18
    assert torch.equal(v2[~r2[0].on], video[~r2[0].on]) and not torch.equal(v1, video)


def test_wrapper_errors() -> None:
    with pytest.raises(va.VidaugError, match=r"^p: got 1.5"):
        va.RandomApply([va.ColorJitter(0.1)], p=1.5)
    with pytest.raises(va.VidaugError, match=r"^p: got \[1, 2\], expected 3 non-negative weights"):
        va.RandomChoice([va.ColorJitter(0.1), va.GaussianNoise(), va.RandomErasing()], p=[1, 2])
    with pytest.raises(va.VidaugError, match=r"^transforms\[1\]: got 'int'"):
        va.RandomApply([va.ColorJitter(0.1), 3], p=0.5)  # type: ignore[list-item]
    with pytest.raises(
        va.VidaugError, match=r"^RandomApply: got .RandomResizedCrop, which changes the clip's shape"
    ):
        va.RandomApply([va.RandomResizedCrop(8)], p=0.5)(torch.rand(2, 1, 2, 16, 16), seed=0)
