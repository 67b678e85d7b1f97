"""Occlusion saliency, regions, boxes and IoU of reference/saliency.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from reference import saliency as S


class MaskedSum(nn.Module):
    """Toy classifier whose logit is the sum of the pixels inside a fixed box of every frame."""

    def __init__(self, t: int, h: int, w: int, box: tuple[int, int, int, int]) -> None:
        super().__init__()
        m = torch.zeros(1, t, h, w)
        x0, y0, x1, y1 = box
        m[:, :, y0:y1, x0:x1] = 1.0
        self.register_buffer("m", m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.m).flatten(1).sum(1)


def test_box_iou_hand_computed() -> None:
    assert S.box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)  # overlap 1, union 4 + 4 - 1
    assert S.box_iou((0, 0, 4, 4), (0, 0, 4, 4)) == 1.0
    assert S.box_iou((0, 0, 2, 2), (2, 0, 4, 2)) == 0.0  # half-open: touching edges do not overlap
    assert S.box_iou((0, 0, 4, 2), (2, 0, 6, 2)) == pytest.approx(4 / 12)
    assert S.box_iou((1, 1, 1, 3), (1, 1, 1, 3)) == 0.0  # empty boxes


def test_frame_iou_and_weighted_iou_hand_computed() -> None:
    gt = [(0, 0, 4, 4)]
    pred = [(0, 0, 4, 4), (0, 0, 2, 2), (10, 10, 12, 12)]  # IoUs with gt: 1, 4/16, 0
    iou, wiou = S.frame_iou(pred, [0.5, 0.3, 0.2], gt)
    assert iou == 1.0
    assert wiou == pytest.approx(0.5 * 1 + 0.3 * 0.25 + 0.2 * 0)
    # with two ground-truth boxes each prediction takes its best match
    iou2, wiou2 = S.frame_iou([(10, 10, 12, 12)], [1.0], [(0, 0, 4, 4), (10, 10, 12, 14)])
    assert iou2 == pytest.approx(4 / 8) and wiou2 == pytest.approx(4 / 8)
    assert S.frame_iou([], [], gt) == (0.0, 0.0)
    with pytest.raises(ValueError, match="gt_boxes"):
        S.frame_iou(pred, [1, 0, 0], [])


def test_regions_boxes_and_weights() -> None:
    mask = np.zeros((8, 10), dtype=bool)
    mask[1:3, 1:4] = True  # region A: rows 1-2, cols 1-3
    mask[5, 6] = True
    mask[6, 7] = True  # region B: diagonal neighbours, one region under 8-connectivity
    sal = np.zeros((8, 10))
    sal[1:3, 1:4] = 1.0  # mass 6
    sal[5, 6] = 2.0
    sal[6, 7] = -5.0  # negative saliency counts as 0: mass 2
    boxes, w = S.regions(mask, sal)
    assert boxes == [(1, 1, 4, 3), (6, 5, 8, 7)]
    assert w == pytest.approx([6 / 8, 2 / 8])
    _, w_c = S.regions(mask)  # pixel-count weights
    assert w_c == pytest.approx([6 / 8, 2 / 8])
    assert S.regions(np.zeros((4, 4), dtype=bool)) == ([], [])


def test_top_fraction_mask_per_frame() -> None:
    s = torch.arange(2 * 10 * 10, dtype=torch.float32).reshape(2, 10, 10)
    s[1] = -s[1]  # second frame: the largest values are at the start
    m = S.top_fraction_mask(s, 0.1)
    assert m.shape == (2, 10, 10) and m.sum(axis=(1, 2)).tolist() == [10, 10]
    assert m[0].reshape(-1)[-10:].all() and m[1].reshape(-1)[:10].all()
    assert S.top_fraction_mask(np.ones((4, 4)), 0.1).all()  # ties at the threshold are kept
    with pytest.raises(ValueError, match="fraction"):
        S.top_fraction_mask(s, 0.0)


def test_occlusion_finds_the_region_a_toy_model_looks_at() -> None:
    t, h, w = 4, 32, 32
    box = (16, 8, 28, 20)  # x0, y0, x1, y1
    model = MaskedSum(t, h, w, box)
    video = torch.rand(1, t, h, w) * 0.5 + 0.5
    sal = S.occlusion_saliency(S.logit_score(model), video, window=(4, 4, 4), stride=(4, 4, 4), batch_size=16)
    assert sal.shape == (t, h, w)
    inside = torch.zeros(h, w, dtype=torch.bool)
    inside[8:20, 16:28] = True
    assert (sal[:, inside] > 0).all() and (sal[:, ~inside] == 0).all()
    res = S.clip_iou(sal, [[box]] * t, fraction=0.1)
    # the top 10 % (103 pixels) lie inside the 144-pixel box and form one region
    assert res["frames"] == t and res["iou"] > 0.5 and res["wiou"] == pytest.approx(res["iou"])
    # a box elsewhere scores 0
    assert S.clip_iou(sal, [[(0, 24, 8, 32)]] * t)["iou"] == 0.0


@pytest.mark.parametrize("fill", [0.0, "mean"])
def test_batched_equals_naive(fill: float | str) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv3d(1, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(3, 1)
    ).eval()
    video = torch.rand(1, 5, 12, 10)
    kw = {"window": (2, 4, 3), "stride": (2, 3, 3), "fill": fill}  # uneven sizes: the last windows move back
    fast = S.occlusion_saliency(S.logit_score(net), video, batch_size=7, **kw)
    slow = S.occlusion_saliency_naive(S.logit_score(net), video, **kw)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)


def test_batched_uses_few_forward_calls() -> None:
    calls = []

    def score(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape[0])
        return x.flatten(1).mean(1)

    S.occlusion_saliency(score, torch.rand(1, 8, 16, 16), window=(4, 4, 4), stride=(2, 2, 2), batch_size=100)
    n_windows = 3 * 7 * 7
    assert sum(calls[1:]) == n_windows and len(calls) == 1 + math.ceil(n_windows / 100)


def test_feature_distance_saliency_is_label_free_and_zero_where_nothing_changes() -> None:
    enc = MaskedSum(2, 8, 8, (0, 0, 4, 4))
    encoder = nn.Sequential(enc, nn.Unflatten(0, (-1, 1)))  # (B,) -> (B, 1) features
    video = torch.rand(1, 2, 8, 8) + 0.1
    sal = S.occlusion_saliency(
        S.feature_distance_score(encoder, video), video, window=(2, 4, 4), stride=(2, 4, 4)
    )
    assert (sal[:, :4, :4] > 0).all() and (sal[:, 4:, :].abs() < 1e-6).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="window"):
        S.occlusion_saliency(lambda x: x.sum((1, 2, 3, 4)), torch.rand(1, 2, 4, 4), window=(4, 2, 2))
    with pytest.raises(ValueError, match="video"):
        S.occlusion_saliency(lambda x: x.sum(), torch.rand(2, 4, 4))
    with pytest.raises(ValueError, match="gt_boxes"):
        S.clip_iou(torch.rand(3, 4, 4), [[(0, 0, 1, 1)]])
