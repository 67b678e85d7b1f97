"""The whole reproduction in one command: pretraining per fold, the four downstream models, label fractions,
saliency. An orchestration of the trainer (``train_byol.run``), the evaluation (``evaluate.py``, ``saliency.py``)
and the report (``report.py``, ``plots.py``).

Usage::

    python reference/study.py --config reference/configs/study.yaml --out runs/study   # the documented run
    python reference/study.py --quick --out runs/study-quick                           # every stage, CI-sized

What it does, in order:

1. **Real videos** (``data``, default ``../shared/data/lus-pocus``; skipped with a message when absent): the
   folder is read as a :class:`vidaug3d.datasets.VideoFolder` with a decoded clip cache (``vidaug3d.cache``):
   each video is decoded once with the library's reader (grayscale, letterboxed to ``size``) and later runs read
   the cache. Downstream clips: ``clips_per_video`` clips at evenly spaced starts. Patient-level stratified
   ``folds``-fold cross-validation; in each fold every arm (``arms``: the pretraining recipe ``pretrain`` with
   overrides) is pretrained by the trainer on all the training patients' videos, without their labels, never a
   test patient's; the four models are then trained on each label fraction of the training fold and tested on
   the held-out fold. Out-of-fold predictions are pooled over the folds. In ``--quick`` mode the same chain runs
   on phantom videos written to disk as mp4 files.
2. **Phantom** (``vidaug3d.phantom``; has consolidation boxes): the trainer pretrains on unlabelled phantom
   videos plus the labelled training videos; the four models at 100 % labels, classification metrics and
   occlusion saliency IoU on the positive test videos.
3. Tables (``results.md``, ``results.json``), plots (``plots/``), the resolved configs and every pretraining run
   (``pretrain/<arm>-fold<k>/``: ``config.json``, ``log.jsonl``, ``checkpoint.pt``) in ``out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

if __package__ in (None, ""):  # run as a script: make ``reference`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference import evaluate as E
from reference import report, train_byol
from reference import saliency as S
from reference.config import Config, ConfigError, load_config_file
from reference.data import ClipTensorDataset, DataInfo, indexed, write_phantom_folder
from reference.model import Darknet3D, count_parameters, load_encoder

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "lus-pocus"

# arm tag -> trainer settings over the recipe file: the main arm, the paper's recipe, and the paper's ablations
ARMS: dict[str, dict[str, Any]] = {
    "byol": {},
    "byol_paper": {
        "momentum_cosine": False,
        "weight_decay": 0.0,
        "lr_schedule": "constant",
        "warmup_steps": 0,
    },
    "byol_notemporal": {"no_temporal": True},
    "simclr": {"method": "simclr"},
    # the library's shape-changing transforms: a random resized crop (CVRL's video range of the box area), and two
    # views from different moments (each a window of the study's ``frames`` in a loaded clip twice as long)
    "byol_crop": {"crop_scale": (0.3, 1.0)},
    "byol_tcrop": {"view_frames": "frames", "frames": "2x"},
    "byol_crop_tcrop": {"crop_scale": (0.3, 1.0), "view_frames": "frames", "frames": "2x"},
    "byol_b32": {"batch_size": 32},
}


@dataclass
class StudyConfig:
    """Settings of the study; ``--config FILE`` (YAML/JSON) sets them, flags override the file."""

    out: str = "runs/study"
    data: str = str(DEFAULT_DATA)
    cache: str = "runs/clip-cache"  # decoded clip cache of the real videos, one subfolder per clip size ("": <out>/cache)
    quick: bool = False
    real: bool = True
    phantom: bool = True
    # clips
    frames: int = 16
    size: int = 48
    stride: int = 2
    clips_per_video: int = 4  # downstream clips per video, at evenly spaced starts
    # protocol
    folds: int = 3
    seeds: tuple[int, ...] = (0,)
    ablation_seeds: tuple[int, ...] = (0,)
    ablation_fractions: tuple[float, ...] = (1.0, 0.1)  # the ablations' SSL models at these fractions only
    fractions: tuple[float, ...] = E.FRACTIONS
    methods: tuple[str, ...] = ("byol", "byol_paper")  # arms to run; "byol" is the main one
    n_boot: int = 1000
    # pretraining: a trainer recipe file plus per-arm and study-wide overrides
    pretrain: str = "reference/configs/pocus-paper-views.yaml"  # arm "byol": the paper's views
    pretrain_overrides: dict[str, Any] = field(default_factory=dict)
    arms: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: dict(v) for k, v in ARMS.items()})
    # downstream
    train: E.TrainConfig = field(
        default_factory=lambda: E.TrainConfig(epochs=10, min_steps=30, max_steps=150)
    )
    # phantom (its own clip size and downstream budget: the saliency needs classifiers that work)
    phantom_size: int = 64
    phantom_train: E.TrainConfig = field(
        default_factory=lambda: E.TrainConfig(epochs=20, min_steps=50, max_steps=300)
    )
    phantom_labelled: int = 200
    phantom_unlabelled: int = 200
    phantom_test_fraction: float = 0.4
    phantom_pretrain_epochs: int = 8
    saliency_window: tuple[int, int, int] = (4, 16, 16)
    saliency_stride: tuple[int, int, int] = (4, 8, 8)
    saliency_videos: int = 20
    threads: int = 1  # per process: on a shared 2-core machine 2 threads ran 5x slower than 1
    parallel: bool = False  # run the real-video and phantom parts in two processes
    combine: list[str] | None = None  # pool the records of these results.json files instead of running
    seed: int = 0

    @classmethod
    def quick_config(cls, **kw: Any) -> StudyConfig:
        """A few-second-per-stage configuration that runs every stage (for CI)."""
        base = dict(
            quick=True,
            cache="",
            frames=8,
            size=32,
            stride=1,
            folds=2,
            fractions=(1.0, 0.3, 0.1),
            methods=("byol", "byol_notemporal", "simclr"),
            n_boot=50,
            pretrain_overrides={
                "epochs": 1,
                "batch_size": 8,
                "proj_hidden": 64,
                "proj_dim": 32,
                "width": 0.5,
            },
            train=E.TrainConfig(epochs=1, min_steps=3, max_steps=3, batch_size=8),
            phantom_size=32,
            phantom_train=E.TrainConfig(epochs=1, min_steps=3, max_steps=3, batch_size=8),
            phantom_labelled=32,
            phantom_unlabelled=8,
            phantom_pretrain_epochs=1,
            saliency_window=(4, 8, 8),
            saliency_stride=(4, 8, 8),
            saliency_videos=3,
        )
        base.update(kw)
        return cls(**base)  # type: ignore[arg-type]

    def check(self, source: str | None = None) -> StudyConfig:
        """Raise :class:`ConfigError` naming the key (and ``source``) for a value out of range."""
        for name, low in (("folds", 2), ("size", 8), ("frames", 2), ("stride", 1), ("clips_per_video", 1)):
            if getattr(self, name) < low:
                raise ConfigError(name, f"got {getattr(self, name)!r}, expected an integer >= {low}", source)
        if "byol" not in self.methods:
            raise ConfigError(
                "methods", f"got {list(self.methods)}, expected a list that includes 'byol'", source
            )
        unknown = [m for m in self.methods if m not in self.arms]
        if unknown:
            raise ConfigError("methods", f"got {unknown}, expected arms of {sorted(self.arms)}", source)
        if not all(0 < f <= 1 for f in (*self.fractions, *self.ablation_fractions)):
            raise ConfigError(
                "fractions", f"got {list(self.fractions)}, expected fractions in (0, 1]", source
            )
        return self


class Logger:
    """Prints with elapsed time and keeps the lines for the log file."""

    def __init__(self, path: Path) -> None:
        self.t0 = time.time()
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def __call__(self, msg: str) -> None:
        line = f"[{time.time() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        with self.path.open("a") as f:
            f.write(line + "\n")


# ----------------------------------------------------------------------------------------------- data


def open_videos(
    cfg: StudyConfig, root: Path, clips_per_video: int, log: Callable[[str], None], frames: int | None = None
) -> Any:
    """The labelled folder as a cached :class:`VideoFolder` of ``frames``-frame clips (default: the study's);
    decodes only what the cache lacks (the cache holds whole videos, so every clip length shares it)."""
    from vidaug3d.datasets import VideoFolder

    cache = (Path(cfg.cache) if cfg.cache else Path(cfg.out) / "cache") / f"{root.name}-{cfg.size}px"
    t0 = time.time()
    folder = VideoFolder(
        root,
        "labels.csv",
        num_frames=frames or cfg.frames,
        stride=cfg.stride,
        size=cfg.size,
        keep_aspect=True,
        grayscale=True,
        clips_per_video=clips_per_video,
        label_column="consolidation",
        group_column="patient_id",
        seed=cfg.seed,
        on_error="skip",
        cache=cache,
    )
    log(f"videos: {folder.num_videos} in {root} (cache {cache}, {time.time() - t0:.1f}s); {folder.report()}")
    return folder


def fixed_clips(folder: Any, length: int, per_video: int, stride: int) -> E.ClipData:
    """``per_video`` clips of every video at evenly spaced starts (the downstream clips), from the cache."""
    from vidaug3d.io import sample_indices

    clips, owner = [], []
    for v in range(folder.num_videos):
        fr = folder.video_frames(v)
        n = int(fr.shape[1])
        last = max(0, n - ((length - 1) * stride + 1))
        for s in np.linspace(0, last, per_video).round().astype(int):
            idx = sample_indices(n, length, stride=stride, start=int(s), short="loop")
            clips.append(torch.from_numpy(np.ascontiguousarray(fr[:, idx])))
            owner.append(v)
    names = [str(Path(p).name) for p in folder.paths]
    return E.ClipData(
        torch.stack(clips), torch.tensor(owner), folder.labels.numpy(), np.asarray(folder.groups), names
    )


# ------------------------------------------------------------------------------------------ pretraining


def trainer_config(cfg: StudyConfig, tag: str, out: Path, seed: int, **extra: Any) -> Config:
    """The trainer's configuration of one pretraining run: the recipe file, the arm, the study's overrides."""
    path = Path(cfg.pretrain)
    path = path if path.is_absolute() or path.is_file() else REPO / path
    values = load_config_file(path)
    values.update(cfg.pretrain_overrides)
    values.update(
        frames=cfg.frames, size=cfg.size, stride=cfg.stride, out=str(out), seed=seed, threads=cfg.threads,
        progress=False, probe=False, config=str(path), data=None, resume=None,
    )  # fmt: skip
    values.update(extra)
    frames = values["frames"]  # what the downstream clips have
    arm = dict(cfg.arms[tag])
    # an arm that loads longer clips for its views: "frames": "2x" (twice the study's), "view_frames": "frames"
    if arm.get("frames") == "2x":
        arm["frames"] = 2 * frames
    if arm.get("view_frames") == "frames":
        arm["view_frames"] = frames
    values.update(arm)
    try:
        tcfg = Config(**values).validate()
    except (ConfigError, TypeError) as exc:
        key, msg = (exc.key, exc.message) if isinstance(exc, ConfigError) else ("arms", str(exc))
        raise ConfigError(key, msg, f"{path} (arm {tag!r})") from None
    seen = tcfg.view_frames or tcfg.frames
    if seen != frames:
        raise ConfigError(
            "arms",
            f"arm {tag!r}: its encoder sees {seen} frames, the downstream clips have {frames} (set view_frames)",
            str(path),
        )
    return tcfg


def pretrain(
    tcfg: Config, dataset: Any, description: str, log: Callable[[str], None]
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]], dict[str, Any]]:
    """Run the trainer on ``dataset`` (items ``(clip, index)``); the encoder's weights, the step log, the summary."""
    t0 = time.time()
    out = Path(tcfg.out)
    done = out / "summary.json"
    if done.is_file() and (out / "config.json").read_text() == tcfg.to_json() + "\n":
        # a finished run of this exact configuration (e.g. before the study was stopped): reuse it
        summary = json.loads(done.read_text())
        log(f"  reusing the finished pretraining run {out} (same config.json)")
    else:
        info = DataInfo(in_channels=1, labels=None, groups=None, description=description)
        summary = train_byol.run(tcfg, data=(dataset, info))
    history = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
    log(
        f"  pretrained {Path(tcfg.out).name}: {summary['steps']} steps in {time.time() - t0:.0f}s "
        f"({summary.get('clips_per_s', float('nan')):.1f} clips/s); loss {summary.get('first_loss', 0):.3f} -> "
        f"{summary.get('final_loss', 0):.3f}; rep std {summary.get('rep_std_first', 0):.4f} -> "
        f"{summary.get('rep_std_final', 0):.4f}"
    )
    return E.clone_state(load_encoder(out / "checkpoint.pt")), history, summary


def run_cv(cfg: StudyConfig, root: Path, source: str, log: Logger) -> dict[str, Any]:
    """Cross-validated label-fraction study (pretraining per fold and arm, the four models)."""
    out = Path(cfg.out)
    recipe = trainer_config(cfg, "byol", out, cfg.seed)
    folder = open_videos(cfg, root, recipe.clips_per_video, log)
    data = fixed_clips(folder, cfg.frames, cfg.clips_per_video, cfg.stride)
    log(
        f"{source}: {data.num_videos} videos, {len(np.unique(data.groups))} patients, {int(data.labels.sum())} "
        f"positive; {data.clips.shape[0]} downstream clips {tuple(data.clips.shape[1:])}"
    )
    folds = E.patient_folds(data.labels, data.groups, cfg.folds, seed=cfg.seed)
    folders = {(recipe.frames, recipe.clips_per_video): folder}
    aug_ft = train_byol.augmentation(temporal=False)
    records: list[dict[str, Any]] = []
    histories: dict[str, list[dict[str, Any]]] = {}
    fold_info, pretrain_info = [], {}
    for k, (tr, te) in enumerate(folds):
        assert not set(data.groups[tr]) & set(data.groups[te])
        fold_info.append(
            {
                "fold": k,
                "train_videos": len(tr),
                "test_videos": len(te),
                "test_patients": len(set(data.groups[te])),
            }
        )
        log(
            f"fold {k + 1}/{cfg.folds}: {len(tr)} train videos (pretraining: all, unlabelled), {len(te)} test"
        )
        for tag in cfg.methods:
            tcfg = trainer_config(cfg, tag, out / "pretrain" / f"{tag}-fold{k}", cfg.seed + k)
            if (tcfg.frames, tcfg.clips_per_video) not in folders:  # an arm that loads longer clips
                folders[tcfg.frames, tcfg.clips_per_video] = open_videos(
                    cfg, root, tcfg.clips_per_video, log, frames=tcfg.frames
                )
            # the training patients' videos only
            pool = indexed(folders[tcfg.frames, tcfg.clips_per_video].subset([int(i) for i in tr]))
            desc = f"fold {k} training videos ({len(tr)}), {tcfg.frames}-frame clips"
            state, hist, summary = pretrain(tcfg, pool, desc, log)
            histories[f"{tag}/fold{k}"] = hist
            pretrain_info[f"{tag}/fold{k}"] = {"config": dataclasses.asdict(tcfg), "summary": summary}
            main = tag == "byol"
            records += E.evaluate_fold(
                data,
                tr,
                te,
                lambda w=tcfg.width: Darknet3D(in_channels=1, width=w),
                state,
                cfg.train,
                models=E.MODELS if main else ("ssl_fe", "ssl_ft"),
                fractions=cfg.fractions if main else cfg.ablation_fractions,
                seeds=cfg.seeds if main else cfg.ablation_seeds,
                augment=aug_ft,
                tag=tag,
                log=log,
            )
        # what has finished survives a cut run: --combine pools this file like a results.json
        partial = {
            "real": {"records": records, "labels": data.labels.tolist(), "groups": data.groups.tolist()}
        }
        (out / "results-partial.json").write_text(json.dumps(report.jsonable(partial)))
    rows = E.summarize(records, data, n_boot=cfg.n_boot, seed=cfg.seed)
    return {
        "rows": rows,
        "paired": report.paired_rows(records, data.labels, data.groups, n_boot=cfg.n_boot, seed=cfg.seed),
        "labels": data.labels.tolist(),
        "groups": data.groups.tolist(),
        "records": records,
        "pretrain_history": histories,
        "pretrain": pretrain_info,
        "folds": fold_info,
        "bad_files": [dataclasses.asdict(b) for b in folder.bad_files],
        "augment_downstream": "vidaug3d.presets.paper(temporal=False)",
        "source": source,
        "n_videos": data.num_videos,
        "n_patients": len(np.unique(data.groups)),
        "n_positive": int(data.labels.sum()),
    }


def run_phantom(cfg: StudyConfig, out: Path, log: Logger) -> dict[str, Any]:
    """Phantom: pretraining, the four models at 100 % labels, and saliency IoU against the known boxes."""
    import vidaug3d.phantom as ph

    t0 = time.time()
    size = cfg.phantom_size
    lab = ph.make_dataset(cfg.phantom_labelled, num_frames=cfg.frames, size=size, seed=cfg.seed + 1000)
    unl = ph.make_dataset(cfg.phantom_unlabelled, num_frames=cfg.frames, size=size, seed=cfg.seed + 2000)
    log(
        f"phantom: rendered {cfg.phantom_labelled}+{cfg.phantom_unlabelled} videos in {time.time() - t0:.1f}s"
    )
    n = len(lab)
    labels = lab.labels.numpy()
    groups = np.arange(n)  # one phantom "patient" per video
    data = E.ClipData(lab.videos, torch.arange(n), labels, groups, [f"phantom{i}" for i in range(n)])
    from sklearn.model_selection import train_test_split

    tr, te = train_test_split(
        np.arange(n), test_size=cfg.phantom_test_fraction, stratify=labels, random_state=cfg.seed
    )
    tr, te = np.sort(tr), np.sort(te)
    # pretraining: unlabelled videos plus the labelled training videos, never the test videos
    pool = ClipTensorDataset(torch.cat([unl.videos, lab.videos[tr]]))
    tcfg = trainer_config(
        cfg, "byol", out / "pretrain" / "byol-phantom", cfg.seed, size=size, stride=1,
        epochs=cfg.phantom_pretrain_epochs, clips_per_video=1,
    )  # fmt: skip
    state, hist, _ = pretrain(tcfg, pool, f"phantom: {len(pool)} videos", log)
    aug_ft = train_byol.augmentation(temporal=False)

    def factory() -> nn.Module:
        return Darknet3D(in_channels=1, width=tcfg.width)

    rows, models = [], {}
    for kind in E.MODELS:
        prob, model, _ = E.run_model(
            kind, data, tr, te, factory, state, cfg.phantom_train, seed=cfg.seed, augment=aug_ft
        )
        models[kind] = model
        ci = E.bootstrap_ci(labels[te], prob, groups[te], n_boot=cfg.n_boot, seed=cfg.seed)
        rows.append({"model": kind, **{m: {"mean": v[0], "low": v[1], "high": v[2]} for m, v in ci.items()}})
        log(f"  phantom {kind:8s} acc={ci['accuracy'][0]:.3f} auc={ci['auc'][0]:.3f}")
    pos = [int(i) for i in te if labels[i] == 1][: cfg.saliency_videos]
    scorers: dict[str, Callable[[torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {}
    for kind in E.MODELS:
        scorers[f"{kind}/logit"] = lambda v, m=models[kind]: S.logit_score(m)
    scorers["ssl/feature"] = lambda v: S.feature_distance_score(models["ssl_fe"].encoder, v)
    scorers["rand/feature"] = lambda v: S.feature_distance_score(models["rand_fe"].encoder, v)
    t0 = time.time()
    sal_summary, examples = S.saliency_study(
        scorers,
        lab.videos,
        lab.boxes,
        pos,
        cfg.saliency_window,
        cfg.saliency_stride,
        examples_of="ssl_fe/logit",
    )
    log(f"  saliency: {len(pos)} videos x {len(scorers)} scorers in {time.time() - t0:.1f}s")
    for name, summary in sal_summary.items():
        log(f"  saliency {name:14s} IoU={summary['iou'][0]:.3f} wIoU={summary['wiou'][0]:.3f}")
    return {
        "rows": rows,
        "saliency": sal_summary,
        "pretrain_history": {"byol/phantom": hist},
        "examples": examples,
        "n_train": len(tr),
        "n_test": len(te),
        "n_unlabelled": cfg.phantom_unlabelled,
    }


# ----------------------------------------------------------------------------------------------- run


def _run_part(part: str, cfg: StudyConfig, log: Logger | None = None) -> tuple[dict[str, Any] | None, float]:
    """One part of the study (``"real"`` or ``"phantom"``); its own log file when run in a worker process."""
    out = Path(cfg.out)
    if log is None:
        log = Logger(out / f"study-{part}.log")
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
    t0 = time.time()
    res = None
    if part == "phantom":
        res = run_phantom(cfg, out, log)
    elif cfg.quick:  # the real-video chain on phantom mp4 files, so that CI runs every stage without the data
        root = write_phantom_folder(out / "quick-videos", 16, 2 * cfg.frames, cfg.size, cfg.seed + 3000)
        res = run_cv(cfg, root, "phantom stand-in (--quick)", log)
    elif Path(cfg.data, "labels.csv").is_file():
        res = run_cv(cfg, Path(cfg.data), "real POCUS videos", log)
    else:
        log(f"real videos: {cfg.data}/labels.csv not found, skipping the real-video part")
    return res, time.time() - t0


def run_study(cfg: StudyConfig) -> dict[str, Any]:
    """Run every enabled part, write ``results.json``, ``results.md`` and ``plots/`` into ``cfg.out``."""
    from benchmarks._common import git_commit  # the project's one commit lookup (namespace package)

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Logger(out / "study.log")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    t_start = time.time()
    (out / "study-config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1, default=str) + "\n")
    log(f"config: {json.dumps(dataclasses.asdict(cfg), default=str)}")
    recipe = trainer_config(cfg, "byol", out, cfg.seed)
    enc = Darknet3D(in_channels=1, width=recipe.width)
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "threads": torch.get_num_threads(),
        "encoder_params": count_parameters(enc),
        "encoder_out_dim": int(enc.out_dim),
        "git_commit": git_commit(),
    }
    log(f"environment: {env}")
    results: dict[str, Any] = {"config": dataclasses.asdict(cfg), "env": env, "wall_s": {}}
    parts = [p for p in ("real", "phantom") if getattr(cfg, p)]
    if cfg.parallel and len(parts) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        log(f"running the parts {parts} in {len(parts)} processes (logs: study-<part>.log)")
        with ProcessPoolExecutor(len(parts), mp_context=mp.get_context("spawn")) as pool:
            futures = {p: pool.submit(_run_part, p, cfg) for p in parts}
            outcomes = {p: f.result() for p, f in futures.items()}
    else:
        outcomes = {p: _run_part(p, cfg, log) for p in parts}
    for p, (res, wall) in outcomes.items():
        if res is not None:
            results[p] = res
        results["wall_s"][p] = wall
    results["wall_s"]["total"] = time.time() - t_start
    examples = results.get("phantom", {}).pop("examples", None)
    md = report.tables_markdown(results)
    (out / "results.md").write_text(md + f"\nTotal wall time: {results['wall_s']['total']:.0f} s\n")
    (out / "results.json").write_text(json.dumps(report.jsonable(results), indent=1))
    try:
        from reference import plots

        written = plots.write_all(results, examples, out / "plots")
        log(f"plots: {', '.join(str(p) for p in written)}")
    except ImportError as exc:  # matplotlib is an optional extra
        log(f"plots skipped: {exc}")
    log(f"done in {results['wall_s']['total']:.1f}s; tables in {out / 'results.md'}")
    print(md)
    return results


def parse_args(argv: Sequence[str] | None = None) -> StudyConfig:
    """Command-line flags of the study (over ``--config FILE``, over the defaults or ``--quick``'s)."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--config", default=None, help="study settings file (YAML or JSON; keys of StudyConfig)")
    p.add_argument("--out", default=None, help="output folder (default runs/study or runs/study-quick)")
    p.add_argument("--data", default=None, help="folder with labels.csv and the videos")
    p.add_argument(
        "--quick", action="store_true", help="tiny settings on phantom videos only, about a minute"
    )
    p.add_argument("--no-real", action="store_true", help="skip the real-video part")
    p.add_argument("--no-phantom", action="store_true", help="skip the phantom part")
    p.add_argument("--folds", type=int, default=None)
    p.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="seeds of the main arm's downstream repeats"
    )
    p.add_argument("--methods", nargs="+", default=None, help="arms to run (default: byol byol_paper)")
    p.add_argument("--pretrain", default=None, help="the trainer recipe file every arm starts from")
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads per process (default 1)")
    p.add_argument("--parallel", action="store_true", help="run the real and phantom parts in two processes")
    p.add_argument(
        "--combine",
        nargs="+",
        default=None,
        metavar="RESULTS_JSON[:SUFFIX]",
        help="instead of running: pool the real-video records of these results.json files into --out "
        "(':SUFFIX' renames that run's arms to ARM_SUFFIX, to pair another setting against the first run)",
    )
    a = p.parse_args(argv)
    kw: dict[str, Any] = {}
    if a.config is not None:
        try:
            kw = load_config_file(a.config, StudyConfig)
        except ConfigError as exc:
            p.error(str(exc))
    for name in ("data", "folds", "size", "frames", "threads", "pretrain"):
        if getattr(a, name) is not None:
            kw[name] = getattr(a, name)
    if a.seeds is not None:
        kw["seeds"] = tuple(a.seeds)
    if a.methods is not None:
        kw["methods"] = tuple(a.methods)
    for name in ("train", "phantom_train"):
        if isinstance(kw.get(name), dict):
            kw[name] = E.TrainConfig(**kw[name])
    cfg = StudyConfig.quick_config(**kw) if a.quick else StudyConfig(**kw)
    cfg.out = a.out or kw.get("out") or ("runs/study-quick" if a.quick else "runs/study")
    if a.no_real:
        cfg.real = False
    if a.no_phantom:
        cfg.phantom = False
    cfg.parallel = a.parallel or cfg.parallel
    cfg.combine = a.combine
    try:
        cfg.check(a.config if a.config is not None else None)
    except ConfigError as exc:
        p.error(str(exc))
    return cfg


def main(argv: Sequence[str] | None = None) -> None:
    cfg = parse_args(argv)
    train_byol.keep_freed_heap_memory()  # the trainer's allocator setting: no page-fault storm on every step
    if cfg.combine:
        report.combine_results(cfg.combine, cfg.out, cfg.data, n_boot=cfg.n_boot, seed=cfg.seed)
    else:
        run_study(cfg)


if __name__ == "__main__":
    main()
