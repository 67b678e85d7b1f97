"""The decoded clip cache (vidaug3d.cache) and VideoFolder(cache=...): same clips as decoding, only new or changed
videos decoded again, bad or half-written entries never read, other settings refused, workers read it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("av")

from tests.test_io import frame_ids, write_video
from vidaug3d import io as vio
from vidaug3d.cache import ClipCache
from vidaug3d.datasets import VideoFolder
from vidaug3d.errors import VidaugError


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "videos"
    d.mkdir()
    for i, n in enumerate((30, 12, 45)):
        write_video(d / f"v{i}.mp4", n=n)
    (d / "labels.csv").write_text("file,label,patient\nv0.mp4,0,a\nv1.mp4,1,a\nv2.mp4,1,b\n")
    return d


def _decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every video the cache decodes."""
    seen: list[str] = []
    real = vio.read_video

    def spy(path, **kw):  # type: ignore[no-untyped-def]
        seen.append(Path(path).name)
        return real(path, **kw)

    monkeypatch.setattr(vio, "read_video", spy)
    return seen


def test_cache_holds_exactly_the_decoded_frames(folder: Path, tmp_path: Path) -> None:
    cache = ClipCache(tmp_path / "c", size=(24, 32))
    entries, bad = cache.update(sorted(folder.glob("*.mp4")))
    assert not bad and [e.num_frames for e in entries if e] == [30, 12, 45]
    for p in sorted(folder.glob("*.mp4")):
        want = vio.read_video(p, size=(24, 32))
        mm = cache.frames(p)
        assert mm.dtype.name == "uint8" and tuple(mm.shape) == tuple(want.shape)
        assert torch.equal(torch.from_numpy(mm.copy()), want)
        assert torch.equal(cache.read(p, [3, 4, 5]), want[:, 3:6])
        assert torch.equal(cache.read(p, [5, 0, 5]), want[:, [5, 0, 5]])
    with pytest.raises(VidaugError, match="indices"):
        cache.read(folder / "v1.mp4", [12])


def test_videofolder_cache_gives_the_same_clips_as_preload(folder: Path, tmp_path: Path) -> None:
    kw = dict(num_frames=8, size=(48, 64), seed=3, label_column="label", group_column="patient")
    pre = VideoFolder(folder, preload=True, **kw)
    cached = VideoFolder(folder, cache=tmp_path / "c", **kw)
    for epoch in (0, 1):
        pre.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(pre)):
            assert torch.equal(pre[i]["video"], cached[i]["video"])
    # the clips are real frames in order: the bar frames say which
    ids = frame_ids(cached[0]["video"])
    assert ids == list(range(ids[0], ids[0] + 8))
    with pytest.raises(VidaugError, match="preload"):
        VideoFolder(folder, cache=tmp_path / "c", preload=True, **kw)


