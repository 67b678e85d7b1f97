"""Before/after pictures of every transform family, made by running the public transforms on the phantom.

    python docs/make_pictures.py            # writes docs/img/<family>*.png (the list is printed)

Everything comes from the project itself: the clips are frames of the synthetic phantom (``vidaug3d.phantom``),
the transforms are the public classes called as a user calls them, with fixed seeds and, where the picture's title
names a value, a range of one value. So the pictures are a pure function of the code. Temporal transforms are shown
as strips of frames titled with the input frame each output frame shows (from the call's record); geometric ones
as a frame with the phantom's consolidation box drawn, moved by the call's ``targets=``.

The reproduction figures in ``docs/img/reproduction-*.png`` come from the study (``reference/``), not from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle

import vidaug3d as va
from vidaug3d import ultrasound as U
from vidaug3d.phantom import render_video

OUT = Path(__file__).resolve().parent / "img"

Panel = tuple[str, torch.Tensor, "torch.Tensor | None"]  # title, (C, H, W) image in [0, 1], box (4,) or None


def _draw(ax: plt.Axes, title: str, img: torch.Tensor, box: torch.Tensor | None = None) -> None:
    img = img.detach().float()
    if img.shape[0] == 3:
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
    else:
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
    if box is not None and float(box[2] - box[0]) > 0 and float(box[3] - box[1]) > 0:
        x0, y0, x1, y1 = (float(v) for v in box)
        # pixel edges: imshow puts pixel (row, col) at [col - 0.5, col + 0.5]
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color="yellow", lw=1.5))
    ax.set_title(title, fontsize=8)


def _panels(panels: list[Panel], path: Path, cols: int, size: float = 2.4) -> None:
    """A grid of panels, ``cols`` to a row."""
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, (size + 0.6) * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, img, box) in zip(axes.flat, panels, strict=False):
        _draw(ax, title, img, box)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _strips(strips: list[tuple[Any, ...]], path: Path, size: float = 1.1) -> None:
    """One row per strip ``(label, clip, titles[, boxes])``: its label on the left, then its frames
    ``(C, T, H, W)`` titled by ``titles``, with a ``(T, 4)`` box drawn on each frame where given."""
    cols = max(s[1].shape[1] for s in strips)
    fig, axes = plt.subplots(
        len(strips), cols, figsize=(size * cols + 1.6, (size + 0.25) * len(strips)), squeeze=False
    )
    for r, (label, clip, titles, *boxes) in enumerate(strips):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < clip.shape[1]:
                _draw(ax, titles[c], clip[:, c], boxes[0][c] if boxes else None)
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _unit(video: torch.Tensor) -> torch.Tensor:
    """A phantom's ``(1, T, H, W)`` uint8 frames as a ``(1, 1, T, H, W)`` float clip in [0, 1]."""
    return video[None].float() / 255


def _tinted(seed: int, frames: int, size: int) -> torch.Tensor:
    """An RGB clip: the gray phantom tinted, so that the colour transforms have colour to work on."""
    gray = _unit(render_video(seed, num_frames=frames, size=(size, size), fov="linear").video)
    return torch.cat([gray * 1.0, gray * 0.75, gray * 0.45], dim=1)


def _frames(rec_map: torch.Tensor) -> list[str]:
    return [f"t={int(i)}" for i in rec_map]


