"""U-Net GAN's losses, CutMix steps, EMA schedule and samples (Schonfeld et al., 2020)."""

import math

import pytest
import torch
import torch.nn.functional as F

from tests.training.families.iterate import iterate
from training.cutmix import mix
from training.families.unetgan import UNetGANConfig, UNetGANFamily, UNetGANStep
from training.family import DataInfo

CLASSES = 3


def make(num_classes: int = 0, **config) -> UNetGANFamily:
    torch.manual_seed(0)
    data = DataInfo(image_size=32, channels=3, num_classes=num_classes)
    return UNetGANFamily(UNetGANConfig(width=4, latent_dim=8, **config), data, torch.device("cpu"))


def batch(size: int = 4) -> dict[str, torch.Tensor]:
    """Smooth colour gradients in [-1, 1], labels cycling the classes."""
    ramp = torch.linspace(-1, 1, 32)
    images = []
    for i in range(size):
        angle = 2 * math.pi * i / size
        field = math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None]  # (32, 32)
        images.append(torch.stack([field, -field, 0.5 * field]).clamp(-1, 1))  # (3, 32, 32)
    return {"x": torch.stack(images), "y": torch.arange(size) % CLASSES}


def train(family: UNetGANFamily, steps: int = 3) -> list[dict[str, float]]:
    """A few real iterations as the shared loop runs them; returns each step's stats."""
    g0 = [p.clone() for p in family.G.parameters()]
    d0 = [p.clone() for p in family.D.parameters()]
    history = [stats for _, _, stats in iterate(family, lambda step: batch(), steps)]
    assert all(math.isfinite(v) for stats in history for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, family.G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, family.D.parameters(), strict=True))
    return history


def test_reference_defaults():
    config = UNetGANConfig()
    assert (config.latent_dim, config.width, config.g_lr, config.d_lr) == (128, 64, 5e-5, 2e-4)
    assert (config.beta1, config.beta2, config.adam_eps) == (0.0, 0.999, 1e-6)
    assert config.cutmix and config.consistency_weight == 1.0 and config.p_mix_max == 0.5
    assert (config.ema_decay, config.ema_start) == (0.9999, 21000)
    family = make()
    opt_g, opt_d = family.optimizers()
    assert opt_g.defaults["lr"] == 5e-5 and opt_d.defaults["lr"] == 2e-4
    assert opt_g.defaults["betas"] == (0.0, 0.999) and opt_d.defaults["eps"] == 1e-6
    assert family.loss_kind == "non-saturating" and make(cutmix=False).loss_kind == "hinge"


def test_dataset_options():
    assert UNetGANFamily.dataset_options(UNetGANConfig()) == {"conditional": None, "mirror": True}
    options = UNetGANFamily.dataset_options(UNetGANConfig(unconditional=True, mirror=False))
    assert options == {"conditional": False, "mirror": False}


def test_conditioning_follows_the_data_unless_unconditional():
    assert make(CLASSES).G.config.num_classes == CLASSES
    assert make(CLASSES).D.config.num_classes == CLASSES
    family = make(CLASSES, unconditional=True)
    assert family.G.config.num_classes == family.D.config.num_classes == 0
    ctx = family.prepare(batch())
    assert ctx.y is None


@pytest.mark.parametrize("num_classes", [0, CLASSES])
def test_cutmix_training_steps(num_classes):
    family = make(num_classes, warmup_steps=0, p_mix_max=1.0)  # every step mixes
    history = train(family)
    for stats in history:
        assert stats["p_mix"] == 1.0
        assert {"D_mix", "D_consistency", "G_enc", "G_dec", "D_pixel_real"} <= set(stats)


@pytest.mark.parametrize("num_classes", [0, CLASSES])
def test_basic_unet_gan_training_steps(num_classes):
    history = train(make(num_classes, cutmix=False))
    assert all("D_mix" not in stats and stats["p_mix"] == 0.0 for stats in history)


def test_mix_only_steps_train():
    train(make(CLASSES, warmup_steps=0, p_mix_max=1.0, mix_only=True), steps=2)


def test_the_mixing_decision_follows_the_ramp_and_the_seed():
    family = make(warmup_steps=100)
    family.begin_step(0)
    assert family.mix_probability == 0.0 and not family.mix_now
    assert family.prepare(batch()).mask is None

    def decisions(seed: int) -> list[bool]:
        torch.manual_seed(seed)
        out = []
        for step in range(200):
            family.begin_step(step)
            out.append(family.mix_now)
        return out

    first = decisions(5)
    assert first == decisions(5)
    assert not any(first[:1]) and 30 < sum(first[100:]) < 70  # p = 0.5 after the warm-up
    family.begin_step(50)
    assert family.mix_probability == pytest.approx(0.25)
    family = make(warmup_steps=0, p_mix_max=1.0)
    family.begin_step(0)
    mask = family.prepare(batch()).mask
    assert mask is not None and mask.shape == (4, 1, 32, 32)


