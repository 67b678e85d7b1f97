"""Recipe files for the trainer: values from the file, flags over them, the resolved config saved with the run,
and errors that name the key and the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reference.config import Config, ConfigError, load_config_file, parse_args

REPO = Path(__file__).resolve().parents[1]


def test_file_values_and_flags_over_them(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("epochs: 3\nlr: 1\nmomentum-cosine: true\nno_temporal: true\ndata: null\n")
    cfg = parse_args(["--config", str(f), "--epochs", "5"])
    assert (cfg.epochs, cfg.lr, cfg.momentum_cosine, cfg.no_temporal) == (5, 1.0, True, True)
    assert isinstance(cfg.lr, float) and cfg.config == str(f)
    assert parse_args(["--config", str(f), "--no-momentum-cosine"]).momentum_cosine is False
    j = tmp_path / "r.json"
    j.write_text(json.dumps({"batch_size": 4, "method": "simclr"}))
    assert (parse_args(["--config", str(j)]).batch_size, parse_args(["--config", str(j)]).method) == (
        4,
        "simclr",
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("epochz: 3\n", "key 'epochz': unknown key"),
        ("epochs: 2.5\n", "key 'epochs': got 2.5 (float), expected an integer"),
        ("epochs: '3'\n", "key 'epochs': got '3' (str), expected an integer"),
        ("probe: yes please\n", "key 'probe': got 'yes please' (str), expected true or false"),
        ("lr: -1\n", "key 'lr': got -1.0, expected a number > 0"),
        ("momentum: 1.5\n", "key 'momentum': got 1.5, expected a number in [0, 1]"),
        ("method: moco\n", "key 'method': got 'moco', expected one of ['byol', 'simclr']"),
        ("- 1\n- 2\n", "holds a list, expected a mapping"),
        ("epochs: [\n", "cannot parse"),
        (
            "crop_scale: [0.5, 0.2]\n",
            "key 'crop_scale': got (0.5, 0.2), expected [low, high] with 0 < low <= high",
        ),
        ("frames: 8\nview_frames: 12\n", "key 'view_frames': got 12, expected an integer in [2, frames = 8]"),
    ],
)
def test_bad_files_name_the_key_and_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(SystemExit):
        parse_args(["--config", str(f)])
    err = capsys.readouterr().err
    assert needle in err and str(f) in err, err


def test_a_flag_overriding_a_bad_value_is_named_as_the_flag(tmp_path: Path, capsys) -> None:
    f = tmp_path / "ok.yaml"
    f.write_text("lr: 0.001\n")
    with pytest.raises(SystemExit):
        parse_args(["--config", str(f), "--lr", "-2"])
    err = capsys.readouterr().err
    assert "--lr: got -2.0" in err and str(f) not in err
    with pytest.raises(SystemExit):
        parse_args(["--config", str(tmp_path / "missing.yaml")])
    assert "does not exist" in capsys.readouterr().err


def test_shipped_recipes_are_valid() -> None:
    for name in ("pocus.yaml", "paper.yaml"):
        values = load_config_file(REPO / "reference" / "configs" / name)
        Config(**values).validate()
    with pytest.raises(ConfigError, match="unknown key"):
        load_config_file(REPO / "reference" / "configs" / "study.yaml")  # a study file, not a trainer recipe


def test_resolved_config_is_saved_with_the_run(tmp_path: Path) -> None:
    from reference import train_byol

    f = tmp_path / "r.yaml"
    f.write_text(
        "n_videos: 8\nframes: 4\nsize: 16\nbatch_size: 4\nproj_hidden: 16\nproj_dim: 8\nwidth: 0.5\n"
    )
    train_byol.main(
        ["--config", str(f), "--max-steps", "1", "--no-progress", "--no-probe", "--out", str(tmp_path / "o")]
    )
    saved = json.loads((tmp_path / "o" / "config.json").read_text())
    assert saved["n_videos"] == 8 and saved["max_steps"] == 1 and saved["config"] == str(f)


def test_augmentation_options_build_the_pipeline_they_name(tmp_path: Path) -> None:
    import torch

    import vidaug3d as va
    from reference.train_byol import augmentation

    f = tmp_path / "a.yaml"
    f.write_text("frames: 16\nsize: 32\ncrop_scale: [0.3, 1.0]\nview_frames: 8\n")
    cfg = parse_args(["--config", str(f)])
    assert (cfg.crop_scale, cfg.view_frames) == ((0.3, 1.0), 8)
    assert (
        parse_args(["--config", str(f), "--crop-scale", "none", "--view-frames", "none"]).crop_scale is None
    )
    aug = augmentation(crop_scale=cfg.crop_scale, size=cfg.size, view_frames=cfg.view_frames)
    names = [type(t).__name__ for t in aug.transforms]
    assert (
        names[0] == "RandomTemporalCrop"
        and names.index("RandomResizedCrop") == names.index("RandomAffine") - 1
    )
    out = aug(torch.rand(2, 1, 16, 40, 40), seed=0)
    assert out.shape == (2, 1, 8, 32, 32)  # each view: an 8-frame window, cropped and resized to the size
    assert (
        type(augmentation()) is va.Compose and len(augmentation().transforms) == 8
    )  # off: the paper's pipeline


def test_view_options_default_off_and_bad_values_name_the_key(tmp_path: Path, capsys) -> None:
    import vidaug3d as va
    from reference import train_byol

    cfg = parse_args([])
    assert (cfg.crop_scale, cfg.view_frames) == (None, None)
    assert repr(train_byol.augmentation(temporal=True)) == repr(va.presets.paper(temporal=True))
    cfg = parse_args(["--crop-scale", "0.3", "1", "--view-frames", "4", "--frames", "8", "--size", "16"])
    assert cfg.crop_scale == (0.3, 1.0) and cfg.view_frames == 4
    import torch

    v1, v2 = train_byol.training_views(cfg)(torch.rand(2, 1, 8, 24, 24), seed=0)
    assert v1.shape == v2.shape == (2, 1, 4, 16, 16)
    assert parse_args(["--crop-scale", "none"]).crop_scale is None
    f = tmp_path / "v.yaml"
    f.write_text("crop_scale: [0.3, 1]\nview_frames: 8\nframes: 16\n")
    assert parse_args(["--config", str(f)]).crop_scale == (0.3, 1.0)
    for text, needle in (
        ("crop_scale: [0.5, 0.2]\n", "key 'crop_scale': got"),
        ("crop_scale: 0.5\n", "key 'crop_scale': got 0.5, expected a list"),
        ("view_frames: 32\nframes: 16\n", "key 'view_frames': got 32"),
    ):
        f.write_text(text)
        with pytest.raises(SystemExit):
            parse_args(["--config", str(f)])
        err = capsys.readouterr().err
        assert needle in err and str(f) in err, err
