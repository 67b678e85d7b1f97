"""Video files in: decode a clip of a video into a ``(C, T, H, W)`` uint8 tensor with PyAV.

Needs the ``io`` extra (``pip install "vidaug3d[io]"``); PyAV is imported on first use, not when ``vidaug3d`` is
imported.

Frame ``k`` of a video is the ``k``-th frame the decoder outputs (display order), counted from 0, as in
``ffmpeg``. A clip is ``num_frames`` frame indices ``start, start + stride, ...``:

- ``start="random"``: a start drawn uniformly among the starts whose clip fits in the video (from ``generator``);
- ``start="center"``: the clip centred in the video;
- ``start="uniform"``: ``num_frames`` indices spread evenly over the whole video (``stride`` is ignored);
- ``start=<int>``: that frame.

A video shorter than the clip (``(num_frames - 1) * stride + 1`` frames) is handled by ``short``:
``"loop"`` wraps the indices around (frame ``N`` is frame 0 again), ``"pad"`` repeats the last frame.

Only what the clip needs is decoded: the decoder stops after the clip's last frame, and where the container
gives a trustworthy frame count and constant frame rate it seeks to the key frame before the clip's first frame
(checked as it decodes; it falls back to decoding from the start when timestamps disagree).

Resizing (``size``) happens in FFmpeg's scaler: with ``keep_aspect=True`` the frame is scaled to fit inside
``size`` and padded with black (letterboxing, which keeps an ultrasound sector whole); with ``keep_aspect=False``
it is stretched to ``size``.

Bad files raise ``vidaug3d.errors.VidaugError`` naming the file and the reason: missing, not a video, no
video stream, zero frames, truncated or corrupt.

Examples:
    >>> import torch
    >>> sample_indices(10, 4, stride=2, start="center")
    [1, 3, 5, 7]
    >>> sample_indices(3, 5, short="loop", start=0)
    [0, 1, 2, 0, 1]
    >>> sample_indices(3, 5, short="pad", start=0)
    [0, 1, 2, 2, 2]
    >>> sample_indices(100, 4, start="random", generator=torch.Generator().manual_seed(0))
    [94, 95, 96, 97]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from vidaug3d.errors import VidaugError, fail

__all__ = ["VideoInfo", "probe", "read_clip", "read_frames", "read_video", "sample_indices"]

Start = Literal["random", "uniform", "center"] | int
Short = Literal["loop", "pad"]
PathLike = str | os.PathLike[str]

# a stream whose decoded frame count falls below this fraction of the container's declared count is truncated
_TRUNCATED_BELOW = 0.75


def _av() -> Any:
    """Import PyAV, or say how to install it."""
    try:
        import av
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "vidaug3d.io needs PyAV to decode videos; install the io extra: pip install 'vidaug3d[io]'"
        ) from err
    av.logging.set_level(av.logging.PANIC)  # keep FFmpeg's own warnings off stderr; errors still raise
    return av


def _bad(path: PathLike, reason: str) -> VidaugError:
    return fail("path", str(path), f"a readable video file ({reason})")


@dataclass(frozen=True)
class VideoInfo:
    """What a container says about its first video stream.

    Attributes:
        path: The file.
        num_frames: Number of frames: the container's count, an estimate from duration and frame rate when the
            container has none (``frames_exact=False``), or a count of decoded frames after ``probe(count=True)``.
        frames_exact: Whether ``num_frames`` was counted by decoding.
        fps: Average frame rate (frames per second).
        width: Frame width in pixels.
        height: Frame height in pixels.
        duration: Duration in seconds, or None when unknown.
        codec: Codec name (e.g. ``"h264"``).
        container: Container format name (e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``).
    """

    path: str
    num_frames: int
    frames_exact: bool
    fps: float
    width: int
    height: int
    duration: float | None
    codec: str
    container: str


def _open(path: PathLike) -> Any:
    """Open a container, turning every failure into a VidaugError that names the file and why.

    Decoding stays on the calling thread: with FFmpeg's frame threads on, a clip read hung on a real video.
    """
    av = _av()
    p = Path(path)
    if not p.exists():
        raise _bad(path, "file not found")
    if p.is_dir():
        raise _bad(path, "it is a directory")
    if p.stat().st_size == 0:
        raise _bad(path, "the file is empty")
    try:
        container = av.open(str(p), mode="r")
    except av.error.FFmpegError as err:
        raise _bad(path, f"not a video or a corrupt/truncated container: {_reason(err)}") from err
    if not container.streams.video:
        container.close()
        raise _bad(path, "no video stream in the file")
    return container


def _reason(err: BaseException) -> str:
    msg = getattr(err, "strerror", None) or str(err)
    return str(msg)


def _stream_facts(container: Any) -> tuple[Any, int, bool, float, dict[str, Any]]:
    """First video stream, its declared (or estimated) frame count, whether seeking is safe, fps, and facts."""
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    declared = int(stream.frames or 0)
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    estimate = round(duration * fps) if duration is not None and fps > 0 else 0
    n = declared if declared > 0 else estimate
    # seek only where the container's count and its duration agree (a constant frame rate)
    seekable = (
        declared > 0 and estimate > 0 and abs(declared - estimate) <= 1 and stream.time_base is not None
    )
    facts = {
        "width": int(stream.codec_context.width),
        "height": int(stream.codec_context.height),
        "codec": str(stream.codec_context.name),
        "container": str(container.format.name),
        "duration": duration,
        "declared": declared,
    }
    return stream, n, seekable, fps, facts


def probe(path: PathLike, *, count: bool = False) -> VideoInfo:
    """Read a video's metadata (and optionally count its frames by decoding them).

    Args:
        path: The video file.
        count: Decode the whole stream to count frames exactly (slower; also checks the file decodes).

    Returns:
        A ``VideoInfo``.

    Raises:
        VidaugError: The file is missing, not a video, has no video stream or no frames, or (with ``count``) is
            corrupt or truncated.
    """
    container = _open(path)
    try:
        stream, n, _, fps, facts = _stream_facts(container)
        exact = False
        header_n = n
        if count:
            n = _count_frames(path, container, stream)
            exact = True
            if n < _TRUNCATED_BELOW * header_n:
                raise _bad(
                    path, f"truncated: the container's header implies {header_n} frames, only {n} decode"
                )
        if n <= 0:
            raise _bad(path, "the video stream has zero frames")
        return VideoInfo(
            path=str(path),
            num_frames=int(n),
            frames_exact=exact,
            fps=fps,
            width=facts["width"],
            height=facts["height"],
            duration=facts["duration"],
            codec=facts["codec"],
            container=facts["container"],
        )
    finally:
        container.close()


def _count_frames(path: PathLike, container: Any, stream: Any) -> int:
    av = _av()
    n = 0
    try:
        for _ in container.decode(stream):
            n += 1
    except av.error.FFmpegError as err:
        raise _bad(path, f"corrupt or truncated: decoding failed after {n} frames: {_reason(err)}") from err
    return n


def _check_clip_args(num_frames: int, stride: int, start: Start, short: str) -> None:
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise fail("num_frames", num_frames, "an int >= 1")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise fail("stride", stride, "an int >= 1")
    if short not in ("loop", "pad"):
        raise fail("short", short, "'loop' or 'pad'")
    if isinstance(start, bool) or not (
        (isinstance(start, int) and start >= 0) or start in ("random", "uniform", "center")
    ):
        raise fail("start", start, "'random', 'uniform', 'center' or an int >= 0")


def _indices(n: int, num_frames: int, stride: int, start: Start, short: str, u: float) -> list[int]:
    """Clip indices for a video of ``n`` frames; ``u`` in [0, 1) is the random draw for ``start='random'``."""
    if start == "uniform":
        if num_frames == 1:
            return [(n - 1) // 2]
        return [round(i * (n - 1) / (num_frames - 1)) for i in range(num_frames)]
    span = (num_frames - 1) * stride + 1
    if isinstance(start, int):
        if start >= n:
            raise fail("start", start, f"a frame index below the video's {n} frames")
        s = start
    elif span <= n:
        last = n - span
        s = min(int(u * (last + 1)), last) if start == "random" else last // 2
    else:
        # the clip does not fit: looping may start anywhere, padding starts at the beginning
        s = min(int(u * n), n - 1) if (start == "random" and short == "loop") else 0
    raw = [s + k * stride for k in range(num_frames)]
    if short == "loop":
        return [i % n for i in raw]
    return [min(i, n - 1) for i in raw]


def sample_indices(
    num_video_frames: int,
    num_frames: int,
    *,
    stride: int = 1,
    start: Start = "random",
    generator: torch.Generator | None = None,
    short: Short = "loop",
) -> list[int]:
    """Frame indices of a clip (see the module docstring for the sampling rules).

    Args:
        num_video_frames: Frames in the video, ``N >= 1``.
        num_frames: Frames in the clip, ``T >= 1``.
        stride: Step between clip frames.
        start: ``"random"``, ``"uniform"``, ``"center"`` or a frame index.
        generator: Source of the random start (``start="random"``); a fresh unseeded draw if None.
        short: ``"loop"`` or ``"pad"`` for videos shorter than the clip.

    Returns:
        ``T`` indices in ``[0, N)``.
    """
    if isinstance(num_video_frames, bool) or not isinstance(num_video_frames, int) or num_video_frames < 1:
        raise fail("num_video_frames", num_video_frames, "an int >= 1")
    _check_clip_args(num_frames, stride, start, short)
    u = float(torch.rand((), generator=generator, dtype=torch.float64)) if start == "random" else 0.0
    return _indices(num_video_frames, num_frames, stride, start, short, u)


def _target_size(
    size: int | Sequence[int] | None, keep_aspect: bool, width: int, height: int
) -> tuple[int, int, int, int]:
    """(out_h, out_w, scaled_h, scaled_w) for a frame of ``height x width``."""
    if size is None:
        return height, width, height, width
    pair: Sequence[int] = (size, size) if isinstance(size, int) else size
    if (
        isinstance(size, bool)
        or not isinstance(pair, Sequence)
        or len(pair) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in pair)
    ):
        raise fail("size", size, "None, an int or (height, width) of positive ints")
    oh, ow = int(pair[0]), int(pair[1])
    if not keep_aspect:
        return oh, ow, oh, ow
    scale = min(oh / height, ow / width)
    return oh, ow, max(1, min(oh, round(height * scale))), max(1, min(ow, round(width * scale)))


class _Converter:
    """Turns decoded frames into uint8 arrays of the requested size and colour."""

    def __init__(self, size: Any, keep_aspect: bool, grayscale: bool, width: int, height: int) -> None:
        self.oh, self.ow, self.sh, self.sw = _target_size(size, keep_aspect, width, height)
        self.fmt = "gray" if grayscale else "rgb24"
        self.channels = 1 if grayscale else 3
        # FFmpeg's bicubic filter widens with the shrink factor (no aliasing) and is several times faster than
        # its "area" mode on large frames; bilinear when enlarging
        self.interp = "BICUBIC" if self.sh * self.sw < width * height else "BILINEAR"
        self.reformatter = _av().video.reformatter.VideoReformatter()

    def __call__(self, frame: Any) -> torch.Tensor:
        arr = self.reformatter.reformat(
            frame, width=self.sw, height=self.sh, format=self.fmt, interpolation=self.interp
        )
        t = torch.from_numpy(arr.to_ndarray().copy())
        if t.ndim == 2:
            t = t.unsqueeze(-1)
        t = t.permute(2, 0, 1)  # (C, h, w)
        if (self.sh, self.sw) != (self.oh, self.ow):
            canvas = torch.zeros(self.channels, self.oh, self.ow, dtype=torch.uint8)
            y0 = (self.oh - self.sh) // 2
            x0 = (self.ow - self.sw) // 2
            canvas[:, y0 : y0 + self.sh, x0 : x0 + self.sw] = t
            t = canvas
        return t


def _decode(
    path: PathLike, container: Any, stream: Any, targets: list[int], convert: _Converter, seek_to: int | None
) -> tuple[dict[int, torch.Tensor], int, bool]:
    """Decode the frames whose indices are in ``targets`` (sorted, unique).

    Returns ``(frames by index, frames in the stream up to the last one decoded, reached end of stream)``;
    raises on decode errors. With ``seek_to``
    (the first target) it seeks by timestamp and identifies frames by timestamp, and returns an empty dict if the
    timestamps turn out irregular (the caller then decodes from the start).
    """
    av = _av()
    got: dict[int, torch.Tensor] = {}
    want = set(targets)
    last = targets[-1]
    seen = 0
    if seek_to is not None:
        tb = stream.time_base
        fps = stream.average_rate
        t0 = stream.start_time or 0
        container.seek(t0 + int(seek_to / fps / tb), stream=stream, backward=True, any_frame=False)
    prev = -1
    try:
        for frame in container.decode(stream):
            if seek_to is None:
                idx = seen
            else:
                if frame.pts is None:
                    return {}, 0, False
                exact = float((frame.pts - t0) * tb * fps)
                idx = round(exact)
                if abs(exact - idx) > 0.25 or (prev >= 0 and idx != prev + 1) or (prev < 0 and idx > seek_to):
                    return {}, 0, False  # irregular timestamps or a seek past the target: not trustworthy
                prev = idx
            seen += 1
            if idx in want:
                got[idx] = convert(frame)
            if idx >= last:
                return got, seen, False
    except av.error.FFmpegError as err:
        where = f"frame {prev + 1 if seek_to is not None else seen}"
        raise _bad(path, f"corrupt or truncated: decoding failed at {where}: {_reason(err)}") from err
    if seek_to is not None:
        if prev < 0:
            return {}, 0, False  # nothing decoded after the seek: let the caller decode from the start
        return got, prev + 1, True  # frames in the stream, counted from its start
    return got, seen, True


def read_frames(
    path: PathLike,
    indices: Sequence[int],
    *,
    size: int | Sequence[int] | None = None,
    keep_aspect: bool = True,
    grayscale: bool = True,
    seek: bool = True,
) -> torch.Tensor:
    """Decode the given frames of a video.

    Args:
        path: The video file.
        indices: Frame indices (any order, repeats allowed), each in ``[0, N)``.
        size: Output ``(H, W)``, an int for square frames, or None for the video's own size.
        keep_aspect: Scale to fit inside ``size`` and pad with black (True), or stretch to ``size`` (False).
        grayscale: One luma channel (True) or RGB (False).
        seek: Allow seeking to the key frame before the first index (only used where it is safe).

    Returns:
        ``(C, T, H, W)`` uint8 with ``T = len(indices)``, ``C`` 1 or 3.

    Raises:
        VidaugError: A bad file (missing, not a video, zero frames, corrupt or truncated) or an index past the
            end of the video.
    """
    if len(indices) == 0:
        raise fail("indices", list(indices), "at least one frame index")
    if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in indices):
        raise fail("indices", list(indices), "non-negative int frame indices")
    container = _open(path)
    try:
        stream, n, seekable, _, facts = _stream_facts(container)
        clip, _ = _read(
            path,
            container,
            stream,
            n,
            seekable,
            facts,
            list(indices),
            size,
            keep_aspect,
            grayscale,
            seek,
        )
        if clip is None:
            raise fail("indices", max(indices), "frame indices inside the video (it ended earlier)")
        return clip
    finally:
        container.close()


def _read(
    path: PathLike,
    container: Any,
    stream: Any,
    n: int,
    seekable: bool,
    facts: dict[str, Any],
    indices: list[int],
    size: Any,
    keep_aspect: bool,
    grayscale: bool,
    seek: bool,
) -> tuple[torch.Tensor | None, int]:
    """Decode ``indices``; returns (clip or None if the stream ended first, frames actually in the stream)."""
    convert = _Converter(size, keep_aspect, grayscale, facts["width"], facts["height"])
    targets = sorted(set(indices))
    got: dict[int, torch.Tensor] = {}
    seen, ended = 0, False
    # seeking pays off only past the first few frames
    if seek and seekable and targets[0] >= 8:
        got, seen, ended = _decode(path, container, stream, targets, convert, seek_to=targets[0])
        if not got and not ended:  # timestamps not trustworthy: decode from the start in a fresh container
            fresh = _open(path)
            try:
                got, seen, ended = _decode(
                    path, fresh, fresh.streams.video[0], targets, convert, seek_to=None
                )
            finally:
                fresh.close()
    else:
        got, seen, ended = _decode(path, container, stream, targets, convert, seek_to=None)
    if all(i in got for i in targets):
        return torch.stack([got[i] for i in indices], dim=1), n
    # the stream ended before the last target
    if ended and seen == 0 and not got:
        implied = f" although its header implies {n} (truncated or corrupt)" if n > 0 else ""
        raise _bad(path, f"the video stream has zero frames{implied}")
    actual = seen if ended else max(got) + 1 if got else 0
    if actual < _TRUNCATED_BELOW * n:
        raise _bad(path, f"truncated: the container's header implies {n} frames, only {actual} decode")
    return None, actual


def read_clip(
    path: PathLike,
    num_frames: int,
    *,
    stride: int = 1,
    start: Start = "random",
    generator: torch.Generator | None = None,
    short: Short = "loop",
    size: int | Sequence[int] | None = None,
    keep_aspect: bool = True,
    grayscale: bool = True,
    seek: bool = True,
) -> torch.Tensor:
    """Decode a clip of ``num_frames`` frames from a video file.

    Args:
        path: The video file (anything FFmpeg reads: mp4, avi, mpeg, mov, gif, ...).
        num_frames: ``T``, frames in the clip.
        stride: Step between the clip's frames (1 = consecutive).
        start: ``"random"`` (drawn from ``generator``), ``"uniform"`` (spread over the whole video),
            ``"center"``, or a frame index.
        generator: The random source for ``start="random"``; pass a seeded one for reproducible clips.
        short: For videos shorter than the clip: ``"loop"`` wraps around, ``"pad"`` repeats the last frame.
        size: Output ``(H, W)``, an int for square, or None for the video's size.
        keep_aspect: Fit inside ``size`` and pad with black (True) or stretch (False).
        grayscale: One channel (True) or RGB (False).
        seek: Allow seeking to the key frame before the clip (used only where timestamps are regular).

    Returns:
        ``(C, T, H, W)`` uint8 tensor, ``C`` = 1 (grayscale) or 3.

    Raises:
        VidaugError: Bad arguments, or a bad file: missing, not a video, no video stream, zero frames, corrupt or
            truncated. The message names the file and the reason.
    """
    _check_clip_args(num_frames, stride, start, short)
    u = float(torch.rand((), generator=generator, dtype=torch.float64)) if start == "random" else 0.0
    container = _open(path)
    try:
        stream, n, seekable, _, facts = _stream_facts(container)
        if n <= 0:
            # no count in the container: count by decoding (rare: some raw streams)
            n = _count_frames(path, container, stream)
            if n == 0:
                raise _bad(path, "the video stream has zero frames")
            container.close()
            container = _open(path)
            stream = container.streams.video[0]
        idx = _indices(n, num_frames, stride, start, short, u)
        clip, actual = _read(
            path, container, stream, n, seekable, facts, idx, size, keep_aspect, grayscale, seek
        )
    finally:
        container.close()
    if clip is not None:
        return clip
    # the container over-stated its frame count: sample again with the true count, same random draw
    if actual <= 0:
        raise _bad(path, "the video stream has zero frames")
    if isinstance(start, int) and start >= actual:
        raise fail("start", start, f"a frame index below the video's {actual} frames")
    idx = _indices(actual, num_frames, stride, start, short, u)
    container = _open(path)
    try:
        stream, _, _, _, facts = _stream_facts(container)
        clip, _ = _read(
            path, container, stream, actual, False, facts, idx, size, keep_aspect, grayscale, False
        )
    finally:
        container.close()
    if clip is None:  # pragma: no cover - the second pass reads frames that were just seen
        raise _bad(path, "frames vanished between two decodes")
    return clip


def read_video(
    path: PathLike,
    *,
    size: int | Sequence[int] | None = None,
    keep_aspect: bool = True,
    grayscale: bool = True,
    max_frames: int | None = None,
) -> torch.Tensor:
    """Decode every frame of a video (or the first ``max_frames``).

    Meant for short videos that are sampled many times (decode once, then index): e.g.
    ``VideoFolder(..., preload=True)``. Also a full check of the file: truncation and decode errors raise.

    Args:
        path: The video file.
        size: Output ``(H, W)``, an int for square frames, or None for the video's size.
        keep_aspect: Fit inside ``size`` and pad with black (True) or stretch (False).
        grayscale: One channel (True) or RGB (False).
        max_frames: Stop after this many frames (None: all).

    Returns:
        ``(C, N, H, W)`` uint8, ``N`` the number of frames decoded.

    Raises:
        VidaugError: A bad file (missing, not a video, zero frames, truncated or corrupt).
    """
    if max_frames is not None and (
        isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1
    ):
        raise fail("max_frames", max_frames, "None or an int >= 1")
    container = _open(path)
    try:
        stream, n, _, _, facts = _stream_facts(container)
        convert = _Converter(size, keep_aspect, grayscale, facts["width"], facts["height"])
        limit = max_frames if max_frames is not None else 1 << 62
        frames: list[torch.Tensor] = []
        av = _av()
        try:
            for frame in container.decode(stream):
                frames.append(convert(frame))
                if len(frames) >= limit:
                    break
        except av.error.FFmpegError as err:
            raise _bad(
                path, f"corrupt or truncated: decoding failed at frame {len(frames)}: {_reason(err)}"
            ) from err
    finally:
        container.close()
    if not frames:
        implied = f" although its header implies {n} (truncated or corrupt)" if n > 0 else ""
        raise _bad(path, f"the video stream has zero frames{implied}")
    if max_frames is None and len(frames) < _TRUNCATED_BELOW * n:
        raise _bad(path, f"truncated: the container's header implies {n} frames, only {len(frames)} decode")
    return torch.stack(frames, dim=1)
