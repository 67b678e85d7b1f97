"""The trainer's small parts: encoder shape and size, losses against naive versions, EMA, schedules, gradients."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch

from reference.config import Config, parse_args
from reference.ema import ema_update, momentum_schedule
from reference.heads import MLPHead
from reference.losses import byol_loss, nt_xent
from reference.model import Darknet3D, count_parameters, load_encoder
from reference.train_byol import OnlineNet, TargetNet, lr_schedule, ssl_loss


def _naive_cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_byol_loss_equals_naive(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    p1, p2, z1, z2 = (torch.randn(5, 7, generator=g, dtype=torch.float64) for _ in range(4))
    naive = 0.0
    for i in range(5):
        naive += (2 - 2 * _naive_cos(p1[i].tolist(), z2[i].tolist())) + (
            2 - 2 * _naive_cos(p2[i].tolist(), z1[i].tolist())
        )
    naive /= 5
    assert float(byol_loss(p1, p2, z1, z2)) == pytest.approx(naive, rel=1e-6)


def test_byol_loss_takes_no_gradient_through_targets() -> None:
    g = torch.Generator().manual_seed(0)
    p1, p2, z1, z2 = (torch.randn(4, 6, generator=g).requires_grad_() for _ in range(4))
    byol_loss(p1, p2, z1, z2).backward()
    assert p1.grad is not None and p1.grad.abs().sum() > 0
    assert z1.grad is None and z2.grad is None


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_nt_xent_equals_naive(temperature: float) -> None:
    g = torch.Generator().manual_seed(3)
    z1, z2 = (
        torch.randn(4, 8, generator=g, dtype=torch.float64),
        torch.randn(4, 8, generator=g, dtype=torch.float64),
    )
    z = torch.cat([z1, z2]).tolist()
    n, b = len(z), 4
    total = 0.0
    for i in range(n):
        pos = (i + b) % n
        sims = {k: _naive_cos(z[i], z[k]) / temperature for k in range(n) if k != i}
        total += -math.log(math.exp(sims[pos]) / sum(math.exp(s) for s in sims.values()))
    assert float(nt_xent(z1, z2, temperature)) == pytest.approx(total / n, rel=1e-6)


def test_nt_xent_rejects_bad_temperature() -> None:
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(2, 3), torch.randn(2, 3), 0.0)


def test_ema_update_is_exact() -> None:
    torch.manual_seed(0)
    online, target = MLPHead(5, 16, 3), MLPHead(5, 16, 3)
    before = [p.detach().clone() for p in target.parameters()]
    m = 0.9
    ema_update(target, online, m)
    for t, t0, o in zip(target.parameters(), before, online.parameters(), strict=True):
        assert torch.equal(t, m * t0 + (1 - m) * o.detach())
    # momentum 1 freezes, 0 copies
    frozen = [p.detach().clone() for p in target.parameters()]
    ema_update(target, online, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), frozen, strict=True))
    ema_update(target, online, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), online.parameters(), strict=True))
    with pytest.raises(ValueError, match="momentum"):
        ema_update(target, online, 1.5)


def test_momentum_schedule() -> None:
    assert momentum_schedule(0.99, 4) == [0.99] * 4
    cos = momentum_schedule(0.99, 11, cosine=True)
    assert cos[0] == pytest.approx(0.99) and cos[-1] == pytest.approx(1.0)
    assert all(a <= b for a, b in itertools.pairwise(cos))
    assert cos[5] == pytest.approx(0.995)


def test_lr_schedule_warmup_and_cosine() -> None:
    cfg = Config(lr=1e-3, warmup_steps=2, lr_schedule="cosine")
    lrs = lr_schedule(cfg, 6)
    assert lrs[0] == pytest.approx(5e-4) and lrs[1] == pytest.approx(1e-3)
    assert lrs[2] == pytest.approx(1e-3) and all(a > b for a, b in itertools.pairwise(lrs[2:]))


def test_encoder_default_size_shapes_and_errors() -> None:
    enc = Darknet3D(in_channels=1)
    n = count_parameters(enc)
    assert abs(n - 133_880) / 133_880 < 0.05  # the paper's tiny encoder, within 5%
    x = torch.rand(2, 1, 16, 64, 64)
    maps = enc.feature_maps(x)
    assert len(maps) == 6 and maps[-1].shape[:2] == (2, enc.out_dim)
    assert maps[-1].shape[2] >= 1  # 16 frames survive the temporal strides
    assert enc(x).shape == (2, enc.out_dim)
    assert Darknet3D(in_channels=3, width=2).channels == (2, 4, 8, 16, 32, 64)
    with pytest.raises(ValueError, match="x: got shape"):
        enc(torch.rand(2, 3, 16, 32, 32))
    with pytest.raises(ValueError, match="temporal_strides"):
        Darknet3D(temporal_strides=(1, 2))


def _tiny(method: str = "byol") -> tuple[Config, OnlineNet, TargetNet | None]:
    cfg = Config(method=method, width=1.0, proj_hidden=32, proj_dim=16)
    torch.manual_seed(0)
    online = OnlineNet(Darknet3D(1, width=1.0), 32, 16, predictor=method == "byol")
    return cfg, online, TargetNet(online) if method == "byol" else None


def test_target_gets_no_gradient() -> None:
    cfg, online, target = _tiny()
    assert target is not None
    v1, v2 = torch.rand(4, 1, 8, 32, 32), torch.rand(4, 1, 8, 32, 32)
    loss, _, _ = ssl_loss(cfg, online, target, v1, v2)
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in target.parameters())
    assert all(p.grad is not None for p in online.parameters())


@pytest.mark.parametrize("method", ["byol", "simclr"])
def test_a_few_steps_decrease_the_loss_on_a_fixed_batch(method: str) -> None:
    cfg, online, target = _tiny(method)
    g = torch.Generator().manual_seed(1)
    base = torch.rand(8, 1, 8, 32, 32, generator=g)
    v1 = (base + 0.05 * torch.randn(base.shape, generator=g)).clamp(0, 1)
    v2 = base.flip(-1)
    opt = torch.optim.Adam(online.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss, _, _ = ssl_loss(cfg, online, target, v1, v2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if target is not None:
            target.update(online, 0.99)
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses


def test_ema_moves_target_toward_online() -> None:
    _, online, target = _tiny()
    assert target is not None
    for p in online.parameters():
        p.data.add_(1.0)
    dist0 = sum(
        float((a - b).detach().abs().sum())
        for a, b in zip(target.parameters(), online.encoder.parameters(), strict=False)
    )
    target.update(online, 0.5)
    dist1 = sum(
        float((a - b).detach().abs().sum())
        for a, b in zip(target.parameters(), online.encoder.parameters(), strict=False)
    )
    assert dist1 < dist0


def test_config_flags_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = parse_args(["--method", "simclr", "--no-temporal", "--no-probe", "--resume"])
    assert (cfg.method, cfg.no_temporal, cfg.probe, cfg.resume) == ("simclr", True, False, "auto")
    for bad, flag in ((["--batch-size", "0"], "--batch-size"), (["--momentum", "1.5"], "--momentum"),
                      (["--device", "tpu"], "--device"), (["--method", "moco"], "--method")):  # fmt: skip
        with pytest.raises(SystemExit):
            parse_args(bad)
        assert flag in capsys.readouterr().err


def test_load_encoder_errors(tmp_path: object) -> None:
    from pathlib import Path

    tmp = Path(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        load_encoder(tmp / "missing.pt")
    bad = tmp / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_encoder(bad)
    other = tmp / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(ValueError, match="not a reference"):
        load_encoder(other)
    enc = Darknet3D()
    torch.save(
        {
            "encoder_args": enc.config(),
            "online": {f"encoder.{k}": v for k, v in enc.state_dict().items()},
            "target": None,
        },
        other,
    )
    loaded = load_encoder(other)
    assert all(
        torch.equal(a, b)
        for a, b in zip(loaded.state_dict().values(), enc.state_dict().values(), strict=True)
    )
    with pytest.raises(ValueError, match="SimCLR"):
        load_encoder(other, which="target")
    assert copy.deepcopy(loaded).training is False


def test_view_matching_perfect_and_chance() -> None:
    from reference.train_byol import view_matching

    g = torch.Generator().manual_seed(0)
    f = torch.randn(50, 8, generator=g)
    assert view_matching(f, f) == {"auc": 1.0, "top1": 1.0}
    rand = view_matching(f, torch.randn(50, 8, generator=g))
    assert 0.3 < rand["auc"] < 0.7 and rand["top1"] < 0.2


@pytest.mark.parametrize("name", ["model", "heads", "losses", "ema", "config", "data"])
def test_docstring_examples_run(name: str) -> None:
    import doctest
    import importlib

    module = importlib.import_module(f"reference.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
