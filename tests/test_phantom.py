"""Tests of the synthetic lung-ultrasound phantom: determinism, labels, boxes, and that brightness is no shortcut."""

from __future__ import annotations

import pytest
import torch

from vidaug3d import phantom as ph
from vidaug3d.errors import VidaugError


@pytest.fixture(scope="module")
def small() -> ph.PhantomData:
    return ph.make_dataset(24, num_frames=6, size=(48, 56), seed=3)


def test_shapes_dtypes_and_balance(small: ph.PhantomData) -> None:
    assert small.videos.shape == (24, 1, 6, 48, 56) and small.videos.dtype == torch.uint8
    assert small.labels.dtype == torch.int64 and int(small.labels.sum()) == 12
    assert len(small) == 24 and small.seeds.shape == (24,)
    for lab, b in zip(small.labels.tolist(), small.boxes, strict=True):
        assert b.shape == (6, lab, 4) and b.dtype == torch.float32
    assert int(ph.make_dataset(10, num_frames=2, size=16, consolidation_fraction=0.3).labels.sum()) == 3


def test_deterministic_and_seed_dependent() -> None:
    a = ph.make_dataset(5, num_frames=3, size=24, seed=1)
    b = ph.make_dataset(5, num_frames=3, size=24, seed=1, chunk_size=2)
    c = ph.make_dataset(5, num_frames=3, size=24, seed=2)
    assert torch.equal(a.videos, b.videos) and torch.equal(a.labels, b.labels)
    assert all(
        torch.equal(
            x,
            y,
        )
        for x, y in zip(a.boxes, b.boxes, strict=True)
        if x.numel()
    )
    assert not torch.equal(a.videos, c.videos)


def test_dataset_item_is_render_video(small: ph.PhantomData) -> None:
    for i in (0, 5, 17):
        one = ph.render_video(
            ph.video_seed(3, i), num_frames=6, size=(48, 56), consolidation=bool(small.labels[i])
        )
        assert torch.equal(one.video, small.videos[i]) and one.label == int(small.labels[i])
        assert torch.equal(one.boxes.nan_to_num(-1), small.boxes[i].nan_to_num(-1))


def test_boxes_are_valid_and_move(small: ph.PhantomData) -> None:
    moved = 0
    for lab, b in zip(small.labels.tolist(), small.boxes, strict=True):
        if not lab:
            continue
        assert torch.isfinite(b).all()
        x1, y1, x2, y2 = b[:, 0].unbind(-1)
        assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= 56).all() and (y2 <= 48).all()
        assert (x2 > x1).all() and (y2 > y1).all()
        moved += int((b[:, 0, 0].max() - b[:, 0, 0].min()) >= 1)  # sliding lung / probe motion
    assert moved >= 3
    boxes, counts = small.padded_boxes()
    assert boxes.shape == (24, 6, 1, 4) and counts.tolist() == small.labels.tolist()
    assert torch.isnan(boxes[small.labels == 0]).all()


def test_boxes_enclose_the_consolidation() -> None:
    """Rendering the same seed with and without consolidation changes pixels mostly inside the boxes."""
    for seed in range(4):
        pos = ph.render_video(seed, num_frames=4, size=64, consolidation=True)
        neg = ph.render_video(seed, num_frames=4, size=64, consolidation=False)
        inside = torch.zeros(4, 64, 64, dtype=torch.bool)
        for t in range(4):
            x1, y1, x2, y2 = pos.boxes[t, 0].long().tolist()
            inside[t, y1:y2, x1:x2] = True
        # compare after matching the global gain (the gain is set per video from its mean brightness)
        p, n = pos.video[0].float(), neg.video[0].float()
        n = n * (p[~inside].mean() / n[~inside].mean())
        diff = (p - n).abs()
        assert diff[inside].mean() > 4 * diff[~inside].mean()
        assert neg.boxes.shape == (4, 0, 4)


def test_fields_of_view_and_motion() -> None:
    lin = ph.render_video(0, num_frames=4, size=48, fov="linear").video
    sec = ph.render_video(0, num_frames=4, size=48, fov="sector").video
    assert (sec[0, :, -1, 0] == 0).all() and (sec[0, :, 0, 0] == 0).all()  # black corners outside the fan
    always_black = lambda v: (v[0] == 0).all(dim=0).float().mean()  # noqa: E731
    assert always_black(lin) < 0.05 < 0.1 < always_black(sec)
    assert not torch.equal(sec[0, 0], sec[0, 3])  # the video moves


def _fit_logistic(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=100)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y.float())
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def _cv_accuracy(x: torch.Tensor, y: torch.Tensor, folds: int = 5) -> float:
    """Cross-validated accuracy of a logistic regression on features x (N, F)."""
    n = x.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    correct = 0
    for k in range(folds):
        test = perm[k::folds]
        train = perm[torch.isin(perm, test, invert=True)]
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
        w, b = _fit_logistic((x[train] - mu) / sd, y[train])
        correct += int(((((x[test] - mu) / sd) @ w + b > 0).long() == y[test]).sum())
    return correct / n


def test_mean_brightness_does_not_separate_the_classes() -> None:
    data = ph.make_dataset(160, num_frames=4, size=48, seed=11)
    mean = data.videos.float().mean(dim=(1, 2, 3, 4)).unsqueeze(1)
    acc = _cv_accuracy(mean, data.labels)
    assert acc < 0.62, f"mean brightness alone classifies the phantom with accuracy {acc:.2f}"
    # the probe has power: a brightness shift of the positives is found at once
    shifted = mean + 40.0 * data.labels.unsqueeze(1)
    assert _cv_accuracy(shifted, data.labels) > 0.9


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        (dict(n_videos=-1), "n_videos"),
        (dict(n_videos=2, size=(4, 4)), "size"),
        (dict(n_videos=2, consolidation_fraction=1.5), "consolidation_fraction"),
        (dict(n_videos=2, fov="convex"), "fov"),
        (dict(n_videos=2, num_frames=0), "num_frames"),
    ],
)
def test_bad_arguments(kwargs: dict, arg: str) -> None:
    with pytest.raises(VidaugError, match=arg):
        ph.make_dataset(**kwargs)


def test_thread_setting_is_restored_and_does_not_change_videos() -> None:
    before = torch.get_num_threads()
    one = ph.make_dataset(3, num_frames=3, size=32, seed=4, num_threads=1)
    two = ph.make_dataset(3, num_frames=3, size=32, seed=4, num_threads=2, chunk_size=3)
    assert torch.get_num_threads() == before
    assert torch.equal(one.videos, two.videos)
    with pytest.raises(VidaugError, match="num_threads"):
        ph.make_dataset(1, num_threads=0)
