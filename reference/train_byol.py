"""BYOL (or SimCLR) pretraining of a 3D Darknet-53 on lung ultrasound clips.

Reads top to bottom: arguments -> seed -> data -> model -> optimiser -> schedules -> ``train_one_epoch`` ->
checkpoint. Run from the repository root:

    python reference/train_byol.py                         # the phantom, a few minutes on 2 CPU cores
    python reference/train_byol.py --data ../shared/data/lus-pocus --epochs 20
    python reference/train_byol.py --method simclr --no-temporal
    python reference/train_byol.py --resume                 # continue runs/byol/checkpoint.pt
    torchrun --nproc_per_node=2 reference/train_byol.py     # DDP (gloo on CPU, nccl on GPU)

The two views come from ``vidaug3d``: ``TwoViews(presets.paper(temporal=...))`` applied to the batch (with
``--crop-scale``: a random resized crop before the affine; with ``--view-frames``: each view its own temporal
window of the loaded clip), each clip with its own parameters drawn from one seeded CPU generator (per process),
whose state is checkpointed.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (
    None,
    "",
):  # run as a script: make `reference` and `vidaug3d` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from reference.config import Config, parse_args
from reference.data import DataInfo, build_dataset, epoch_indices, make_loader, steps_per_epoch, to_float
from reference.ema import ema_update, momentum_schedule
from reference.heads import MLPHead
from reference.losses import byol_loss, gather_with_grad, nt_xent
from reference.model import Darknet3D, count_parameters

CKPT_FORMAT = "vidaug3d-reference-ssl/1"


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the step."""


# ----------------------------------------------------------------------------------------------- networks
class OnlineNet(nn.Module):
    """Encoder -> projector -> predictor (BYOL) or encoder -> projector (SimCLR: predictor is the identity).

    ``forward`` takes both views so that DDP sees one forward per step.
    """

    def __init__(self, encoder: Darknet3D, hidden: int, dim: int, predictor: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = MLPHead(encoder.out_dim, hidden, dim)
        self.predictor: nn.Module = MLPHead(dim, hidden, dim) if predictor else nn.Identity()

    def forward(self, v1: Tensor, v2: Tensor) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Views ``(B, C, T, H, W)`` -> per view: representations (B, D), projections and predictions (B, dim)."""
        ys, zs, ps = [], [], []
        for v in (v1, v2):
            y = self.encoder(v)
            z = self.projector(y)
            ys.append(y)
            zs.append(z)
            ps.append(self.predictor(z))
        return ys, zs, ps


class TargetNet(nn.Module):
    """BYOL's target: an EMA copy of the online encoder and projector, never trained by gradients."""

    def __init__(self, online: OnlineNet) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(online.encoder)
        self.projector = copy.deepcopy(online.projector)
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, v: Tensor) -> Tensor:
        out: Tensor = self.projector(self.encoder(v))
        return out

    @torch.no_grad()
    def update(self, online: OnlineNet, momentum: float) -> None:
        ema_update(self.encoder, online.encoder, momentum)
        ema_update(self.projector, online.projector, momentum)


def augmentation(
    temporal: bool = True,
    *,
    crop_scale: tuple[float, float] | None = None,
    size: int | None = None,
    view_frames: int | None = None,
) -> Any:
    """The paper's augmentation pipeline (Table 2), with or without its temporal ops: the one the trainer uses
    for its two views and the study for downstream training (``temporal=False``).

    Options of the trainer (``Config.crop_scale``, ``Config.view_frames``; both off by default, which gives
    ``presets.paper(temporal=temporal)`` itself): ``view_frames`` puts a ``RandomTemporalCrop(view_frames)``
    first, so that each view is its own window of the loaded clip; ``crop_scale`` puts a
    ``RandomResizedCrop(size, scale=crop_scale)`` after the paper's temporal ops and before its affine.
    """
    import vidaug3d as va

    paper = va.presets.paper(temporal=temporal)
    if crop_scale is None and view_frames is None:
        return paper
    ts: list[Any] = list(paper.transforms)
    if crop_scale is not None:
        if size is None:
            raise ValueError("augmentation: crop_scale needs the output size")
        at = next(i for i, t in enumerate(ts) if isinstance(t, va.RandomAffine))
        ts.insert(at, va.RandomResizedCrop(size, scale=tuple(crop_scale)))
    if view_frames is not None:
        ts.insert(0, va.RandomTemporalCrop(view_frames))
    return va.Compose(ts, fuse=paper.fuse)


