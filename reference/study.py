"""The whole reproduction in one command: pretraining, the four downstream models, label fractions, saliency.

Usage::

    python reference/study.py --out runs/study                 # full study (real POCUS videos + phantom)
    python reference/study.py --quick --out runs/study-quick   # the whole chain in about a minute (CI)

What it does, in order:

1. **Real videos** (``--data``, default ``../shared/data/lus-pocus``; skipped with a message when absent, and
   in ``--quick`` mode): every video is decoded once with PyAV to grayscale, subsampled to about
   ``--fps`` frames per second, centre-cropped to a square and resized to ``--size`` pixels (cached in
   ``<out>/cache``). Downstream clips: ``--clips-per-video`` clips of ``--frames`` frames at evenly spaced
   starts. Patient-level stratified ``--folds``-fold cross-validation; in each fold the encoder is pretrained
   (BYOL; and the ablations: BYOL without temporal augmentations, SimCLR) on random clips of the fold's
   training videos only, then the four models (``reference/evaluate.py``) are trained on each label fraction
   of the training fold and tested on the held-out fold. Out-of-fold predictions are pooled over the folds.
2. **Phantom** (``vidaug3d.phantom``; has consolidation boxes): pretraining on unlabelled phantom videos plus
   the labelled training videos, the four models at 100 % labels, classification metrics and occlusion
   saliency IoU (``reference/saliency.py``) on the positive test videos.
3. Tables (``results.md``, ``results.json``) and plots (``plots/``) in ``--out``.

Pretraining uses the trainer's parts (``reference/model.py``, ``heads.py``, ``losses.py``, ``ema.py``) in an
in-memory loop over the fold's clips, so that each fold's pretraining provably sees no test patient.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if __package__ in (None, ""):  # run as a script: make ``reference`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference import evaluate as E
from reference import saliency as S
from reference.model import Darknet3D, count_parameters

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "lus-pocus"

# method tag -> (ssl method, temporal augmentations on)
METHODS = {"byol": ("byol", True), "byol_notemporal": ("byol", False), "simclr": ("simclr", True)}


@dataclass
class StudyConfig:
    """Settings of the study (defaults: the full run, sized for 2 shared CPU cores)."""

    out: str = "runs/study"
    data: str = str(DEFAULT_DATA)
    quick: bool = False
    real: bool = True  # the real-video part (when the data folder exists; --quick: on phantom stand-ins)
    phantom: bool = True
    # clips
    frames: int = 16
    size: int = 48
    fps: float = 15.0
    clips_per_video: int = 4
    # protocol
    folds: int = 3
    seeds: tuple[int, ...] = (0,)
    ablation_seeds: tuple[int, ...] = (0,)
    ablation_fractions: tuple[float, ...] = (1.0, 0.1)  # the ablations' SSL models at these fractions only
    fractions: tuple[float, ...] = E.FRACTIONS
    methods: tuple[str, ...] = ("byol", "byol_notemporal", "simclr")
    n_boot: int = 1000
    # pretraining
    width: float = 1.1
    pretrain_epochs: int = 5
    pretrain_clips_per_video: int = 2  # random clips drawn per video per epoch
    pretrain_batch: int = 16
    pretrain_lr: float = 3e-4
    proj_hidden: int = 1024
    proj_dim: int = 128
    momentum: float = 0.99
    temperature: float = 0.1
    # downstream
    train: E.TrainConfig = field(
        default_factory=lambda: E.TrainConfig(epochs=10, min_steps=30, max_steps=150)
    )
    # phantom (its own clip size and downstream budget: the saliency needs classifiers that work)
    phantom_size: int = 64
    phantom_train: E.TrainConfig = field(
        default_factory=lambda: E.TrainConfig(epochs=20, min_steps=50, max_steps=300)
    )
    phantom_labelled: int = 200
    phantom_unlabelled: int = 200
    phantom_test_fraction: float = 0.4
    phantom_pretrain_epochs: int = 8
    saliency_window: tuple[int, int, int] = (4, 16, 16)
    saliency_stride: tuple[int, int, int] = (4, 8, 8)
    saliency_videos: int = 20
    threads: int = 1  # per process: on a shared 2-core machine 2 threads ran 5x slower than 1
    parallel: bool = False  # run the real-video and phantom parts in two processes
    combine: list[str] | None = None  # pool the records of these results.json files instead of running
    seed: int = 0

    @classmethod
    def quick_config(cls, **kw: Any) -> StudyConfig:
        """A few-second-per-stage configuration that runs every stage (for CI)."""
        base = dict(
            quick=True,
            frames=8,
            size=32,
            folds=2,
            seeds=(0,),
            fractions=(1.0, 0.3, 0.1),
            ablation_fractions=(1.0, 0.1),
            methods=("byol", "byol_notemporal", "simclr"),
            n_boot=50,
            width=0.5,
            pretrain_epochs=1,
            pretrain_batch=8,
            proj_hidden=64,
            proj_dim=32,
            train=E.TrainConfig(epochs=1, min_steps=3, max_steps=3, batch_size=8),
            phantom_size=32,
            phantom_train=E.TrainConfig(epochs=1, min_steps=3, max_steps=3, batch_size=8),
            phantom_labelled=32,
            phantom_unlabelled=8,
            phantom_pretrain_epochs=1,
            saliency_window=(4, 8, 8),
            saliency_stride=(4, 8, 8),
            saliency_videos=3,
        )
        base.update(kw)
        return cls(**base)  # type: ignore[arg-type]


class Logger:
    """Prints with elapsed time and keeps the lines for the log file."""

    def __init__(self, path: Path) -> None:
        self.t0 = time.time()
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def __call__(self, msg: str) -> None:
        line = f"[{time.time() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        with self.path.open("a") as f:
            f.write(line + "\n")


# --------------------------------------------------------------------------------------- augmentation


def make_augment(temporal: bool) -> tuple[Callable[..., torch.Tensor], str]:
    """The paper's augmentation from ``vidaug3d`` (with or without the temporal ops) and its name."""
    import vidaug3d as va

    return va.presets.paper(temporal=temporal), f"vidaug3d.presets.paper(temporal={temporal})"


