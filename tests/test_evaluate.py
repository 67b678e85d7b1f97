"""Downstream evaluation helpers of reference/evaluate.py: metrics, CIs, splits, the four models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from reference import evaluate as E


class TinyEncoder(nn.Module):
    """A small 3D conv encoder with the interface of the reference Darknet3D."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU())
        self.out_dim = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(2, 3, 4))


def toy_data(n_patients: int = 16, seed: int = 0) -> E.ClipData:
    """Videos whose label is visible as a bright square; 1-2 videos per patient, 2 clips per video."""
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for p in range(n_patients):
        for _ in range(1 + p % 2):
            labels.append(p % 4 == 0 or p % 4 == 1)
            groups.append(100 + p)
    labels_a = np.array(labels, dtype=np.int64)
    clip_video = np.repeat(np.arange(len(labels)), 2)
    clips = rng.integers(0, 100, size=(len(clip_video), 1, 4, 8, 8)).astype(np.uint8)
    clips[labels_a[clip_video] == 1, :, :, 2:6, 2:6] = 250
    return E.ClipData(torch.from_numpy(clips), torch.from_numpy(clip_video), labels_a, np.array(groups))


def test_binary_metrics_hand_computed() -> None:
    m = E.binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    assert m == {"accuracy": 0.5, "sensitivity": 0.5, "specificity": 0.5, "auc": 0.75}
    m = E.binary_metrics(np.array([0, 0, 0, 1, 1]), np.array([0.2, 0.7, 0.1, 0.8, 0.5]))
    assert m["accuracy"] == pytest.approx(0.8) and m["sensitivity"] == 1.0
    assert m["specificity"] == pytest.approx(2 / 3) and m["auc"] == pytest.approx(5 / 6)
    one_class = E.binary_metrics(np.array([0, 0]), np.array([0.2, 0.7]))
    assert math.isnan(one_class["auc"]) and math.isnan(one_class["sensitivity"])


def test_bootstrap_ci_brackets_point_and_resamples_patients() -> None:
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 20)
    p = np.clip(y * 0.4 + rng.random(40) * 0.6, 0, 1)
    groups = np.arange(40)
    ci = E.bootstrap_ci(y, p, groups, n_boot=300, seed=1)
    for m in E.METRICS:
        point, lo, hi = ci[m]
        assert lo <= point <= hi
        assert point == pytest.approx(E.binary_metrics(y, p)[m])
    assert ci == E.bootstrap_ci(y, p, groups, n_boot=300, seed=1)  # seeded
    # patients hold whole videos: five identical videos per patient give exactly the one-video interval,
    # while treating the copies as independent patients would narrow it
    y5, p5, g5 = np.repeat(y, 5), np.repeat(p, 5), np.repeat(groups, 5)
    repeated = E.bootstrap_ci(y5, p5, g5, n_boot=300, seed=1)
    assert repeated.keys() == ci.keys()
    for m in ci:  # flat comparisons: pytest >= 9.2 refuses approx on nested structures
        assert repeated[m] == pytest.approx(ci[m])
    naive = E.bootstrap_ci(y5, p5, np.arange(200), n_boot=300, seed=1)
    assert naive["auc"][2] - naive["auc"][1] < ci["auc"][2] - ci["auc"][1]
    # a perfect classifier has a degenerate interval
    perfect = E.bootstrap_ci(y, y.astype(float), groups, n_boot=100)
    assert perfect["auc"] == (1.0, 1.0, 1.0) and perfect["accuracy"] == (1.0, 1.0, 1.0)
    # repeats: the point is the mean over repeats
    two = E.bootstrap_ci(y, np.stack([p, 1 - p]), groups, n_boot=50)
    assert two["auc"][0] == pytest.approx(
        0.5 * (E.binary_metrics(y, p)["auc"] + E.binary_metrics(y, 1 - p)["auc"])
    )


def test_t_interval_hand_computed() -> None:
    mean, lo, hi = E.t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    assert mean == 2.0 and lo == pytest.approx(2 - half) and hi == pytest.approx(2 + half)
    assert math.isnan(E.t_interval([0.5])[1])


def test_patient_folds_are_patient_level_and_cover_every_video() -> None:
    data = toy_data(20)
    folds = E.patient_folds(data.labels, data.groups, 4, seed=0)
    tested = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(tested), np.arange(data.num_videos))
    for tr, te in folds:
        assert not set(data.groups[tr]) & set(data.groups[te])
        assert data.labels[te].min() == 0 and data.labels[te].max() == 1  # stratified: both classes
    with pytest.raises(ValueError, match="n_folds"):
        E.patient_folds(data.labels, data.groups, 1)


def test_label_fraction_subsets_are_patient_level_stratified_and_nested() -> None:
    data = toy_data(40)
    train = np.arange(data.num_videos)
    _, plab = E.patient_labels(data.labels, data.groups)
    prev = None
    for frac in sorted(E.FRACTIONS, reverse=True):
        sub = E.label_fraction_subset(train, data.labels, data.groups, frac, seed=3)
        pats = set(data.groups[sub])
        # whole patients: every video of a chosen patient is in
        assert set(np.flatnonzero(np.isin(data.groups, list(pats)))) == set(sub.tolist())
        n_pos = sum(int(data.labels[data.groups == g].max()) for g in pats)
        assert n_pos == max(1, round(frac * int(plab.sum())))
        assert len(pats) - n_pos == max(1, round(frac * int((plab == 0).sum())))
        if prev is not None:
            assert set(sub.tolist()) <= prev
        prev = set(sub.tolist())
    assert not np.array_equal(
        E.label_fraction_subset(train, data.labels, data.groups, 0.3, seed=0),
        E.label_fraction_subset(train, data.labels, data.groups, 0.3, seed=1),
    )
    with pytest.raises(ValueError, match="fraction"):
        E.label_fraction_subset(train, data.labels, data.groups, 0.0, seed=0)