def training_views(cfg: Config) -> Any:
    """The two views of a training batch: ``TwoViews`` of :func:`augmentation` with the run's options."""
    import vidaug3d as va

    return va.TwoViews(
        augmentation(
            temporal=not cfg.no_temporal,
            crop_scale=cfg.crop_scale,
            size=cfg.size,
            view_frames=cfg.view_frames,
        )
    )


def build_networks(cfg: Config, in_channels: int) -> tuple[OnlineNet, TargetNet | None]:
    """The online network and (BYOL only) its target, initialised from the global RNG (seed it first)."""
    encoder = Darknet3D(in_channels=in_channels, width=cfg.width)
    online = OnlineNet(encoder, cfg.proj_hidden, cfg.proj_dim, predictor=cfg.method == "byol")
    target = TargetNet(online) if cfg.method == "byol" else None
    return online, target


def ssl_loss(
    cfg: Config, online: nn.Module, target: TargetNet | None, v1: Tensor, v2: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The method's loss on two views, and view 1's representations and projections (for the collapse check)."""
    ys, zs, ps = online(v1, v2)
    if cfg.method == "byol":
        assert target is not None
        t1, t2 = target(v1), target(v2)
        loss = byol_loss(ps[0], ps[1], t1, t2)
    else:
        # under DDP the negatives are the global batch's
        loss = nt_xent(gather_with_grad(zs[0]), gather_with_grad(zs[1]), cfg.temperature)
    return loss, ys[0].detach(), zs[0].detach()


def representation_std(y: Tensor) -> float:
    """Mean over dimensions of the batch std of L2-normalised representations.

    About ``1/sqrt(D)`` for well-spread representations; near 0 means collapse to one point.
    """
    return float(F.normalize(y.float(), dim=1).std(dim=0).mean())


# ----------------------------------------------------------------------------------------------- schedules
def lr_schedule(cfg: Config, total_steps: int) -> list[float]:
    """The learning rate of every step: linear warm-up, then constant or cosine to 0."""
    out = []
    for k in range(total_steps):
        if k < cfg.warmup_steps:
            out.append(cfg.lr * (k + 1) / cfg.warmup_steps)
        elif cfg.lr_schedule == "cosine":
            span = max(1, total_steps - cfg.warmup_steps)
            out.append(cfg.lr * 0.5 * (1.0 + math.cos(math.pi * (k - cfg.warmup_steps) / span)))
        else:
            out.append(cfg.lr)
    return out


# ----------------------------------------------------------------------------------------------- runtime
def setup_distributed() -> tuple[int, int, int]:
    """Start the process group when launched by torchrun; returns ``(rank, world_size, local_rank)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    backend = (
        "nccl" if torch.cuda.is_available() and os.environ.get("VIDAUG3D_FORCE_GLOO") is None else "gloo"
    )
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


def resolve_device(cfg: Config, local_rank: int, world_size: int) -> torch.device:
    name = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit(
                f"--device: got {cfg.device!r}, but CUDA is not available here (use --device cpu)"
            )
        if world_size > 1 and name == "cuda":
            name = f"cuda:{local_rank}"
        torch.cuda.set_device(torch.device(name))
    return torch.device(name)


def resolve_amp(cfg: Config, device: torch.device) -> torch.dtype | None:
    if cfg.amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if cfg.amp == "none":
        return None
    if cfg.amp == "fp16" and device.type != "cuda":
        raise SystemExit("--amp: got 'fp16', which needs CUDA; use --amp bf16 on the CPU")
    return torch.bfloat16 if cfg.amp == "bf16" else torch.float16


def rng_state(aug_gen: torch.Generator) -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "python": random.getstate(),
        "aug": aug_gen.get_state(),
    }