# ----------------------------------------------------------------------------------------------- data


def decode_video(path: Path, size: int, fps: float) -> torch.Tensor:
    """All frames of a video, grayscale, ~``fps`` frames/s, centre-cropped square, ``(T, size, size)`` uint8."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or fps)
        frames = [f.to_ndarray(format="gray") for f in container.decode(stream)]
    if not frames:
        raise ValueError(f"video: {path} has no frames")
    step = max(1, round(rate / fps))
    x = torch.from_numpy(np.stack(frames[::step])).float()  # (T, H, W)
    h, w = x.shape[1:]
    s = min(h, w)
    x = x[:, (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    x = F.interpolate(x[:, None], size=(size, size), mode="area")[:, 0]
    return x.round().clamp(0, 255).to(torch.uint8)


@dataclass
class VideoSet:
    """Decoded videos: ``frames[i]`` is ``(T_i, H, W)`` uint8."""

    frames: list[torch.Tensor]
    labels: np.ndarray
    groups: np.ndarray
    names: list[str]


def load_pocus(data_dir: Path, size: int, fps: float, cache: Path, log: Callable[[str], None]) -> VideoSet:
    """Decode (or load from cache) every video listed in ``labels.csv`` with its consolidation label."""
    cache_file = cache / f"pocus_{size}px_{fps:g}fps.pt"
    if cache_file.is_file():
        obj = torch.load(cache_file, weights_only=False)
        log(f"loaded {len(obj['frames'])} decoded videos from {cache_file}")
        return VideoSet(obj["frames"], np.asarray(obj["labels"]), np.asarray(obj["groups"]), obj["names"])
    rows = list(csv.DictReader((data_dir / "labels.csv").open()))
    frames, labels, groups, names = [], [], [], []
    t0 = time.time()
    for r in rows:
        frames.append(decode_video(data_dir / r["file"], size, fps))
        labels.append(int(r["consolidation"]))
        groups.append(int(r["patient_id"]))
        names.append(r["file"])
    log(f"decoded {len(frames)} videos in {time.time() - t0:.1f}s")
    cache.mkdir(parents=True, exist_ok=True)
    torch.save({"frames": frames, "labels": labels, "groups": groups, "names": names}, cache_file)
    return VideoSet(frames, np.asarray(labels), np.asarray(groups), names)


def take_clip(frames: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """``length`` frames from ``start``, looping a video shorter than the clip: ``(T, H, W)`` -> ``(1, L, H, W)``."""
    idx = (start + torch.arange(length)) % frames.shape[0]
    return frames[idx][None]


def fixed_clips(videos: VideoSet, length: int, per_video: int) -> E.ClipData:
    """``per_video`` clips per video at evenly spaced starts (the downstream clips)."""
    clips, owner = [], []
    for i, fr in enumerate(videos.frames):
        last = max(0, fr.shape[0] - length)
        for s in np.linspace(0, last, per_video).round().astype(int):
            clips.append(take_clip(fr, int(s), length))
            owner.append(i)
    return E.ClipData(torch.stack(clips), torch.tensor(owner), videos.labels, videos.groups, videos.names)


class ClipSampler:
    """Random clips of a list of videos for pretraining: ``sample(idx, g) -> (B, 1, L, H, W)`` uint8."""

    def __init__(self, frames: Sequence[torch.Tensor], length: int) -> None:
        self.frames = list(frames)
        self.length = length

    def __len__(self) -> int:
        return len(self.frames)

    def sample(self, idx: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        out = []
        for i in idx.tolist():
            fr = self.frames[i]
            last = max(0, fr.shape[0] - self.length)
            start = int(torch.randint(0, last + 1, (1,), generator=g))
            out.append(take_clip(fr, start, self.length))
        return torch.stack(out)


# ------------------------------------------------------------------------------------------ pretraining


def encoder_factory(cfg: StudyConfig) -> Callable[[], nn.Module]:
    """Builds the study's encoder: the reference 3D Darknet-53 at ``cfg.width``."""
    return lambda: Darknet3D(in_channels=1, width=cfg.width)


