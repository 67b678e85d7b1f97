"""Plots of the study (matplotlib, the ``reference`` extra): Fig. 3-style label-fraction curves, Fig. 2-style
saliency overlays and pretraining curves.

All functions take the plain dictionaries that ``reference/study.py`` writes to ``results.json`` and return the
path of the PNG they wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reference import evaluate as E
from reference import saliency as S

COLORS = {"ssl_fe": "tab:blue", "ssl_ft": "tab:orange", "sup": "tab:green", "rand_fe": "tab:red"}
DASHES = {"byol": "-", "byol_notemporal": "--", "simclr": ":"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _val(x: Any) -> float:
    return float("nan") if x is None else float(x)


def label_fraction_curves(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Accuracy and AUC against the label fraction, one line per model (and SSL method), 95 % CI bands."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    keys = sorted({(r["tag"], r["model"]) for r in rows}, key=lambda k: (k[0] != "byol", k[0], k[1]))
    for ax, metric in zip(axes, ("accuracy", "auc"), strict=True):
        for tag, kind in keys:
            if tag != "byol" and not kind.startswith("ssl"):
                continue
            sel = sorted(
                (r for r in rows if (r["tag"], r["model"]) == (tag, kind)), key=lambda r: r["fraction"]
            )
            x = np.array([100 * r["fraction"] for r in sel])
            m = np.array([_val(r[metric]["mean"]) for r in sel])
            lo = np.array([_val(r[metric]["low"]) for r in sel])
            hi = np.array([_val(r[metric]["high"]) for r in sel])
            name = E.MODEL_NAMES[kind] + ("" if tag == "byol" or not kind.startswith("ssl") else f" ({tag})")
            ax.plot(x, m, DASHES.get(tag, "-"), marker="o", ms=4, color=COLORS[kind], label=name)
            if tag == "byol":
                ax.fill_between(x, lo, hi, color=COLORS[kind], alpha=0.12, linewidth=0)
        ax.set_xscale("log")
        ticks = sorted({100 * r["fraction"] for r in rows})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlabel("labelled training data (%)")
        ax.set_ylabel(metric.upper() if metric == "auc" else metric.capitalize())
        ax.axhline(0.5, color="0.7", lw=0.8, zorder=0)
        ax.set_ylim(0.0, 1.02)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def saliency_overlays(examples: dict[str, Any], path: Path, frame: int | None = None) -> Path:
    """Fig. 2-style grid: rows are phantom videos, columns the frame and each scorer's saliency overlay.

    Each overlay shows the saliency (heat map), the kept top-10 % pixels' boxes (red) and the ground-truth
    consolidation box (green).
    """
    plt = _plt()
    from matplotlib.patches import Rectangle

    names = [n for n in examples["maps"] if examples["maps"][n]]
    videos = examples["videos"]
    nrow, ncol = len(videos), 1 + len(names)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(1.9 * ncol, 2.0 * nrow), squeeze=False, constrained_layout=True
    )
    for i, video in enumerate(videos):
        t = video.shape[0] // 2 if frame is None else frame
        img = video[t]
        gt = examples["boxes"][i][t]
        axes[i, 0].imshow(img, cmap="gray", vmin=0, vmax=255)
        axes[i, 0].set_title("frame" if i == 0 else "", fontsize=8)
        for j, name in enumerate(names, start=1):
            sal = np.asarray(examples["maps"][name][i])[t]
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", vmin=0, vmax=255)
            ax.imshow(sal, cmap="jet", alpha=0.45)
            boxes, _ = S.regions(S.top_fraction_mask(sal, 0.1), sal)
            for x0, y0, x1, y1 in boxes:
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="red", lw=1.2))
            if i == 0:
                ax.set_title(name.replace("/", "\n"), fontsize=7)
        for j in range(ncol):
            for x0, y0, x1, y1 in gt:
                axes[i, j].add_patch(
                    Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1.2, ls="--")
                )
            axes[i, j].set_axis_off()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def training_curves(histories: dict[str, list[dict[str, float]]], path: Path) -> Path:
    """Pretraining loss (smoothed) and projection std per run; one panel per method."""
    plt = _plt()
    methods = sorted({k.split("/")[0] for k in histories})
    fig, axes = plt.subplots(
        2, len(methods), figsize=(4 * len(methods), 5.5), squeeze=False, constrained_layout=True
    )
    for j, method in enumerate(methods):
        for key, hist in histories.items():
            if key.split("/")[0] != method or not hist:
                continue
            steps = np.array([h["step"] for h in hist])
            for i, field in enumerate(("loss", "rep_std")):
                y = np.array([h[field] for h in hist])
                w = max(1, len(y) // 20)
                smooth = np.convolve(y, np.ones(w) / w, mode="valid")
                axes[i, j].plot(steps[w - 1 :], smooth, lw=1, label=key.split("/", 1)[1])
        axes[0, j].set_title(method, fontsize=9)
        axes[0, j].set_ylabel("loss")
        axes[1, j].set_ylabel("std of normalised representations")
        axes[1, j].set_xlabel("step")
        axes[0, j].legend(fontsize=7)
        for i in range(2):
            axes[i, j].grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_all(results: dict[str, Any], examples: dict[str, Any] | None, outdir: Path) -> list[Path]:
    """Every plot the study's results allow; returns the written paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    real = results.get("real")
    if real:
        written.append(
            label_fraction_curves(real["rows"], outdir / "label_fractions.png", real.get("source", ""))
        )
    hist: dict[str, list[dict[str, float]]] = {}
    for part in ("real", "phantom"):
        if results.get(part):
            hist.update(results[part].get("pretrain_history", {}))
    if hist:
        written.append(training_curves(hist, outdir / "pretraining.png"))
    if examples and examples.get("videos"):
        written.append(saliency_overlays(examples, outdir / "saliency.png"))
    return written
