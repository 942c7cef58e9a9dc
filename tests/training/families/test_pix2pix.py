"""pix2pix's losses and schedule (Isola et al., 2017)."""

import pytest
import torch
import torch.nn.functional as F

from tests.training.families.iterate import iterate
from training.families.pix2pix import Pix2PixConfig, Pix2PixFamily
from training.family import DataInfo

DATA = DataInfo(image_size=32, channels=3, in_channels=1)


def make(**config) -> Pix2PixFamily:
    torch.manual_seed(0)
    return Pix2PixFamily(Pix2PixConfig(width=4, **config), DATA, torch.device("cpu"))


def batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {"A": torch.rand(2, 1, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}


def test_paper_defaults():
    config = Pix2PixConfig()
    assert (config.lambda_l1, config.lr, config.beta1, config.beta2) == (100.0, 2e-4, 0.5, 0.999)
    family = make()
    opt_g, opt_d = family.optimizers()
    assert opt_g.defaults["betas"] == (0.5, 0.999) and opt_d.defaults["lr"] == 2e-4


def test_losses_are_the_papers():
    family = make()
    ctx = family.prepare(batch())
    d_loss, d_stats = family.d_loss(ctx)
    real_logits = family.D(ctx.a, ctx.b)
    fake_logits = family.D(ctx.a, ctx.fake.detach())
    expected_d = 0.5 * (
        F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    )
    assert torch.allclose(d_loss, expected_d)
    assert d_stats["D_real"] > 0 and d_stats["D_fake"] > 0
    g_loss, g_stats = family.g_loss(ctx)
    assert g_loss.item() == pytest.approx(g_stats["G_GAN"] + 100 * g_stats["G_L1"], rel=1e-5)
    assert g_stats["G_L1"] == pytest.approx(F.l1_loss(ctx.fake, ctx.b).item(), rel=1e-6)


def test_a_few_real_steps_change_both_networks():
    family = make()
    g0 = [p.clone() for p in family.G.parameters()]
    d0 = [p.clone() for p in family.D.parameters()]
    for _, _, stats in iterate(family, lambda step: batch(), 3):
        assert stats["G_L1"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(g0, family.G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, family.D.parameters(), strict=True))


def test_linear_decay():
    family = make(decay_steps=10)
    family.total_steps(30)
    family.optimizers()
    assert family.learning_rate(0) == family.learning_rate(19) == 2e-4
    assert family.learning_rate(25) == pytest.approx(2e-4 * (1 - 6 / 11))
    family.begin_step(29)
    assert family._optimizers[0].param_groups[0]["lr"] == pytest.approx(2e-4 / 11)


def test_sample_grid_keeps_running_statistics():
    family = make()
    stats = [m.running_mean.clone() for m in family.G.modules() if hasattr(m, "running_mean")]
    images, columns = family.sample_grid(family.G, family.fixed_sample_inputs(batch(), 2, 0))
    assert columns == 3 and images.shape == (6, 3, 32, 32)
    after = [m.running_mean for m in family.G.modules() if hasattr(m, "running_mean")]
    assert all(torch.equal(a, b) for a, b in zip(stats, after, strict=True))
    assert family.G.training  # the training mode is restored
