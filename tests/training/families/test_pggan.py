"""Progressive GAN family (Karras et al., ICLR 2018): growing, WGAN-GP with drift, EMA, samples."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from tests.training.families.iterate import iterate
from training.ema import update_ema
from training.families.pggan import PGGANConfig, PGGANFamily, fade_reals
from training.family import DataInfo, unwrap

RES = 16
BATCH = 4
TINY = PGGANConfig(
    latent_dim=16,
    fmap_base=64,
    fmap_max=16,
    phase_images=8,
    batch_sizes=f"4:{BATCH},8:{BATCH},16:{BATCH}",
)
DATA = DataInfo(image_size=RES, channels=3, num_classes=5)  # labels are ignored


def make_family(config: PGGANConfig = TINY) -> PGGANFamily:
    torch.manual_seed(0)
    return PGGANFamily(config, DATA, torch.device("cpu"))


def reals(seed: int = 1, batch: int = BATCH) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, RES, RES, generator=generator) * 2 - 1  # (B, 3, R, R)


def test_schedule_sets_the_run_length_and_batch_sizes() -> None:
    family = make_family()
    # 4 stable, 8 fade, 8 stable, 16 fade, 16 stable: 2 steps each (8 images / batch 4).
    assert family.total_steps(1000) == family.total_steps(0) == 10
    assert PGGANFamily.planned_steps(TINY, RES, 1000) == 10  # known before it is built
    assert family.schedule.phase_starts == (0, 2, 4, 6, 8)
    assert all(family.batch_size(step, 99) == BATCH for step in range(10))
    assert PGGANFamily.dataset_options(TINY) == {"conditional": False, "mirror": False}
    assert PGGANFamily.dataset_options(PGGANConfig(mirror=True))["mirror"] is True


def test_begin_step_sets_stage_on_all_networks_and_resets_at_phase_starts() -> None:
    family = make_family()
    for step in range(12):
        reset = family.begin_step(step)
        phase = family.schedule.at(step)
        assert reset == (step in (2, 4, 6, 8))
        for net in (family.G, family.D, family.G_ema):
            assert (unwrap(net).stage, unwrap(net).alpha) == (phase.stage, phase.alpha)
    # Resuming anywhere gives the same answer and the same state.
    assert family.begin_step(6) is True
    assert unwrap(family.G_ema).stage == 2 and unwrap(family.G_ema).alpha == 0.0
    assert family.begin_step(7) is False
    assert unwrap(family.G_ema).alpha == pytest.approx(0.5)


def test_training_through_growth() -> None:
    family = make_family()
    ema_before = [p.clone() for p in family.G_ema.parameters()]
    resolutions = []
    batches = lambda step: {"x": reals(step), "y": torch.zeros(BATCH, dtype=torch.long)}  # noqa: E731
    for step, ctx, stats in iterate(family, batches, family.total_steps(0)):
        res = family.schedule.at(step).resolution
        resolutions.append(res)
        assert ctx.reals.shape == ctx.fake.shape == (BATCH, 3, res, res)
        assert ctx.z.shape == (BATCH, 16)
        update_ema(family.G_ema, family.G, family.ema_decay(step))
        assert all(math.isfinite(v) for v in stats.values())
        assert stats["D_gp"] >= 0.0 and stats["D_drift"] >= 0.0
        assert stats["resolution"] == res and stats["alpha"] == ctx.phase.alpha
    assert resolutions == [4, 4, 8, 8, 8, 8, 16, 16, 16, 16]
    assert family.ema_decay(0) == 0.999
    assert any(
        not torch.equal(a, b) for a, b in zip(ema_before, family.G_ema.parameters(), strict=True)
    )
    assert all(not p.requires_grad for p in family.G_ema.parameters())
    assert not family.G_ema.training


def test_gradient_penalty_backpropagates_into_d() -> None:
    family = make_family()
    family.begin_step(3)  # 8x8, fading in
    ctx = family.prepare({"x": reals()})
    gp = family.gradient_penalty(ctx.reals, ctx.fake)
    assert gp.item() >= 0.0
    gp.backward()  # only possible with create_graph=True: D's weights are in the graph
    grads = [p.grad for p in family.D.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in family.G.parameters())  # fakes are detached


def test_d_loss_is_wgan_gp_plus_drift() -> None:
    family = make_family()
    family.begin_step(5)  # 8x8 stable
    ctx = family.prepare({"x": reals()})
    loss, stats = family.d_loss(ctx)
    with torch.no_grad():
        real = family.D(ctx.reals)
        fake = family.D(ctx.fake)
    assert stats["D_wdist"] == pytest.approx((real.mean() - fake.mean()).item(), rel=1e-5)
    assert stats["D_drift"] == pytest.approx(real.square().mean().item(), rel=1e-5)
    expected = -stats["D_wdist"] + 10.0 * stats["D_gp"] + 0.001 * real.square().mean().item()
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    g_loss, _ = family.g_loss(ctx)
    assert g_loss.item() == pytest.approx(-fake.mean().item(), rel=1e-5)


def test_reals_are_downsampled_and_faded_like_g() -> None:
    family = make_family()
    x = reals()
    family.begin_step(0)  # 4x4
    assert torch.allclose(family.prepare({"x": x}).reals, F.avg_pool2d(x, 4))
    family.begin_step(2)  # 8x8, alpha 0: the 4x4 image, upsampled
    at_zero = family.prepare({"x": x}).reals
    coarse = F.interpolate(F.avg_pool2d(x, 4), scale_factor=2.0, mode="nearest")
    assert torch.allclose(at_zero, coarse, atol=1e-6)
    family.begin_step(3)  # alpha 0.5
    half = family.prepare({"x": x}).reals
    assert torch.allclose(half, 0.5 * coarse + 0.5 * F.avg_pool2d(x, 2), atol=1e-6)
    family.begin_step(4)  # 8x8 stable
    assert torch.allclose(family.prepare({"x": x}).reals, F.avg_pool2d(x, 2))
    family.begin_step(8)  # 16x16 stable: the images as they are
    assert torch.equal(family.prepare({"x": x}).reals, x)
    assert torch.equal(fade_reals(x, 1.0), x)


def test_g_at_alpha_zero_matches_the_faded_reals_layout() -> None:
    family = make_family()
    family.begin_step(2)  # 8x8 at alpha 0: G's output is a 4x4 image upsampled
    fake = family.prepare({"x": reals()}).fake
    assert torch.allclose(fake, F.interpolate(fake[..., ::2, ::2], scale_factor=2.0))


def test_fixed_sample_inputs_are_deterministic() -> None:
    family = make_family()
    a = family.fixed_sample_inputs({"x": reals()}, 5, seed=7)
    torch.manual_seed(123)  # the global RNG plays no part
    b = family.fixed_sample_inputs({"x": reals()}, 5, seed=7)
    c = family.fixed_sample_inputs({"x": reals()}, 5, seed=8)
    assert a["z"].shape == (5, 16) and a["z"].device.type == "cpu"
    assert torch.equal(a["z"], b["z"])
    assert not torch.equal(a["z"], c["z"])


@pytest.mark.parametrize("step", [0, 3, 9])
def test_sample_grid_has_a_constant_size(step: int) -> None:
    family = make_family()
    family.begin_step(step)
    family.G.train()
    inputs = family.fixed_sample_inputs({"x": reals()}, 7, seed=0)
    images, columns = family.sample_grid(family.G, inputs)
    assert images.shape == (7, 3, RES, RES)
    assert columns == 3
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert family.G.training  # the mode is restored
    again, _ = family.sample_grid(family.G_ema, inputs)
    assert again.shape == (7, 3, RES, RES)


def test_no_ema_and_card() -> None:
    family = make_family(PGGANConfig(**{**TINY.__dict__, "ema_decay": 0.0}))
    assert family.G_ema is None and family.ema_decay(0) is None
    assert family.export_generator() is family.G
    assert family.begin_step(2) is True
    assert family.state_dict() == {}
    card = make_family().card_extras()
    json.dumps(card)
    assert card["training"]["lambda_gp"] == 10.0
    assert card["growth"] == {
        "phase_images": 8,
        "batch_sizes": {"4": 4, "8": 4, "16": 4},
        "total_steps": 10,
    }


def test_paper_defaults() -> None:
    c = PGGANConfig()
    assert (c.latent_dim, c.fmap_base, c.fmap_max) == (512, 8192, 512)
    assert (c.lr, c.beta1, c.beta2, c.adam_eps) == (1e-3, 0.0, 0.99, 1e-8)
    assert (c.lambda_gp, c.drift, c.ema_decay, c.phase_images) == (10.0, 0.001, 0.999, 600_000)
    family = make_family()
    opt_g, opt_d = family.optimizers()
    group = opt_d.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"]) == (1e-3, (0.0, 0.99), 1e-8)
    assert {id(p) for p in opt_g.param_groups[0]["params"]} == {
        id(p) for p in family.G.parameters()
    }
