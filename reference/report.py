"""The study's report: result tables (Markdown, generated from ``results.json``), the paper's Table 3 beside ours,
paired comparisons, and pooling of several runs. Plots are :mod:`reference.plots`.

Example:
    >>> print(paper_table().splitlines()[2])
    | SSL feature extractor (BYOL) | 38 | 0.78 | 0.69 | 0.86 | 0.86 |
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reference import evaluate as E

# The paper's Table 3 (test set, 100 % labels), from ../shared/PAPER.md: model -> (params, acc, sens, spec, AUC)
PAPER_TABLE3 = (
    ("SSL feature extractor (BYOL)", 38, 0.78, 0.69, 0.86, 0.86),
    ("SSL fine-tuned (BYOL)", 133_880, 0.84, 0.74, 0.92, 0.91),
    ("SSL feature extractor (SimCLR)", 38, 0.76, 0.55, 0.94, 0.87),
    ("SSL fine-tuned (SimCLR)", 133_880, 0.79, 0.68, 0.89, 0.89),
)


def paper_table() -> str:
    """The paper's Table 3 as Markdown (its numbers, on its data)."""
    lines = [
        "| model (paper) | trainable params | accuracy | sensitivity | specificity | AUC |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {m} | {p:,} | {a:.2f} | {s:.2f} | {sp:.2f} | {auc:.2f} |" for m, p, a, s, sp, auc in PAPER_TABLE3
    ]
    return "\n".join(lines)


MAIN = "byol"  # the study's main arm: the recipe file as is; every other arm is one change to it


def pairs(tags: Sequence[str]) -> list[tuple[str, tuple[str, str], tuple[str, str]]]:
    """The paired comparisons of the paper's claims for the arms ``tags``: ``(label, (tag, model) of a, of b)``.

    The main arm's SSL models against the baselines (the targets); every other arm's against the baselines too,
    and against the main arm's (``arm - byol``: what the arm's one change does; the paper's temporal ablation is
    ``byol_notemporal - byol``, reported as -0.02, BYOL vs SimCLR ``simclr - byol``).
    """
    others = [t for t in tags if t != MAIN]
    out = [
        ("SSL Fine-Tuned - Fully-Supervised", (MAIN, "ssl_ft"), (MAIN, "sup")),
        ("SSL Feature Extractor - Random Feature Extractor", (MAIN, "ssl_fe"), (MAIN, "rand_fe")),
    ]
    for t in others:
        out += [
            (f"SSL Fine-Tuned ({t}) - Fully-Supervised", (t, "ssl_ft"), (MAIN, "sup")),
            (f"SSL Feature Extractor ({t}) - Random Feature Extractor", (t, "ssl_fe"), (MAIN, "rand_fe")),
        ]
    for t in others:
        out += [
            (f"SSL Fine-Tuned: {t} - {MAIN}", (t, "ssl_ft"), (MAIN, "ssl_ft")),
            (f"SSL Feature Extractor: {t} - {MAIN}", (t, "ssl_fe"), (MAIN, "ssl_fe")),
        ]
    return out


def paired_rows(
    records: Sequence[dict[str, Any]], labels: np.ndarray, groups: np.ndarray, *, n_boot: int, seed: int
) -> list[dict[str, Any]]:
    """AUC differences of :func:`pairs` at every fraction both sides have, with paired patient-bootstrap CIs."""
    have = {(r["tag"], r["model"], r["fraction"]) for r in records}
    tags = list(dict.fromkeys(r["tag"] for r in records))
    rows = []
    for name, a, b in pairs(tags):
        for fraction in sorted({f for (_, _, f) in have}, reverse=True):
            if (*a, fraction) not in have or (*b, fraction) not in have:
                continue
            va_, pa = E.pooled_probs(records, *a, fraction)
            vb_, pb = E.pooled_probs(records, *b, fraction)
            assert np.array_equal(va_, vb_)
            d, lo, hi, p = E.paired_difference_ci(
                labels[va_], pa, pb, groups[va_], metric="auc", n_boot=n_boot, seed=seed
            )
            rows.append(
                {"comparison": name, "fraction": fraction, "auc_diff": d, "low": lo, "high": hi, "p": p}
            )
    return rows


