"""U-Net GAN networks: shapes, label handling, gradients and registry wiring."""

from __future__ import annotations

import pytest
import torch

import models  # noqa: F401  (registers every family's architectures)
from models.registry import architecture_of, create
from models.unetgan.networks import (
    UNetGANDiscriminator,
    UNetGANDiscriminatorConfig,
    UNetGANGenerator,
    UNetGANGeneratorConfig,
)

SIZES = (32, 64, 128, 256)
CLASSES = 5


def _pair(image_size: int = 32, num_classes: int = 0, channels: int = 3, width: int = 4):
    torch.manual_seed(0)
    g = UNetGANGenerator(
        UNetGANGeneratorConfig(
            image_size=image_size,
            channels=channels,
            num_classes=num_classes,
            latent_dim=16,
            width=width,
            shared_dim=8,
        )
    )
    d = UNetGANDiscriminator(
        UNetGANDiscriminatorConfig(
            image_size=image_size, channels=channels, num_classes=num_classes, width=width
        )
    )
    return g, d


def _labels(num_classes: int, batch: int = 2) -> torch.Tensor | None:
    return torch.randint(0, num_classes, (batch,)) if num_classes else None


@pytest.mark.parametrize("num_classes", [0, CLASSES], ids=["unconditional", "conditional"])
@pytest.mark.parametrize("image_size", SIZES)
def test_output_shapes(image_size: int, num_classes: int) -> None:
    g, d = _pair(image_size, num_classes)
    y = _labels(num_classes)
    x = g(torch.randn(2, 16), y)
    assert x.shape == (2, 3, image_size, image_size)
    assert x.abs().max() <= 1
    global_logits, pixel_logits = d(x, y)
    assert global_logits.shape == (2,)
    assert pixel_logits.shape == (2, 1, image_size, image_size)


def test_pixel_map_matches_input_size_for_grey_images() -> None:
    g, d = _pair(64, channels=1)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, 1, 64, 64)
    _, pixel_logits = d(torch.rand(3, 1, 64, 64) * 2 - 1)
    assert pixel_logits.shape == (3, 1, *x.shape[-2:])


def test_paper_width_128() -> None:
    torch.manual_seed(0)
    g = UNetGANGenerator(UNetGANGeneratorConfig())
    d = UNetGANDiscriminator(UNetGANDiscriminatorConfig())
    # The reference code's unconditional 128x128 G (ch 64, dim_z 128) and D^U, counted layer by
    # layer; D without the reference's unused 64->1 linear.
    assert sum(p.numel() for p in g.parameters()) == 33_732_739
    assert sum(p.numel() for p in d.parameters()) == 31_481_602
    g.eval()
    d.eval()
    with torch.no_grad():
        x = g(torch.randn(1, 128))
        global_logits, pixel_logits = d(x)
    assert x.shape == (1, 3, 128, 128)
    assert global_logits.shape == (1,)
    assert pixel_logits.shape == (1, 1, 128, 128)


def test_conditional_models_require_labels() -> None:
    g, d = _pair(num_classes=CLASSES)
    with pytest.raises(ValueError, match="class-conditional"):
        g(torch.randn(2, 16))
    with pytest.raises(ValueError, match="class-conditional"):
        d(torch.randn(2, 3, 32, 32))


def test_unconditional_models_reject_labels() -> None:
    g, d = _pair()
    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="unconditional"):
        g(torch.randn(2, 16), y)
    with pytest.raises(ValueError, match="unconditional"):
        d(torch.randn(2, 3, 32, 32), y)


def test_labels_must_match_the_batch() -> None:
    g, _ = _pair(num_classes=CLASSES)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        g(torch.randn(2, 16), torch.zeros(3, dtype=torch.long))


def test_wrong_input_shapes_are_rejected() -> None:
    g, d = _pair()
    with pytest.raises(ValueError, match="z must be"):
        g(torch.randn(2, 15))
    with pytest.raises(ValueError, match="x must be"):
        d(torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize(
    "config", [UNetGANGeneratorConfig, UNetGANDiscriminatorConfig], ids=["G", "D"]
)
def test_invalid_image_size(config: type) -> None:
    with pytest.raises(ValueError, match="32, 64, 128, 256"):
        config(image_size=96)


def test_invalid_channels() -> None:
    with pytest.raises(ValueError, match="channels"):
        UNetGANGeneratorConfig(channels=2)


@pytest.mark.parametrize("num_classes", [0, CLASSES], ids=["unconditional", "conditional"])
def test_forward_backward_gives_finite_gradients(num_classes: int) -> None:
    g, d = _pair(32, num_classes, width=8)
    y = _labels(num_classes, batch=4)
    global_logits, pixel_logits = d(g(torch.randn(4, 16), y), y)
    loss = -(global_logits.mean() + pixel_logits.mean())  # the generator's hinge loss
    loss.backward()
    for name, p in [*g.named_parameters(), *d.named_parameters()]:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_models_are_created_through_the_registry() -> None:
    g = create("unetgan-generator", image_size=32, width=4, num_classes=CLASSES)
    d = create("unetgan-discriminator", image_size=32, width=4)
    assert isinstance(g, UNetGANGenerator)
    assert isinstance(d, UNetGANDiscriminator)
    assert g.config == UNetGANGeneratorConfig(image_size=32, width=4, num_classes=CLASSES)
    arch = architecture_of(g)
    assert (arch.family, arch.role, arch.task) == ("unetgan", "generator", "sample")
    assert architecture_of(d).role == "discriminator"
    assert g(torch.randn(2, 128), torch.tensor([0, 4])).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="no config field"):
        create("unetgan-generator", ch=64)


def test_class_logits_are_the_global_logit_under_every_class() -> None:
    _, d = _pair(num_classes=CLASSES)
    d.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        scores = d.class_logits(d.encode(x)[-1])  # (2, CLASSES)
        for k in range(CLASSES):
            global_k, _ = d(x, torch.full((2,), k))
            assert torch.allclose(scores[:, k], global_k, atol=1e-5)
    with pytest.raises(ValueError, match="unconditional"):
        unconditional = _pair()[1]
        unconditional.class_logits(unconditional.encode(x)[-1])
