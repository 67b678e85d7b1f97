"""Before/after pictures of the ultrasound and photometric kernels on a phantom frame.

    python docs/make_pictures.py            # writes docs/img/ultrasound.png and docs/img/photometric.png

Everything comes from the project itself (the phantom, the kernels); the parameters are fixed here, so the
pictures are a pure function of this script.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from vidaug3d import _photometric as P
from vidaug3d import ultrasound as U
from vidaug3d.phantom import render_video

OUT = Path(__file__).resolve().parent / "img"


def _show(panels: list[tuple[str, torch.Tensor]], path: Path, cols: int) -> None:
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.8 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, img) in zip(axes.flat, panels, strict=False):
        img = img.float()
        if img.shape[0] == 3:
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
        else:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def ultrasound() -> None:
    clip = render_video(3, num_frames=8, size=(128, 128), fov="sector").video  # (1, T, H, W) uint8
    video = clip[None].float() / 255
    mask, geo = U.estimate_fov(video)
    one = torch.ones(1)
    g = torch.Generator().manual_seed(0)
    field = U.rayleigh_field(torch.rand(video.shape, generator=g))
    panels = [
        ("phantom frame", video[0, :, 0]),
        ("estimated field of view", mask[0, :, 0].float()),
        (
            "depth attenuation mu=2, l=0.2",
            U.depth_attenuation(video, geo, 2 * one, 0.2 * one, fov=mask)[0, :, 0],
        ),
        (
            "TGC knots 1.6, 0.7, 1.4, 0.8",
            U.time_gain_compensation(video, geo, torch.tensor([[1.6, 0.7, 1.4, 0.8]]), fov=mask)[0, :, 0],
        ),
        (
            "acoustic shadow at u=0.6, width 0.08",
            U.acoustic_shadow(video, geo, 0.6 * one, 0.08 * one, one, 0.2 * one, fov=mask)[0, :, 0],
        ),
        ("Rayleigh speckle, strength 0.7", U.speckle(video, field, 0.7 * one, fov=mask)[0, :, 0]),
    ]
    _show(panels, OUT / "ultrasound.png", 3)


def photometric() -> None:
    gray = render_video(4, num_frames=4, size=(96, 96), fov="linear").video[None].float() / 255
    # tint the phantom so the colour kernels have colour to work on
    rgb = torch.cat([gray * 1.0, gray * 0.75, gray * 0.45], dim=1)
    one = torch.ones(1)
    panels = [
        ("tinted phantom", rgb[0, :, 0]),
        ("saturation 2.0", P.adjust_saturation(rgb, 2 * one)[0, :, 0]),
        ("hue +0.4 turn", P.adjust_hue(rgb, 0.4 * one)[0, :, 0]),
        ("grayscale", P.grayscale(rgb)[0, :, 0]),
        ("gamma 0.5", P.adjust_gamma(rgb, 0.5 * one)[0, :, 0]),
        ("solarize at 0.4", P.solarize(rgb, 0.4 * one)[0, :, 0]),
        ("autocontrast", P.autocontrast(rgb)[0, :, 0]),
        ("equalize", P.equalize(rgb)[0, :, 0]),
        ("sharpness 4", P.adjust_sharpness(rgb, 4 * one)[0, :, 0]),
    ]
    _show(panels, OUT / "photometric.png", 3)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    ultrasound()
    photometric()
    print(f"wrote {OUT / 'ultrasound.png'} and {OUT / 'photometric.png'}")
