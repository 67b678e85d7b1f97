"""A decoded clip cache: decode a folder of videos once, then read clips from memory-mapped uint8 files.

Decoding a compressed video costs far more than training reads from it, so a dataset that cuts a fresh random
clip of every video every epoch spends its time in FFmpeg. ``ClipCache`` decodes each video once, at the
training size, with ``vidaug3d.io.read_video`` (the library's one decoding path: same resize, letterbox and
grayscale as every other reader), and stores all its frames as a raw ``(C, N, H, W)`` uint8 array. Reading a clip
is then an index into a memory map: the operating system's page cache serves it, shared by every DataLoader
worker and every process on the machine.

Layout of a cache folder::

    cache.json          the settings every entry was decoded with (format, vidaug3d version, size, colour)
    <key>.u8            one video's frames, raw C-contiguous (C, N, H, W) uint8
    <key>.json          that entry's record: the source file, its size and mtime, the array shape

One file per video, not one array with an index: a changed or added video rewrites only its own file; each entry
is completed on its own by an atomic rename, so concurrent builders (the processes of a DDP job) never rewrite a
shared index; and the frames of one channel of a video are consecutive on disk, so a clip of consecutive grayscale
frames is one contiguous read.

An entry counts as complete only when its ``.json`` exists, since the record is written (atomically) after the
data file is in place; a process killed mid-decode leaves no record and the video is decoded again. An entry is
also re-decoded when its source file's size or mtime changed or its data file has the wrong length (truncated).
A source that vanished, or no longer decodes (e.g. truncated), is reported as a bad file, never read from the old
entry. A folder written by another cache format or vidaug3d version, or with other settings, is refused.

Examples:
    >>> import tempfile
    >>> cache = ClipCache(tempfile.mkdtemp(), size=(32, 32))
    >>> cache.settings["size"]
    [32, 32]
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from vidaug3d._version import __version__
from vidaug3d.errors import VidaugError, fail

__all__ = ["CACHE_FORMAT", "CacheEntry", "ClipCache"]

CACHE_FORMAT = "vidaug3d-clip-cache/1"

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class CacheEntry:
    """One cached video.

    Attributes:
        source: The video file (absolute path).
        data: The ``.u8`` file with its frames.
        shape: ``(C, N, H, W)`` of the stored array.
    """

    source: str
    data: str
    shape: tuple[int, int, int, int]

    @property
    def num_frames(self) -> int:
        """Frames ``N`` in the video."""
        return self.shape[1]


def _source_stat(path: str) -> dict[str, int]:
    st = os.stat(path)
    return {"source_bytes": int(st.st_size), "source_mtime_ns": int(st.st_mtime_ns)}


def _write_atomic(path: Path, data: bytes | np.ndarray) -> None:
    """Write to a process-private temporary name in the same folder, then rename over ``path``."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        if isinstance(data, np.ndarray):
            data.tofile(fh)
        else:
            fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ClipCache:
    """A folder of decoded videos, one memory-mapped uint8 array per video.

    Args:
        root: The cache folder (created if absent).
        size: ``(H, W)`` (or an int) every video is decoded to, or None for each video's own size.
        keep_aspect: Letterbox (True) or stretch (False) to ``size``, as in ``vidaug3d.io.read_video``.
        grayscale: One channel (True) or RGB (False).

    Raises:
        VidaugError: ``root`` holds a cache of another format or vidaug3d version, or with other settings.
    """

    def __init__(
        self,
        root: PathLike,
        *,
        size: int | Sequence[int] | None = (112, 112),
        keep_aspect: bool = True,
        grayscale: bool = True,
    ) -> None:
        from vidaug3d import io as vio

        vio._target_size(size, keep_aspect, 1, 1)  # the reader's own argument check
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise fail("root", str(root), "a folder for the clip cache (it is a file)")
        self.size = None if size is None else (size, size) if isinstance(size, int) else tuple(size)
        self.keep_aspect, self.grayscale = bool(keep_aspect), bool(grayscale)
        self.settings: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "vidaug3d": __version__,
            "size": None if self.size is None else list(self.size),
            "keep_aspect": self.keep_aspect,
            "grayscale": self.grayscale,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        meta = self.root / "cache.json"
        if meta.is_file():
            try:
                found = json.loads(meta.read_text())
            except (OSError, ValueError) as err:
                raise fail(
                    "root", str(root), f"a clip cache folder (cache.json is unreadable: {err})"
                ) from err
            if found != self.settings:
                diff = ", ".join(
                    f"{k}: {found.get(k)!r} there, {v!r} asked"
                    for k, v in self.settings.items()
                    if found.get(k) != v
                )
                raise fail(
                    "root",
                    str(root),
                    f"a clip cache written with these settings; it was written with others ({diff}): "
                    "use another folder, or delete this one to decode again",
                )
        else:
            _write_atomic(meta, (json.dumps(self.settings, indent=1) + "\n").encode())
        self._maps: dict[str, np.memmap[Any, np.dtype[np.uint8]]] = {}
        self._entries: dict[str, CacheEntry] = {}

    # pickled into DataLoader workers: the maps are reopened lazily in each process
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_maps"] = {}
        return state

    def _key(self, source: str) -> str:
        digest = hashlib.sha1(source.encode()).hexdigest()[:16]
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(source).stem)[:40]
        return f"{stem}-{digest}"

    def _paths(self, source: str) -> tuple[Path, Path]:
        key = self._key(source)
        return self.root / f"{key}.u8", self.root / f"{key}.json"

    def status(self, source: PathLike) -> Literal["fresh", "missing", "stale", "vanished", "corrupt"]:
        """What the cache holds for ``source``.

        Returns:
            ``"fresh"`` (complete and the source unchanged), ``"missing"`` (never completed, e.g. killed
            mid-decode), ``"stale"`` (the source's size or mtime changed), ``"vanished"`` (the source file is
            gone), or ``"corrupt"`` (the record is unreadable or the data file has the wrong length).
        """
        src = str(Path(source).resolve())
        data, record = self._paths(src)
        if not os.path.exists(src):
            return "vanished"
        if not record.is_file():
            return "missing"
        try:
            rec = json.loads(record.read_text())
            shape = tuple(int(s) for s in rec["shape"])
            ok = rec["format"] == CACHE_FORMAT and rec["source"] == src and len(shape) == 4
        except (OSError, ValueError, KeyError, TypeError):
            return "corrupt"
        if not ok or not data.is_file() or data.stat().st_size != int(np.prod(shape)):
            return "corrupt"
        if {k: rec.get(k) for k in ("source_bytes", "source_mtime_ns")} != _source_stat(src):
            return "stale"
        self._entries[src] = CacheEntry(src, str(data), shape)  # type: ignore[arg-type]
        return "fresh"

    def add(self, source: PathLike) -> CacheEntry:
        """Decode ``source`` and store it (replacing any earlier entry).

        Raises:
            VidaugError: The file is missing or does not decode (the reader's message, naming the file).
        """
        from vidaug3d import io as vio

        src = str(Path(source).resolve())
        data, record = self._paths(src)
        before = _source_stat(src) if os.path.exists(src) else None
        video = vio.read_video(src, size=self.size, keep_aspect=self.keep_aspect, grayscale=self.grayscale)
        record.unlink(missing_ok=True)  # from here until the new record is in place the entry is incomplete
        _write_atomic(data, np.ascontiguousarray(video.numpy()))
        shape = tuple(int(s) for s in video.shape)
        rec = {"format": CACHE_FORMAT, "source": src, "shape": list(shape), **(before or _source_stat(src))}
        _write_atomic(record, (json.dumps(rec) + "\n").encode())
        self._maps.pop(src, None)
        entry = CacheEntry(src, str(data), shape)  # type: ignore[arg-type]
        self._entries[src] = entry
        return entry

    def update(
        self,
        sources: Iterable[PathLike],
        *,
        progress: bool = False,
        on_error: Literal["raise", "skip"] = "raise",
    ) -> tuple[list[CacheEntry | None], list[tuple[str, str]]]:
        """Make every source's entry fresh: decode the missing, stale and corrupt ones, keep the rest.

        Args:
            sources: Video files.
            progress: Show a tqdm bar over the videos that need decoding (when tqdm is installed).
            on_error: ``"raise"`` on the first bad file, or ``"skip"`` it (its slot is None).

        Returns:
            One entry (or None for a bad file) per source, and ``(file, reason)`` for each bad file.
        """
        if on_error not in ("raise", "skip"):
            raise fail("on_error", on_error, "'raise' or 'skip'")
        srcs = [str(Path(s).resolve()) for s in sources]
        states = [self.status(s) for s in srcs]
        todo = [i for i, st in enumerate(states) if st in ("missing", "stale", "corrupt")]
        entries: list[CacheEntry | None] = [
            self._entries.get(s) if st == "fresh" else None for s, st in zip(srcs, states, strict=True)
        ]
        bad: list[tuple[str, str]] = []
        for i, st in enumerate(states):
            if st == "vanished":
                err = fail(
                    "path", srcs[i], "a readable video file (file not found; its cache entry is not used)"
                )
                if on_error == "raise":
                    raise err
                bad.append((srcs[i], str(err)))
        bar: Any = None
        if progress and todo:
            try:
                from tqdm import tqdm  # type: ignore[import-untyped]

                bar = tqdm(
                    total=len(todo), desc=f"decoding into {self.root}", dynamic_ncols=True, disable=None
                )
            except ImportError:
                bar = None
        try:
            for i in todo:
                try:
                    entries[i] = self.add(srcs[i])
                except VidaugError as err:
                    if on_error == "raise":
                        raise
                    bad.append((srcs[i], str(err)))
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return entries, bad

    def frames(self, source: PathLike) -> np.memmap[Any, np.dtype[np.uint8]]:
        """The read-only ``(C, N, H, W)`` uint8 memory map of a cached video (opened once per process).

        Raises:
            VidaugError: The video has no complete entry (call ``update`` first) or its data file changed
                length since.
        """
        src = str(Path(source).resolve())
        mm = self._maps.get(src)
        if mm is not None:
            return mm
        entry = self._entries.get(src)
        if entry is None:
            if self.status(src) != "fresh":
                raise fail(
                    "source", src, f"a video with a complete, fresh entry in the clip cache {self.root}"
                )
            entry = self._entries[src]
        size = os.path.getsize(entry.data) if os.path.exists(entry.data) else -1
        if size != int(np.prod(entry.shape)):
            raise fail(
                "source",
                src,
                f"an intact cache entry ({entry.data} has {size} bytes, {int(np.prod(entry.shape))} expected)",
            )
        mm = np.memmap(entry.data, dtype=np.uint8, mode="r", shape=entry.shape)
        self._maps[src] = mm
        return mm

    def read(self, source: PathLike, indices: Sequence[int]) -> torch.Tensor:
        """Frames ``indices`` of a cached video as a fresh ``(C, T, H, W)`` uint8 tensor."""
        mm = self.frames(source)
        idx = list(indices)
        n = mm.shape[1]
        if not idx or any(not 0 <= i < n for i in idx):
            raise fail("indices", idx, f"frame indices in [0, {n})")
        lo, hi = min(idx), max(idx)
        # consecutive frames: one slice, one contiguous copy
        arr = np.array(mm[:, lo : hi + 1]) if idx == list(range(lo, hi + 1)) else np.array(mm[:, idx])
        return torch.from_numpy(arr)
