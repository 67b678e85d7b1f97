"""Tests of vidaug3d.datasets: folder datasets, bad-file handling, determinism across workers, group splits."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from vidaug3d import datasets as vds
from vidaug3d.errors import VidaugError

POCUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lus-pocus"


def write_video(path: Path, n: int, shade: int) -> None:
    av = pytest.importorskip("av", reason="video datasets need the io extra (PyAV)")
    np = pytest.importorskip("numpy")
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 48, 32, "yuv420p"
        for i in range(n):
            a = np.full((32, 48, 3), shade, np.uint8)
            a[:, : i + 1] = 255
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six videos of three patients, one labels CSV with string labels and a numeric target."""
    root = tmp_path_factory.mktemp("folder")
    (root / "sub").mkdir()
    rows = []
    for i in range(6):
        name = f"sub/v{i}.mp4" if i % 2 else f"v{i}.mp4"
        write_video(root / name, n=20 + 3 * i, shade=20 * i)
        rows.append({"file": name, "patient": f"p{i // 2}", "label": ["covid", "healthy"][i % 2], "y": i % 2})
    with (root / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "patient", "label", "y"])
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture()
def folder_with_bad(tmp_path: Path, folder: Path) -> Path:
    for p in folder.rglob("*"):
        if p.is_file():
            dst = tmp_path / p.relative_to(folder)
            dst.parent.mkdir(exist_ok=True)
            dst.write_bytes(p.read_bytes())
    (tmp_path / "v2.mp4").write_text("this is not a video")
    (tmp_path / "sub" / "v3.mp4").unlink()
    return tmp_path


def test_items_shapes_labels_groups(folder: Path) -> None:
    ds = vds.VideoFolder(folder, num_frames=4, size=(16, 24), group_column="patient")
    assert len(ds) == 6 and ds.classes == ["covid", "healthy"]
    item = ds[3]
    assert item["video"].shape == (1, 4, 16, 24) and item["video"].dtype == torch.uint8
    assert int(item["label"]) == 1 and item["group"] == "p1" and item["index"] == 3
    numeric = vds.VideoFolder(folder, label_column="y", num_frames=2, size=16, clips_per_video=3)
    assert len(numeric) == 18 and numeric.classes is None
    assert numeric.labels.tolist() == [0, 1, 0, 1, 0, 1]


def test_no_labels_csv_takes_every_video(tmp_path: Path, folder: Path) -> None:
    for p in folder.rglob("*.mp4"):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    ds = vds.VideoFolder(tmp_path, num_frames=2, size=16)
    assert ds.num_videos == 6 and (ds.labels == -1).all()


def test_deterministic_per_seed_index_epoch(folder: Path) -> None:
    ds = vds.VideoFolder(folder, num_frames=3, size=16, seed=5)
    a = ds[2]["video"]
    assert torch.equal(a, ds[2]["video"])
    starts = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        starts.add(ds[2]["video"].sum().item())
    assert len(starts) > 2  # the random start changes with the epoch
    other = vds.VideoFolder(folder, num_frames=3, size=16, seed=5)
    assert torch.equal(other[2]["video"], a)


def test_results_do_not_depend_on_num_workers(folder: Path) -> None:
    ds = vds.VideoFolder(folder, num_frames=3, size=16, seed=1, clips_per_video=2, validate="none")
    ds.set_epoch(4)
    batches = {}
    for workers in (0, 2):
        dl = DataLoader(ds, batch_size=5, num_workers=workers, shuffle=False)
        batches[workers] = torch.cat([b["video"] for b in dl])
    assert batches[0].shape == (12, 1, 3, 16, 16)
    assert torch.equal(batches[0], batches[2])


def test_preload_gives_the_same_clips(folder: Path) -> None:
    kw = dict(num_frames=4, stride=2, size=16, seed=3, clips_per_video=2, group_column="patient")
    lazy = vds.VideoFolder(folder, **kw)
    pre = vds.VideoFolder(folder, preload=True, **kw)
    assert pre.frames is not None and [f.shape[1] for f in pre.frames] == [20, 23, 26, 29, 32, 35]
    for epoch in (0, 1):
        lazy.set_epoch(epoch)
        pre.set_epoch(epoch)
        for i in range(len(lazy)):
            assert torch.equal(lazy[i]["video"], pre[i]["video"]), (epoch, i)
    assert pre.subset([4])[0]["video"].shape == (1, 4, 16, 16)


