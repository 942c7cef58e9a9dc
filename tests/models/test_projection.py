"""Projection into the sampling generators' latent spaces, on tiny randomly initialised networks."""

from __future__ import annotations

import math

import pytest
import torch

from models.pggan.networks import (
    PGGANDiscriminator,
    PGGANDiscriminatorConfig,
    PGGANGenerator,
    PGGANGeneratorConfig,
)
from models.projection import (
    MAX_STEPS,
    Projection,
    ProjectionStep,
    ProjectionStopped,
    project,
    psnr,
    ssim,
)
from models.sampling import generate
from models.unetgan.networks import (
    UNetGANDiscriminator,
    UNetGANDiscriminatorConfig,
    UNetGANGenerator,
    UNetGANGeneratorConfig,
)

LATENT = 16
PGGAN_SIZES = {"max_resolution": 32, "fmap_base": 128, "fmap_max": 32}


def _unetgan(num_classes: int = 0, channels: int = 3) -> UNetGANGenerator:
    torch.manual_seed(0)
    config = UNetGANGeneratorConfig(
        image_size=32,
        channels=channels,
        width=4,
        latent_dim=LATENT,
        num_classes=num_classes,
        shared_init="normal",
    )
    return UNetGANGenerator(config)


def _pggan() -> PGGANGenerator:
    torch.manual_seed(0)
    return PGGANGenerator(PGGANGeneratorConfig(latent_dim=LATENT, **PGGAN_SIZES))


def _drawn(generator: torch.nn.Module, seed: int, label: int | None = None) -> torch.Tensor:
    """G's clamped image (1, C, S, S) of the latent drawn from `seed`."""
    z = torch.randn(1, LATENT, generator=torch.Generator().manual_seed(seed))
    return generate(generator, z, None if label is None else torch.tensor([label]))


def _reconstruction(generator: torch.nn.Module, result: Projection) -> torch.Tensor:
    label = None if result.class_label is None else torch.tensor([result.class_label])
    return generate(generator, result.z, label)  # (1, C, S, S), clamped


@pytest.fixture(scope="module")
def unet() -> UNetGANGenerator:
    return _unetgan()


@pytest.fixture(scope="module")
def target(unet: UNetGANGenerator) -> torch.Tensor:
    return _drawn(unet, seed=123)


def test_reconstructs_a_unetgan_sample(unet: UNetGANGenerator, target: torch.Tensor) -> None:
    result = project(unet, target, steps=100, seed=1)
    assert psnr(_reconstruction(unet, result), target) >= 25
    assert result.final_loss < result.start_loss
    assert result.z.shape == (1, LATENT) and result.z.dtype == torch.float32
    assert result.class_label is None
    assert len(result.losses) == 100 and result.losses[0] == result.start_loss


def test_reconstructs_a_pggan_sample() -> None:
    # At random init some start latents settle in a local minimum; this seed pair does not.
    generator = _pggan()
    target = _drawn(generator, seed=5)
    result = project(generator, target, steps=100, seed=1)
    assert psnr(_reconstruction(generator, result), target) >= 25
    assert result.final_loss < result.start_loss


def test_class_search_finds_the_class_of_the_target() -> None:
    generator = _unetgan(num_classes=10, channels=1)
    target = _drawn(generator, seed=123, label=3)
    reports: list[ProjectionStep] = []
    result = project(generator, target, steps=50, seed=1, on_step=reports.append)
    assert result.class_label == 3
    assert reports[-1].class_label == 3 and reports[-1].step == 50
    assert psnr(_reconstruction(generator, result), target) >= 25


def test_a_given_class_is_used() -> None:
    generator = _unetgan(num_classes=10, channels=1)
    target = _drawn(generator, seed=123, label=3)
    reports: list[ProjectionStep] = []
    result = project(generator, target, steps=4, seed=1, class_label=7, on_step=reports.append)
    assert result.class_label == 7
    assert [r.class_label for r in reports] == [7]


@pytest.mark.parametrize("family", ["unetgan", "pggan"])
def test_discriminator_feature_loss_lowers_the_loss(family: str) -> None:
    if family == "unetgan":
        generator = _unetgan()
        d = UNetGANDiscriminator(UNetGANDiscriminatorConfig(image_size=32, width=4))
    else:
        generator = _pggan()
        d = PGGANDiscriminator(PGGANDiscriminatorConfig(**PGGAN_SIZES))
    target = _drawn(generator, seed=5)
    plain = project(generator, target, steps=30, seed=1)
    with_d = project(generator, target, steps=30, seed=1, discriminator=d)
    assert with_d.final_loss < with_d.start_loss
    assert with_d.start_loss > plain.start_loss  # the feature term adds to the loss
    assert all(p.grad is None for p in d.parameters())