def test_only_new_or_changed_videos_are_decoded_again(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _decodes(monkeypatch)
    VideoFolder(folder, cache=tmp_path / "c", size=16, label_column=None)
    assert sorted(seen) == ["v0.mp4", "v1.mp4", "v2.mp4"]
    seen.clear()
    VideoFolder(folder, cache=tmp_path / "c", size=16, label_column=None)
    assert seen == []  # everything fresh
    write_video(folder / "v1.mp4", n=20)  # changed: other size and mtime
    st = os.stat(folder / "v1.mp4")
    os.utime(folder / "v1.mp4", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    write_video(folder / "v3.mp4", n=10)  # added
    (folder / "labels.csv").write_text("file,label\nv0.mp4,0\nv1.mp4,1\nv2.mp4,1\nv3.mp4,0\n")
    ds = VideoFolder(folder, cache=tmp_path / "c", size=16, label_column=None)
    assert sorted(seen) == ["v1.mp4", "v3.mp4"]
    assert ds.video_frames(1).shape[1] == 20


def test_a_half_written_or_truncated_entry_is_never_read(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ClipCache(tmp_path / "c", size=16)
    src = folder / "v0.mp4"
    cache.update([src])
    data = next((tmp_path / "c").glob("v0-*.u8"))
    record = data.with_suffix(".json")
    # killed after the data file but before its record: the entry is incomplete
    record.unlink()
    assert ClipCache(tmp_path / "c", size=16).status(src) == "missing"
    # killed mid-write of the data: only a temporary file exists
    data.rename(data.with_name(data.name + ".tmp-123"))
    assert ClipCache(tmp_path / "c", size=16).status(src) == "missing"
    with pytest.raises(VidaugError, match="complete, fresh entry"):
        ClipCache(tmp_path / "c", size=16).frames(src)
    seen = _decodes(monkeypatch)
    cache = ClipCache(tmp_path / "c", size=16)
    cache.update([src])
    assert seen == ["v0.mp4"]
    # a truncated data file (disk full, copied in part): corrupt, decoded again
    data.write_bytes(data.read_bytes()[:100])
    assert ClipCache(tmp_path / "c", size=16).status(src) == "corrupt"
    ClipCache(tmp_path / "c", size=16).update([src])
    assert seen == ["v0.mp4", "v0.mp4"]
    assert ClipCache(tmp_path / "c", size=16).status(src) == "fresh"


def test_vanished_or_truncated_sources_are_reported_not_read(folder: Path, tmp_path: Path) -> None:
    kw = dict(size=16, label_column="label", on_error="skip")
    VideoFolder(folder, cache=tmp_path / "c", **kw)
    (folder / "v2.mp4").unlink()
    data = (folder / "v0.mp4").read_bytes()
    (folder / "v0.mp4").write_bytes(data[: len(data) // 3])  # truncated source
    with pytest.warns(UserWarning, match="bad video"):
        ds = VideoFolder(folder, cache=tmp_path / "c", **kw)
    assert [Path(p).name for p in ds.paths] == ["v1.mp4"]
    reasons = {Path(b.path).name: b.reason for b in ds.bad_files}
    assert set(reasons) == {"v0.mp4", "v2.mp4"}
    assert "not found" in reasons["v2.mp4"]
    with pytest.raises(VidaugError, match=r"v2\.mp4"):
        VideoFolder(folder, cache=tmp_path / "c", size=16, label_column="label")


def test_other_settings_or_versions_are_refused(folder: Path, tmp_path: Path) -> None:
    ClipCache(tmp_path / "c", size=16).update([folder / "v0.mp4"])
    with pytest.raises(VidaugError, match=r"size: \[16, 16\] there, \[32, 32\] asked"):
        ClipCache(tmp_path / "c", size=32)
    with pytest.raises(VidaugError, match="grayscale"):
        ClipCache(tmp_path / "c", size=16, grayscale=False)
    meta = tmp_path / "c" / "cache.json"
    settings = json.loads(meta.read_text())
    meta.write_text(json.dumps({**settings, "vidaug3d": "0.0.1"}))
    with pytest.raises(VidaugError, match=r"vidaug3d: '0\.0\.1' there"):
        ClipCache(tmp_path / "c", size=16)
    meta.write_text(json.dumps({**settings, "format": "vidaug3d-clip-cache/0"}))
    with pytest.raises(VidaugError, match="format"):
        VideoFolder(folder, cache=tmp_path / "c", size=16, label_column=None)
    with pytest.raises(VidaugError, match="cache"):
        VideoFolder(folder, cache=ClipCache(tmp_path / "d", size=8), size=16, label_column=None)


def test_dataloader_workers_read_the_cache(folder: Path, tmp_path: Path) -> None:
    ds = VideoFolder(
        folder, cache=tmp_path / "c", num_frames=4, size=16, label_column=None, clips_per_video=2
    )
    want = torch.stack([ds[i]["video"] for i in range(len(ds))])
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    got = torch.cat([b["video"] for b in loader])
    assert torch.equal(got, want)
    # the cache moves to workers without its open maps
    assert ds.cache is not None and ds.cache.__getstate__()["_maps"] == {}


def test_copied_cache_folder_is_checked_against_its_sources(folder: Path, tmp_path: Path) -> None:
    ClipCache(tmp_path / "c", size=16).update([folder / "v0.mp4"])
    shutil.copytree(tmp_path / "c", tmp_path / "c2")
    assert ClipCache(tmp_path / "c2", size=16).status(folder / "v0.mp4") == "fresh"
    assert ClipCache(tmp_path / "c2", size=16).status(folder / "v1.mp4") == "missing"
