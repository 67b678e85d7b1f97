"""Downstream evaluation of a video encoder, as in the paper's section 4 (Table 3, Fig. 3).

The four models of the paper, built around any encoder ``nn.Module`` that maps a clip batch
``(B, C, T, H, W)`` to features ``(B, D)`` and has an ``out_dim`` attribute:

- ``ssl_fe``  "SSL Feature Extractor": frozen pretrained encoder, linear head.
- ``ssl_ft``  "SSL Fine-Tuned": pretrained encoder and linear head trained together.
- ``sup``     "Fully-Supervised": same architecture, random initialisation, everything trained.
- ``rand_fe`` "Random Feature Extractor": frozen randomly initialised encoder, linear head.

Protocol (what the functions below implement; the study script wires them together):

- Splits are patient-level: :func:`patient_folds` is a stratified group k-fold over patients, so no patient
  has videos on both sides. Self-supervised pretraining for a fold sees only the training fold's videos.
- Label fractions (:func:`label_fraction_subset`) draw whole patients, stratified by the patient's label
  (positive if any of its videos is), at least one patient per class; for one seed the subsets are nested
  (5 % is inside 10 % is inside ... 100 %).
- Linear heads on frozen encoders are L2-regularised logistic regression (scikit-learn) on standardised
  clip features; no augmentation, since the features are computed once.
- Trained encoders (fine-tuned and supervised) use Adam, binary cross-entropy with a positive-class weight
  ``n_neg / n_pos`` and, when given, a ``vidaug3d`` augmentation applied to every training batch.
- A video's probability is the **mean of the sigmoid probabilities of its clips** (several clips spread
  over the video; see ``ClipData``).
- Metrics (:func:`binary_metrics`) come from scikit-learn at threshold 0.5: accuracy, sensitivity
  (recall of class 1), specificity (recall of class 0), ROC AUC.
- Confidence intervals (:func:`bootstrap_ci`) are 95 % percentile intervals of a **cluster bootstrap over
  patients** of the pooled out-of-fold predictions; with several seeds the metric of each resample is the
  mean over seeds, so the interval is the test-set sampling uncertainty of the seed-averaged figure.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from reference.data import to_float

METRICS = ("accuracy", "sensitivity", "specificity", "auc")
MODELS = ("ssl_fe", "ssl_ft", "sup", "rand_fe")
MODEL_NAMES = {
    "ssl_fe": "SSL Feature Extractor",
    "ssl_ft": "SSL Fine-Tuned",
    "sup": "Fully-Supervised",
    "rand_fe": "Random Feature Extractor",
}
FRACTIONS = (1.0, 0.5, 0.3, 0.2, 0.1, 0.05)


# --------------------------------------------------------------------------------------------- data


@dataclass
class ClipData:
    """Clips of a set of labelled videos, several clips per video.

    Attributes:
        clips: ``(N, C, T, H, W)`` uint8 (or float in [0, 1]) clips.
        clip_video: ``(N,)`` int64, the index (into ``labels``) of the video each clip comes from.
        labels: ``(V,)`` int, the binary label of each video.
        groups: ``(V,)`` patient id of each video (any hashable values, compared for equality).
        names: ``V`` video names, for the record.
    """

    clips: torch.Tensor
    clip_video: torch.Tensor
    labels: np.ndarray
    groups: np.ndarray
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.clips.ndim != 5:
            raise ValueError(f"clips: expected (N, C, T, H, W), got shape {tuple(self.clips.shape)}")
        if self.clip_video.shape != (self.clips.shape[0],):
            raise ValueError(
                f"clip_video: expected shape ({self.clips.shape[0]},), got {tuple(self.clip_video.shape)}"
            )
        self.labels = np.asarray(self.labels).astype(np.int64)
        self.groups = np.asarray(self.groups)
        if self.labels.shape != self.groups.shape:
            raise ValueError(f"groups: expected shape {self.labels.shape}, got {self.groups.shape}")

    @property
    def num_videos(self) -> int:
        return int(self.labels.shape[0])

    def clip_indices(self, videos: Sequence[int] | np.ndarray) -> np.ndarray:
        """Indices of the clips of the given videos, ``(M,)`` int64."""
        keep = np.isin(self.clip_video.numpy(), np.asarray(videos, dtype=np.int64))
        return np.flatnonzero(keep)


# ------------------------------------------------------------------------------------------ metrics


def binary_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, sensitivity, specificity and ROC AUC (scikit-learn) of binary predictions.

    Args:
        y_true: ``(V,)`` labels in {0, 1}.
        prob: ``(V,)`` predicted probability of class 1.
        threshold: class 1 is predicted where ``prob >= threshold``.

    Returns:
        ``{"accuracy", "sensitivity", "specificity", "auc"}``; a metric that is undefined for the given
        labels (sensitivity without positives, AUC with one class) is ``nan``.
    """
    from sklearn.metrics import accuracy_score, recall_score, roc_auc_score

    y_true = np.asarray(y_true).astype(np.int64)
    prob = np.asarray(prob, dtype=np.float64)
    pred = (prob >= threshold).astype(np.int64)
    has_pos, has_neg = bool((y_true == 1).any()), bool((y_true == 0).any())
    return {
        "accuracy": float(accuracy_score(y_true, pred)),
        "sensitivity": float(recall_score(y_true, pred, pos_label=1, zero_division=0))
        if has_pos
        else math.nan,
        "specificity": float(recall_score(y_true, pred, pos_label=0, zero_division=0))
        if has_neg
        else math.nan,
        "auc": float(roc_auc_score(y_true, prob)) if has_pos and has_neg else math.nan,
    }