def pretrain(
    sampler: ClipSampler,
    method: str,
    temporal: bool,
    cfg: StudyConfig,
    *,
    epochs: int,
    seed: int,
    log: Callable[[str], None],
) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    """Self-supervised pretraining (BYOL or SimCLR) of a fresh encoder on ``sampler``'s videos.

    The networks and the loss are the trainer's (``reference/train_byol.py``: ``build_networks``, ``ssl_loss``,
    the target's EMA ``update``): BYOL is online encoder + projector + predictor with an EMA target
    (``cfg.momentum``) and the symmetric ``2 - 2 cos`` loss; SimCLR is encoder + projector with NT-Xent. Adam at
    ``cfg.pretrain_lr``, constant. Both views come from ``vidaug3d.TwoViews`` of the paper preset on the batch,
    with one seeded generator. Only the data loop is this module's: random clips of the given videos.

    Returns:
        The encoder's ``state_dict`` and the per-step log (loss, std of the normalised representations and
        projections: the trainer's collapse check).
    """
    import vidaug3d as va
    from reference.config import Config
    from reference.train_byol import build_networks, representation_std, ssl_loss

    if method not in ("byol", "simclr"):
        raise ValueError(f"method: expected 'byol' or 'simclr', got {method!r}")
    aug, _ = make_augment(temporal)
    views = va.TwoViews(aug)
    tcfg = Config(
        method=method,
        width=cfg.width,
        proj_hidden=cfg.proj_hidden,
        proj_dim=cfg.proj_dim,
        temperature=cfg.temperature,
        momentum=cfg.momentum,
        lr=cfg.pretrain_lr,
        no_temporal=not temporal,
    )
    torch.manual_seed(seed)
    online, target = build_networks(tcfg, in_channels=1)
    opt = torch.optim.Adam(online.parameters(), lr=cfg.pretrain_lr)
    g = torch.Generator().manual_seed(seed)
    n = len(sampler)
    per_epoch = max(1, (n * cfg.pretrain_clips_per_video) // cfg.pretrain_batch)
    history: list[dict[str, float]] = []
    online.train()
    if target is not None:
        target.train()  # batch statistics in the target, as in the trainer
    t0 = time.time()
    for epoch in range(epochs):
        for _ in range(per_epoch):
            idx = torch.randint(0, n, (cfg.pretrain_batch,), generator=g)
            v1, v2 = views(E.to_float(sampler.sample(idx, g)), generator=g)
            loss, rep, proj = ssl_loss(tcfg, online, target, v1, v2)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite pretraining loss at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if target is not None:
                target.update(online, cfg.momentum)
            history.append(
                {
                    "step": len(history),
                    "epoch": epoch,
                    "loss": float(loss.detach()),
                    "rep_std": representation_std(rep),
                    "proj_std": representation_std(proj),
                }
            )
        log(
            f"  {method}{'' if temporal else ' (no temporal)'} epoch {epoch + 1}/{epochs} "
            f"loss={np.mean([h['loss'] for h in history[-per_epoch:]]):.4f} "
            f"({(epoch + 1) * per_epoch * cfg.pretrain_batch / (time.time() - t0):.1f} clips/s)"
        )
    encoder = online.encoder
    return E.clone_state(encoder), history


# ---------------------------------------------------------------------------------------------- parts


def phantom_videoset(cfg: StudyConfig, n_patients: int) -> VideoSet:
    """A stand-in for the real videos (``--quick``): phantom videos, two per synthetic patient, one class each."""
    import vidaug3d.phantom as ph

    d = ph.make_dataset(2 * n_patients, num_frames=2 * cfg.frames, size=cfg.size, seed=cfg.seed + 3000)
    order = np.argsort(d.labels.numpy(), kind="stable")  # pair videos of the same class into a patient
    groups = np.empty(len(d), dtype=np.int64)
    groups[order] = np.arange(len(d)) // 2
    return VideoSet(
        [v[0] for v in d.videos], d.labels.numpy(), groups, [f"phantom-cv{i}" for i in range(len(d))]
    )


def run_cv(cfg: StudyConfig, videos: VideoSet, source: str, log: Logger) -> dict[str, Any]:
    """Cross-validated label-fraction study (pretraining per fold, the four models, the ablations)."""
    data = fixed_clips(videos, cfg.frames, cfg.clips_per_video)
    log(
        f"{source}: {data.num_videos} videos, {len(np.unique(data.groups))} patients, {int(data.labels.sum())} "
        f"positive; {data.clips.shape[0]} clips {tuple(data.clips.shape[1:])}"
    )
    folds = E.patient_folds(data.labels, data.groups, cfg.folds, seed=cfg.seed)
    aug_ft, aug_name = make_augment(temporal=False)
    records: list[dict[str, Any]] = []
    histories: dict[str, list[dict[str, float]]] = {}
    fold_info = []
    for k, (tr, te) in enumerate(folds):
        assert not set(data.groups[tr]) & set(data.groups[te])
        fold_info.append(
            {
                "fold": k,
                "train_videos": len(tr),
                "test_videos": len(te),
                "test_patients": len(set(data.groups[te])),
            }
        )
        log(f"fold {k + 1}/{cfg.folds}: {len(tr)} train videos, {len(te)} test videos")
        sampler = ClipSampler([videos.frames[i] for i in tr], cfg.frames)  # training fold only
        for tag in cfg.methods:
            method, temporal = METHODS[tag]
            t0 = time.time()
            state, hist = pretrain(
                sampler, method, temporal, cfg, epochs=cfg.pretrain_epochs, seed=cfg.seed + k, log=log
            )
            histories[f"{tag}/fold{k}"] = hist
            log(f"  pretrained {tag} in {time.time() - t0:.1f}s")
            main = tag == "byol"
            records += E.evaluate_fold(
                data,
                tr,
                te,
                encoder_factory(cfg),
                state,
                cfg.train,
                models=E.MODELS if main else ("ssl_fe", "ssl_ft"),
                fractions=cfg.fractions if main else cfg.ablation_fractions,
                seeds=cfg.seeds if main else cfg.ablation_seeds,
                augment=aug_ft,
                tag=tag,
                log=log,
            )
    rows = E.summarize(records, data, n_boot=cfg.n_boot, seed=cfg.seed)
    return {
        "rows": rows,
        "paired": paired_rows(records, data.labels, data.groups, n_boot=cfg.n_boot, seed=cfg.seed),
        "labels": data.labels.tolist(),
        "groups": data.groups.tolist(),
        "records": records,
        "pretrain_history": histories,
        "folds": fold_info,
        "augment_downstream": aug_name,
        "source": source,
        "n_videos": data.num_videos,
        "n_patients": len(np.unique(data.groups)),
        "n_positive": int(data.labels.sum()),
    }


def run_phantom(cfg: StudyConfig, out: Path, log: Logger) -> dict[str, Any]:
    """Phantom: pretraining, the four models at 100 % labels, and saliency IoU against the known boxes."""
    import vidaug3d.phantom as ph

    t0 = time.time()
    size = cfg.phantom_size
    lab = ph.make_dataset(cfg.phantom_labelled, num_frames=cfg.frames, size=size, seed=cfg.seed + 1000)
    unl = ph.make_dataset(cfg.phantom_unlabelled, num_frames=cfg.frames, size=size, seed=cfg.seed + 2000)
    log(
        f"phantom: rendered {cfg.phantom_labelled}+{cfg.phantom_unlabelled} videos in {time.time() - t0:.1f}s"
    )
    n = len(lab)
    labels = lab.labels.numpy()
    groups = np.arange(n)  # one phantom "patient" per video
    data = E.ClipData(lab.videos, torch.arange(n), labels, groups, [f"phantom{i}" for i in range(n)])
    from sklearn.model_selection import train_test_split

    tr, te = train_test_split(
        np.arange(n), test_size=cfg.phantom_test_fraction, stratify=labels, random_state=cfg.seed
    )
    tr, te = np.sort(tr), np.sort(te)
    # pretraining: unlabelled videos plus the labelled training videos, never the test videos
    pool = [v[0] for v in unl.videos] + [lab.videos[i, 0] for i in tr]
    state, hist = pretrain(
        ClipSampler(pool, cfg.frames),
        "byol",
        True,
        cfg,
        epochs=cfg.phantom_pretrain_epochs,
        seed=cfg.seed,
        log=log,
    )
    aug_ft, _ = make_augment(temporal=False)
    rows, models = [], {}
    for kind in E.MODELS:
        prob, model, _ = E.run_model(
            kind, data, tr, te, encoder_factory(cfg), state, cfg.phantom_train, seed=cfg.seed, augment=aug_ft
        )
        models[kind] = model
        ci = E.bootstrap_ci(labels[te], prob, groups[te], n_boot=cfg.n_boot, seed=cfg.seed)
        rows.append({"model": kind, **{m: {"mean": v[0], "low": v[1], "high": v[2]} for m, v in ci.items()}})
        log(f"  phantom {kind:8s} acc={ci['accuracy'][0]:.3f} auc={ci['auc'][0]:.3f}")
    # saliency on positive test videos
    pos = [int(i) for i in te if labels[i] == 1][: cfg.saliency_videos]
    sal_rows: dict[str, list[dict[str, float]]] = {}
    examples: dict[str, Any] = {"videos": [], "boxes": [], "maps": {}}
    t0 = time.time()
    scorers: dict[str, Callable[[torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {}
    for kind in E.MODELS:
        scorers[f"{kind}/logit"] = lambda v, m=models[kind]: S.logit_score(m)
    scorers["ssl/feature"] = lambda v: S.feature_distance_score(models["ssl_fe"].encoder, v)
    scorers["rand/feature"] = lambda v: S.feature_distance_score(models["rand_fe"].encoder, v)
    for name, make_score in scorers.items():
        sal_rows[name] = []
        examples["maps"][name] = []
        for j, i in enumerate(pos):
            video = E.to_float(lab.videos[i])
            sal = S.occlusion_saliency(
                make_score(video), video, cfg.saliency_window, cfg.saliency_stride, fill="mean", batch_size=64
            )
            gt = [[tuple(b.tolist()) for b in lab.boxes[i][t]] for t in range(cfg.frames)]
            sal_rows[name].append(S.clip_iou(sal, gt, fraction=0.1))
            if j < 3:
                examples["maps"][name].append(sal.numpy())
                if name == "ssl_fe/logit":
                    examples["videos"].append(lab.videos[i, 0].numpy())
                    examples["boxes"].append(gt)
    log(f"  saliency: {len(pos)} videos x {len(scorers)} scorers in {time.time() - t0:.1f}s")
    sal_summary = {}
    for name, rs in sal_rows.items():
        iou = [r["iou"] for r in rs]
        wiou = [r["wiou"] for r in rs]
        sal_summary[name] = {
            "iou": E.t_interval(iou),
            "wiou": E.t_interval(wiou),
            "n_videos": len(rs),
            "per_video_iou": iou,
            "per_video_wiou": wiou,
        }
        log(f"  saliency {name:14s} IoU={np.mean(iou):.3f} wIoU={np.mean(wiou):.3f}")
    return {
        "rows": rows,
        "saliency": sal_summary,
        "pretrain_history": {"byol/phantom": hist},
        "examples": examples,
        "n_train": len(tr),
        "n_test": len(te),
        "n_unlabelled": cfg.phantom_unlabelled,
    }


# --------------------------------------------------------------------------------------------- report

# (label, (tag, model) of a, (tag, model) of b): the comparisons of the paper's claims, paired on the same videos
PAIRS = (
    ("SSL Fine-Tuned - Fully-Supervised", ("byol", "ssl_ft"), ("byol", "sup")),
    ("SSL Feature Extractor - Random Feature Extractor", ("byol", "ssl_fe"), ("byol", "rand_fe")),
    ("SSL Fine-Tuned: BYOL - BYOL without temporal aug.", ("byol", "ssl_ft"), ("byol_notemporal", "ssl_ft")),
    ("SSL Fine-Tuned: BYOL - SimCLR", ("byol", "ssl_ft"), ("simclr", "ssl_ft")),
    (
        "SSL Feature Extractor: BYOL - BYOL without temporal aug.",
        ("byol", "ssl_fe"),
        ("byol_notemporal", "ssl_fe"),
    ),
    ("SSL Feature Extractor: BYOL - SimCLR", ("byol", "ssl_fe"), ("simclr", "ssl_fe")),
)


def paired_rows(
    records: Sequence[dict[str, Any]], labels: np.ndarray, groups: np.ndarray, *, n_boot: int, seed: int
) -> list[dict[str, Any]]:
    """AUC differences of ``PAIRS`` at every fraction both sides have, with paired patient-bootstrap CIs."""
    have = {(r["tag"], r["model"], r["fraction"]) for r in records}
    rows = []
    for name, a, b in PAIRS:
        for fraction in sorted({f for (_, _, f) in have}, reverse=True):
            if (*a, fraction) not in have or (*b, fraction) not in have:
                continue
            va_, pa = E.pooled_probs(records, *a, fraction)
            vb_, pb = E.pooled_probs(records, *b, fraction)
            assert np.array_equal(va_, vb_)
            d, lo, hi, p = E.paired_difference_ci(
                labels[va_], pa, pb, groups[va_], metric="auc", n_boot=n_boot, seed=seed
            )
            rows.append(
                {"comparison": name, "fraction": fraction, "auc_diff": d, "low": lo, "high": hi, "p": p}
            )
    return rows


def _fmt(cell: dict[str, float]) -> str:
    if cell is None or math.isnan(cell["mean"]):
        return "n/a"
    if math.isnan(cell["low"]):
        return f"{cell['mean']:.3f}"
    return f"{cell['mean']:.3f} [{cell['low']:.3f}, {cell['high']:.3f}]"


def tables_markdown(results: dict[str, Any]) -> str:
    """Markdown tables of the study's results (Table 3 shape, label-fraction table, saliency)."""
    lines: list[str] = []
    real = results.get("real")
    if real:
        lines += [
            f"### {real['source']}: four models, 100 % labels (Table 3 shape)",
            "",
            "| model | pretraining | accuracy | sensitivity | specificity | AUC |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in real["rows"]:
            if r["fraction"] == 1.0:
                lines.append(
                    f"| {E.MODEL_NAMES[r['model']]} | {r['tag'] if r['model'].startswith('ssl') else '-'} | "
                    + " | ".join(_fmt(r[m]) for m in E.METRICS)
                    + " |"
                )
        lines += ["", f"### {real['source']}: AUC and accuracy against label fraction (Fig. 3)", ""]
        fr = sorted({r["fraction"] for r in real["rows"]}, reverse=True)
        for metric in ("auc", "accuracy"):
            lines += [
                f"{metric}:",
                "",
                "| model | " + " | ".join(f"{f:.0%}" for f in fr) + " |",
                "| --- |" + " --- |" * len(fr),
            ]
            keys = sorted({(r["tag"], r["model"]) for r in real["rows"]})
            for tag, kind in keys:
                cells = {
                    r["fraction"]: r[metric] for r in real["rows"] if (r["tag"], r["model"]) == (tag, kind)
                }
                label = E.MODEL_NAMES[kind] + (f" ({tag})" if kind.startswith("ssl") else "")
                lines.append(f"| {label} | " + " | ".join(_fmt(cells.get(f)) for f in fr) + " |")
            lines.append("")
        if real.get("paired"):
            lines += [
                "Paired AUC differences (same videos, patient-level paired bootstrap; p = share of resamples <= 0):",
                "",
                "| comparison | labels | AUC difference [95 % CI] | p |",
                "| --- | --- | --- | --- |",
            ]
            for r in real["paired"]:
                lines.append(
                    f"| {r['comparison']} | {r['fraction']:.0%} | {r['auc_diff']:+.3f} [{r['low']:+.3f}, "
                    f"{r['high']:+.3f}] | {r['p']:.3f} |"
                )
            lines.append("")
    ph = results.get("phantom")
    if ph:
        lines += [
            "### Phantom: four models, 100 % labels",
            "",
            "| model | accuracy | sensitivity | specificity | AUC |",
            "| --- | --- | --- | --- | --- |",
        ]
        for r in ph["rows"]:
            lines.append(
                f"| {E.MODEL_NAMES[r['model']]} | " + " | ".join(_fmt(r[m]) for m in E.METRICS) + " |"
            )
        lines += [
            "",
            "### Phantom: occlusion saliency against the consolidation boxes (mean [95 % t-interval] over videos)",
            "",
            "| saliency of | score | IoU | weighted IoU | videos |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, s in ph["saliency"].items():
            kind, score = name.split("/")
            label = E.MODEL_NAMES.get(kind, {"ssl": "SSL encoder", "rand": "Random encoder"}.get(kind, kind))
            iou = {"mean": s["iou"][0], "low": s["iou"][1], "high": s["iou"][2]}
            wiou = {"mean": s["wiou"][0], "low": s["wiou"][1], "high": s["wiou"][2]}
            lines.append(f"| {label} | {score} | {_fmt(iou)} | {_fmt(wiou)} | {s['n_videos']} |")
        lines.append("")
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def _run_part(part: str, cfg: StudyConfig, log: Logger | None = None) -> tuple[dict[str, Any] | None, float]:
    """One part of the study (``"real"`` or ``"phantom"``); its own log file when run in a worker process."""
    out = Path(cfg.out)
    if log is None:
        log = Logger(out / f"study-{part}.log")
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
    t0 = time.time()
    res = None
    if part == "phantom":
        res = run_phantom(cfg, out, log)
    elif cfg.quick:  # the real-video chain on phantom videos, so that CI runs every stage without the data
        res = run_cv(cfg, phantom_videoset(cfg, 16), "phantom stand-in (--quick)", log)
    elif Path(cfg.data, "labels.csv").is_file():
        videos = load_pocus(Path(cfg.data), cfg.size, cfg.fps, out / "cache", log)
        res = run_cv(cfg, videos, "real POCUS videos", log)
    else:
        log(f"real videos: {cfg.data}/labels.csv not found, skipping the real-video part")
    return res, time.time() - t0


def _git_commit() -> str:
    """The repository's commit (with ``+dirty`` when tracked files differ), or ``unknown``."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=REPO, check=False).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def run_study(cfg: StudyConfig) -> dict[str, Any]:
    """Run every enabled part, write ``results.json``, ``results.md`` and ``plots/`` into ``cfg.out``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Logger(out / "study.log")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    t_start = time.time()
    log(f"config: {json.dumps(dataclasses.asdict(cfg), default=str)}")
    enc = encoder_factory(cfg)()
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "threads": torch.get_num_threads(),
        "encoder_params": count_parameters(enc),
        "encoder_out_dim": int(enc.out_dim),
        "git_commit": _git_commit(),
    }
    log(f"environment: {env}")
    results: dict[str, Any] = {"config": dataclasses.asdict(cfg), "env": env, "wall_s": {}}
    parts = [p for p in ("real", "phantom") if getattr(cfg, p)]
    if cfg.parallel and len(parts) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        log(f"running the parts {parts} in {len(parts)} processes (logs: study-<part>.log)")
        with ProcessPoolExecutor(len(parts), mp_context=mp.get_context("spawn")) as pool:
            futures = {p: pool.submit(_run_part, p, cfg) for p in parts}
            outcomes = {p: f.result() for p, f in futures.items()}
    else:
        outcomes = {p: _run_part(p, cfg, log) for p in parts}
    for p, (res, wall) in outcomes.items():
        if res is not None:
            results[p] = res
        results["wall_s"][p] = wall
    results["wall_s"]["total"] = time.time() - t_start
    examples = results.get("phantom", {}).pop("examples", None)
    md = tables_markdown(results)
    (out / "results.md").write_text(md + f"\nTotal wall time: {results['wall_s']['total']:.0f} s\n")
    (out / "results.json").write_text(json.dumps(_jsonable(results), indent=1))
    try:
        from reference import plots

        written = plots.write_all(results, examples, out / "plots")
        log(f"plots: {', '.join(str(p) for p in written)}")
    except ImportError as exc:  # matplotlib is an optional extra
        log(f"plots skipped: {exc}")
    log(f"done in {results['wall_s']['total']:.1f}s; tables in {out / 'results.md'}")
    print(md)
    return results


def combine_results(
    paths: Sequence[str], out: str, data: str, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Pool the real-video records of several study runs (e.g. different seeds) and redo the tables and plots.

    Records of the same (method, model, fraction, seed) must not appear twice. Labels and patients come from the
    first run's ``results.json`` or, for runs that did not store them, from ``<data>/labels.csv`` (the order the
    study reads it in).
    """
    from types import SimpleNamespace

    runs = [json.loads(Path(p).read_text()) for p in paths]
    records: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for path, run in zip(paths, runs, strict=True):
        if not run.get("real"):
            raise SystemExit(f"--combine: {path} has no real-video part")
        for r in run["real"]["records"]:
            key = (r["tag"], r["model"], r["fraction"], r["seed"], tuple(r["videos"]))
            if key in seen:
                raise SystemExit(f"--combine: {path} repeats records of {key[:4]} (same seed twice?)")
            seen.add(key)
            records.append(r)
    first = runs[0]["real"]
    if "labels" in first:
        labels, groups = np.asarray(first["labels"]), np.asarray(first["groups"])
    else:
        rows = list(csv.DictReader((Path(data) / "labels.csv").open()))
        labels = np.array([int(r["consolidation"]) for r in rows])
        groups = np.array([int(r["patient_id"]) for r in rows])
    stub = SimpleNamespace(labels=labels, groups=groups)
    real = {
        "rows": E.summarize(records, stub, n_boot=n_boot, seed=seed),  # type: ignore[arg-type]
        "paired": paired_rows(records, labels, groups, n_boot=n_boot, seed=seed),
        "records": records,
        "source": first.get("source", "real POCUS videos") + f" (combined from {len(paths)} runs)",
        "combined_from": list(paths),
    }
    results = {"real": real}
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    md = tables_markdown(results)
    (outdir / "results.md").write_text(md + "\n")
    (outdir / "results.json").write_text(json.dumps(_jsonable(results), indent=1))
    try:
        from reference import plots

        plots.write_all(results, None, outdir / "plots")
    except ImportError as exc:
        print(f"plots skipped: {exc}")
    print(md)
    return results


def parse_args(argv: Sequence[str] | None = None) -> StudyConfig:
    """Command-line flags of the study."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="output folder (default runs/study or runs/study-quick)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="folder with labels.csv and the videos")
    p.add_argument(
        "--quick", action="store_true", help="tiny settings on phantom videos only, about a minute"
    )
    p.add_argument("--no-real", action="store_true", help="skip the real-video part")
    p.add_argument("--no-phantom", action="store_true", help="skip the phantom part")
    p.add_argument("--folds", type=int, default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds of the BYOL downstream repeats")
    p.add_argument("--methods", nargs="+", default=None, choices=sorted(METHODS))
    p.add_argument("--pretrain-epochs", type=int, default=None)
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads per process (default 1)")
    p.add_argument("--parallel", action="store_true", help="run the real and phantom parts in two processes")
    p.add_argument(
        "--combine",
        nargs="+",
        default=None,
        metavar="RESULTS_JSON",
        help="instead of running: pool the real-video records of these results.json files into --out",
    )
    a = p.parse_args(argv)
    kw: dict[str, Any] = {"data": a.data}
    for name in ("folds", "pretrain_epochs", "size", "frames", "threads"):
        if getattr(a, name) is not None:
            kw[name] = getattr(a, name)
    if a.seeds is not None:
        kw["seeds"] = tuple(a.seeds)
    if a.methods is not None:
        if "byol" not in a.methods:
            raise SystemExit("--methods: expected a list that includes 'byol' (the main method)")
        kw["methods"] = tuple(a.methods)
    cfg = StudyConfig.quick_config(**kw) if a.quick else StudyConfig(**kw)
    cfg.out = a.out or ("runs/study-quick" if a.quick else "runs/study")
    if a.no_real:
        cfg.real = False
    if a.no_phantom:
        cfg.phantom = False
    cfg.parallel = a.parallel
    cfg.combine = a.combine
    for name in ("folds", "size", "frames", "pretrain_epochs"):
        if getattr(cfg, name) < (2 if name == "folds" else 1):
            raise SystemExit(f"--{name.replace('_', '-')}: got {getattr(cfg, name)}, expected a larger value")
    return cfg


def main(argv: Sequence[str] | None = None) -> None:
    from reference.train_byol import keep_freed_heap_memory

    cfg = parse_args(argv)
    keep_freed_heap_memory()  # the trainer's allocator setting: no page-fault storm on every step
    if cfg.combine:
        combine_results(cfg.combine, cfg.out, cfg.data, n_boot=cfg.n_boot, seed=cfg.seed)
    else:
        run_study(cfg)


if __name__ == "__main__":
    main()