# the phantom target: SSL saliency above the supervised and the random model's, paired over the same videos
SALIENCY_PAIRS = (
    ("ssl_ft/logit", "sup/logit"),
    ("ssl_fe/logit", "sup/logit"),
    ("ssl_ft/logit", "rand_fe/logit"),
    ("ssl_fe/logit", "rand_fe/logit"),
    ("ssl/feature", "rand/feature"),
)


def saliency_pairs(saliency: dict[str, Any]) -> list[dict[str, Any]]:
    """Paired per-video IoU and weighted-IoU differences (mean and Student-t 95 % interval) of ``SALIENCY_PAIRS``."""
    rows = []
    for a, b in SALIENCY_PAIRS:
        if a not in saliency or b not in saliency:
            continue
        row: dict[str, Any] = {"comparison": f"{_saliency_label(a)} - {_saliency_label(b)}"}
        for metric in ("iou", "wiou"):
            d = np.asarray(saliency[a][f"per_video_{metric}"]) - np.asarray(
                saliency[b][f"per_video_{metric}"]
            )
            row[metric] = E.t_interval(d.tolist())
        row["n_videos"] = len(saliency[a]["per_video_iou"])
        rows.append(row)
    return rows


def _saliency_label(name: str) -> str:
    kind, score = name.split("/")
    label = E.MODEL_NAMES.get(kind, {"ssl": "SSL encoder", "rand": "Random encoder"}.get(kind, kind))
    return f"{label} ({score})"


def _fmt(cell: dict[str, float]) -> str:
    if cell is None or math.isnan(cell["mean"]):
        return "n/a"
    if math.isnan(cell["low"]):
        return f"{cell['mean']:.3f}"
    return f"{cell['mean']:.3f} [{cell['low']:.3f}, {cell['high']:.3f}]"