# ------------------------------------------------------------------------------------------------ the families
def temporal() -> list[str]:
    clip = _unit(render_video(2, num_frames=12, size=(48, 48), fov="sector").video)
    T = clip.shape[2]
    strips = [("input", clip[0], [f"t={t}" for t in range(T)])]
    cases = [
        ("TemporalReverse(p=1)", va.TemporalReverse(p=1.0), clip, 0),
        ("TemporalShuffle(p=1,\nmax_frames=4), seed 3", va.TemporalShuffle(p=1.0, max_frames=4), clip, 3),
        ("FrameReplace(p=1,\nmax_frames=4), seed 2", va.FrameReplace(p=1.0, max_frames=4), clip, 2),
        ("UniformTemporal-\nSubsample(5)", va.UniformTemporalSubsample(5), clip, 0),
        ("RandomTemporalCrop(6),\nseed 3", va.RandomTemporalCrop(6), clip, 3),
        ("RandomTemporalCrop(6,\nspeed=(2, 2))", va.RandomTemporalCrop(6, speed=(2.0, 2.0)), clip, 0),
        ("RandomTemporalCrop(8,\nspeed=(0.5, 0.5))", va.RandomTemporalCrop(8, speed=(0.5, 0.5)), clip, 0),
        (
            "first 5 frames, then\nRandomTemporalCrop(8,\nshort='loop')",
            va.RandomTemporalCrop(8, short="loop"),
            clip[:, :, :5],
            0,
        ),
        (
            "first 5 frames, then\nRandomTemporalCrop(8,\nshort='pad')",
            va.RandomTemporalCrop(8, short="pad"),
            clip[:, :, :5],
            0,
        ),
    ]
    for label, t, x, seed in cases:
        out, p = t(x, seed=seed, return_params=True)
        strips.append((label, out[0], _frames(p.frame_map[0])))
    _strips(strips, OUT / "temporal.png")
    return ["temporal.png"]


def geometric() -> list[str]:
    ph = render_video(11, num_frames=4, size=(96, 96), consolidation=True, fov="sector")
    clip, boxes = _unit(ph.video), ph.boxes[None]  # boxes: (1, T, 1, 4), one per frame
    panels: list[Panel] = [("phantom frame 0 and its box", clip[0, :, 0], boxes[0, 0, 0])]
    cases = [
        ("RandomAffine(20, (0.1, 0.1),\n(0.8, 1.2)), seed 3", va.RandomAffine(20, (0.1, 0.1), (0.8, 1.2)), 3),
        ("RandomHorizontalFlip(p=1)", va.RandomHorizontalFlip(p=1.0), 0),
        ("RandomVerticalFlip(p=1)", va.RandomVerticalFlip(p=1.0), 0),
        ("RandomResizedCrop(64,\nscale=(0.3, 0.6)), seed 1", va.RandomResizedCrop(64, scale=(0.3, 0.6)), 1),
        ("Resize((48, 96))", va.Resize((48, 96)), 0),
        ("CenterCrop(56)", va.CenterCrop(56), 0),
    ]
    for label, t, seed in cases:
        out, moved = t(clip, seed=seed, targets={"boxes": boxes})
        h, w = out.shape[-2:]
        panels.append((f"{label}\n-> {h}x{w}", out[0, :, 0], moved["boxes"][0, 0, 0]))
    _panels(panels, OUT / "geometric.png", 4)
    # drift: one matrix per frame, the box followed frame by frame
    ph = render_video(11, num_frames=6, size=(96, 96), consolidation=True, fov="sector")
    clip, boxes = _unit(ph.video), ph.boxes[None]
    T = clip.shape[2]
    strips = [("input", clip[0], [f"t={t}" for t in range(T)], boxes[0, :, 0])]
    affine = va.RandomAffine(25, (0.15, 0.15), (0.8, 1.2), vary="drift")
    out, moved, rec = affine(clip, seed=2, targets={"boxes": boxes}, return_params=True)
    angles = torch.linspace(float(rec.angle[0, 0]), float(rec.angle[0, 1]), T).tolist()
    strips.append(
        (
            'RandomAffine(25, ...,\nvary="drift")',
            out[0],
            [f"{a:+.0f} deg" for a in angles],
            moved["boxes"][0, :, 0],
        )
    )
    crop = va.RandomResizedCrop(64, scale=(0.3, 0.5), vary="drift")
    out, moved, rec = crop(clip, seed=4, targets={"boxes": boxes}, return_params=True)
    start, end = rec.box[0, 0, :2].double(), rec.box[0, 1, :2].double()
    corners = [(start + (end - start) * (t / (T - 1))).tolist() for t in range(T)]
    titles = [f"x0,y0 {c[0]:.0f},{c[1]:.0f}" for c in corners]
    strips.append(
        ('RandomResizedCrop(64,\n(0.3, 0.5), vary="drift")', out[0], titles, moved["boxes"][0, :, 0])
    )
    _strips(strips, OUT / "geometric-drift.png", size=1.5)
    return ["geometric.png", "geometric-drift.png"]


