"""Datasets of video clips: a folder of videos with a labels CSV, the synthetic phantom, and patient-level splits.

A ``VideoFolder`` item is a dict ``{"video": (C, T, H, W) uint8, "label": int64 scalar, "index": int,
"group": str}``, which the default DataLoader collate turns into batches (``video`` becomes ``(B, C, T, H, W)``).
Each item's random clip start is drawn from a generator seeded by ``(seed, index, epoch)``, so the clip a given
index yields does not depend on ``num_workers``, batch size or order; call ``VideoFolder.set_epoch`` before
each epoch (with ``persistent_workers=False``, the DataLoader default, workers see the new epoch).

Splits are by group (patient): no group has items on two sides of a split. They are stratified by the group's
label when labels are given (a group counts as positive if any of its items is), which matters for small sets.

Examples:
    >>> groups = ["a", "a", "b", "c", "c", "d", "e", "f"]
    >>> train, val, test = group_split(groups, (0.5, 0.25, 0.25), seed=0)
    >>> sorted(train + val + test) == list(range(8))
    True
    >>> {groups[i] for i in train} & {groups[i] for i in test}
    set()
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from vidaug3d import phantom as _phantom
from vidaug3d.cache import ClipCache
from vidaug3d.errors import VidaugError, fail

__all__ = [
    "VIDEO_EXTENSIONS",
    "BadFile",
    "PhantomDataset",
    "VideoFolder",
    "clip_seed",
    "group_kfold",
    "group_split",
    "lus_pocus",
]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mpeg", ".mpg", ".mov", ".gif", ".mkv", ".webm", ".m4v")

_MASK64 = (1 << 64) - 1


def clip_seed(seed: int, index: int, epoch: int = 0) -> int:
    """The seed of item ``index`` in epoch ``epoch`` (a 63-bit hash of the three).

    Examples:
        >>> clip_seed(0, 5, 1) == clip_seed(0, 5, 1) != clip_seed(0, 5, 2)
        True
    """
    z = 0x9E3779B97F4A7C15
    for v in (seed, index, epoch):
        z = (z ^ (int(v) & _MASK64)) * 0xBF58476D1CE4E5B9 & _MASK64
        z = (z ^ (z >> 29)) * 0x94D049BB133111EB & _MASK64
        z ^= z >> 32
    return z & ((1 << 63) - 1)


@dataclass(frozen=True)
class BadFile:
    """A video that could not be used: the file and the reason."""

    path: str
    reason: str


def _read_rows(
    labels: Path, file_column: str, label_column: str | None, group_column: str | None
) -> list[dict[str, str]]:
    if not labels.is_file():
        raise fail("labels", str(labels), "an existing CSV file")
    with labels.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        for name, col in (
            ("file_column", file_column),
            ("label_column", label_column),
            ("group_column", group_column),
        ):
            if col is not None and col not in fields:
                raise fail(name, col, f"a column of {labels} (it has {fields})")
        return list(reader)


class VideoFolder(Dataset[dict[str, Any]]):
    """Clips from a folder of videos, with labels and groups from a CSV.

    Args:
        root: The folder; CSV paths are relative to it.
        labels: The labels CSV (path, or a name inside ``root``); None looks for ``root/labels.csv`` and, if absent,
            takes every video file under ``root`` with label -1.
        num_frames: ``T``, frames per clip.
        stride: Step between clip frames.
        size: Output ``(H, W)`` (or an int); every clip of the dataset has this size.
        keep_aspect: Letterbox (True) or stretch (False) to ``size``.
        grayscale: One channel (True) or RGB (False).
        start: Clip start rule of ``vidaug3d.io.read_clip`` (``"random"`` draws from the per-item seed).
        short: ``"loop"`` or ``"pad"`` for videos shorter than the clip.
        clips_per_video: Items per video (``len = videos * clips_per_video``).
        file_column: CSV column with the file path.
        label_column: CSV column with the label; numbers are used as they are, other values are mapped to class
            indices in sorted order (``classes``). None: no labels (-1).
        group_column: CSV column with the group (patient) id, or None (each video is its own group).
        seed: Dataset seed.
        transform: Optional callable applied to each ``(C, T, H, W)`` clip.
        on_error: ``"raise"``: a bad file raises ``VidaugError`` (at construction if ``validate`` finds it).
            ``"skip"``: bad files are left out and listed in ``bad_files`` (with a warning); a file that fails later,
            during an epoch, is replaced by the next good video and reported with a warning.
        validate: ``"header"`` opens each file and decodes its first frame at construction; ``"full"`` also decodes
            every frame (finds truncated files; slower); ``"none"`` checks nothing up front.
        preload: Decode every video once, at ``size``, into memory at construction (a full check of each file),
            and cut clips from memory afterwards: far faster over many epochs, at ``C * N * H * W`` bytes per
            video (the 131 POCUS videos at 112x112 grayscale: about 200 MB). Clip starts are drawn the same way,
            from the exact decoded frame count.
        cache: A folder (or a ``vidaug3d.cache.ClipCache``) for a decoded clip cache: every video is decoded
            once, at ``size``, into a memory-mapped uint8 file there (a full check of each file), and clips are
            cut from the maps afterwards; a later run decodes only videos that are new or changed. Clips are the
            same as with ``preload=True``; memory is the page cache's, shared by workers and processes.

    Attributes:
        bad_files: The ``BadFile`` records found so far in this process.
        classes: Label names in class-index order when labels are not numeric, else None.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        labels: str | os.PathLike[str] | None = None,
        *,
        num_frames: int = 16,
        stride: int = 1,
        size: int | Sequence[int] = (112, 112),
        keep_aspect: bool = True,
        grayscale: bool = True,
        start: Literal["random", "uniform", "center"] | int = "random",
        short: Literal["loop", "pad"] = "loop",
        clips_per_video: int = 1,
        file_column: str = "file",
        label_column: str | None = "label",
        group_column: str | None = None,
        seed: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        on_error: Literal["raise", "skip"] = "raise",
        validate: Literal["header", "full", "none"] = "header",
        preload: bool = False,
        cache: str | os.PathLike[str] | ClipCache | None = None,
    ) -> None:
        from vidaug3d import io as vio  # lazy: needs PyAV

        self.root = Path(root)
        if not self.root.is_dir():
            raise fail("root", str(root), "an existing folder of videos")
        if on_error not in ("raise", "skip"):
            raise fail("on_error", on_error, "'raise' or 'skip'")
        if validate not in ("header", "full", "none"):
            raise fail("validate", validate, "'header', 'full' or 'none'")
        if isinstance(clips_per_video, bool) or not isinstance(clips_per_video, int) or clips_per_video < 1:
            raise fail("clips_per_video", clips_per_video, "an int >= 1")
        vio._check_clip_args(num_frames, stride, start, short)
        vio._target_size(size, keep_aspect, 1, 1)
        if cache is not None and preload:
            raise fail("preload", preload, "False when a cache is given (the cache already holds the frames)")
        if cache is not None and not isinstance(cache, ClipCache):
            cache = ClipCache(cache, size=size, keep_aspect=keep_aspect, grayscale=grayscale)
        if isinstance(cache, ClipCache) and (cache.size, cache.keep_aspect, cache.grayscale) != (
            None if size is None else (size, size) if isinstance(size, int) else tuple(size),
            bool(keep_aspect),
            bool(grayscale),
        ):
            raise fail(
                "cache",
                str(cache.root),
                f"a clip cache of this dataset's size {size!r}, keep_aspect {keep_aspect}, grayscale {grayscale}",
            )
        self.cache: ClipCache | None = cache
        self.num_frames, self.stride, self.size = num_frames, stride, size
        self.keep_aspect, self.grayscale, self.start, self.short = keep_aspect, grayscale, start, short
        self.clips_per_video, self.seed, self.transform = clips_per_video, seed, transform
        self.on_error, self.epoch = on_error, 0
        self.bad_files: list[BadFile] = []
        self.classes: list[str] | None = None

        if labels is None and (self.root / "labels.csv").is_file():
            labels = self.root / "labels.csv"
        if labels is None:
            files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
            paths = [str(p) for p in files]
            raw_labels: list[str] = ["-1"] * len(paths)
            groups = [str(p.relative_to(self.root)) for p in files]
        else:
            lp = Path(labels)
            lp = self.root / lp if not lp.is_absolute() and (self.root / lp).is_file() else lp
            rows = _read_rows(lp, file_column, label_column, group_column)
            paths = [str(self.root / r[file_column]) for r in rows]
            raw_labels = [r[label_column] if label_column else "-1" for r in rows]
            groups = [r[group_column] if group_column else r[file_column] for r in rows]
        if not paths:
            raise fail("root", str(root), "a folder with at least one video (or a non-empty labels CSV)")
        try:
            values = [int(float(v)) for v in raw_labels]
        except ValueError:
            self.classes = sorted(set(raw_labels))
            values = [self.classes.index(v) for v in raw_labels]

        keep = []
        frames: list[torch.Tensor] = []
        cached: set[int] | None = None
        if self.cache is not None:  # decoding into the cache is a full check of every file
            entries, bad = self.cache.update(paths, progress=True, on_error=on_error)
            self.bad_files += [BadFile(p, reason) for p, reason in bad]
            cached = {i for i, e in enumerate(entries) if e is not None}
        for i, p in enumerate(paths):
            if cached is not None:
                if i in cached:
                    keep.append(i)
                continue
            if validate == "none" and not preload:
                keep.append(i)
                continue
            try:
                if preload:
                    frames.append(vio.read_video(p, size=size, keep_aspect=keep_aspect, grayscale=grayscale))
                elif validate == "full":
                    vio.probe(p, count=True)
                if not preload:
                    vio.read_frames(p, [0], size=(16, 16), keep_aspect=False)
            except VidaugError as err:
                if on_error == "raise":
                    raise
                self.bad_files.append(BadFile(p, str(err)))
                continue
            keep.append(i)
        if self.bad_files:
            warnings.warn(self.report(), stacklevel=2)
        if not keep:
            raise fail("root", str(root), "at least one readable video (all failed: see bad_files)")
        self.frames: list[torch.Tensor] | None = frames if preload else None
        self.paths = [paths[i] for i in keep]
        self.labels = torch.tensor([values[i] for i in keep], dtype=torch.int64)
        self.groups = [groups[i] for i in keep]

    def report(self) -> str:
        """A readable list of the bad files and why each failed."""
        if not self.bad_files:
            return "no bad files"
        lines = [f"{len(self.bad_files)} bad video file(s) left out:"]
        lines += [f"  {b.path}: {b.reason}" for b in self.bad_files]
        return "\n".join(lines)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that keys the random clip starts (call before each epoch)."""
        self.epoch = int(epoch)

    @property
    def num_videos(self) -> int:
        """Number of (good) videos."""
        return len(self.paths)

    def __len__(self) -> int:
        return len(self.paths) * self.clips_per_video

    def subset(self, videos: Sequence[int]) -> VideoFolder:
        """A dataset over some of the videos (e.g. one side of ``group_split``), with the same settings.

        Items are re-indexed, so keep the seed distinct per split if clips must differ between splits.
        """
        new = object.__new__(VideoFolder)
        new.__dict__.update(self.__dict__)
        idx = list(videos)
        new.paths = [self.paths[i] for i in idx]
        new.labels = self.labels[idx] if idx else self.labels[:0]
        new.groups = [self.groups[i] for i in idx]
        new.frames = [self.frames[i] for i in idx] if self.frames is not None else None
        new.bad_files = list(self.bad_files)
        return new

    def video_frames(self, video: int) -> torch.Tensor | Any:
        """Every frame of video ``video`` as ``(C, N, H, W)`` uint8: the preloaded tensor or the cache's read-only
        memory map (``numpy``); None without ``preload`` or ``cache``."""
        if self.frames is not None:
            return self.frames[video]
        if self.cache is not None:
            return self.cache.frames(self.paths[video])
        return None

    def _cached(self, video: int) -> Any:
        assert self.cache is not None
        return self.cache.frames(self.paths[video])

    def _load(self, video: int, index: int) -> torch.Tensor:
        from vidaug3d import io as vio

        g = torch.Generator().manual_seed(clip_seed(self.seed, index, self.epoch))
        if self.frames is not None or self.cache is not None:
            frames = self.frames[video] if self.frames is not None else None
            n = int(frames.shape[1]) if frames is not None else int(self._cached(video).shape[1])
            idx = vio.sample_indices(
                n, self.num_frames, stride=self.stride, start=self.start, generator=g, short=self.short
            )
            if frames is not None:
                return frames[:, idx]
            assert self.cache is not None
            return self.cache.read(self.paths[video], idx)
        return vio.read_clip(
            self.paths[video],
            self.num_frames,
            stride=self.stride,
            start=self.start,
            generator=g,
            short=self.short,
            size=self.size,
            keep_aspect=self.keep_aspect,
            grayscale=self.grayscale,
        )

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index %= len(self)
        video = index // self.clips_per_video
        for attempt in range(self.num_videos):
            v = (video + attempt) % self.num_videos
            try:
                clip = self._load(v, index)
            except VidaugError as err:
                if self.on_error == "raise":
                    raise
                self.bad_files.append(BadFile(self.paths[v], str(err)))
                warnings.warn(f"skipping bad video {self.paths[v]}: {err}", stacklevel=2)
                continue
            if self.transform is not None:
                clip = self.transform(clip)
            return {"video": clip, "label": self.labels[v], "index": index, "group": self.groups[v]}
        raise fail("root", str(self.root), "at least one readable video (every video failed to decode)")


LUS_POCUS_ENV = "VIDAUG3D_LUS_POCUS"


def lus_pocus(root: str | os.PathLike[str] | None = None, **kwargs: Any) -> VideoFolder:
    """The POCUS lung-ultrasound videos: binary ``consolidation`` labels, ``patient_id`` groups.

    Args:
        root: The ``lus-pocus`` folder (with ``labels.csv``). None: the folder named by the environment variable
            ``VIDAUG3D_LUS_POCUS``, else ``../shared/data/lus-pocus`` and ``shared/data/lus-pocus`` from the
            current directory. Nothing is looked up relative to the installed package.
        **kwargs: Passed on to ``VideoFolder`` (``num_frames``, ``size``, ``seed``, ``cache``, ...).

    Returns:
        A ``VideoFolder``.

    Raises:
        VidaugError: No ``labels.csv`` in ``root`` or in any of the default places; the message lists where it
            looked.
    """
    if root is not None:
        tried = [Path(root)]
    elif os.environ.get(LUS_POCUS_ENV):
        tried = [Path(os.environ[LUS_POCUS_ENV])]
    else:
        tried = [Path.cwd() / "../shared/data/lus-pocus", Path.cwd() / "shared/data/lus-pocus"]
    for cand in tried:
        if (cand / "labels.csv").is_file():
            found = cand.resolve()
            break
    else:
        where = ", ".join(str(c.resolve()) for c in tried)
        how = "" if root is not None else f" (pass root= or set {LUS_POCUS_ENV})"
        raise fail(
            "root",
            None if root is None else str(root),
            f"the lus-pocus folder with labels.csv; looked in: {where}{how}",
        )
    kwargs.setdefault("label_column", "consolidation")
    kwargs.setdefault("group_column", "patient_id")
    return VideoFolder(found, "labels.csv", **kwargs)


class PhantomDataset(Dataset[dict[str, Any]]):
    """The synthetic lung-ultrasound phantom as a dataset, rendered once into memory.

    Items are dicts ``{"video": (1, T, H, W) uint8, "label": int64, "index": int, "group": str,
    "boxes": (T, 1, 4) float32 (NaN for negatives), "num_boxes": int64}``.

    Args:
        n_videos: Number of videos.
        num_frames: ``T``.
        size: ``(H, W)`` or an int.
        seed: Phantom seed (see ``vidaug3d.phantom.make_dataset``).
        consolidation_fraction: Fraction of positive videos.
        transform: Optional callable applied to each clip.

    Examples:
        >>> ds = PhantomDataset(4, num_frames=2, size=16)
        >>> item = ds[0]
        >>> tuple(item["video"].shape), tuple(item["boxes"].shape)
        ((1, 2, 16, 16), (2, 1, 4))
    """

    def __init__(
        self,
        n_videos: int = 256,
        *,
        num_frames: int = 16,
        size: int | Sequence[int] = (112, 112),
        seed: int = 0,
        consolidation_fraction: float = 0.5,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.data = _phantom.make_dataset(
            n_videos,
            num_frames=num_frames,
            size=size,
            seed=seed,
            consolidation_fraction=consolidation_fraction,
        )
        self.videos = self.data.videos
        self.labels = self.data.labels
        self.boxes, self.num_boxes = self.data.padded_boxes()
        self.groups = [f"phantom-{i}" for i in range(n_videos)]
        self.transform = transform

    def __len__(self) -> int:
        return int(self.videos.shape[0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.videos[index]
        if self.transform is not None:
            clip = self.transform(clip)
        return {
            "video": clip,
            "label": self.labels[index],
            "index": int(index) % len(self),
            "group": self.groups[index],
            "boxes": self.boxes[index],
            "num_boxes": self.num_boxes[index],
        }


# --- splits ----------------------------------------------------------------------------------------------------


def _group_table(
    groups: Sequence[Any], labels: Sequence[int] | torch.Tensor | None
) -> tuple[dict[Any, list[int]], dict[Any, int]]:
    if labels is not None and len(labels) != len(groups):
        raise fail("labels", len(labels), f"one label per item ({len(groups)})")
    members: dict[Any, list[int]] = {}
    for i, gname in enumerate(groups):
        members.setdefault(gname, []).append(i)
    if labels is None:
        strata = dict.fromkeys(members, 0)
    else:
        lab = [int(x) for x in labels]
        strata = {gname: max(lab[i] for i in idx) for gname, idx in members.items()}
    return members, strata


def _shuffled_groups(members: dict[Any, list[int]], strata: dict[Any, int], seed: int) -> list[list[Any]]:
    """Groups per stratum, in a seeded order (larger groups first within equal draws, for balance)."""
    g = torch.Generator().manual_seed(int(seed))
    names = sorted(members, key=str)
    order = torch.randperm(len(names), generator=g).tolist()
    by_stratum: dict[int, list[Any]] = {}
    for k in order:
        by_stratum.setdefault(strata[names[k]], []).append(names[k])
    out = []
    for s in sorted(by_stratum):
        lst = by_stratum[s]
        lst.sort(key=lambda n: -len(members[n]))  # stable: ties keep the random order
        out.append(lst)
    return out


def group_split(
    groups: Sequence[Any],
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    *,
    labels: Sequence[int] | torch.Tensor | None = None,
    seed: int = 0,
) -> tuple[list[int], ...]:
    """Split items into parts by group (patient), with about the given fraction of items in each.

    Args:
        groups: Group id of each item.
        fractions: Target fraction of items per part (e.g. train/val/test); positive, summing to 1.
        labels: Optional item labels; the split is then stratified by group label (max over the group).
        seed: Seed of the group order.

    Returns:
        One sorted list of item indices per part. Every item is in exactly one part; no group spans two parts.
    """
    if not fractions or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise fail("fractions", tuple(fractions), "positive fractions summing to 1")
    members, strata = _group_table(groups, labels)
    parts: list[list[int]] = [[] for _ in fractions]
    for stratum_groups in _shuffled_groups(members, strata, seed):
        total = sum(len(members[n]) for n in stratum_groups)
        have = [0] * len(fractions)
        for name in stratum_groups:
            # the part furthest below its target takes the group
            deficit = [fractions[k] * total - have[k] for k in range(len(fractions))]
            k = max(range(len(fractions)), key=lambda j: deficit[j])
            have[k] += len(members[name])
            parts[k].extend(members[name])
    return tuple(sorted(p) for p in parts)


def group_kfold(
    groups: Sequence[Any],
    k: int = 5,
    *,
    labels: Sequence[int] | torch.Tensor | None = None,
    seed: int = 0,
) -> list[tuple[list[int], list[int]]]:
    """K-fold cross-validation by group (patient), stratified by group label when labels are given.

    Args:
        groups: Group id of each item.
        k: Number of folds (at most the number of groups).
        labels: Optional item labels for stratification.
        seed: Seed of the group order.

    Returns:
        ``k`` pairs ``(train, test)`` of sorted item indices; each item is in exactly one test fold and no group
        spans train and test.

    Examples:
        >>> folds = group_kfold(["a", "a", "b", "c", "d", "d"], k=2, seed=1)
        >>> sorted(i for _, test in folds for i in test)
        [0, 1, 2, 3, 4, 5]
    """
    members, strata = _group_table(groups, labels)
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= len(members):
        raise fail("k", k, f"an int in [2, number of groups = {len(members)}]")
    folds: list[list[int]] = [[] for _ in range(k)]
    sizes = [0] * k
    for stratum_groups in _shuffled_groups(members, strata, seed):
        in_stratum = [0] * k
        for name in stratum_groups:
            j = min(range(k), key=lambda f: (in_stratum[f], sizes[f], f))
            in_stratum[j] += len(members[name])
            sizes[j] += len(members[name])
            folds[j].extend(members[name])
    n = len(groups)
    out = []
    for test in folds:
        ts = set(test)
        out.append(([i for i in range(n) if i not in ts], sorted(test)))
    return out
