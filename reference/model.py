"""The encoder: Darknet-53 with 3D convolutions (the paper's section 3.2).

Layout: a 3x3x3 stem convolution, then five stages. Each stage opens with a stride-2 3x3x3 convolution that
doubles the channels and continues with residual blocks (1x1x1 to half the channels, then 3x3x3 back, added to
the input); the five stages hold 1, 2, 8, 8 and 4 blocks, as in Darknet-53. Every convolution is followed by
BatchNorm and LeakyReLU(0.1). A global average pool over (T, H, W) gives the representation vector.

Channels follow Darknet-53 scaled by ``width``: the stem has ``round(width)`` channels and stage ``i`` has
``round(width * 2**i)`` (Darknet-53 itself is ``width=32``). The default ``width=1.1`` gives 135,373 parameters
for grayscale input, close to the 133,880 that the paper reports for its tiny encoder (the paper does not give
its layer widths; ``width=1`` gives 113,245). Spatial strides are 2 in every stage; temporal strides default to
``(1, 2, 2, 2, 1)``, so a 16-frame clip ends with 2 time steps instead of vanishing.

Example:
    >>> import torch
    >>> enc = Darknet3D(in_channels=1)
    >>> enc(torch.rand(2, 1, 16, 64, 64)).shape
    torch.Size([2, 35])
    >>> count_parameters(enc)
    135373
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["Darknet3D", "count_parameters", "load_encoder"]

DEFAULT_WIDTH = 1.1
DEFAULT_BLOCKS = (1, 2, 8, 8, 4)
DEFAULT_TEMPORAL_STRIDES = (1, 2, 2, 2, 1)


class ConvBNAct(nn.Sequential):
    """Conv3d (no bias) -> BatchNorm3d -> LeakyReLU(0.1)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: tuple[int, int, int] = (1, 1, 1)) -> None:
        super().__init__(
            nn.Conv3d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm3d(c_out),
            nn.LeakyReLU(0.1, inplace=True),
        )


class Residual(nn.Module):
    """Darknet residual block: ``x + conv3(conv1(x))`` with a 1x1x1 bottleneck to half the channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(1, channels // 2)
        self.body = nn.Sequential(ConvBNAct(channels, hidden, 1), ConvBNAct(hidden, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.body(x)
        return out


class Darknet3D(nn.Module):
    """Darknet-53 with 3D convolutions, pooled to one vector per clip.

    Args:
        in_channels: Channels of the input clip (1 for grayscale ultrasound).
        width: Channel scale: the stem has ``round(width)`` channels, stage ``i`` (1..5) ``round(width * 2**i)``.
            ``32`` is the original Darknet-53.
        blocks: Residual blocks per stage (Darknet-53: ``(1, 2, 8, 8, 4)``).
        temporal_strides: Temporal stride of each stage's downsampling convolution (spatial strides are 2).

    Attributes:
        out_dim: Size D of the representation vector (the last stage's channels).
        channels: Channels after the stem and after each stage.
    """

    def __init__(
        self,
        in_channels: int = 1,
        width: float = DEFAULT_WIDTH,
        blocks: Sequence[int] = DEFAULT_BLOCKS,
        temporal_strides: Sequence[int] = DEFAULT_TEMPORAL_STRIDES,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels: got {in_channels!r}, expected an integer >= 1")
        if not width > 0:
            raise ValueError(f"width: got {width!r}, expected a number > 0")
        if len(blocks) != len(temporal_strides):
            raise ValueError(
                f"temporal_strides: got {tuple(temporal_strides)!r}, expected one stride per stage "
                f"({len(blocks)} stages)"
            )
        if any(s not in (1, 2) for s in temporal_strides):
            raise ValueError(f"temporal_strides: got {tuple(temporal_strides)!r}, expected strides of 1 or 2")
        self.in_channels = int(in_channels)
        self.width = float(width)
        self.blocks = tuple(int(b) for b in blocks)
        self.temporal_strides = tuple(int(s) for s in temporal_strides)
        chans = [max(1, round(width * 2**i)) for i in range(len(blocks) + 1)]
        self.channels = tuple(chans)
        self.stem = ConvBNAct(in_channels, chans[0], 3)
        stages = []
        for i, (n, st) in enumerate(zip(self.blocks, self.temporal_strides, strict=True)):
            layers: list[nn.Module] = [ConvBNAct(chans[i], chans[i + 1], 3, stride=(st, 2, 2))]
            layers += [Residual(chans[i + 1]) for _ in range(n)]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.out_dim = chans[-1]

    def config(self) -> dict[str, Any]:
        """The constructor arguments, to rebuild the same architecture (saved in checkpoints)."""
        return {
            "in_channels": self.in_channels,
            "width": self.width,
            "blocks": list(self.blocks),
            "temporal_strides": list(self.temporal_strides),
        }

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after the stem and after each stage.

        Args:
            x: Clips ``(B, C, T, H, W)``, float.

        Returns:
            ``1 + len(blocks)`` tensors ``(B, C_i, T_i, H_i, W_i)``; the last one is what ``forward`` pools.
        """
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x: got shape {tuple(x.shape)}, expected (B, {self.in_channels}, T, H, W) "
                f"(the encoder was built for in_channels={self.in_channels})"
            )
        maps = [self.stem(x)]
        for stage in self.stages:
            maps.append(stage(maps[-1]))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode clips.

        Args:
            x: Clips ``(B, C, T, H, W)``, float (e.g. values in [0, 1]).

        Returns:
            Representations ``(B, out_dim)``: the last feature map averaged over (T, H, W).
        """
        return self.feature_maps(x)[-1].mean(dim=(2, 3, 4))


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not; BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters())


def load_encoder(
    path: str | Path, which: str = "online", map_location: str | torch.device = "cpu"
) -> Darknet3D:
    """Load the encoder of a checkpoint written by ``reference/train_byol.py``.

    Args:
        path: The checkpoint file (``.pt``).
        which: ``"online"`` (the encoder BYOL/SimCLR trains; the usual choice) or ``"target"`` (BYOL's EMA copy).
        map_location: Where to load tensors.

    Returns:
        A :class:`Darknet3D` in eval mode with the checkpoint's weights.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: {str(path)!r} does not exist or is not a file")
    if which not in ("online", "target"):
        raise ValueError(f"which: got {which!r}, expected 'online' or 'target'")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # corrupt or not a torch file
        raise ValueError(f"checkpoint: cannot read {str(path)!r} ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or "encoder_args" not in ckpt or which not in ckpt:
        raise ValueError(f"checkpoint: {str(path)!r} is not a reference/train_byol.py checkpoint")
    if ckpt[which] is None:
        raise ValueError(f"which: {which!r} has no weights in {str(path)!r} (SimCLR runs have no target)")
    encoder = Darknet3D(**ckpt["encoder_args"])
    state = {k[len("encoder.") :]: v for k, v in ckpt[which].items() if k.startswith("encoder.")}
    encoder.load_state_dict(state)
    return encoder.eval()