def photometric() -> list[str]:
    rgb = _tinted(4, 6, 96)
    panels: list[Panel] = [("tinted phantom", rgb[0, :, 0], None)]
    cases = [
        ("ColorJitter(brightness=(1.4, 1.4),\ncontrast=(1.5, 1.5))", va.ColorJitter((1.4, 1.4), (1.5, 1.5))),
        ("ColorJitter(saturation=(2, 2))", va.ColorJitter(saturation=(2.0, 2.0))),
        ("ColorJitter(hue=(0.4, 0.4))", va.ColorJitter(hue=(0.4, 0.4))),
        ("RandomGrayscale(p=1)", va.RandomGrayscale(p=1.0)),
        ("RandomGamma(gamma=(0.5, 0.5))", va.RandomGamma(gamma=(0.5, 0.5))),
        ("RandomSolarize(0.4, p=1)", va.RandomSolarize(0.4, p=1.0)),
        ("RandomAutocontrast(p=1)", va.RandomAutocontrast(p=1.0)),
        ("RandomEqualize(p=1)", va.RandomEqualize(p=1.0)),
    ]
    for label, t in cases:
        panels.append((label, t(rgb, seed=0)[0, :, 0], None))
    _panels(panels, OUT / "photometric.png", 3, size=2.6)
    # vary: one set of factors per clip, or one per frame (flicker)
    strips = [("input", rgb[0], [f"t={t}" for t in range(rgb.shape[2])])]
    for vary in ("clip", "frame"):
        t = va.ColorJitter(brightness=0.6, contrast=0.6, hue=0.2, vary=vary)
        out, p = t(rgb, seed=5, return_params=True)
        b = p.brightness[0].reshape(-1).tolist()
        titles = [f"b={b[min(i, len(b) - 1)]:.2f}" for i in range(rgb.shape[2])]
        strips.append((f'ColorJitter(0.6, 0.6,\nhue=0.2, vary="{vary}")', out[0], titles))
    _strips(strips, OUT / "photometric-vary.png", size=1.4)
    return ["photometric.png", "photometric-vary.png"]


def filtering() -> list[str]:
    clip = _unit(render_video(6, num_frames=4, size=(96, 96), fov="linear").video)
    panels: list[Panel] = [("phantom frame", clip[0, :, 0], None)]
    cases = [
        ("GaussianBlur(9, sigma=(2, 2))", va.GaussianBlur(9, sigma=(2.0, 2.0)), 0),
        ("RandomAdjustSharpness(4, p=1)", va.RandomAdjustSharpness(4.0, p=1.0), 0),
        ("GaussianNoise(0.1)", va.GaussianNoise(0.1), 0),
        ("RandomErasing(p=1,\nscale=(0.05, 0.15)), seed 2", va.RandomErasing(p=1.0, scale=(0.05, 0.15)), 2),
    ]
    for label, t, seed in cases:
        panels.append((label, t(clip, seed=seed)[0, :, 0], None))
    _panels(panels, OUT / "filtering.png", 5)
    return ["filtering.png"]


