"""Training configuration: one dataclass, with the command-line flags generated from its fields.

Every field becomes a flag (``n_videos`` -> ``--n-videos``); booleans become ``--flag`` / ``--no-flag``. The
resolved configuration is printed at the start of a run and saved as ``config.json`` in the run folder and inside
every checkpoint.

Example:
    >>> cfg = parse_args(["--method", "simclr", "--epochs", "2", "--no-temporal"])
    >>> cfg.method, cfg.epochs, cfg.no_temporal, cfg.lr
    ('simclr', 2, True, 0.0003)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Config", "build_parser", "parse_args"]


def _f(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class Config:
    """All settings of a pretraining run (the defaults are the out-of-the-box phantom run)."""

    # method
    method: str = _f("byol", "self-supervised method", ("byol", "simclr"))
    temperature: float = _f(0.1, "NT-Xent temperature (simclr)")
    momentum: float = _f(0.99, "EMA momentum of the BYOL target network")
    momentum_cosine: bool = _f(False, "raise the EMA momentum from --momentum to 1 along a cosine")
    # model
    width: float = _f(1.1, "encoder width: Darknet-53 channels scaled by width/32 (1.1 gives ~135k params)")
    proj_hidden: int = _f(4096, "hidden size of the projector and predictor MLPs")
    proj_dim: int = _f(256, "output size of the projector and predictor")
    # data
    data: str | None = _f(None, "folder of videos with a labels CSV; default: the synthetic phantom")
    labels: str = _f("labels.csv", "labels CSV, relative to --data or an absolute path")
    label_column: str = _f("consolidation", "CSV column used for the end-of-run probe (if present)")
    group_column: str = _f(
        "patient_id", "CSV column with the patient id, for a group-aware probe (if present)"
    )
    file_column: str = _f("file", "CSV column with the video paths, relative to --data")
    n_videos: int = _f(256, "phantom: number of videos to generate")
    frames: int = _f(16, "frames per clip")
    size: int = _f(64, "clip height and width in pixels")
    workers: int = _f(0, "DataLoader worker processes")
    # augmentation
    no_temporal: bool = _f(False, "turn the temporal augmentations off (the paper's ablation)")
    # optimisation
    epochs: int = _f(20, "passes over the data")
    max_steps: int = _f(0, "stop after this many steps in total (0: no limit); shortens the schedules too")
    batch_size: int = _f(16, "clips per step and per process")
    lr: float = _f(3e-4, "Adam learning rate")
    weight_decay: float = _f(0.0, "Adam weight decay")
    lr_schedule: str = _f("constant", "learning-rate schedule after warm-up", ("constant", "cosine"))
    warmup_steps: int = _f(0, "linear learning-rate warm-up steps")
    # run
    seed: int = _f(0, "seed of the model, the data order and the augmentations")
    device: str = _f("auto", "'cpu', 'cuda', 'cuda:N' or 'auto' (cuda if available)")
    amp: str = _f("auto", "mixed precision; auto: bf16 on CUDA, off on CPU", ("auto", "none", "bf16", "fp16"))
    threads: int = _f(0, "torch CPU threads per process (0: leave torch's default)")
    out: str = _f("runs/byol", "run folder: config.json, log.jsonl, checkpoint.pt")
    resume: str | None = _f(None, "checkpoint to resume from ('auto': <out>/checkpoint.pt)")
    ckpt_every: int = _f(0, "also checkpoint every N steps within epochs (0: only at epoch ends)")
    stop_at: int = _f(
        0, "stop with a checkpoint at this step without changing the schedules (0: run to the end)"
    )
    log_every: int = _f(1, "write a log line every N steps")
    progress: bool = _f(True, "show a tqdm progress bar")
    probe: bool = _f(True, "at the end, linear/kNN probe of the encoder vs a random one on the labels")

    def to_json(self) -> str:
        """The configuration as indented JSON."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False)

    def save(self, path: str | Path) -> None:
        """Write ``to_json()`` to ``path``."""
        Path(path).write_text(self.to_json() + "\n")

    def validate(self) -> Config:
        """Raise ``ValueError`` naming the flag for values out of range; return self."""
        positive = (
            "n_videos",
            "frames",
            "size",
            "epochs",
            "batch_size",
            "proj_hidden",
            "proj_dim",
            "log_every",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"--{_flag(name)}: got {getattr(self, name)!r}, expected an integer >= 1")
        non_negative = ("max_steps", "warmup_steps", "workers", "threads", "ckpt_every", "stop_at")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"--{_flag(name)}: got {getattr(self, name)!r}, expected an integer >= 0")
        if self.method == "byol" and self.batch_size < 2:
            raise ValueError(f"--batch-size: got {self.batch_size}, expected >= 2 (BatchNorm in the heads)")
        if self.frames < 2:
            raise ValueError(
                f"--frames: got {self.frames}, expected >= 2 (temporal augmentations need frames)"
            )
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"--momentum: got {self.momentum!r}, expected a number in [0, 1]")
        for name in ("lr", "temperature", "width"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--{_flag(name)}: got {getattr(self, name)!r}, expected a number > 0")
        if self.weight_decay < 0:
            raise ValueError(f"--weight-decay: got {self.weight_decay!r}, expected a number >= 0")
        dev = self.device
        if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            raise ValueError(f"--device: got {dev!r}, expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
        return self


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _base_type(tp: Any) -> Any:
    """``str | None`` -> ``str``; other annotations unchanged."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def build_parser() -> argparse.ArgumentParser:
    """An ``argparse`` parser with one flag per :class:`Config` field."""
    parser = argparse.ArgumentParser(
        prog="train_byol.py",
        description="BYOL (or SimCLR) pretraining of a 3D Darknet-53 on lung ultrasound clips.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        tp = _base_type(hints[f.name])
        help_ = f.metadata.get("help", "")
        if tp is bool and f.default:
            parser.add_argument(
                f"--{_flag(f.name)}", action=argparse.BooleanOptionalAction, default=True, help=help_
            )
        elif tp is bool:
            parser.add_argument(f"--{_flag(f.name)}", action="store_true", help=help_)
        elif f.name == "resume":
            parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT", help=help_)
        else:
            parser.add_argument(
                f"--{_flag(f.name)}",
                type=tp,
                default=f.default,
                choices=f.metadata.get("choices"),
                help=help_,
            )
    return parser


def parse_args(argv: list[str] | None = None) -> Config:
    """Parse command-line flags into a validated :class:`Config` (``argv=None`` reads ``sys.argv``).

    Bad values exit with argparse's usage message and the flag named.
    """
    parser = build_parser()
    ns = parser.parse_args(argv)
    cfg = Config(**vars(ns))
    try:
        return cfg.validate()
    except ValueError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits
