"""End-to-end runs of reference/train_byol.py: short CLI run, exact resume, DDP with two CPU processes, errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reference import train_byol
from reference.model import Darknet3D, load_encoder

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "reference" / "train_byol.py"
# tiny and fast: 8 frames of 32x32, small heads; the schedules are cosine so that resuming must restore them
TINY = [
    "--n-videos", "24", "--frames", "8", "--size", "32", "--batch-size", "4", "--epochs", "2",
    "--proj-hidden", "64", "--proj-dim", "32", "--width", "1.0",
    "--lr-schedule", "cosine", "--warmup-steps", "2", "--momentum-cosine", "--no-progress", "--no-probe",
]  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("WORLD_SIZE", None)
    return env


def test_cli_default_run_shortened_completes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--max-steps", "2", "--n-videos", "20", "--batch-size", "8", "--out", str(out), "--threads", "1"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "135,373 encoder parameters" in proc.stdout
    assert "probe: view matching" in proc.stdout
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert {"loss", "lr", "momentum", "rep_std", "proj_std", "data_s", "step_s"} <= set(records[0])
    assert json.loads((out / "config.json").read_text())["max_steps"] == 2
    enc = load_encoder(out / "checkpoint.pt")
    assert isinstance(enc, Darknet3D) and not enc.training
    assert not list(out.glob("*.tmp"))  # the atomic write left no temporary file


def _params(path: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return {
        **{f"online.{k}": v for k, v in ckpt["online"].items()},
        **{f"target.{k}": v for k, v in ckpt["target"].items()},
    }


@pytest.mark.parametrize("method", ["byol", "simclr"])
def test_resume_equals_uninterrupted(tmp_path: Path, method: str) -> None:
    torch.set_num_threads(1)
    full, split = tmp_path / "full", tmp_path / "split"
    args = [*TINY, "--method", method]
    # 24 clips / batch 4 = 6 steps per epoch, 12 in all; the split run stops mid-epoch 2 (step 8)
    train_byol.main([*args, "--out", str(full)])
    train_byol.main([*args, "--out", str(split), "--stop-at", "8"])
    assert torch.load(split / "checkpoint.pt", weights_only=False)["step"] == 8
    train_byol.main([*args, "--out", str(split), "--resume"])
    a = torch.load(full / "checkpoint.pt", weights_only=False)
    b = torch.load(split / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 12
    for which in ("online", "target") if method == "byol" else ("online",):
        for k, v in a[which].items():
            assert torch.equal(v, b[which][k]), f"{which}.{k} differs after resume"
    # the logs agree too, step by step
    la = [json.loads(x)["loss"] for x in (full / "log.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (split / "log.jsonl").read_text().splitlines()]
    assert la == lb and len(la) == 12


def test_resume_rejects_a_changed_config(tmp_path: Path) -> None:
    train_byol.main([*TINY, "--out", str(tmp_path), "--max-steps", "1"])
    with pytest.raises(SystemExit, match="--lr"):
        train_byol.main([*TINY, "--out", str(tmp_path), "--max-steps", "1", "--resume", "--lr", "1e-3"])
    with pytest.raises(SystemExit, match="does not exist"):
        train_byol.main([*TINY, "--out", str(tmp_path), "--resume", str(tmp_path / "nope.pt")])


def test_non_finite_loss_stops_naming_the_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = train_byol.byol_loss
    calls = {"n": 0}

    def poisoned(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = real(p1, p2, z1, z2)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(train_byol, "byol_loss", poisoned)
    with pytest.raises(train_byol.NonFiniteLossError, match="at step 3 "):
        train_byol.main([*TINY, "--out", str(tmp_path)])


def test_bad_data_folder_gives_a_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "--data" in proc.stderr and "missing" in proc.stderr and "Traceback" not in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(empty), "--out", str(tmp_path / "o")],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "labels" in proc.stderr


@pytest.mark.parametrize("method", ["byol", "simclr"])
def test_ddp_two_cpu_processes(tmp_path: Path, method: str) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(SCRIPT), *TINY, "--method", method, "--max-steps", "3", "--out", str(out), "--threads", "1",
    ]  # fmt: skip
    env = _env()
    env["MASTER_ADDR"] = "127.0.0.1"
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "processes 2" in proc.stdout
    assert "online networks of all 2 processes are identical" in proc.stdout
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 3 and len(ckpt["rng"]) == 2  # one augmentation stream per process
    assert not torch.equal(ckpt["rng"][0]["aug"], ckpt["rng"][1]["aug"])
    with pytest.raises(SystemExit, match="written by 2 process"):  # a single process cannot resume it exactly
        train_byol.main([*TINY, "--method", method, "--max-steps", "3", "--out", str(out), "--resume"])


def test_killed_run_resumes_from_its_last_periodic_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.set_num_threads(1)
    full, killed = tmp_path / "full", tmp_path / "killed"
    train_byol.main([*TINY, "--out", str(full)])
    real = train_byol.byol_loss
    calls = {"n": 0}

    def dies_at_step_10(*args: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt  # the process is killed during step 10
        return real(*args)

    monkeypatch.setattr(train_byol, "byol_loss", dies_at_step_10)
    with pytest.raises(KeyboardInterrupt):
        train_byol.main([*TINY, "--out", str(killed), "--ckpt-every", "4"])
    ckpt = torch.load(killed / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 8  # periodic at 4 and 8, epoch end at 6; step 9 is lost, 8 is mid-epoch
    monkeypatch.setattr(train_byol, "byol_loss", real)
    train_byol.main([*TINY, "--out", str(killed), "--ckpt-every", "4", "--resume"])
    a = torch.load(full / "checkpoint.pt", weights_only=False)
    b = torch.load(killed / "checkpoint.pt", weights_only=False)
    assert all(torch.equal(v, b["online"][k]) for k, v in a["online"].items())
    assert all(torch.equal(v, b["target"][k]) for k, v in a["target"].items())


def test_folder_of_unreadable_videos_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("av")
    from reference.data import folder_dataset

    (tmp_path / "a.mp4").write_bytes(b"this is not a video")
    (tmp_path / "labels.csv").write_text("file,consolidation\na.mp4,1\n")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="--data: cannot use"):
        folder_dataset(tmp_path)
    (tmp_path / "labels.csv").write_text("path,consolidation\na.mp4,1\n")
    with pytest.raises(ValueError, match="no 'file' column"):
        folder_dataset(tmp_path)


POCUS = REPO.parent / "shared" / "data" / "lus-pocus"


@pytest.mark.data
@pytest.mark.skipif(not (POCUS / "labels.csv").is_file(), reason=f"real videos not found at {POCUS}")
def test_trains_on_the_real_pocus_videos(tmp_path: Path) -> None:
    pytest.importorskip("av")
    torch.set_num_threads(1)
    args = ["--data", str(POCUS), "--frames", "8", "--size", "32", "--batch-size", "4", "--max-steps", "2"]
    summary = train_byol.main(
        [*args, "--proj-hidden", "64", "--no-progress", "--no-probe", "--out", str(tmp_path)]
    )
    assert summary["steps"] == 2 and math.isfinite(summary["final_loss"])
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert saved["config"]["data"] == str(POCUS)


@pytest.mark.data
@pytest.mark.skipif(not (POCUS / "labels.csv").is_file(), reason=f"real videos not found at {POCUS}")
def test_trains_from_the_clip_cache_with_workers(tmp_path: Path) -> None:
    """``--cache``: the first run decodes the folder into the cache, a second run reads it with 2 workers and
    sees exactly the same clips (same losses)."""
    pytest.importorskip("av")
    torch.set_num_threads(1)
    args = ["--data", str(POCUS), "--frames", "8", "--size", "24", "--batch-size", "4", "--max-steps", "2"]
    args += [
        "--proj-hidden",
        "32",
        "--proj-dim",
        "16",
        "--no-progress",
        "--no-probe",
        "--cache",
        str(tmp_path / "c"),
    ]
    a = train_byol.main([*args, "--out", str(tmp_path / "a")])
    assert len(list((tmp_path / "c").glob("*.json"))) == 1 + 131  # cache.json and one record per video
    b = train_byol.main([*args, "--out", str(tmp_path / "b"), "--workers", "2"])
    la = [json.loads(x)["loss"] for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert a["steps"] == b["steps"] == 2 and la == lb