def test_preload_reports_bad_files(folder_with_bad: Path) -> None:
    with pytest.warns(UserWarning, match="2 bad video file"):
        ds = vds.VideoFolder(folder_with_bad, num_frames=2, size=16, on_error="skip", preload=True)
    assert ds.num_videos == 4 and ds.frames is not None and len(ds.frames) == 4


def test_bad_files_raise_by_default(folder_with_bad: Path) -> None:
    with pytest.raises(VidaugError, match=r"v2\.mp4"):
        vds.VideoFolder(folder_with_bad, num_frames=2, size=16)


def test_bad_files_skipped_and_reported(folder_with_bad: Path) -> None:
    with pytest.warns(UserWarning, match="2 bad video file"):
        ds = vds.VideoFolder(folder_with_bad, num_frames=2, size=16, on_error="skip")
    assert ds.num_videos == 4
    reasons = {Path(b.path).name: b.reason for b in ds.bad_files}
    assert set(reasons) == {"v2.mp4", "v3.mp4"}
    assert "not a video" in reasons["v2.mp4"] and "not found" in reasons["v3.mp4"]
    assert "v2.mp4" in ds.report()
    assert all(ds[i]["video"].shape == (1, 2, 16, 16) for i in range(len(ds)))


def test_bad_file_found_mid_epoch(folder_with_bad: Path) -> None:
    strict = vds.VideoFolder(folder_with_bad, num_frames=2, size=16, validate="none")
    with pytest.raises(VidaugError, match=r"v2\.mp4"):
        strict[2]
    lenient = vds.VideoFolder(folder_with_bad, num_frames=2, size=16, validate="none", on_error="skip")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        item = lenient[2]
    assert len(record) == 2 and "v2.mp4" in str(record[0].message) and "v3.mp4" in str(record[1].message)
    assert item["group"] == "v4.mp4"  # v2 is bad, v3 is missing: the next good video stands in
    assert {Path(b.path).name for b in lenient.bad_files} == {"v2.mp4", "v3.mp4"}


def test_constructor_errors(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(VidaugError, match="root"):
        vds.VideoFolder(tmp_path / "nope")
    with pytest.raises(VidaugError, match="root"):
        vds.VideoFolder(tmp_path)  # no videos
    with pytest.raises(VidaugError, match="label_column"):
        vds.VideoFolder(folder, label_column="nope")
    with pytest.raises(VidaugError, match="on_error"):
        vds.VideoFolder(folder, on_error="ignore")


def test_subset_keeps_settings(folder: Path) -> None:
    ds = vds.VideoFolder(folder, num_frames=2, size=16, group_column="patient")
    sub = ds.subset([1, 4])
    assert sub.groups == ["p0", "p2"] and sub.labels.tolist() == [1, 0] and len(ds) == 6
    assert sub[0]["video"].shape == (1, 2, 16, 16)


# --- splits ----------------------------------------------------------------------------------------------------


def _random_groups(seed: int, n_groups: int = 40) -> tuple[list[str], list[int]]:
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 5, (n_groups,), generator=g).tolist()
    pos = (torch.rand(n_groups, generator=g) < 0.3).tolist()
    groups, labels = [], []
    for k, (s, p) in enumerate(zip(sizes, pos, strict=True)):
        groups += [f"g{k}"] * s
        labels += [int(p)] * s
    return groups, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_split_is_a_partition_by_group(seed: int) -> None:
    groups, labels = _random_groups(seed)
    parts = vds.group_split(groups, (0.6, 0.2, 0.2), labels=labels, seed=seed)
    assert sorted(i for p in parts for i in p) == list(range(len(groups)))
    sets = [{groups[i] for i in p} for p in parts]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    n = len(groups)
    assert abs(len(parts[0]) / n - 0.6) < 0.12
    for p in parts:  # stratified: each part has positives and negatives
        assert 0 < sum(labels[i] for i in p) < len(p)
    assert parts == vds.group_split(groups, (0.6, 0.2, 0.2), labels=labels, seed=seed)
    assert parts != vds.group_split(groups, (0.6, 0.2, 0.2), labels=labels, seed=seed + 10)


