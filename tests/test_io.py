"""Tests of vidaug3d.io: clip sampling, decoding, resizing and clear errors for bad files."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

av = pytest.importorskip("av", reason="vidaug3d.io needs the io extra (PyAV)")
np = pytest.importorskip("numpy")

from vidaug3d import io as vio  # noqa: E402
from vidaug3d.errors import VidaugError  # noqa: E402

POCUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lus-pocus"


def bar_frame(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame i has a white bar of width i + 1 on the left: the frame index can be read back after lossy coding."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : i + 1] = 255
    return a


def write_video(
    path: Path,
    n: int = 30,
    codec: str = "libx264",
    rate: int = 25,
    gop: int = 4,
    w: int = 64,
    h: int = 48,
    pix_fmt: str = "yuv420p",
) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        s.codec_context.gop_size = gop
        for i in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(bar_frame(i, h, w), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def frame_ids(clip: torch.Tensor) -> list[int]:
    """Read back the frame index of each frame of a (1, T, H, W) clip of bar frames."""
    row = clip[0, :, clip.shape[2] // 2, :].int()
    return [int((r > 128).sum()) - 1 for r in row]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    return {
        "mp4": write_video(d / "a.mp4"),
        "avi": write_video(d / "a.avi", codec="mpeg4"),
        "mkv": write_video(d / "a.mkv"),
        "gif": write_video(d / "a.gif", codec="gif", rate=10, pix_fmt="rgb8"),
        "short": write_video(d / "short.mp4", n=5),
    }


# --- sampling -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,t,stride", [(10, 4, 1), (10, 4, 3), (7, 7, 1), (50, 16, 2), (3, 8, 1), (1, 4, 2)])
@pytest.mark.parametrize("short", ["loop", "pad"])
def test_sample_indices_rules(n: int, t: int, stride: int, short: str) -> None:
    g = torch.Generator().manual_seed(n * 100 + t)
    for start in ["random", "center", "uniform", 0]:
        idx = vio.sample_indices(n, t, stride=stride, start=start, generator=g, short=short)
        assert len(idx) == t and all(0 <= i < n for i in idx)
        span = (t - 1) * stride + 1
        if start == "uniform":
            assert idx[0] == 0 and idx[-1] == n - 1 if t > 1 else True
            assert idx == sorted(idx)
        elif span <= n:
            assert all(b - a == stride for a, b in itertools.pairwise(idx))
        elif short == "pad":
            assert idx[-1] == n - 1 and idx == sorted(idx)
        else:
            assert all((b - a) % n == stride % n for a, b in itertools.pairwise(idx))


def test_random_start_covers_all_starts_and_is_seeded() -> None:
    starts = {vio.sample_indices(10, 4, generator=torch.Generator().manual_seed(s))[0] for s in range(200)}
    assert starts == set(range(7))
    a = vio.sample_indices(1000, 4, generator=torch.Generator().manual_seed(3))
    b = vio.sample_indices(1000, 4, generator=torch.Generator().manual_seed(3))
    assert a == b


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_frames=0),
        dict(stride=0),
        dict(start="middle"),
        dict(start=-1),
        dict(short="wrap"),
        dict(num_video_frames=0),
    ],
)
def test_sample_indices_rejects_bad_arguments(kwargs: dict) -> None:
    args = {"num_video_frames": 10, "num_frames": 4} | kwargs
    with pytest.raises(VidaugError, match=next(iter(kwargs))):
        vio.sample_indices(**args)


# --- decoding -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mp4", "avi", "mkv", "gif"])
def test_read_clip_returns_the_requested_frames(videos: dict[str, Path], kind: str) -> None:
    clip = vio.read_clip(videos[kind], 4, stride=3, start=11)
    assert clip.dtype == torch.uint8 and clip.shape == (1, 4, 48, 64)
    assert frame_ids(clip) == [11, 14, 17, 20]
    rgb = vio.read_clip(videos[kind], 2, start=5, grayscale=False)
    assert rgb.shape == (3, 2, 48, 64)


def test_seek_gives_the_same_frames_as_decoding_from_the_start(videos: dict[str, Path]) -> None:
    for start in [8, 13, 20, 26]:
        a = vio.read_clip(videos["mp4"], 4, start=start, seek=True)
        b = vio.read_clip(videos["mp4"], 4, start=start, seek=False)
        assert torch.equal(a, b)
        assert frame_ids(a) == list(range(start, start + 4))


def test_read_frames_any_order(videos: dict[str, Path]) -> None:
    clip = vio.read_frames(videos["mp4"], [20, 3, 3, 9])
    assert frame_ids(clip) == [20, 3, 3, 9]
    with pytest.raises(VidaugError, match="indices"):
        vio.read_frames(videos["mp4"], [5, 40])


def test_short_videos_loop_or_pad(videos: dict[str, Path]) -> None:
    loop = vio.read_clip(videos["short"], 8, start=0, short="loop")
    pad = vio.read_clip(videos["short"], 8, start=0, short="pad")
    assert frame_ids(loop) == [0, 1, 2, 3, 4, 0, 1, 2]
    assert frame_ids(pad) == [0, 1, 2, 3, 4, 4, 4, 4]


def test_uniform_and_center(videos: dict[str, Path]) -> None:
    assert frame_ids(vio.read_clip(videos["mp4"], 4, start="uniform")) == [0, 10, 19, 29]
    assert frame_ids(vio.read_clip(videos["mp4"], 4, start="center", stride=2)) == [11, 13, 15, 17]


def test_random_start_is_reproducible(videos: dict[str, Path]) -> None:
    a = vio.read_clip(videos["mp4"], 4, generator=torch.Generator().manual_seed(1))
    b = vio.read_clip(videos["mp4"], 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    seen = {
        frame_ids(vio.read_clip(videos["mp4"], 2, generator=torch.Generator().manual_seed(s)))[0]
        for s in range(12)
    }
    assert len(seen) > 3


def test_resize_keep_aspect_pads_and_stretch_fills(videos: dict[str, Path]) -> None:
    keep = vio.read_clip(videos["mp4"], 1, start=29, size=(32, 32), keep_aspect=True)
    assert keep.shape == (1, 1, 32, 32)
    # 64x48 fits into 32x32 as 32x24: 4 black rows above and below, the full-width bar inside
    assert keep[0, 0, :4].max() == 0 and keep[0, 0, -4:].max() == 0
    # frame 29's bar is 30 of 64 pixels wide: 15 of 32 after scaling, on every image row
    assert ((keep[0, 0, 4:28] > 128).sum(dim=1) == 15).all()
    stretch = vio.read_clip(videos["mp4"], 1, start=29, size=32, keep_aspect=False)
    assert stretch.shape == (1, 1, 32, 32) and ((stretch[0, 0] > 128).sum(dim=1) == 15).all()
    half = vio.read_clip(videos["mp4"], 1, start=31 // 2, size=(24, 32), keep_aspect=False)
    assert half.shape == (1, 1, 24, 32)


def test_probe(videos: dict[str, Path]) -> None:
    info = vio.probe(videos["mp4"])
    assert (info.width, info.height, info.num_frames) == (64, 48, 30)
    assert info.fps == pytest.approx(25.0)
    assert vio.probe(videos["gif"], count=True).num_frames == 30


# --- bad files --------------------------------------------------------------------------------------------------


def _zero_frame_avi(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in [*s.encode(frame), *s.encode()]:
            c.mux(p)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncate(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda d, v: d / "missing.mp4", "file not found"),
        (lambda d, v: _write(d / "empty.mp4", b""), "empty"),
        (lambda d, v: _write(d / "text.mp4", b"not a video at all\n"), "not a video"),
        (lambda d, v: d, "directory"),
        (lambda d, v: _truncate(v["mp4"], d / "cut.mp4"), "corrupt/truncated container"),
        (lambda d, v: _truncate(v["mkv"], d / "cut.mkv", 0.3), "truncated"),
        (lambda d, v: _zero_frame_avi(d / "zero.avi"), "zero frames"),
        (lambda d, v: _audio_only(d / "sound.wav"), "no video stream"),
    ],
    ids=[
        "missing",
        "empty",
        "text",
        "directory",
        "truncated-mp4",
        "truncated-mkv",
        "zero-frames",
        "audio-only",
    ],
)
def test_bad_files_raise_naming_file_and_reason(
    tmp_path: Path, videos: dict[str, Path], make, reason: str
) -> None:
    path = make(tmp_path, videos)
    with pytest.raises(VidaugError) as err:
        vio.read_clip(path, 4, start="center")
    assert str(path) in str(err.value) and reason in str(err.value)
    assert isinstance(err.value, ValueError)


def test_probe_count_detects_truncation(tmp_path: Path, videos: dict[str, Path]) -> None:
    cut = _truncate(videos["mkv"], tmp_path / "cut.mkv", 0.3)
    vio.probe(cut)  # the header alone looks fine
    with pytest.raises(VidaugError, match="truncated"):
        vio.probe(cut, count=True)


# --- the real videos ----------------------------------------------------------------------------------------------


@pytest.mark.data
def test_decodes_every_pocus_video() -> None:
    if not (POCUS / "labels.csv").exists():
        pytest.skip(f"real lung ultrasound videos not found at {POCUS} (see DESIGN.md section 4)")
    rows = list(csv.DictReader((POCUS / "labels.csv").open()))
    assert len(rows) == 131
    for r in rows:
        clip = vio.read_clip(POCUS / r["file"], 2, start=0, size=(32, 32))
        assert clip.shape == (1, 2, 32, 32) and clip.dtype == torch.uint8, r["file"]
        assert clip.float().std() > 1.0, f"{r['file']} decoded to a flat image"


def test_decoding_stops_after_the_clip(tmp_path: Path, videos: dict[str, Path]) -> None:
    """A file cut after the clip's frames still yields the clip: nothing past the clip is decoded."""
    cut = _truncate(videos["mkv"], tmp_path / "cut.mkv", 0.7)
    clip = vio.read_clip(cut, 4, start=0)
    assert frame_ids(clip) == [0, 1, 2, 3]
    with pytest.raises(VidaugError, match="truncated"):
        vio.read_clip(cut, 4, start=26)