def test_linear_head_matches_sklearn_and_aggregation_is_clip_mean() -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(60, 5)) * [1, 10, 0.1, 1, 1] + [0, 5, 0, 0, 0]
    y = (feats[:, 0] + 0.1 * feats[:, 1] > 0.5).astype(int)
    head, clf = E.fit_linear_head(feats, y, c=1.0)
    mean, scale = feats.mean(0), feats.std(0) + 1e-8
    want = clf.predict_proba((feats - mean) / scale)[:, 1]
    got = torch.sigmoid(head(torch.as_tensor(feats, dtype=torch.float32))).squeeze(-1).detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    prob = E.aggregate_videos(
        np.array([0.2, 0.4, 1.0, 0.0, 0.5]), np.array([3, 3, 1, 1, 0]), np.array([0, 1, 3])
    )
    np.testing.assert_allclose(prob, [0.5, 0.5, 0.3])


def test_build_model_freezes_and_loads() -> None:
    pre = TinyEncoder()
    state = E.clone_state(pre)
    fe = E.build_model("ssl_fe", TinyEncoder, state, seed=1)
    assert not any(p.requires_grad for p in fe.encoder.parameters())
    torch.testing.assert_close(fe.encoder.state_dict(), pre.state_dict())
    ft = E.build_model("ssl_ft", TinyEncoder, state, seed=1)
    assert all(p.requires_grad for p in ft.parameters())
    sup = E.build_model("sup", TinyEncoder, None, seed=1)
    assert not torch.equal(sup.encoder.net[0].weight, pre.net[0].weight)
    with pytest.raises(ValueError, match="pretrained"):
        E.build_model("ssl_ft", TinyEncoder, None, seed=0)
    with pytest.raises(ValueError, match="kind"):
        E.build_model("nope", TinyEncoder, None, seed=0)


def test_training_learns_a_visible_label_and_frozen_encoder_stays_frozen() -> None:
    torch.manual_seed(0)
    data = toy_data(16)
    folds = E.patient_folds(data.labels, data.groups, 2, seed=0)
    tr, te = folds[0]
    cfg = E.TrainConfig(epochs=10, min_steps=30, max_steps=60, batch_size=8, lr=1e-2)
    prob, _, info = E.run_model("sup", data, tr, te, TinyEncoder, None, cfg, seed=0)
    assert info["losses"][-1] < info["losses"][0]
    assert E.binary_metrics(data.labels[te], prob)["auc"] > 0.9
    state = E.clone_state(TinyEncoder())
    prob_fe, fe, _ = E.run_model("ssl_fe", data, tr, te, TinyEncoder, state, cfg, seed=0)
    torch.testing.assert_close(fe.encoder.state_dict(), state)
    assert prob_fe.shape == (len(te),)


def test_evaluate_fold_and_summarize_pool_out_of_fold_predictions() -> None:
    data = toy_data(12)
    state = E.clone_state(TinyEncoder())
    cfg = E.TrainConfig(epochs=1, min_steps=2, max_steps=2, batch_size=4)
    records = []
    for tr, te in E.patient_folds(data.labels, data.groups, 2, seed=0):
        records += E.evaluate_fold(
            data, tr, te, TinyEncoder, state, cfg, fractions=(1.0, 0.5), seeds=(0, 1), tag="byol"
        )
    assert len(records) == 2 * 4 * 2 * 2
    rows = E.summarize(records, data, n_boot=20)
    assert len(rows) == 4 * 2
    for row in rows:
        assert row["n_videos"] == data.num_videos and row["n_seeds"] == 2
        for m in E.METRICS:
            assert len(row["per_seed"][m]) == 2
            assert row[m]["mean"] == pytest.approx(np.nanmean(row["per_seed"][m]))


@pytest.mark.parametrize("seed", range(5))
def test_fast_metrics_equal_sklearn_with_ties_and_duplicates(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 40))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    p = rng.integers(0, 5, n) / 4.0  # many ties, and values exactly at the threshold
    idx = rng.integers(0, n, n)  # a bootstrap-like resample with duplicates
    for yy, pp in ((y, p), (y[idx], p[idx])):
        want = E.binary_metrics(yy, pp)
        got = E.fast_metrics(yy, pp)
        for m in E.METRICS:
            assert got[m] == pytest.approx(want[m], nan_ok=True)


def test_paired_difference_ci() -> None:
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 30)
    good = np.clip(0.5 * y + 0.5 * rng.random(60), 0, 1)
    bad = rng.random(60)
    groups = np.arange(60) // 2
    d, lo, hi, p = E.paired_difference_ci(y, good, bad, groups, n_boot=300)
    assert d == pytest.approx(E.binary_metrics(y, good)["auc"] - E.binary_metrics(y, bad)["auc"])
    assert 0 < lo <= d <= hi and p < 0.05
    # a model against itself: zero difference, degenerate interval
    assert E.paired_difference_ci(y, good, good, groups, n_boot=50)[:3] == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="metric"):
        E.paired_difference_ci(y, good, bad, groups, metric="f1")