def _bce(logits: torch.Tensor, target: float | torch.Tensor) -> torch.Tensor:
    if not isinstance(target, torch.Tensor):
        target = torch.full_like(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


def test_cutmix_d_loss_targets_and_weights():
    """Encoder target fake, decoder target M, consistency on logits, the reference's weights."""
    family = make(CLASSES, consistency_weight=2.0)
    family.D.eval()  # no spectral-norm power iteration: repeated forward passes agree
    data = batch()
    torch.manual_seed(1)
    fake = torch.rand(4, 3, 32, 32) * 2 - 1
    mask = torch.zeros(4, 1, 32, 32)
    mask[:, :, 8:24, 4:20] = 1.0
    mask[1] = 1 - mask[1]
    ctx = UNetGANStep(x=data["x"], y=data["y"], z=torch.zeros(4, 8), fake=fake, mask=mask)
    loss, stats = family.d_loss(ctx)

    mixed = mix(data["x"], fake, mask)
    enc, dec = family.D(torch.cat([data["x"], fake, mixed]), data["y"].repeat(3))
    (e_real, e_fake, e_mix), (d_real, d_fake, d_mix) = enc.split(4), dec.split(4)
    plain = 0.5 * (_bce(e_real, 1.0) + _bce(d_real, 1.0)) + 0.5 * (
        _bce(e_fake, 0.0) + _bce(d_fake, 0.0)
    )
    cutmix = _bce(e_mix, 0.0) + _bce(d_mix, mask)  # encoder: fake; decoder: M per pixel
    consistency = ((d_mix - (mask * d_real + (1 - mask) * d_fake)) ** 2).mean()
    assert loss.item() == pytest.approx((plain + cutmix + 2.0 * consistency).item(), rel=1e-5)
    assert stats["D_mix"] == pytest.approx(cutmix.item(), rel=1e-5)
    assert stats["D_consistency"] == pytest.approx(consistency.item(), rel=1e-5)

    family = make(CLASSES, consistency_weight=2.0, mix_only=True)
    family.D.eval()
    loss_only, _ = family.d_loss(ctx)
    assert loss_only.item() == pytest.approx((cutmix + 2.0 * consistency).item(), rel=1e-5)


def test_hinge_losses_of_the_basic_model():
    family = make(cutmix=False)
    family.D.eval()
    ctx = family.prepare(batch())
    d_loss, d_stats = family.d_loss(ctx)
    enc, dec = family.D(torch.cat([ctx.x, ctx.fake.detach()]))
    (e_real, e_fake), (d_real, d_fake) = enc.split(4), dec.split(4)
    expected = (
        F.relu(1 - e_real).mean()
        + F.relu(1 + e_fake).mean()
        + F.relu(1 - d_real).mean()
        + F.relu(1 + d_fake).mean()
    )
    assert d_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert d_stats["D_pixel_fake"] == pytest.approx(F.relu(1 + d_fake).mean().item(), rel=1e-5)
    g_loss, g_stats = family.g_loss(ctx)
    enc, dec = family.D(ctx.fake)
    assert g_loss.item() == pytest.approx((-enc.mean() - dec.mean()).item(), rel=1e-5)
    assert g_stats["G_dec"] == pytest.approx(-dec.mean().item(), rel=1e-5)


def test_non_saturating_generator_loss():
    family = make()
    family.D.eval()
    ctx = family.prepare(batch())
    g_loss, _ = family.g_loss(ctx)
    enc, dec = family.D(ctx.fake)
    assert g_loss.item() == pytest.approx((0.5 * (_bce(enc, 1.0) + _bce(dec, 1.0))).item())


def test_ema_decay_starts_at_ema_start():
    family = make(ema_start=5, ema_decay=0.999)
    assert family.G_ema is not None and family.export_generator() is family.G_ema
    assert family.ema_decay(0) == family.ema_decay(4) == 0.0
    assert family.ema_decay(5) == family.ema_decay(10**6) == 0.999
    assert make().ema_decay(20999) == 0.0 and make().ema_decay(21000) == 0.9999


def test_fixed_sample_inputs_are_deterministic():
    family = make(CLASSES)
    a = family.fixed_sample_inputs(batch(), 7, seed=3)
    torch.manual_seed(123)  # the global RNG does not matter
    b = family.fixed_sample_inputs(batch(), 7, seed=3)
    c = family.fixed_sample_inputs(batch(), 7, seed=4)
    assert set(a) == {"z", "y"} and a["z"].shape == (7, 8)
    assert torch.equal(a["z"], b["z"]) and not torch.equal(a["z"], c["z"])
    assert a["y"].tolist() == [0, 1, 2, 0, 1, 2, 0]
    plain = make().fixed_sample_inputs(batch(), 5, seed=3)
    assert set(plain) == {"z", "y"} and plain["y"].shape == (5,)


@pytest.mark.parametrize(
    ("num_classes", "count", "columns"), [(0, 7, 3), (CLASSES, 7, 3), (5, 4, 2)]
)
def test_sample_grid(num_classes, count, columns):
    family = make(num_classes)
    inputs = family.fixed_sample_inputs(batch(), count, seed=0)
    family.G.train()
    images, ncols = family.sample_grid(family.G, inputs)
    assert images.shape == (count, 3, 32, 32) and ncols == columns
    assert images.min() >= -1 and images.max() <= 1
    assert family.G.training  # the training flag is restored
    ema_images, _ = family.sample_grid(family.export_generator(), inputs)
    assert ema_images.shape == images.shape and not family.G_ema.training


def test_card_extras():
    extras = make(cutmix=False).card_extras()
    assert extras["loss"] == "hinge" and extras["training"]["ema_start"] == 21000
