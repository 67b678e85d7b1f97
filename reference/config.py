"""Training configuration: one dataclass, with the command-line flags generated from its fields.

Every field becomes a flag (``n_videos`` -> ``--n-videos``); booleans become ``--flag`` / ``--no-flag``. A recipe
file (``--config reference/configs/pocus.yaml``, YAML or JSON: a mapping of field names to values) sets the
defaults, and flags given on the command line override it. The resolved configuration is printed at the start
of a run and saved as ``config.json`` in the run folder and inside every checkpoint.

A recipe file with an unknown key, a value of the wrong type or one out of range is refused with a
:class:`ConfigError` that names the key and the file.

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

__all__ = ["Config", "ConfigError", "build_parser", "load_config_file", "parse_args"]


class ConfigError(ValueError):
    """A bad configuration value; ``key`` is the field, ``source`` the file it came from (None: a flag)."""

    def __init__(self, key: str, message: str, source: str | None = None) -> None:
        self.key, self.message, self.source = key, message, source
        where = f"{source}: key {key!r}" if source else f"--{_flag(key)}"
        super().__init__(f"{where}: {message}")


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
    channels_last: bool = _f(
        True, "model and input in torch.channels_last_3d memory format (faster 3D convolutions on the CPU)"
    )
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
    cache: str | None = _f(
        None, "folder of a decoded clip cache for --data (vidaug3d.cache): decode once, read from memory maps"
    )
    stride: int = _f(1, "--data: step between a clip's frames (2 halves the frame rate)")
    clips_per_video: int = _f(1, "--data: random clips drawn from each video per epoch")
    workers: int = _f(0, "DataLoader worker processes")
    # augmentation
    no_temporal: bool = _f(False, "turn the temporal augmentations off (the paper's ablation)")
    crop_scale: tuple[float, float] | None = _f(
        None,
        "random resized crop of each view before the affine: LOW HIGH fraction of the frame's area (aspect "
        "3/4-4/3), resized back to --size; none: no crop",
    )
    view_frames: int | None = _f(
        None,
        "frames of each view: both views take their own RandomTemporalCrop of this length from the --frames "
        "loaded, so they come from different moments; the encoder sees view-frames frames (none: all --frames)",
    )
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
    config: str | None = _f(
        None, "recipe file (YAML or JSON) whose values replace the defaults; flags override it"
    )

    def to_json(self) -> str:
        """The configuration as indented JSON."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False)

    def save(self, path: str | Path) -> None:
        """Write ``to_json()`` to ``path``."""
        Path(path).write_text(self.to_json() + "\n")

    def validate(self) -> Config:
        """Raise :class:`ConfigError` naming the field for a value out of range; return self."""
        positive = (
            "n_videos",
            "frames",
            "size",
            "epochs",
            "batch_size",
            "proj_hidden",
            "proj_dim",
            "log_every",
            "stride",
            "clips_per_video",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(name, f"got {getattr(self, name)!r}, expected an integer >= 1")
        non_negative = ("max_steps", "warmup_steps", "workers", "threads", "ckpt_every", "stop_at")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(name, f"got {getattr(self, name)!r}, expected an integer >= 0")
        if self.method == "byol" and self.batch_size < 2:
            raise ConfigError("batch_size", f"got {self.batch_size}, expected >= 2 (BatchNorm in the heads)")
        if self.frames < 2:
            raise ConfigError(
                "frames", f"got {self.frames}, expected >= 2 (temporal augmentations need frames)"
            )
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError("momentum", f"got {self.momentum!r}, expected a number in [0, 1]")
        for name in ("lr", "temperature", "width"):
            if not getattr(self, name) > 0:
                raise ConfigError(name, f"got {getattr(self, name)!r}, expected a number > 0")
        if self.crop_scale is not None:
            cs = self.crop_scale
            if (
                not isinstance(cs, (tuple, list))
                or len(cs) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in cs)
                or not 0 < cs[0] <= cs[1] <= 1
            ):
                raise ConfigError(
                    "crop_scale", f"got {cs!r}, expected [low, high] with 0 < low <= high <= 1, or null"
                )
            self.crop_scale = (float(cs[0]), float(cs[1]))
        if self.view_frames is not None and not 2 <= self.view_frames <= self.frames:
            raise ConfigError(
                "view_frames",
                f"got {self.view_frames!r}, expected an integer in [2, frames = {self.frames}] (each view is a "
                "window of the loaded clip), or null",
            )
        if self.weight_decay < 0:
            raise ConfigError("weight_decay", f"got {self.weight_decay!r}, expected a number >= 0")
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(f.name, f"got {getattr(self, f.name)!r}, expected one of {list(choices)}")
        dev = self.device
        if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            raise ConfigError("device", f"got {dev!r}, expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
        return self


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _base_type(tp: Any) -> Any:
    """``str | None`` -> ``str``; other annotations unchanged."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def load_config_file(path: str | Path, cls: type[Any] = Config) -> dict[str, Any]:
    """Read a recipe file (YAML or JSON mapping of field names to values) and check it against ``cls``'s fields.

    Keys may be written with ``-`` or ``_``. Integers are accepted where a float is expected; nothing else is
    converted.

    Returns:
        ``{field: value}`` for the keys the file sets.

    Raises:
        ConfigError: The file is missing or unreadable, is not a mapping, has an unknown key or a value of the
            wrong type; the message names the file and the key.
    """
    src = str(path)
    p = Path(path)
    if not p.is_file():
        raise ConfigError("config", f"the file {src!r} does not exist")
    text = p.read_text()
    try:
        if p.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            import yaml  # PyAV-free extra: the reference extra installs PyYAML

            raw = yaml.safe_load(text)
    except Exception as exc:  # yaml's and json's parse errors
        raise ConfigError("config", f"cannot parse {src!r}: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            "config", f"{src!r} holds a {type(raw).__name__}, expected a mapping of keys to values"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in fields or name == "config":
            known = ", ".join(sorted(n for n in fields if n != "config"))
            raise ConfigError(str(key), f"unknown key (known keys: {known})", src)
        out[name] = _check_type(name, value, hints[name], src)
    return out


def _check_type(name: str, value: Any, hint: Any, src: str) -> Any:
    optional = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    tp = _base_type(hint)
    if value is None and optional:
        return None
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(name, f"got {value!r}, expected a list", src)
        args = typing.get_args(tp)
        elem = args[0] if args else Any
        return tuple(_check_type(name, v, elem, src) for v in value) if origin is tuple else list(value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(name, f"got {value!r}, expected a mapping", src)
        return dict(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, bool, str) and (type(value) is not tp):
        raise ConfigError(name, f"got {value!r} ({type(value).__name__}), expected {_type_name(tp)}", src)
    return value


def _none_or(tp: Any) -> Any:
    """An argparse type: ``tp`` or the word ``none`` (None), so a flag can switch off a file's value."""

    def convert(text: str) -> Any:
        return None if text.lower() in ("none", "null") else tp(text)

    convert.__name__ = tp.__name__
    return convert


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
        if tp is bool and f.name.startswith("no_"):  # argparse reads any --no-X as "off": a plain switch
            parser.add_argument(f"--{_flag(f.name)}", action="store_true", default=f.default, help=help_)
        elif tp is bool:
            parser.add_argument(
                f"--{_flag(f.name)}", action=argparse.BooleanOptionalAction, default=f.default, help=help_
            )
        elif typing.get_origin(tp) is tuple:
            elem = typing.get_args(tp)[0]
            parser.add_argument(
                f"--{_flag(f.name)}",
                type=_none_or(elem),
                nargs="+",
                default=f.default,
                metavar="X",
                help=help_,
            )
        elif f.name == "view_frames":
            parser.add_argument(f"--{_flag(f.name)}", type=_none_or(int), default=f.default, help=help_)
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
    """Parse command-line flags (over the values of ``--config FILE``) into a validated :class:`Config`.

    ``argv=None`` reads ``sys.argv``. A bad flag exits with argparse's usage message naming the flag; a bad value
    from the recipe file exits naming the file and the key.
    """
    parser = build_parser()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    from_file: dict[str, Any] = {}
    if known.config is not None:
        try:
            from_file = load_config_file(known.config)
        except ConfigError as exc:
            parser.error(str(exc))
        parser.set_defaults(**from_file)
    ns = parser.parse_args(argv)
    values = vars(ns)
    for name, v in values.items():  # a tuple flag (--crop-scale 0.3 1): its numbers, or "none" alone
        if isinstance(v, list):
            values[name] = None if v == [None] else tuple(v)
    cfg = Config(**values)
    try:
        return cfg.validate()
    except ConfigError as exc:
        if exc.key in from_file and getattr(cfg, exc.key) == from_file[exc.key]:
            exc = ConfigError(exc.key, exc.message, known.config)
        parser.error(str(exc))
        raise  # unreachable: parser.error exits