@pytest.mark.parametrize("k", [2, 5])
def test_group_kfold(k: int) -> None:
    groups, labels = _random_groups(3)
    folds = vds.group_kfold(groups, k, labels=labels, seed=0)
    assert len(folds) == k
    assert sorted(i for _, test in folds for i in test) == list(range(len(groups)))
    pos = sum(labels)
    for train, test in folds:
        assert not {groups[i] for i in train} & {groups[i] for i in test}
        assert sorted(train + test) == list(range(len(groups)))
        assert abs(sum(labels[i] for i in test) - pos / k) <= 4
    with pytest.raises(VidaugError, match="k"):
        vds.group_kfold(["a", "b"], 3)


def test_split_argument_errors() -> None:
    with pytest.raises(VidaugError, match="fractions"):
        vds.group_split(["a", "b"], (0.5, 0.6))
    with pytest.raises(VidaugError, match="labels"):
        vds.group_split(["a", "b"], labels=[1])


# --- phantom dataset -----------------------------------------------------------------------------------------------


def test_phantom_dataset_batches() -> None:
    ds = vds.PhantomDataset(6, num_frames=3, size=24, seed=2)
    batch = next(iter(DataLoader(ds, batch_size=6)))
    assert batch["video"].shape == (6, 1, 3, 24, 24) and batch["video"].dtype == torch.uint8
    assert batch["boxes"].shape == (6, 3, 1, 4)
    assert batch["num_boxes"].tolist() == batch["label"].tolist()
    assert int(batch["label"].sum()) == 3
    pos = batch["label"] == 1
    assert torch.isfinite(batch["boxes"][pos]).all() and torch.isnan(batch["boxes"][~pos]).all()


# --- the real videos ---------------------------------------------------------------------------------------------


@pytest.mark.data
def test_lus_pocus_labels_groups_and_splits() -> None:
    if not (POCUS / "labels.csv").exists():
        pytest.skip(f"real lung ultrasound videos not found at {POCUS} (see DESIGN.md section 4)")
    pytest.importorskip("av", reason="video datasets need the io extra (PyAV)")
    ds = vds.lus_pocus(POCUS, num_frames=2, size=32, validate="none")
    assert ds.num_videos == 131 and int(ds.labels.sum()) == 39 and len(set(ds.groups)) == 80
    item = ds[0]
    assert item["video"].shape == (1, 2, 32, 32)
    train, val, test = vds.group_split(ds.groups, labels=ds.labels, seed=0)
    assert not {ds.groups[i] for i in train} & {ds.groups[i] for i in test}
    assert all(int(ds.labels[p].sum()) > 0 for p in (train, val, test))
    for _, test_idx in vds.group_kfold(ds.groups, 5, labels=ds.labels, seed=0):
        assert 5 <= int(ds.labels[test_idx].sum()) <= 11


@given(
    sizes=st.lists(st.integers(1, 4), min_size=3, max_size=30),
    positive=st.lists(st.booleans(), min_size=30, max_size=30),
    k=st.integers(2, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_splits_property(sizes: list[int], positive: list[bool], k: int, seed: int) -> None:
    """Any groups, labels and seed: splits are partitions that never cut a group."""
    groups = [g for g, s in enumerate(sizes) for _ in range(s)]
    labels = [int(positive[g]) for g in groups]
    n = len(groups)
    parts = vds.group_split(groups, (0.6, 0.2, 0.2), labels=labels, seed=seed)
    assert sorted(i for p in parts for i in p) == list(range(n))
    owners = [{groups[i] for i in p} for p in parts]
    assert sum(len(o) for o in owners) == len(sizes)
    k = min(k, len(sizes))
    folds = vds.group_kfold(groups, k, labels=labels, seed=seed)
    assert sorted(i for _, test in folds for i in test) == list(range(n))
    for train, test in folds:
        assert not {groups[i] for i in train} & {groups[i] for i in test}


def test_lus_pocus_root_from_argument_or_environment_and_where_it_looked(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(vds.LUS_POCUS_ENV, raising=False)
    with pytest.raises(VidaugError, match=r"looked in: .*shared/data/lus-pocus.*VIDAUG3D_LUS_POCUS"):
        vds.lus_pocus()
    monkeypatch.setenv(vds.LUS_POCUS_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(VidaugError, match="nowhere"):
        vds.lus_pocus()
    with pytest.raises(VidaugError, match="elsewhere"):
        vds.lus_pocus(tmp_path / "elsewhere")
    if (POCUS / "labels.csv").is_file():
        monkeypatch.setenv(vds.LUS_POCUS_ENV, str(POCUS))
        assert vds.lus_pocus(num_frames=2, size=16, validate="none").num_videos == 131