def fast_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The same four metrics as :func:`binary_metrics` in plain numpy (for the bootstrap's many resamples).

    AUC is the Mann-Whitney statistic from average ranks (ties count one half), which is what scikit-learn's
    ``roc_auc_score`` computes; the tests check that both agree.
    """
    from scipy.stats import rankdata

    y = np.asarray(y_true).astype(bool)
    prob = np.asarray(prob, dtype=np.float64)
    pred = prob >= threshold
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    out = {"accuracy": float((pred == y).mean())}
    out["sensitivity"] = float((pred & y).sum() / n_pos) if n_pos else math.nan
    out["specificity"] = float((~pred & ~y).sum() / n_neg) if n_neg else math.nan
    if n_pos and n_neg:
        ranks = rankdata(prob)
        out["auc"] = float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    else:
        out["auc"] = math.nan
    return out


def bootstrap_ci(
    y_true: np.ndarray,
    probs: np.ndarray,
    groups: np.ndarray,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    threshold: float = 0.5,
) -> dict[str, tuple[float, float, float]]:
    """Point estimate and percentile CI of each metric by a cluster bootstrap over patients.

    Args:
        y_true: ``(V,)`` video labels.
        probs: ``(V,)`` or ``(R, V)`` probabilities; with ``R`` repeats (seeds) the metric is the mean of
            the ``R`` per-repeat metrics, in the point estimate and in every resample.
        groups: ``(V,)`` patient ids; resampling draws patients with replacement and keeps all their videos.
        n_boot: number of resamples.
        alpha: the interval is ``[alpha / 2, 1 - alpha / 2]``.
        seed: seed of the resampling.
        threshold: decision threshold of accuracy, sensitivity and specificity.

    Returns:
        ``{metric: (point, low, high)}``. Resamples where a metric is undefined (one class) are dropped
        for that metric. The point estimate uses scikit-learn; the resamples use :func:`fast_metrics`.
    """
    y_true = np.asarray(y_true).astype(np.int64)
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    if probs.shape[1] != y_true.shape[0]:
        raise ValueError(f"probs: expected (..., {y_true.shape[0]}), got {probs.shape}")
    groups = np.asarray(groups)

    def mean_metrics(idx: np.ndarray, fast: bool) -> dict[str, float]:
        f = fast_metrics if fast else binary_metrics
        per = [f(y_true[idx], p[idx], threshold) for p in probs]
        return {m: float(np.mean([d[m] for d in per])) for m in METRICS}

    point = mean_metrics(np.arange(y_true.shape[0]), fast=False)
    uniq, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(uniq))]
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), size=len(uniq))
        idx = np.concatenate([members[g] for g in pick])
        for m, v in mean_metrics(idx, fast=True).items():
            if not math.isnan(v):
                samples[m].append(v)
    out = {}
    for m in METRICS:
        s = np.asarray(samples[m])
        if s.size == 0:
            out[m] = (point[m], math.nan, math.nan)
        else:
            lo, hi = np.quantile(s, [alpha / 2, 1 - alpha / 2])
            out[m] = (point[m], float(lo), float(hi))
    return out


def paired_difference_ci(
    y_true: np.ndarray,
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    groups: np.ndarray,
    *,
    metric: str = "auc",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """Paired cluster bootstrap of ``metric(a) - metric(b)`` on the same videos.

    Both models' predictions are resampled with the same patients, so the interval reflects the difference
    itself rather than two overlapping marginal intervals.

    Args:
        y_true: ``(V,)`` labels.
        probs_a: ``(V,)`` or ``(R, V)`` probabilities of model a (metric averaged over repeats).
        probs_b: the same for model b.
        groups: ``(V,)`` patient ids.
        metric: one of ``METRICS``.
        n_boot: resamples.
        alpha: two-sided level.
        seed: resampling seed.

    Returns:
        ``(difference, low, high, p)`` where ``p`` is the share of resamples with a difference <= 0 (a one-sided
        bootstrap p-value for "a better than b").
    """
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")
    y_true = np.asarray(y_true).astype(np.int64)
    pa = np.atleast_2d(np.asarray(probs_a, dtype=np.float64))
    pb = np.atleast_2d(np.asarray(probs_b, dtype=np.float64))

    def diff(idx: np.ndarray, fast: bool) -> float:
        f = fast_metrics if fast else binary_metrics
        ma = np.mean([f(y_true[idx], p[idx])[metric] for p in pa])
        mb = np.mean([f(y_true[idx], p[idx])[metric] for p in pb])
        return float(ma - mb)

    point = diff(np.arange(y_true.size), fast=False)
    uniq, inverse = np.unique(np.asarray(groups), return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(uniq))]
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        idx = np.concatenate([members[g] for g in rng.integers(0, len(uniq), size=len(uniq))])
        d = diff(idx, fast=True)
        if not math.isnan(d):
            samples.append(d)
    s = np.asarray(samples)
    lo, hi = np.quantile(s, [alpha / 2, 1 - alpha / 2])
    return point, float(lo), float(hi), float((s <= 0).mean())


def t_interval(values: Sequence[float], alpha: float = 0.05) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of a few repeated measurements (e.g. folds or seeds)."""
    from scipy import stats

    v = np.asarray([x for x in values if not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if v.size == 1:
        return (mean, math.nan, math.nan)
    half = float(stats.t.ppf(1 - alpha / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return (mean, mean - half, mean + half)


# ------------------------------------------------------------------------------------------- splits


def patient_labels(labels: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique patients and each one's label (1 if any of its videos is positive)."""
    uniq, inverse = np.unique(np.asarray(groups), return_inverse=True)
    plab = np.zeros(len(uniq), dtype=np.int64)
    np.maximum.at(plab, inverse, np.asarray(labels).astype(np.int64))
    return uniq, plab


def patient_folds(
    labels: np.ndarray, groups: np.ndarray, n_folds: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified patient-level k-fold: ``[(train_videos, test_videos), ...]`` (sorted video indices).

    The library's :func:`vidaug3d.datasets.group_kfold` (stratified by the patient's label) as numpy arrays:
    every video is in exactly one test fold, and no patient is in a fold's train and test set.
    """
    from vidaug3d.datasets import group_kfold

    if n_folds < 2:
        raise ValueError(f"n_folds: expected >= 2, got {n_folds}")
    folds = group_kfold(np.asarray(groups).tolist(), n_folds, labels=np.asarray(labels).tolist(), seed=seed)
    return [(np.asarray(tr, dtype=np.int64), np.asarray(te, dtype=np.int64)) for tr, te in folds]


def label_fraction_subset(
    videos: np.ndarray, labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """The labelled subset of a training set: a stratified, patient-level fraction of its patients.

    Patients are ordered per class by a permutation drawn from ``seed``; the first
    ``max(1, round(fraction * n_class))`` of each class are kept with all their videos. For a fixed seed the
    subsets are therefore nested across fractions.

    Args:
        videos: ``(M,)`` indices of the training videos.
        labels: ``(V,)`` labels of all videos.
        groups: ``(V,)`` patient ids of all videos.
        fraction: in ``(0, 1]``.
        seed: seed of the patient order.

    Returns:
        Sorted ``(K,)`` video indices, a subset of ``videos``.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction: expected a value in (0, 1], got {fraction}")
    videos = np.asarray(videos, dtype=np.int64)
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    pats, plab = patient_labels(labels[videos], groups[videos])
    rng = np.random.default_rng(seed)
    keep_pats = []
    for c in (0, 1):
        members = pats[plab == c]
        if members.size == 0:
            continue
        order = members[rng.permutation(members.size)]
        k = max(1, round(fraction * members.size))
        keep_pats.append(order[:k])
    chosen = np.concatenate(keep_pats) if keep_pats else np.array([], dtype=groups.dtype)
    return np.sort(videos[np.isin(groups[videos], chosen)])


# ------------------------------------------------------------------------------------------- models


class Classifier(nn.Module):
    """Encoder plus a linear head giving one logit per clip.

    Args:
        encoder: maps ``(B, C, T, H, W)`` to ``(B, D)``; must have ``out_dim == D``.
        head: optional ``nn.Linear(D, 1)``; a fresh one by default.
    """

    def __init__(self, encoder: nn.Module, head: nn.Linear | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head if head is not None else nn.Linear(int(encoder.out_dim), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` float -> ``(B,)`` logits of class 1."""
        return self.head(self.encoder(x)).squeeze(-1)


@torch.no_grad()
def extract_features(encoder: nn.Module, clips: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    """Features of every clip with the encoder in eval mode: ``(N, C, T, H, W)`` -> ``(N, D)`` float64."""
    was_training = encoder.training
    encoder.eval()
    out = [
        encoder(to_float(clips[i : i + batch_size])).double() for i in range(0, clips.shape[0], batch_size)
    ]
    encoder.train(was_training)
    return torch.cat(out).numpy()


@torch.no_grad()
def predict_clips(model: nn.Module, clips: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    """Sigmoid probability of class 1 of every clip, ``(N,)``, model in eval mode."""
    was_training = model.training
    model.eval()
    out = [
        torch.sigmoid(model(to_float(clips[i : i + batch_size])))
        for i in range(0, clips.shape[0], batch_size)
    ]
    model.train(was_training)
    return torch.cat(out).double().numpy()


def aggregate_videos(clip_prob: np.ndarray, clip_video: np.ndarray, videos: np.ndarray) -> np.ndarray:
    """Video probability = mean of its clips' probabilities, in the order of ``videos``."""
    clip_video = np.asarray(clip_video)
    return np.array([clip_prob[clip_video == v].mean() for v in videos], dtype=np.float64)


@dataclass
class TrainConfig:
    """Hyper-parameters of the downstream training (defaults sized for 2 CPU cores)."""

    epochs: int = 15  # epochs over the labelled clips, bounded by min/max steps below
    min_steps: int = 40
    max_steps: int = 300
    batch_size: int = 8
    lr: float = 5e-4
    weight_decay: float = 1e-4
    linear_c: float = 0.1  # inverse L2 strength of the logistic-regression head on frozen features


def fit_linear_head(features: np.ndarray, y: np.ndarray, c: float = 0.1) -> tuple[nn.Linear, Any]:
    """Logistic regression on standardised features, returned as an equivalent ``nn.Linear(D, 1)``.

    Args:
        features: ``(N, D)`` clip features.
        y: ``(N,)`` clip labels.
        c: inverse regularisation strength (scikit-learn's ``C``); classes are balanced.

    Returns:
        The head (standardisation folded into its weights) and the fitted scikit-learn estimator.
    """
    from sklearn.linear_model import LogisticRegression

    mean = features.mean(0)
    scale = features.std(0) + 1e-8
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    clf.fit((features - mean) / scale, y)
    w = clf.coef_[0] / scale
    b = clf.intercept_[0] - float((clf.coef_[0] * mean / scale).sum())
    head = nn.Linear(features.shape[1], 1)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(w, dtype=torch.float32)[None])
        head.bias.fill_(float(b))
    return head, clf


def train_classifier(
    model: Classifier,
    clips: torch.Tensor,
    y: np.ndarray,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    augment: Callable[..., torch.Tensor] | None = None,
) -> list[float]:
    """Train encoder and head end to end with class-weighted BCE (fine-tuning or from scratch).

    Args:
        model: the classifier, trained in place.
        clips: ``(N, C, T, H, W)`` training clips (uint8 or float).
        y: ``(N,)`` clip labels (the label of the clip's video).
        cfg: steps, batch size, learning rate.
        seed: seeds batch order, augmentation and nothing else (the model is initialised by the caller).
        augment: optional ``vidaug3d`` transform called as ``augment(batch, generator=g)``.

    Returns:
        The loss of every step.
    """
    n = clips.shape[0]
    steps = int(min(cfg.max_steps, max(cfg.min_steps, cfg.epochs * math.ceil(n / cfg.batch_size))))
    y_t = torch.as_tensor(np.asarray(y), dtype=torch.float32)
    n_pos = float(y_t.sum())
    pos_weight = torch.tensor((n - n_pos) / max(n_pos, 1.0))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    opt = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    g = torch.Generator().manual_seed(seed)
    model.train()
    losses: list[float] = []
    order = torch.randperm(n, generator=g)
    pos = 0
    for _ in range(steps):
        if pos + cfg.batch_size > n:
            order = torch.randperm(n, generator=g)
            pos = 0
        idx = order[pos : pos + min(cfg.batch_size, n)]
        pos += cfg.batch_size
        x = to_float(clips[idx])
        if augment is not None:
            x = augment(x, generator=g)
        loss = loss_fn(model(x), y_t[idx])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite downstream loss at step {len(losses)}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def build_model(
    kind: str,
    encoder_factory: Callable[[], nn.Module],
    pretrained: dict[str, torch.Tensor] | None,
    *,
    seed: int,
) -> Classifier:
    """A fresh classifier of one of the four kinds (``MODELS``), its encoder seeded by ``seed``."""
    if kind not in MODELS:
        raise ValueError(f"kind: expected one of {MODELS}, got {kind!r}")
    torch.manual_seed(seed)
    encoder = encoder_factory()
    if kind in ("ssl_fe", "ssl_ft"):
        if pretrained is None:
            raise ValueError(f"pretrained: the {kind!r} model needs pretrained encoder weights")
        encoder.load_state_dict(pretrained)
    if kind in ("ssl_fe", "rand_fe"):
        for p in encoder.parameters():
            p.requires_grad_(False)
        encoder.eval()
    return Classifier(encoder)


def run_model(
    kind: str,
    data: ClipData,
    train_videos: np.ndarray,
    test_videos: np.ndarray,
    encoder_factory: Callable[[], nn.Module],
    pretrained: dict[str, torch.Tensor] | None,
    cfg: TrainConfig,
    *,
    seed: int,
    augment: Callable[..., torch.Tensor] | None = None,
    features: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, Classifier, dict[str, Any]]:
    """Train one downstream model on ``train_videos`` and predict ``test_videos``.

    Args:
        kind: one of ``MODELS``.
        data: all clips.
        train_videos: the labelled training videos (after the label-fraction subset).
        test_videos: the test videos.
        encoder_factory: builds a fresh encoder.
        pretrained: the pretrained encoder ``state_dict`` (for the SSL kinds).
        cfg: training hyper-parameters.
        seed: initialisation and batch-order seed.
        augment: augmentation of end-to-end training.
        features: optional cache ``{"ssl_fe" | "rand_fe": (N, D) features of all clips}`` so that frozen
            encoders are run once per fold, not once per label fraction.

    Returns:
        ``(test_prob (len(test_videos),), trained classifier, info)``.
    """
    model = build_model(kind, encoder_factory, pretrained, seed=seed)
    tr = data.clip_indices(train_videos)
    te = data.clip_indices(test_videos)
    y_clip = data.labels[data.clip_video.numpy()]
    info: dict[str, Any] = {"train_clips": int(tr.size), "train_videos": len(train_videos)}
    if kind in ("ssl_fe", "rand_fe"):
        feats = features.get(kind) if features is not None else None
        if feats is None:
            feats = extract_features(model.encoder, data.clips)
            if features is not None:
                features[kind] = feats
        head, _ = fit_linear_head(feats[tr], y_clip[tr], cfg.linear_c)
        model.head = head
        logits = feats[te] @ head.weight.detach().double().numpy()[0] + float(head.bias.detach())
        clip_prob = 1.0 / (1.0 + np.exp(-logits))
    else:
        info["losses"] = train_classifier(model, data.clips[tr], y_clip[tr], cfg, seed=seed, augment=augment)
        clip_prob = predict_clips(model, data.clips[te])
    prob = aggregate_videos(clip_prob, data.clip_video.numpy()[te], test_videos)
    return prob, model, info


def evaluate_fold(
    data: ClipData,
    train_videos: np.ndarray,
    test_videos: np.ndarray,
    encoder_factory: Callable[[], nn.Module],
    pretrained: dict[str, torch.Tensor] | None,
    cfg: TrainConfig,
    *,
    models: Sequence[str] = MODELS,
    fractions: Sequence[float] = FRACTIONS,
    seeds: Sequence[int] = (0,),
    augment: Callable[..., torch.Tensor] | None = None,
    tag: str = "",
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """All models x label fractions x seeds on one fold: records of test-video probabilities.

    The frozen encoders' features are computed once per fold (the random encoder with seed 0 of the fold).

    Returns:
        Records ``{"model", "fraction", "seed", "videos", "prob", "train_videos", "tag"}``.
    """
    records = []
    frozen_feats: dict[str, np.ndarray] = {}
    for kind in models:
        for seed in seeds:
            for fraction in fractions:
                sub = label_fraction_subset(train_videos, data.labels, data.groups, fraction, seed)
                # one frozen random encoder per fold: the encoder seed does not follow the subset seed
                prob, _, info = run_model(
                    kind,
                    data,
                    sub,
                    test_videos,
                    encoder_factory,
                    pretrained,
                    cfg,
                    seed=seed if kind in ("ssl_ft", "sup") else 0,
                    augment=augment,
                    features=frozen_feats,
                )
                records.append(
                    {
                        "tag": tag,
                        "model": kind,
                        "fraction": float(fraction),
                        "seed": int(seed),
                        "videos": np.asarray(test_videos).tolist(),
                        "prob": prob.tolist(),
                        "train_videos": len(sub),
                        "train_clips": info["train_clips"],
                    }
                )
                if log is not None:
                    y = data.labels[test_videos]
                    m = binary_metrics(y, prob)
                    log(
                        f"{tag} {kind:8s} frac={fraction:.2f} seed={seed} n_train={len(sub):3d} "
                        f"acc={m['accuracy']:.3f} auc={m['auc']:.3f}"
                    )
    return records


def summarize(
    records: Sequence[dict[str, Any]],
    data: ClipData,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Pool out-of-fold predictions per (tag, model, fraction) and attach bootstrap CIs.

    For each seed, the test folds' predictions are concatenated into one prediction per video (every video
    that some fold tested); metrics are averaged over seeds; CIs come from :func:`bootstrap_ci`.

    Returns:
        Rows ``{"tag", "model", "fraction", "n_videos", "n_seeds", metric: {"mean", "low", "high"},
        "per_seed": {metric: [...]}}``.
    """
    keys = sorted({(r["tag"], r["model"], r["fraction"]) for r in records}, key=lambda k: (k[0], k[1], -k[2]))
    rows = []
    for tag, kind, fraction in keys:
        recs = [r for r in records if (r["tag"], r["model"], r["fraction"]) == (tag, kind, fraction)]
        seeds = sorted({r["seed"] for r in recs})
        per_seed_prob = []
        videos = None
        for s in seeds:
            vid = np.concatenate([r["videos"] for r in recs if r["seed"] == s]).astype(np.int64)
            pr = np.concatenate([r["prob"] for r in recs if r["seed"] == s])
            order = np.argsort(vid)
            if videos is None:
                videos = vid[order]
            elif not np.array_equal(videos, vid[order]):
                raise ValueError(f"records: seed {s} of {tag}/{kind}/{fraction} covers other videos")
            per_seed_prob.append(pr[order])
        assert videos is not None
        probs = np.stack(per_seed_prob)
        y = data.labels[videos]
        ci = bootstrap_ci(y, probs, data.groups[videos], n_boot=n_boot, seed=seed)
        per_seed = [binary_metrics(y, p) for p in probs]
        row: dict[str, Any] = {
            "tag": tag,
            "model": kind,
            "fraction": fraction,
            "n_videos": int(videos.size),
            "n_patients": int(np.unique(data.groups[videos]).size),
            "n_seeds": len(seeds),
            "per_seed": {m: [d[m] for d in per_seed] for m in METRICS},
        }
        for m in METRICS:
            point, lo, hi = ci[m]
            row[m] = {"mean": point, "low": lo, "high": hi}
        rows.append(row)
    return rows


def pooled_probs(
    records: Sequence[dict[str, Any]], tag: str, kind: str, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions of one (tag, model, fraction): ``(videos (V,), probs (R, V))`` sorted by video."""
    recs = [r for r in records if (r["tag"], r["model"], r["fraction"]) == (tag, kind, fraction)]
    seeds = sorted({r["seed"] for r in recs})
    videos, probs = None, []
    for s in seeds:
        vid = np.concatenate([r["videos"] for r in recs if r["seed"] == s]).astype(np.int64)
        pr = np.concatenate([r["prob"] for r in recs if r["seed"] == s])
        order = np.argsort(vid)
        videos = vid[order]
        probs.append(pr[order])
    if videos is None:
        raise ValueError(f"records: none for {tag}/{kind}/{fraction}")
    return videos, np.stack(probs)


def clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached deep copy of a module's ``state_dict``."""
    return copy.deepcopy({k: v.detach().cpu() for k, v in module.state_dict().items()})