def set_rng_state(state: dict[str, Any], aug_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    aug_gen.set_state(state["aug"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace`` over the old checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SystemExit(f"--resume: {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise SystemExit(f"--resume: cannot read {str(path)!r} ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise SystemExit(f"--resume: {str(path)!r} is not a checkpoint of this trainer")
    return ckpt


# Fields that may differ between a run and its resumption (they do not change what is computed).
_RESUME_FREE = {
    "resume",
    "progress",
    "log_every",
    "ckpt_every",
    "stop_at",
    "workers",
    "out",
    "probe",
    "device",
    "threads",
    "config",
    "cache",
}


def check_resume_config(cfg: Config, saved: dict[str, Any]) -> None:
    diff = {
        k: (saved.get(k), v) for k, v in asdict(cfg).items() if k not in _RESUME_FREE and saved.get(k) != v
    }
    if diff:
        lines = ", ".join(
            f"--{k.replace('_', '-')} {new!r} (checkpoint: {old!r})" for k, (old, new) in diff.items()
        )
        raise SystemExit(f"--resume: the configuration differs from the checkpoint's: {lines}")


# ----------------------------------------------------------------------------------------------- training
@dataclass
class TrainState:
    """Everything one optimisation step reads or changes; ``step`` counts steps across epochs.

    Attributes:
        cfg: The run's configuration.
        online: The online network as called (DDP-wrapped under torchrun).
        online_raw: The online network itself (its parameters feed the EMA and the checkpoint).
        target: BYOL's target network, None for SimCLR.
        views: ``TwoViews`` of the augmentation pipeline.
        aug_gen: The augmentations' generator (one stream per process).
        optimizer: Adam over ``online_raw``.
        scaler: fp16 gradient scaler, or None.
        lrs: Learning rate of every step.
        moms: EMA momentum of every step.
        device: Where the networks are.
        amp_dtype: Autocast dtype, or None.
        memory_format: ``torch.channels_last_3d`` or ``torch.contiguous_format`` for the inputs.
        world_size: Processes in the job.
        step: Steps done.
    """

    cfg: Config
    online: nn.Module
    online_raw: OnlineNet
    target: TargetNet | None
    views: Any
    aug_gen: torch.Generator
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    lrs: list[float]
    moms: list[float]
    device: torch.device
    amp_dtype: torch.dtype | None = None
    memory_format: torch.memory_format = torch.contiguous_format
    world_size: int = 1
    step: int = 0


def train_step(st: TrainState, clips: Tensor, epoch: int) -> dict[str, Any]:
    """One optimisation step on a uint8 batch ``(B, C, T, H, W)``: two views, loss, update, EMA; its log record.

    Raises:
        NonFiniteLossError: The loss is NaN or infinite (before it touches the weights; under DDP every process
            sees the same mean, so all stop).
    """
    cfg, step = st.cfg, st.step
    t0 = time.perf_counter()
    clips = clips.to(st.device, non_blocking=True)
    v1, v2 = st.views(to_float(clips), generator=st.aug_gen)
    v1, v2 = v1.contiguous(memory_format=st.memory_format), v2.contiguous(memory_format=st.memory_format)
    if st.device.type == "cuda":
        torch.cuda.synchronize(st.device)
    t_aug = time.perf_counter()
    for group in st.optimizer.param_groups:
        group["lr"] = st.lrs[step]
    amp = st.amp_dtype
    with torch.autocast(st.device.type, dtype=amp or torch.float32, enabled=amp is not None):
        loss, rep, proj = ssl_loss(cfg, st.online, st.target, v1, v2)
    loss_value = loss.detach().float()
    if st.world_size > 1:
        dist.all_reduce(loss_value)
        loss_value /= st.world_size
    loss_item = float(loss_value)
    if not math.isfinite(loss_item):
        raise NonFiniteLossError(
            f"non-finite loss ({loss_item}) at step {step + 1} (epoch {epoch}); stopping. The last checkpoint "
            f"is left as it was; try a lower --lr, --amp none, or check the data."
        )
    st.optimizer.zero_grad(set_to_none=True)
    if st.scaler is not None:
        st.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        st.scaler.step(st.optimizer)
        st.scaler.update()
    else:
        loss.backward()  # type: ignore[no-untyped-call]
        st.optimizer.step()
    if st.target is not None:
        st.target.update(st.online_raw, st.moms[step])
    st.step = step + 1
    return {
        "step": step + 1,
        "epoch": epoch,
        "loss": loss_item,
        "lr": st.lrs[step],
        "momentum": st.moms[step] if st.target is not None else None,
        "rep_std": representation_std(rep),
        "proj_std": representation_std(proj),
        "aug_s": t_aug - t0,
        "step_s": time.perf_counter() - t_aug,
    }


def train_one_epoch(
    st: TrainState,
    epoch: int,
    loader: Iterable[tuple[Tensor, Tensor]],
    end_step: int,
    *,
    log: Callable[[dict[str, Any]], None] | None = None,
    bar: Any = None,
    checkpoint: Callable[[int], None] | None = None,
) -> None:
    """One pass over this process's shard of the data, stopping early at ``end_step``.

    Log records add ``wait_s`` (time blocked on the loader) and ``data_s`` (that plus the augmentation: the share
    of the step that is not the networks).
    """
    st.online.train()
    if st.target is not None:
        st.target.train()  # the target uses batch statistics, as in BYOL
    t_end = time.perf_counter()
    for clips, _idx in loader:
        if st.step >= end_step:
            break
        t_got = time.perf_counter()
        record = train_step(st, clips, epoch)
        record["wait_s"] = t_got - t_end
        record["data_s"] = record["wait_s"] + record["aug_s"]
        if bar is not None:
            shown = {"loss": f"{record['loss']:.4f}", "lr": f"{record['lr']:.2e}"}
            if st.target is not None:
                shown["m"] = f"{record['momentum']:.4f}"
            bar.set_postfix(shown, refresh=False)
            bar.update(1)
        if log is not None and st.step % st.cfg.log_every == 0:
            log(record)
        if checkpoint is not None and st.cfg.ckpt_every and st.step % st.cfg.ckpt_every == 0:
            checkpoint(epoch)
        t_end = time.perf_counter()


# ----------------------------------------------------------------------------------------------- probe
@torch.no_grad()
def encode(encoder: Darknet3D, clips: Tensor, device: torch.device, batch_size: int = 32) -> Tensor:
    """Representations ``(N, D)`` of clips ``(N, C, T, H, W)`` (uint8 or float in [0, 1]), in eval mode."""
    was = encoder.training
    encoder.eval()
    feats = [
        encoder(to_float(clips[i : i + batch_size].to(device))).float().cpu()
        for i in range(0, len(clips), batch_size)
    ]
    encoder.train(was)
    return torch.cat(feats)


def view_matching(f1: Tensor, f2: Tensor) -> dict[str, float]:
    """How well clip i's view 1 finds its own view 2 among the N view 2s (standardised cosine similarity).

    Args:
        f1: Features of view 1, ``(N, D)``.
        f2: Features of view 2, ``(N, D)``.

    Returns:
        ``auc``: the mean share of other clips' view 2s that are less similar than the true partner (chance 0.5,
        perfect 1); ``top1``: the share of clips whose nearest view 2 is their own (chance 1/N).
    """
    both = torch.cat([f1, f2])
    mu, sd = both.mean(0), both.std(0).clamp_min(1e-8)
    a, b = F.normalize((f1 - mu) / sd, dim=1), F.normalize((f2 - mu) / sd, dim=1)
    sim = a @ b.T
    n = len(a)
    auc = float(((sim < sim.diag()[:, None]).float().sum(1) / max(1, n - 1)).mean())
    top1 = float((sim.argmax(1) == torch.arange(n)).float().mean())
    return {"auc": auc, "top1": top1}


def probe(features: Tensor, labels: Tensor, groups: Tensor | None, seed: int = 0) -> dict[str, float]:
    """5-fold (group-aware) cross-validated accuracy of a logistic regression and a 5-NN on frozen features."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = features.numpy().astype(np.float64), labels.numpy()
    if groups is not None and len(np.unique(groups.numpy())) < len(y):
        cv: Any = GroupKFold(n_splits=5)
        kw: dict[str, Any] = {"groups": groups.numpy()}
    else:
        cv, kw = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed), {}
    lin = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=5))
    return {
        "linear_acc": float(cross_val_score(lin, x, y, cv=cv, **kw).mean()),
        "knn_acc": float(cross_val_score(knn, x, y, cv=cv, **kw).mean()),
    }


def sanity_checks(
    cfg: Config, encoder: Darknet3D, dataset: Any, info: DataInfo, views: Any, device: torch.device
) -> dict[str, Any]:
    """End-of-run checks of the trained encoder against a random one (same architecture, seed + 1).

    - ``*_view_auc`` / ``*_view_top1``: two fresh augmented views of up to 256 clips; how well each clip's view 1
      finds its own view 2 among all view 2s (:func:`view_matching`). This is what the SSL objective trains for.
    - ``*_linear_acc`` / ``*_knn_acc`` (when the data has labels): 5-fold CV accuracy of a logistic regression and
      a 5-NN on frozen features of the unaugmented clips.
    """
    rng = torch.get_rng_state()
    torch.manual_seed(cfg.seed + 1)
    random_encoder = Darknet3D(in_channels=info.in_channels, width=cfg.width).to(device)
    torch.set_rng_state(rng)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(0)
    clips = torch.stack([dataset[i][0] for i in range(0, len(dataset), info.clips_per_video)])
    sub = clips[:256]
    v1, v2 = views(to_float(sub), generator=torch.Generator().manual_seed(cfg.seed + 7919))
    out: dict[str, Any] = {"n_retrieval": len(sub)}
    if info.labels is not None:
        p = info.labels.float().mean()
        out["majority_acc"] = float(max(p, 1 - p))
    for name, enc in (("trained", encoder), ("random", random_encoder)):
        for k, v in view_matching(encode(enc, v1, device), encode(enc, v2, device)).items():
            out[f"{name}_view_{k}"] = v
        if info.labels is not None and len(info.labels) >= 10:
            for k, v in probe(encode(enc, clips, device), info.labels, info.groups, cfg.seed).items():
                out[f"{name}_{k}"] = v
    return out


# ----------------------------------------------------------------------------------------------- main
def keep_freed_heap_memory() -> bool:
    """Ask glibc to keep freed memory in the heap instead of returning it to the OS every step.

    By default glibc serves large blocks with mmap and unmaps them on free, so every training step
    faults its activations in afresh: on the 2-core reference machine that was 140 s of system time
    in a 225 s default run. Raising the mmap and trim thresholds to 1 GiB (``mallopt``) made the
    same 32-step run 1.5x faster (22.8 -> 33.9 clips/s) with identical losses and ~10 % more peak
    RSS. A no-op (returns False) where the C library is not glibc.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run a pretraining job from command-line flags (and ``--config FILE``); returns the summary of :func:`run`."""
    cfg = parse_args(argv)
    keep_freed_heap_memory()
    rank, world_size, local_rank = setup_distributed()
    finished = False
    try:
        summary = run(cfg, rank=rank, world_size=world_size, local_rank=local_rank)
        finished = True
        return summary
    finally:
        if world_size > 1 and dist.is_initialized():
            if finished:
                # No process tears its connections down while another still uses them (rank 0 works
                # on after the others): without this, the first process to leave aborted now and then.
                dist.barrier()
            gc.collect()  # free everything that holds the process group while Python is fully alive
            dist.destroy_process_group()


def run(
    cfg: Config,
    data: tuple[Dataset[tuple[Tensor, int]], DataInfo] | None = None,
    *,
    rank: int = 0,
    world_size: int = 1,
    local_rank: int = 0,
) -> dict[str, Any]:
    """The whole pretraining job for a validated configuration: the one training loop of the project.

    Args:
        cfg: The configuration (``cfg.out`` receives ``config.json``, ``log.jsonl``, ``checkpoint.pt``,
            ``summary.json``).
        data: ``(dataset, info)`` to train on instead of the one ``cfg`` names (e.g. the study's training
            videos of a fold); items ``(clip uint8 (C, T, H, W), index)``.
        rank: This process's rank (from :func:`setup_distributed`).
        world_size: Processes in the job.
        local_rank: Device index on this machine.

    Returns:
        The summary written to ``summary.json`` (on rank 0; other ranks get steps and time).
    """
    is_main = rank == 0
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg, local_rank, world_size)
    amp_dtype = resolve_amp(cfg, device)
    out = Path(cfg.out)
    ckpt_path = out / "checkpoint.pt"
    resume_path = None if cfg.resume is None else ckpt_path if cfg.resume == "auto" else Path(cfg.resume)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        print(f"config:\n{cfg.to_json()}")
        cfg.save(out / "config.json")

    # seed: model init from the global RNG; augmentations from their own generator (one stream per process)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    aug_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + rank)

    # data (under DDP rank 0 fills the clip cache first, the others then find it complete)
    t0 = time.perf_counter()
    if data is not None:
        dataset, info = data
    else:
        if world_size > 1 and cfg.cache and not is_main:
            dist.barrier()
        dataset, info = build_dataset(cfg)
        if world_size > 1 and cfg.cache and is_main:
            dist.barrier()
    n = len(dataset)  # type: ignore[arg-type]
    spe = steps_per_epoch(n, cfg.batch_size, world_size)
    if spe == 0:
        raise SystemExit(
            f"--batch-size: got {cfg.batch_size}, but each of the {world_size} process(es) has only "
            f"{math.ceil(n / world_size)} clips; lower --batch-size or add data"
        )
    total_steps = cfg.epochs * spe if cfg.max_steps == 0 else min(cfg.epochs * spe, cfg.max_steps)
    end_step = total_steps if cfg.stop_at == 0 else min(cfg.stop_at, total_steps)
    if is_main:
        print(
            f"data: {info.description} ({time.perf_counter() - t0:.1f} s); {spe} steps/epoch, {total_steps} steps"
        )
    views = training_views(cfg)

    # model
    online_raw, target = build_networks(cfg, info.in_channels)
    memory_format = torch.channels_last_3d if cfg.channels_last else torch.contiguous_format
    online_raw.to(device, memory_format=memory_format)
    if target is not None:
        target.to(device, memory_format=memory_format)
    if is_main:
        n_enc = count_parameters(online_raw.encoder)
        print(
            f"model: Darknet3D width {cfg.width} channels {online_raw.encoder.channels}: {n_enc:,} encoder parameters; "
            f"online network {count_parameters(online_raw):,}; method {cfg.method}; device {device}; "
            f"amp {amp_dtype}; processes {world_size}; threads {torch.get_num_threads()}; "
            f"memory format {'channels_last_3d' if cfg.channels_last else 'contiguous'}"
        )
    online: nn.Module = online_raw
    if world_size > 1:
        online = nn.parallel.DistributedDataParallel(
            online_raw, device_ids=[device.index] if device.type == "cuda" else None
        )

    # optimiser and precomputed schedules
    optimizer = torch.optim.Adam(online_raw.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    lrs = lr_schedule(cfg, total_steps)
    moms = momentum_schedule(cfg.momentum, total_steps, cosine=cfg.momentum_cosine)

    st = TrainState(
        cfg, online, online_raw, target, views, aug_gen, optimizer, scaler, lrs, moms, device, amp_dtype,
        memory_format, world_size,
    )  # fmt: skip
    if resume_path is not None:
        ckpt = load_checkpoint(resume_path)
        check_resume_config(cfg, ckpt["config"])
        saved_world = int(ckpt.get("world_size", 1))
        if saved_world != world_size:
            raise SystemExit(
                f"--resume: the checkpoint was written by {saved_world} process(es), this run has {world_size}; "
                "resume with the same number (each process's data shard and augmentation stream depend on it)"
            )
        online_raw.load_state_dict(ckpt["online"])
        if target is not None:
            target.load_state_dict(ckpt["target"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scaler is not None and ckpt.get("scaler") is not None:
            scaler.load_state_dict(ckpt["scaler"])
        st.step = int(ckpt["step"])
        set_rng_state(ckpt["rng"][rank], aug_gen)
        if is_main:
            print(f"resumed from {str(resume_path)!r} at step {st.step}")

    def checkpoint(epoch: int) -> None:
        rngs = [rng_state(aug_gen)]
        if world_size > 1:
            gathered: list[Any] = [None] * world_size
            dist.all_gather_object(gathered, rngs[0])
            rngs = gathered
        if not is_main:
            return
        save_checkpoint(
            ckpt_path,
            {
                "format": CKPT_FORMAT,
                "config": asdict(cfg),
                "encoder_args": online_raw.encoder.config(),
                "online": online_raw.state_dict(),
                "target": None if target is None else target.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": None if scaler is None else scaler.state_dict(),
                "step": st.step,
                "epoch": epoch,
                "rng": rngs,
                "world_size": world_size,
            },
        )

    log_file = None
    if is_main:  # a fresh run starts a fresh log; a resumed one keeps the lines up to its checkpoint
        log_path = out / "log.jsonl"
        kept = []
        if resume_path is not None and log_path.is_file():
            kept = [ln for ln in log_path.read_text().splitlines() if ln.strip()]
            kept = [ln for ln in kept if json.loads(ln)["step"] <= st.step]
        log_path.write_text("".join(ln + "\n" for ln in kept))
        log_file = open(log_path, "a")  # noqa: SIM115

    def log(record: dict[str, Any]) -> None:
        if log_file is not None:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

    bar = None
    if is_main and cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=st.step, desc=cfg.method, dynamic_ncols=True)

    # train
    t_train = time.perf_counter()
    step_start = st.step
    first_loss: float | None = None
    try:
        while st.step < end_step:
            epoch, done = divmod(st.step, spe)
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            indices = epoch_indices(n, epoch, cfg.seed, rank, world_size)[done * cfg.batch_size :]
            loader = make_loader(
                dataset, indices, cfg.batch_size, cfg.workers, pin_memory=device.type == "cuda"
            )
            train_one_epoch(st, epoch, loader, end_step, log=log, bar=bar, checkpoint=checkpoint)
            if st.step % spe == 0 or st.step >= end_step:
                checkpoint(epoch if st.step % spe else epoch + 1)
    finally:
        if bar is not None:
            bar.close()
        if log_file is not None:
            log_file.close()
    wall = time.perf_counter() - t_train
    if world_size > 1:  # DDP keeps replicas identical; check it (cheap) so a broken setup cannot go unnoticed
        check = torch.stack([p.detach().double().sum() for p in online_raw.parameters()]).to(device)
        gathered_checks = [torch.empty_like(check) for _ in range(world_size)]
        dist.all_gather(gathered_checks, check)
        if not all(torch.equal(gathered_checks[0], c) for c in gathered_checks[1:]):
            raise RuntimeError("DDP: the online networks of the processes differ after training")
        if is_main:
            print(f"ddp: the online networks of all {world_size} processes are identical")

    summary: dict[str, Any] = {"steps": st.step, "train_s": wall}
    steps_run = st.step - step_start
    if is_main:
        records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
        records = [r for r in records if r["step"] <= st.step]
        if records:
            k = max(1, min(10, len(records) // 10))
            first_loss = sum(r["loss"] for r in records[:k]) / k
            last_loss = sum(r["loss"] for r in records[-k:]) / k
            data_s = sum(r["data_s"] for r in records[-steps_run:]) if steps_run else 0.0
            wait_s = sum(r.get("wait_s", 0.0) for r in records[-steps_run:]) if steps_run else 0.0
            clips = steps_run * cfg.batch_size * world_size
            summary.update(
                first_loss=first_loss,
                final_loss=last_loss,
                rep_std_first=records[0]["rep_std"],
                rep_std_final=records[-1]["rep_std"],
                proj_std_first=records[0]["proj_std"],
                proj_std_final=records[-1]["proj_std"],
                clips_per_s=clips / wall if wall > 0 else float("nan"),
                data_fraction=data_s / wall if wall > 0 else float("nan"),
                wait_fraction=wait_s / wall if wall > 0 else float("nan"),
            )
            print(
                f"done: {st.step} steps in {wall:.1f} s ({summary['clips_per_s']:.1f} clips/s over "
                f"{world_size} process(es); {100 * summary['wait_fraction']:.1f}% of the time waiting for data, "
                f"{100 * summary['data_fraction']:.1f}% in data+augmentation); "
                f"loss (mean of {k} steps) {first_loss:.4f} -> {last_loss:.4f}; "
                f"std of normalised representations {records[0]['rep_std']:.4f} -> {records[-1]['rep_std']:.4f}, "
                f"of projections {records[0]['proj_std']:.4f} -> {records[-1]['proj_std']:.4f} "
                f"(1/sqrt(dim) = {1 / math.sqrt(cfg.proj_dim):.4f} when spread out; ~0 would be collapse)"
            )
        if cfg.probe:
            res = sanity_checks(cfg, online_raw.encoder, dataset, info, views, device)
            summary["probe"] = res
            print(
                f"probe: view matching of {res['n_retrieval']} clips (two fresh augmented views; AUC, chance 0.5 / "
                f"top-1, chance {1 / res['n_retrieval']:.3f}): trained {res['trained_view_auc']:.3f} / "
                f"{res['trained_view_top1']:.3f}; random encoder {res['random_view_auc']:.3f} / "
                f"{res['random_view_top1']:.3f}"
            )
            if "trained_linear_acc" in res:
                print(
                    "probe: labels, 5-fold CV accuracy on frozen features: "
                    f"trained linear {res['trained_linear_acc']:.3f} / 5-NN {res['trained_knn_acc']:.3f}; "
                    f"random encoder linear {res['random_linear_acc']:.3f} / 5-NN {res['random_knn_acc']:.3f}; "
                    f"majority {res['majority_acc']:.3f}"
                )
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"checkpoint: {ckpt_path}")
    return summary


if __name__ == "__main__":
    try:
        main()
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            # Under torchrun, leave without interpreter finalisation: gloo's threads occasionally
            # aborted (SIGABRT/SIGSEGV) while Python tore itself down after a successful run. Every
            # file is closed and the process group destroyed by now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    except NonFiniteLossError as exc:
        raise SystemExit(f"error: {exc}") from None
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"error: {exc}") from None
    except KeyboardInterrupt:
        raise SystemExit("interrupted: the last checkpoint is intact; continue with --resume") from None