@pytest.mark.parametrize("kind", ["mp4", "avi", "gif"])
def test_read_video_decodes_every_frame(videos: dict[str, Path], kind: str) -> None:
    full = vio.read_video(videos[kind], size=(24, 32))
    assert full.shape == (1, 30, 24, 32)
    assert torch.equal(full[:, 11:15], vio.read_clip(videos[kind], 4, start=11, size=(24, 32)))
    assert vio.read_video(videos[kind], max_frames=5).shape[1] == 5


def test_read_video_detects_truncation(tmp_path: Path, videos: dict[str, Path]) -> None:
    cut = _truncate(videos["mkv"], tmp_path / "cut.mkv", 0.6)
    with pytest.raises(VidaugError, match="truncated"):
        vio.read_video(cut)


@pytest.mark.data
@pytest.mark.slow
def test_seeking_matches_decoding_from_the_start_on_pocus() -> None:
    if not (POCUS / "labels.csv").exists():
        pytest.skip(f"real lung ultrasound videos not found at {POCUS} (see DESIGN.md section 4)")
    for r in csv.DictReader((POCUS / "labels.csv").open()):
        start = int(r["frames"]) // 2
        a = vio.read_clip(POCUS / r["file"], 2, start=start, size=16)
        b = vio.read_clip(POCUS / r["file"], 2, start=start, size=16, seek=False)
        assert torch.equal(a, b), r["file"]


