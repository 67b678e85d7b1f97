"""reference/study.py: the --quick chain end to end (trainer pretraining per fold, the cache, the four models,
tables and plots), that no fold's pretraining sees a test patient's video, and its config-file errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reference import evaluate as E
from reference import report, study, train_byol


@pytest.mark.slow
def test_quick_study_end_to_end_and_pretraining_never_sees_test_patients(tmp_path, monkeypatch) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("av")
    folds_seen: list[list[tuple[np.ndarray, np.ndarray]]] = []
    real_folds = E.patient_folds

    def spy_folds(*args, **kwargs):
        folds = real_folds(*args, **kwargs)
        folds_seen.append(folds)
        return folds

    pools: list[tuple[str, set[str]]] = []  # (run folder, videos the trainer was given)
    real_run = train_byol.run

    def spy_run(cfg, data=None, **kwargs):
        ds = data[0]
        pools.append((cfg.out, set(ds.ds.paths) if hasattr(ds, "ds") else set()))
        return real_run(cfg, data, **kwargs)

    monkeypatch.setattr(E, "patient_folds", spy_folds)
    monkeypatch.setattr(train_byol, "run", spy_run)
    cfg = study.StudyConfig.quick_config(out=str(tmp_path / "study"), threads=1)
    results = study.run_study(cfg)

    out = tmp_path / "study"
    md = (out / "results.md").read_text()
    assert md.count("|") > 50 and "The paper's Table 3" in md and "| SSL fine-tuned (BYOL) | 133,880 |" in md
    for name in ("label_fractions.png", "pretraining.png", "saliency.png"):
        assert (out / "plots" / name).stat().st_size > 1000
    rows = results["real"]["rows"]
    assert {(r["tag"], r["model"]) for r in rows} >= {("byol", m) for m in E.MODELS}
    assert {r["tag"] for r in rows} == set(cfg.methods)
    assert {r["fraction"] for r in rows} == set(cfg.fractions)
    assert set(results["phantom"]["saliency"]) >= {f"{m}/logit" for m in E.MODELS}
    assert "| SSL Fine-Tuned (logit) - Fully-Supervised (logit) |" in md  # the paired saliency table
    # every pretraining ran through the trainer and left its resolved config and log
    for tag in cfg.methods:
        for k in range(cfg.folds):
            run = out / "pretrain" / f"{tag}-fold{k}"
            assert (run / "config.json").is_file() and (run / "log.jsonl").read_text().count("\n") >= 1
    # leakage: fold k's pretraining got every training video of fold k and no test video
    (folds,) = folds_seen
    paths = [str(p) for p in sorted((out / "quick-videos").glob("*.mp4"))]
    fold_pools = [p for p in pools if "fold" in Path(p[0]).name]
    assert len(fold_pools) == cfg.folds * len(cfg.methods)
    for run_dir, pool in fold_pools:
        k = int(Path(run_dir).name.rsplit("fold", 1)[1])
        tr, te = folds[k]
        assert pool == {paths[i] for i in tr}
        assert not pool & {paths[i] for i in te}
    # --combine: pooling one run reproduces its tables; the same run twice is refused (same seeds twice)
    combined = report.combine_results(
        [str(out / "results.json")], str(tmp_path / "comb"), cfg.data, n_boot=cfg.n_boot
    )
    got_auc, want_auc = [r["auc"] for r in combined["real"]["rows"]], [r["auc"] for r in rows]
    assert len(got_auc) == len(want_auc)
    for g, w in zip(got_auc, want_auc, strict=True):
        assert g.keys() == w.keys()
        assert list(g.values()) == pytest.approx(list(w.values()), nan_ok=True)
    with pytest.raises(SystemExit, match="same seed twice"):
        report.combine_results([str(out / "results.json")] * 2, str(tmp_path / "comb2"), cfg.data)
    # the same run again as another setting (":again"): its arms pair against the first run's main arm, and
    # the same predictions give a difference of exactly zero
    paired = report.combine_results(
        [str(out / "results.json"), str(out / "results.json") + ":again"],
        str(tmp_path / "comb3"),
        cfg.data,
        n_boot=cfg.n_boot,
    )["real"]["paired"]
    renamed = [r for r in paired if r["comparison"].startswith("SSL Feature Extractor: byol_again - byol")]
    assert renamed and all(r["auc_diff"] == 0.0 for r in renamed)


def test_study_config_file_errors_name_key_and_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "s.yaml"
    for text, needle in (
        ("foldz: 3\n", "key 'foldz': unknown key"),
        ("folds: three\n", "key 'folds': got 'three' (str), expected an integer"),
        ("folds: 1\n", "key 'folds': got 1, expected an integer >= 2"),
        ("methods: [simclr]\n", "key 'methods'"),
    ):
        bad.write_text(text)
        with pytest.raises(SystemExit):
            study.parse_args(["--config", str(bad)])
        err = capsys.readouterr().err
        assert str(bad) in err and needle in err, err
    good = tmp_path / "g.yaml"
    good.write_text("folds: 4\nseeds: [0, 1]\ntrain: {epochs: 3, max_steps: 20}\n")
    cfg = study.parse_args(["--config", str(good), "--folds", "5"])
    assert cfg.folds == 5 and cfg.seeds == (0, 1) and cfg.train.max_steps == 20


def test_shipped_configs_load() -> None:
    from reference.config import Config, load_config_file

    root = Path(study.REPO) / "reference" / "configs"
    for path in sorted(root.glob("*.yaml")):
        cls = study.StudyConfig if path.name.startswith("study") else Config
        assert load_config_file(path, cls), path


def test_arms_with_view_options_resolve_and_pair_against_the_main_arm(tmp_path: Path) -> None:
    cfg = study.StudyConfig(frames=8, size=16, out=str(tmp_path))
    t = study.trainer_config(cfg, "byol_crop_tcrop", tmp_path / "a", 0)
    assert (t.frames, t.view_frames, t.crop_scale) == (16, 8, (0.3, 1.0))
    assert study.trainer_config(cfg, "byol", tmp_path / "b", 0).view_frames is None
    cfg.arms["bad"] = {"frames": 32}
    with pytest.raises(study.ConfigError, match="encoder sees 32 frames"):
        study.trainer_config(cfg, "bad", tmp_path / "c", 0)
    names = [p[0] for p in report.pairs(["byol", "byol_notemporal"])]
    assert "SSL Feature Extractor: byol_notemporal - byol" in names
    assert "SSL Fine-Tuned - Fully-Supervised" in names


def test_saliency_pairs_are_paired_t_intervals_over_the_same_videos() -> None:
    from scipy import stats

    a, b = [0.30, 0.10, 0.25, 0.40], [0.20, 0.15, 0.05, 0.30]
    sal = {
        "ssl_ft/logit": {"per_video_iou": a, "per_video_wiou": a},
        "sup/logit": {"per_video_iou": b, "per_video_wiou": [0.0] * 4},
    }
    (row,) = report.saliency_pairs(sal)  # only the pair whose two scorers are present
    d = np.subtract(a, b)
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert row["comparison"] == "SSL Fine-Tuned (logit) - Fully-Supervised (logit)" and row["n_videos"] == 4
    np.testing.assert_allclose(row["iou"], (d.mean(), d.mean() - half, d.mean() + half), rtol=1e-12)
    assert row["wiou"][0] == pytest.approx(np.mean(a))