def tables_markdown(results: dict[str, Any]) -> str:
    """Markdown tables of the study's results (Table 3 shape, label-fraction table, saliency)."""
    lines: list[str] = []
    real = results.get("real")
    if real:
        lines += [
            "### The paper's Table 3 (its test set of 253 videos, 100 % labels; its numbers)",
            "",
            paper_table(),
            "",
        ]
        lines += [
            f"### {real['source']}: four models, 100 % labels (Table 3 shape)",
            "",
            "| model | pretraining | accuracy | sensitivity | specificity | AUC |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in real["rows"]:
            if r["fraction"] == 1.0:
                lines.append(
                    f"| {E.MODEL_NAMES[r['model']]} | {r['tag'] if r['model'].startswith('ssl') else '-'} | "
                    + " | ".join(_fmt(r[m]) for m in E.METRICS)
                    + " |"
                )
        lines += ["", f"### {real['source']}: AUC and accuracy against label fraction (Fig. 3)", ""]
        fr = sorted({r["fraction"] for r in real["rows"]}, reverse=True)
        for metric in ("auc", "accuracy"):
            lines += [
                f"{metric}:",
                "",
                "| model | " + " | ".join(f"{f:.0%}" for f in fr) + " |",
                "| --- |" + " --- |" * len(fr),
            ]
            keys = sorted({(r["tag"], r["model"]) for r in real["rows"]})
            for tag, kind in keys:
                cells = {
                    r["fraction"]: r[metric] for r in real["rows"] if (r["tag"], r["model"]) == (tag, kind)
                }
                label = E.MODEL_NAMES[kind] + (f" ({tag})" if kind.startswith("ssl") else "")
                lines.append(f"| {label} | " + " | ".join(_fmt(cells.get(f)) for f in fr) + " |")
            lines.append("")
        if real.get("paired"):
            lines += [
                "Paired AUC differences (same videos, patient-level paired bootstrap; p = share of resamples <= 0):",
                "",
                "| comparison | labels | AUC difference [95 % CI] | p |",
                "| --- | --- | --- | --- |",
            ]
            for r in real["paired"]:
                lines.append(
                    f"| {r['comparison']} | {r['fraction']:.0%} | {r['auc_diff']:+.3f} [{r['low']:+.3f}, "
                    f"{r['high']:+.3f}] | {r['p']:.3f} |"
                )
            lines.append("")
    ph = results.get("phantom")
    if ph:
        lines += [
            "### Phantom: four models, 100 % labels",
            "",
            "| model | accuracy | sensitivity | specificity | AUC |",
            "| --- | --- | --- | --- | --- |",
        ]
        for r in ph["rows"]:
            lines.append(
                f"| {E.MODEL_NAMES[r['model']]} | " + " | ".join(_fmt(r[m]) for m in E.METRICS) + " |"
            )
        lines += [
            "",
            "### Phantom: occlusion saliency against the consolidation boxes (mean [95 % t-interval] over videos)",
            "",
            "| saliency of | score | IoU | weighted IoU | videos |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, s in ph["saliency"].items():
            kind, score = name.split("/")
            label = E.MODEL_NAMES.get(kind, {"ssl": "SSL encoder", "rand": "Random encoder"}.get(kind, kind))
            iou = {"mean": s["iou"][0], "low": s["iou"][1], "high": s["iou"][2]}
            wiou = {"mean": s["wiou"][0], "low": s["wiou"][1], "high": s["wiou"][2]}
            lines.append(f"| {label} | {score} | {_fmt(iou)} | {_fmt(wiou)} | {s['n_videos']} |")
        lines.append("")
        paired = saliency_pairs(ph["saliency"])
        if paired:
            lines += [
                "Paired per-video differences (the same test videos; mean [95 % t-interval]):",
                "",
                "| comparison | IoU difference | weighted IoU difference | videos |",
                "| --- | --- | --- | --- |",
            ]
            for r in paired:
                cells = [f"{r[m][0]:+.3f} [{r[m][1]:+.3f}, {r[m][2]:+.3f}]" for m in ("iou", "wiou")]
                lines.append(f"| {r['comparison']} | {cells[0]} | {cells[1]} | {r['n_videos']} |")
            lines.append("")
    return "\n".join(lines)


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def _split_suffix(arg: str) -> tuple[str, str]:
    """``PATH`` or ``PATH:SUFFIX`` (a suffix of letters, digits and underscores) of ``--combine``."""
    path, sep, suffix = arg.rpartition(":")
    if not sep or not suffix.replace("_", "").isalnum():
        return arg, ""
    return path, suffix


def combine_results(
    paths: Sequence[str], out: str, data: str, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Pool the real-video records of several study runs (e.g. different seeds) and redo the tables and plots.

    Records of the same (method, model, fraction, seed) must not appear twice. ``PATH:SUFFIX`` renames every arm
    of that run to ``<arm>_<SUFFIX>``, so that a run of another setting (e.g. another clip size) pairs against the
    first run's main arm as an arm of its own. Labels and patients come from the first run's ``results.json`` or,
    for runs that did not store them, from ``<data>/labels.csv`` (the order the study reads it in).
    """
    from types import SimpleNamespace

    sources = [_split_suffix(p) for p in paths]
    runs = [json.loads(Path(p).read_text()) for p, _ in sources]
    records: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for (path, suffix), run in zip(sources, runs, strict=True):
        if not run.get("real"):
            raise SystemExit(f"--combine: {path} has no real-video part")
        for r in run["real"]["records"]:
            if suffix:
                r = {**r, "tag": f"{r['tag']}_{suffix}"}
            key = (r["tag"], r["model"], r["fraction"], r["seed"], tuple(r["videos"]))
            if key in seen:
                raise SystemExit(f"--combine: {path} repeats records of {key[:4]} (same seed twice?)")
            seen.add(key)
            records.append(r)
    first = runs[0]["real"]
    if "labels" in first:
        labels, groups = np.asarray(first["labels"]), np.asarray(first["groups"])
    else:
        rows = list(csv.DictReader((Path(data) / "labels.csv").open()))
        labels = np.array([int(r["consolidation"]) for r in rows])
        groups = np.array([int(r["patient_id"]) for r in rows])
    stub = SimpleNamespace(labels=labels, groups=groups)
    real = {
        "rows": E.summarize(records, stub, n_boot=n_boot, seed=seed),  # type: ignore[arg-type]
        "paired": paired_rows(records, labels, groups, n_boot=n_boot, seed=seed),
        "records": records,
        "source": first.get("source", "real POCUS videos") + f" (combined from {len(paths)} runs)",
        "combined_from": list(paths),
    }
    results = {"real": real}
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    md = tables_markdown(results)
    (outdir / "results.md").write_text(md + "\n")
    (outdir / "results.json").write_text(json.dumps(jsonable(results), indent=1))
    try:
        from reference import plots

        plots.write_all(results, None, outdir / "plots")
    except ImportError as exc:
        print(f"plots skipped: {exc}")
    print(md)
    return results