def ultrasound() -> list[str]:
    clip = _unit(render_video(3, num_frames=8, size=(128, 128), fov="sector").video)
    mask, _ = U.estimate_fov(clip)
    panels: list[Panel] = [
        ("phantom frame", clip[0, :, 0], None),
        ('field of view (probe="estimate")', mask[0, :, 0].float(), None),
    ]
    cases = [
        (
            "DepthAttenuation(mu=(2, 2),\nfloor=(0.2, 0.2))",
            va.DepthAttenuation(mu=(2.0, 2.0), floor=(0.2, 0.2)),
        ),
        ("TimeGainCompensation(\ngain=(0.5, 1.6)), seed 0", va.TimeGainCompensation(gain=(0.5, 1.6))),
        (
            "AcousticShadow((0.6, 0.6), (0.08, 0.08),\n(1, 1), (0.2, 0.2), p=1)",
            va.AcousticShadow((0.6, 0.6), (0.08, 0.08), (1.0, 1.0), (0.2, 0.2), p=1.0),
        ),
        ("SpeckleNoise(strength=(0.7, 0.7))", va.SpeckleNoise(strength=(0.7, 0.7))),
        ("GaussianNoise(0.15) with\nthe field of view", va.GaussianNoise(0.15)),
    ]
    for label, t in cases:
        panels.append((label, t(clip, seed=0, probe="estimate")[0, :, 0], None))
    panels.append(("GaussianNoise(0.15) without", va.GaussianNoise(0.15)(clip, seed=0)[0, :, 0], None))
    _panels(panels, OUT / "ultrasound.png", 4, size=2.7)
    # a shadow that wanders: vary="drift" moves its position from a start to an end drawn per clip
    t = va.AcousticShadow((0.5, 0.5), (0.06, 0.06), (1.0, 1.0), (0.2, 0.2), p=1.0, vary="drift", drift=0.3)
    out, p = t(clip, seed=7, probe="estimate", return_params=True)
    a, b = float(p.position[0]), float(p.position_end[0])
    T = clip.shape[2]
    titles = [f"u={a + (b - a) * i / (T - 1):.2f}" for i in range(T)]
    strips = [
        ("input", clip[0], [f"t={i}" for i in range(T)]),
        ('AcousticShadow(\nposition=(0.5, 0.5),\nvary="drift",\ndrift=0.3), seed 7', out[0], titles),
    ]
    _strips(strips, OUT / "ultrasound-drift.png", size=1.5)
    return ["ultrasound.png", "ultrasound-drift.png"]


def wrappers() -> list[str]:
    # four clips of one batch: each clip draws its own decision, recorded
    clip = _unit(render_video(8, num_frames=4, size=(64, 64), fov="linear").video).expand(4, -1, -1, -1, -1)
    strips = [("input (4 clips)", clip[:, :, 0].transpose(0, 1), ["clip 0", "clip 1", "clip 2", "clip 3"])]
    apply = va.RandomApply([va.GaussianBlur(7, sigma=(2.0, 2.0))], p=0.5)
    out, rec = va.Compose([apply])(clip, seed=1, return_params=True)
    on = rec[0].on.tolist()
    strips.append(
        (
            "RandomApply(\n[GaussianBlur(7, 2)],\np=0.5), seed 1",
            out[:, :, 0].transpose(0, 1),
            [f"blur {o}" for o in on],
        )
    )
    choice = va.RandomChoice(
        [va.RandomVerticalFlip(p=1.0), va.GaussianBlur(7, sigma=(2.0, 2.0)), va.RandomGamma((0.4, 0.4))]
    )
    out, rec = va.Compose([choice])(clip, seed=5, return_params=True)
    names = ["vflip", "blur", "gamma"]
    took = [names[[bool(r.on[b]) for r in rec].index(True)] for b in range(4)]
    strips.append(("RandomChoice([vflip,\nblur, gamma]), seed 5", out[:, :, 0].transpose(0, 1), took))
    _strips(strips, OUT / "wrappers.png", size=1.6)
    # the BYOL preset's two asymmetric views of the same two clips
    rgb = torch.cat([_tinted(s, 24, 96) for s in (4, 9)])
    (v1, r1), (v2, r2) = va.presets.byol_video(64, 8)(rgb, seed=0, return_params=True)
    panels: list[Panel] = []
    for b in range(2):
        panels.append((f"clip {b}, frame 0", rgb[b, :, 0], None))
        panels.append(
            (f"view 1 (blur p 1.0), frame 0\n(input frame {int(r1[0].frame_map[b, 0])})", v1[b, :, 0], None)
        )
        panels.append(
            (
                f"view 2 (blur p 0.1, solarize p 0.2)\n(input frame {int(r2[0].frame_map[b, 0])})",
                v2[b, :, 0],
                None,
            )
        )
    _panels(panels, OUT / "two-views.png", 3, size=2.6)
    return ["wrappers.png", "two-views.png"]


FAMILIES = [temporal, geometric, photometric, filtering, ultrasound, wrappers]


def main() -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # the pictures do not depend on it; one thread is kind to a shared machine
    return [OUT / name for family in FAMILIES for name in family()]


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path}")
