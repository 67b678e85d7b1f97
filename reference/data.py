"""The data side of the trainer: unaugmented uint8 clips in, batches out; the views are made on the batch.

Two sources:

- the embedded default, the synthetic lung-ultrasound phantom of :mod:`vidaug3d.phantom` (rendered once, held in
  memory as uint8, deterministic in ``seed``), with consolidation labels and per-frame boxes;
- ``--data DIR``: a folder of real videos with a labels CSV, read through :mod:`vidaug3d.datasets` (decoded with
  PyAV; a fresh random clip of each video every epoch, deterministic in seed and epoch).

Every dataset item is ``(clip, index)`` with ``clip`` a ``(C, T, H, W)`` uint8 tensor. Labels (for the end-of-run
probe) are held by :class:`DataInfo`, not returned per item. The sample order is a
:class:`~torch.utils.data.DistributedSampler` permutation (seed, epoch), sharded across processes; a resumed run
skips the batches of the epoch it had already done, so that it sees exactly what an uninterrupted run would.

Helpers other scripts use: :func:`phantom_dataset`, :func:`folder_dataset`, :func:`build_dataset`,
:func:`epoch_indices`, :func:`make_loader`, :func:`to_float`.

Example:
    >>> ds, info = phantom_dataset(n_videos=4, frames=4, size=16, seed=0)
    >>> clip, i = ds[1]
    >>> tuple(clip.shape), clip.dtype, i, info.in_channels, int(info.labels.sum())
    ((1, 4, 16, 16), torch.uint8, 1, 1, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = [
    "ClipTensorDataset",
    "DataInfo",
    "build_dataset",
    "epoch_indices",
    "folder_dataset",
    "indexed",
    "make_loader",
    "phantom_dataset",
    "to_float",
    "write_phantom_folder",
]


@dataclass
class DataInfo:
    """What the trainer needs to know about a dataset besides its items.

    Attributes:
        in_channels: Channels C of every clip.
        labels: ``(N,)`` int64 labels for the probe, or None if there are none.
        groups: ``(N,)`` group (patient) ids, or None.
        description: One line for the log.
        extra: Source-specific objects (the phantom's ``PhantomData``, the folder dataset).
        clips_per_video: Items per video: item ``i`` is a clip of video ``i // clips_per_video``.
    """

    in_channels: int
    labels: Tensor | None
    groups: Tensor | None
    description: str
    extra: dict[str, Any] = field(default_factory=dict)
    clips_per_video: int = 1


class ClipTensorDataset(Dataset[tuple[Tensor, int]]):
    """Clips held in memory.

    Args:
        clips: ``(N, C, T, H, W)`` uint8.
    """

    def __init__(self, clips: Tensor) -> None:
        if clips.ndim != 5 or clips.dtype != torch.uint8:
            raise ValueError(f"clips: got {tuple(clips.shape)} {clips.dtype}, expected (N, C, T, H, W) uint8")
        self.clips = clips

    def __len__(self) -> int:
        return self.clips.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.clips[index], index

    def set_epoch(self, epoch: int) -> None:
        """Nothing changes between epochs: the phantom clips are fixed."""


def phantom_dataset(
    n_videos: int = 256, frames: int = 16, size: int = 64, seed: int = 0
) -> tuple[ClipTensorDataset, DataInfo]:
    """Render the synthetic lung-ultrasound phantom (half the videos with a consolidation).

    Args:
        n_videos: Number of videos N (one clip each).
        frames: Frames T per clip.
        size: Height and width in pixels.
        seed: Phantom seed (the same seed gives the same videos).

    Returns:
        The dataset of ``(1, T, size, size)`` uint8 clips and its :class:`DataInfo` (labels: consolidation;
        ``extra["phantom"]`` is the :class:`vidaug3d.phantom.PhantomData` with the boxes).
    """
    from vidaug3d import phantom

    data = phantom.make_dataset(n_videos, num_frames=frames, size=(size, size), seed=seed)
    info = DataInfo(
        in_channels=1,
        labels=data.labels.clone(),
        groups=torch.arange(n_videos),
        description=f"phantom: {n_videos} videos, {frames}x{size}x{size}, seed {seed}, "
        f"{int(data.labels.sum())} with consolidation",
        extra={"phantom": data},
    )
    return ClipTensorDataset(data.videos), info


def folder_dataset(
    root: str | Path,
    labels: str | Path = "labels.csv",
    frames: int = 16,
    size: int = 64,
    seed: int = 0,
    label_column: str = "consolidation",
    group_column: str = "patient_id",
    file_column: str = "file",
    *,
    cache: str | Path | None = None,
    stride: int = 1,
    clips_per_video: int = 1,
) -> tuple[Dataset[tuple[Tensor, int]], DataInfo]:
    """A folder of real videos with a labels CSV: ``clips_per_video`` random grayscale clips per video and epoch.

    Frames are letterboxed to ``size x size`` (the aspect ratio is kept, so an ultrasound sector stays whole). Bad
    files are left out and listed (``DataInfo.extra["bad_files"]``); the run stops if none is readable.

    Args:
        root: The folder.
        labels: The CSV (relative to ``root`` or absolute) with a ``file_column`` of paths relative to ``root``.
        frames: Frames T per clip.
        size: Clip height and width.
        seed: Seed of the clip positions (with the epoch and the item).
        label_column: Column used as the probe label (ignored if the CSV has no such column).
        group_column: Column with the patient id (ignored if absent).
        file_column: Column with the video paths.
        cache: Folder of a decoded clip cache (:mod:`vidaug3d.cache`): videos are decoded once into it, clips are
            read from memory maps; None decodes every clip from the file.
        stride: Step between a clip's frames.
        clips_per_video: Items per video and epoch.

    Returns:
        The dataset (items ``(clip, index)``) and its :class:`DataInfo`.

    Raises:
        ValueError: The folder does not exist, the CSV is missing or lacks the file column, or no video is readable.
    """
    import csv as _csv

    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"--data: {str(root)!r} is not a folder")
    csv_path = Path(labels) if Path(labels).is_absolute() else root / labels
    if not csv_path.is_file():
        raise ValueError(
            f"--labels: {str(csv_path)!r} does not exist (a CSV with a {file_column!r} column is expected)"
        )
    try:
        with open(csv_path, newline="") as fh:
            header = next(_csv.reader(fh), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--labels: cannot read {str(csv_path)!r} ({exc})") from exc
    if file_column not in header:
        raise ValueError(f"--labels: {str(csv_path)!r} has no {file_column!r} column (columns: {header})")
    from vidaug3d import datasets

    try:
        ds = datasets.VideoFolder(
            root,
            csv_path,
            num_frames=frames,
            size=(size, size),
            keep_aspect=True,
            grayscale=True,
            seed=seed,
            file_column=file_column,
            label_column=label_column if label_column in header else None,
            group_column=group_column if group_column in header else None,
            on_error="skip",
            cache=cache,
            stride=stride,
            clips_per_video=clips_per_video,
        )
    except ValueError as exc:  # VidaugError is a ValueError
        raise ValueError(f"--data: cannot use {str(root)!r}: {exc}") from exc
    has_labels = label_column in header
    info = DataInfo(
        in_channels=1,
        labels=ds.labels.clone() if has_labels else None,
        groups=_group_ids(ds.groups) if group_column in header else None,
        description=f"folder {str(root)!r}: {ds.num_videos} readable videos"
        + (f" ({len(ds.bad_files)} left out)" if ds.bad_files else "")
        + f", {clips_per_video} random {frames}x{size}x{size} clip(s) (stride {stride}) per video and epoch"
        + (f", from the clip cache {str(cache)!r}" if cache else ", decoded from the files"),
        extra={"folder": ds, "bad_files": list(ds.bad_files)},
        clips_per_video=clips_per_video,
    )
    return indexed(ds), info


def indexed(ds: Any) -> Dataset[tuple[Tensor, int]]:
    """A :class:`vidaug3d.datasets.VideoFolder` (or a subset of one) as the trainer's ``(clip, index)`` items."""
    return _IndexedFolder(ds)


def _group_ids(groups: list[str]) -> Tensor:
    """Group names to integer ids (first appearance order)."""
    ids: dict[str, int] = {}
    return torch.as_tensor([ids.setdefault(g, len(ids)) for g in groups], dtype=torch.int64)


class _IndexedFolder(Dataset[tuple[Tensor, int]]):
    """Adapts a :class:`vidaug3d.datasets.VideoFolder` to ``(clip, index)`` items."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        item = self.ds[index]
        return item["video"], index

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.ds, "set_epoch"):
            self.ds.set_epoch(epoch)


def build_dataset(cfg: Any) -> tuple[Dataset[tuple[Tensor, int]], DataInfo]:
    """The dataset a :class:`reference.config.Config` asks for (phantom unless ``cfg.data`` is set)."""
    if cfg.data is None:
        return phantom_dataset(cfg.n_videos, cfg.frames, cfg.size, cfg.seed)
    return folder_dataset(
        cfg.data,
        cfg.labels,
        cfg.frames,
        cfg.size,
        cfg.seed,
        cfg.label_column,
        cfg.group_column,
        cfg.file_column,
        cache=cfg.cache,
        stride=cfg.stride,
        clips_per_video=cfg.clips_per_video,
    )


def epoch_indices(n: int, epoch: int, seed: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """This process's sample order for an epoch: DistributedSampler's shuffled shard (seed + epoch).

    Every shard has ``ceil(n / world_size)`` indices (DistributedSampler pads by wrapping around).
    """
    sampler: DistributedSampler[int] = DistributedSampler(
        range(n),  # type: ignore[arg-type]  # only len() is used
        num_replicas=world_size,
        rank=rank,
        shuffle=True,
        seed=seed,
    )
    sampler.set_epoch(epoch)
    return list(sampler)


def steps_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Full batches per process and epoch (the last incomplete batch is dropped)."""
    return math.ceil(n / world_size) // batch_size


def make_loader(
    dataset: Dataset[tuple[Tensor, int]],
    indices: list[int],
    batch_size: int,
    workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader[tuple[Tensor, int]]:
    """A DataLoader over ``indices`` in that order, full batches only.

    Args:
        dataset: Items ``(clip, index)``.
        indices: The samples in order (from :func:`epoch_indices`, possibly with the done batches cut off).
        batch_size: Clips per batch.
        workers: Worker processes.
        pin_memory: Pin host memory (for CUDA).

    Returns:
        Batches ``(clips (B, C, T, H, W) uint8, indices (B,) int64)``.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=indices,
        drop_last=True,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=False,
    )


def write_phantom_folder(root: Path, n_patients: int, frames: int, size: int, seed: int) -> Path:
    """A folder of phantom videos as mp4 files with a labels CSV (two videos of one class per synthetic patient):
    the study's ``--quick`` stand-in for the real folder, so that CI runs the real-video chain, cache included."""
    import av
    import numpy as np

    import vidaug3d.phantom as ph

    d = ph.make_dataset(2 * n_patients, num_frames=frames, size=size, seed=seed)
    order = np.argsort(d.labels.numpy(), kind="stable")
    patient = np.empty(len(d), dtype=np.int64)
    patient[order] = np.arange(len(d)) // 2
    root.mkdir(parents=True, exist_ok=True)
    rows = ["file,patient_id,consolidation"]
    for i in range(len(d)):
        name = f"phantom{i:03d}.mp4"
        if not (root / name).is_file():
            with av.open(str(root / name), "w") as c:
                s = c.add_stream("libx264", rate=15)
                s.width, s.height, s.pix_fmt = size, size, "yuv420p"
                for fr in d.videos[i, 0].numpy():
                    for p in s.encode(
                        av.VideoFrame.from_ndarray(np.repeat(fr[..., None], 3, -1), format="rgb24")
                    ):
                        c.mux(p)
                for p in s.encode():
                    c.mux(p)
        rows.append(f"{name},{patient[i]},{int(d.labels[i])}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def to_float(clips: Tensor) -> Tensor:
    """uint8 ``[0, 255]`` to float32 ``[0, 1]`` (float input is returned as float32 unchanged)."""
    return clips.float().div_(255.0) if clips.dtype == torch.uint8 else clips.float()