def test_same_seed_same_latent(unet: UNetGANGenerator, target: torch.Tensor) -> None:
    a, b = (project(unet, target, steps=5, seed=9) for _ in range(2))
    assert torch.equal(a.z, b.z) and a.losses == b.losses
    assert not torch.equal(a.z, project(unet, target, steps=5, seed=10).z)


def test_progress_reports(unet: UNetGANGenerator, target: torch.Tensor) -> None:
    reports: list[ProjectionStep] = []
    project(unet, target, steps=25, seed=1, on_step=reports.append, report_every=10)
    assert [r.step for r in reports] == [10, 20, 25]
    for report in reports:
        assert report.total == 25 and report.class_label is None
        assert report.image.shape == (3, 32, 32) and report.image.dtype == torch.float32
        assert report.image.device.type == "cpu"
        assert report.image.abs().max() <= 1
        assert math.isfinite(report.loss) and report.psnr == pytest.approx(
            psnr(report.image, target[0])
        )


def test_stop_raises_and_leaves_the_networks_as_they_were(
    unet: UNetGANGenerator, target: torch.Tensor
) -> None:
    d = UNetGANDiscriminator(UNetGANDiscriminatorConfig(image_size=32, width=4))
    unet.train()
    unet.out_bn.eval()  # a mixed state, restored module by module
    frozen = next(unet.parameters())
    frozen.requires_grad_(False)
    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) > 3

    try:
        with pytest.raises(ProjectionStopped):
            project(unet, target, steps=10, seed=1, discriminator=d, should_stop=should_stop)
        assert len(asked) == 4
        assert unet.training and not unet.out_bn.training and unet.blocks[0].training
        assert d.training
        assert not frozen.requires_grad
        assert all(p.requires_grad for p in unet.parameters() if p is not frozen)
        assert all(p.grad is None for p in [*unet.parameters(), *d.parameters()])
    finally:
        frozen.requires_grad_(True)
        unet.eval()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target": torch.zeros(1, 1, 32, 32)}, "size and channels"),
        ({"target": torch.zeros(1, 3, 16, 16)}, "size and channels"),
        ({"target": torch.zeros(3, 32, 32)}, "size and channels"),
        ({"target": torch.full((1, 3, 32, 32), math.nan)}, "non-finite"),
        ({"target": torch.zeros(1, 3, 32, 32, dtype=torch.uint8)}, "float"),
        ({"steps": 0}, "steps must be"),
        ({"steps": MAX_STEPS + 1}, "steps must be"),
        ({"class_label": 0}, "unconditional"),
        ({"report_every": 0}, "report_every"),
        (
            {"discriminator": UNetGANDiscriminator(UNetGANDiscriminatorConfig(32, channels=1))},
            "discriminator judges 1-channel",
        ),
        (
            {"discriminator": PGGANDiscriminator(PGGANDiscriminatorConfig(16, fmap_base=64))},
            "16x16",
        ),
    ],
)
def test_invalid_arguments(
    unet: UNetGANGenerator, target: torch.Tensor, change: dict, message: str
) -> None:
    arguments = {"target": target, "steps": 5, "seed": 0, **change}
    with pytest.raises(ValueError, match=message):
        project(unet, **arguments)


def test_class_label_out_of_range() -> None:
    generator = _unetgan(num_classes=4, channels=1)
    with pytest.raises(ValueError, match=r"class_label must lie in 0\.\.3"):
        project(generator, torch.zeros(1, 1, 32, 32), steps=5, seed=0, class_label=4)


def test_only_sampling_generators() -> None:
    with pytest.raises(ValueError, match="sampling generator"):
        project(torch.nn.Linear(2, 2), torch.zeros(1, 3, 32, 32), steps=5, seed=0)


def test_psnr_and_ssim() -> None:
    a = torch.rand(1, 3, 32, 32) * 2 - 1
    noisy = (a + 0.1 * torch.randn_like(a)).clamp(-1, 1)
    assert psnr(a, a) == math.inf
    assert psnr(a, torch.zeros_like(a) + a.mean()) < psnr(a, noisy) < 40
    assert psnr(a[0], noisy[0]) == pytest.approx(psnr(a, noisy))
    assert psnr(torch.full((3, 4, 4), -1.0), torch.ones(3, 4, 4)) == pytest.approx(0.0)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, noisy) < 0.99
    assert ssim(a[:, :1, :8, :8], a[:, :1, :8, :8]) == pytest.approx(1.0)  # window fitted
    with pytest.raises(ValueError, match="one shape"):
        psnr(a, a[0, :1])