@given(
    n=st.integers(1, 60),
    t=st.integers(1, 20),
    stride=st.integers(1, 5),
    start=st.one_of(st.sampled_from(["random", "center", "uniform"]), st.integers(0, 80)),
    short=st.sampled_from(["loop", "pad"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_sample_indices_property(n: int, t: int, stride: int, start, short: str, seed: int) -> None:
    """Any video length, clip shape, start and seed: T valid indices with the promised spacing."""
    if isinstance(start, int) and start >= n:
        with pytest.raises(VidaugError, match="start"):
            vio.sample_indices(n, t, stride=stride, start=start, short=short)
        return
    idx = vio.sample_indices(
        n, t, stride=stride, start=start, short=short, generator=torch.Generator().manual_seed(seed)
    )
    assert len(idx) == t and all(0 <= i < n for i in idx)
    if start == "uniform":
        assert idx == sorted(idx)
        return
    first = idx[0]
    expect = [first + j * stride for j in range(t)]
    if short == "loop":
        assert idx == [i % n for i in expect]
    else:
        assert idx == [min(i, n - 1) for i in expect]
    if (t - 1) * stride + 1 <= n and not isinstance(start, int):
        assert idx[-1] == first + (t - 1) * stride  # a clip that fits is never wrapped or padded


def test_missing_pyav_says_how_to_install(monkeypatch: pytest.MonkeyPatch, videos: dict[str, Path]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` fail
    with pytest.raises(ModuleNotFoundError, match=r"vidaug3d\[io\]"):
        vio.read_clip(videos["mp4"], 2)
