"""Progressive GAN networks: the paper's channel schedule, its layers, growing and fading in."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.pggan.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    stddev_group_size,
)
from models.pggan.networks import (
    PGGANDiscriminator,
    PGGANDiscriminatorConfig,
    PGGANGenerator,
    PGGANGeneratorConfig,
)
from models.registry import architecture_of, create

SMALL = {"max_resolution": 32, "fmap_base": 256, "fmap_max": 32}
LATENT = 512


@pytest.fixture(scope="module")
def paper_nets() -> tuple[PGGANGenerator, PGGANDiscriminator]:
    return create("pggan-generator"), create("pggan-discriminator")


@pytest.fixture
def small_nets() -> tuple[PGGANGenerator, PGGANDiscriminator]:
    torch.manual_seed(0)
    return create("pggan-generator", **SMALL).eval(), create("pggan-discriminator", **SMALL).eval()


def test_registered_with_paper_defaults(paper_nets) -> None:
    g, d = paper_nets
    assert architecture_of(g).role == "generator"
    assert architecture_of(d).role == "discriminator"
    assert architecture_of(g).family == architecture_of(d).family == "pggan"
    assert g.config.image_size == d.config.image_size == 1024
    assert g.config.latent_dim == LATENT
    assert (g.stage, g.alpha, g.resolution) == (8, 1.0, 1024)
    assert (d.stage, d.alpha, d.resolution) == (8, 1.0, 1024)


def test_channel_schedule_at_paper_defaults(paper_nets) -> None:
    g, d = paper_nets
    # 4, 8, ..., 1024: min(8192 / 2**level, 512), level = log2(resolution) - 1.
    expected = [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert expected == [min(8192 // 2 ** (k + 1), 512) for k in range(9)]
    assert [m.weight.shape[1] for m in g.to_rgb] == expected
    assert [m.weight.shape[0] for m in d.from_rgb] == expected
    assert g.blocks[0].dense.weight.shape == (512 * 16, LATENT)
    for k in range(1, 9):
        assert g.blocks[k].conv0.weight.shape[:2] == (expected[k], expected[k - 1])
        assert g.blocks[k].conv1.weight.shape[:2] == (expected[k], expected[k])
        assert d.blocks[k].conv0.weight.shape[:2] == (expected[k], expected[k])
        assert d.blocks[k].conv1.weight.shape[:2] == (expected[k - 1], expected[k])
    final = d.blocks[0]
    assert final.conv.weight.shape[:2] == (512, 512 + 1)  # mbstd adds one feature map
    assert final.dense0.weight.shape == (512, 512 * 16)
    assert final.dense1.weight.shape == (1, 512)


def test_equalised_learning_rate_at_paper_defaults(paper_nets) -> None:
    g, d = paper_nets
    weight = g.blocks[1].conv0.weight
    assert abs(weight.mean().item()) < 0.01
    assert abs(weight.std().item() - 1.0) < 0.01
    for module in [*g.modules(), *d.modules()]:
        if isinstance(module, EqualizedConv2d | EqualizedLinear) and module.bias is not None:
            assert torch.count_nonzero(module.bias) == 0
    assert g.blocks[0].dense.bias is None  # its bias is per channel, after the reshape to 4x4
    assert torch.count_nonzero(g.blocks[0].bias) == 0
    conv = g.blocks[4].conv0  # 3x3, 512 -> 256
    assert conv.scale == pytest.approx(math.sqrt(2 / (512 * 9)))
    assert g.blocks[0].dense.scale == pytest.approx(math.sqrt(2) / 4 / math.sqrt(LATENT))
    assert g.to_rgb[8].scale == pytest.approx(1 / math.sqrt(16))
    assert d.from_rgb[8].scale == pytest.approx(math.sqrt(2 / 3))
    assert d.blocks[0].dense0.scale == pytest.approx(math.sqrt(2 / (512 * 16)))
    assert d.blocks[0].dense1.scale == pytest.approx(1 / math.sqrt(512))


def test_equalised_layers_scale_at_run_time() -> None:
    torch.manual_seed(0)
    conv, linear = EqualizedConv2d(6, 5, 3), EqualizedLinear(7, 4)
    x = torch.randn(2, 6, 8, 8)
    expected = F.conv2d(x, conv.weight * math.sqrt(2 / 54), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), expected)
    v = torch.randn(3, 7)
    torch.testing.assert_close(linear(v), F.linear(v, linear.weight * math.sqrt(2 / 7)))


def test_pixel_norm_gives_unit_mean_square_over_channels() -> None:
    x = torch.randn(4, 16, 5, 5) * 7 + 3
    y = PixelNorm()(x)
    torch.testing.assert_close(y.square().mean(dim=1), torch.ones(4, 5, 5))
    assert torch.equal(torch.sign(y), torch.sign(x))


@pytest.mark.parametrize(("batch", "group"), [(8, 4), (4, 4), (2, 2), (1, 1), (6, 3), (7, 1)])
def test_stddev_group_is_largest_divisor_up_to_four(batch: int, group: int) -> None:
    assert stddev_group_size(batch, 4) == group


def test_minibatch_stddev_appends_mean_std_of_each_group() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 5, 4, 4)
    y = MinibatchStdDev(group_size=4)(x)
    assert y.shape == (8, 6, 4, 4)
    assert torch.equal(y[:, :5], x)
    for members in ([0, 2, 4, 6], [1, 3, 5, 7]):  # sample i is in group i mod (B / G)
        group = x[members]
        expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        torch.testing.assert_close(y[members, 5], expected.expand(4, 4, 4))


def test_minibatch_stddev_uses_whole_small_batch() -> None:
    x = torch.randn(3, 2, 4, 4)
    expected = (x.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(MinibatchStdDev(4)(x)[:, 2], expected.expand(3, 4, 4))


def test_shapes_at_every_stage(small_nets) -> None:
    g, d = small_nets
    z = torch.randn(3, LATENT)
    for stage, alpha in [(k, a) for k in range(4) for a in (0.0, 0.5, 1.0)]:
        images = g(z, stage=stage, alpha=alpha)
        size = 4 * 2**stage
        assert images.shape == (3, 3, size, size)
        assert d(images, stage=stage, alpha=alpha).shape == (3,)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_generator_fade_in_starts_at_previous_stage(small_nets, stage: int) -> None:
    g, _ = small_nets
    z = torch.randn(4, LATENT)
    with torch.no_grad():
        faded = g(z, stage=stage, alpha=0.0)
        previous = g(z, stage=stage - 1, alpha=1.0)
        upsampled = F.interpolate(previous, scale_factor=2, mode="nearest")
        torch.testing.assert_close(faded, upsampled, rtol=0, atol=1e-6)
        assert not torch.allclose(g(z, stage=stage, alpha=1.0), upsampled)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_discriminator_fade_in_starts_at_previous_stage(small_nets, stage: int) -> None:
    _, d = small_nets
    size = 4 * 2**stage
    x = torch.randn(4, 3, size, size)
    with torch.no_grad():
        faded = d(x, stage=stage, alpha=0.0)
        previous = d(F.avg_pool2d(x, 2), stage=stage - 1, alpha=1.0)
        torch.testing.assert_close(faded, previous, rtol=0, atol=1e-6)


def test_state_and_explicit_arguments_agree(small_nets) -> None:
    g, d = small_nets
    z = torch.randn(2, LATENT)
    with torch.no_grad():
        full = g(z)
        assert full.shape == (2, 3, 32, 32)
        g.set_stage(2, alpha=0.25)
        d.set_stage(2, alpha=0.25)
        assert (g.stage, g.alpha, g.resolution) == (2, 0.25, 16)
        images = g(z)
        assert torch.equal(images, g(z, stage=2, alpha=0.25))
        assert torch.equal(d(images), d(images, stage=2, alpha=0.25))
        # An explicit argument overrides the state for that call only.
        assert torch.equal(g(z, stage=3, alpha=1.0), full)
        assert torch.equal(g(z, alpha=1.0), g(z, stage=2, alpha=1.0))
        assert (g.stage, g.alpha) == (2, 0.25)


def test_state_dict_is_the_same_at_every_stage(small_nets) -> None:
    g, _ = small_nets
    keys = list(g.state_dict())
    g.set_stage(0)
    assert list(g.state_dict()) == keys
    assert all(p.requires_grad for p in g.parameters())


@pytest.mark.parametrize("stage", [-1, 4, 1.0, True, None])
def test_invalid_stage_is_rejected(small_nets, stage) -> None:
    g, d = small_nets
    with pytest.raises(ValueError, match="stage"):
        g.set_stage(stage)
    with pytest.raises(ValueError, match="stage"):
        d.set_stage(stage)
    if stage is not None:
        with pytest.raises(ValueError, match="stage"):
            g(torch.randn(1, LATENT), stage=stage)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), "0.5"])
def test_invalid_alpha_is_rejected(small_nets, alpha) -> None:
    g, d = small_nets
    with pytest.raises(ValueError, match="alpha"):
        g.set_stage(1, alpha)
    with pytest.raises(ValueError, match="alpha"):
        d(torch.randn(1, 3, 8, 8), stage=1, alpha=alpha)
    assert (g.stage, g.alpha) == (3, 1.0)


def test_inputs_of_the_wrong_shape_are_rejected(small_nets) -> None:
    g, d = small_nets
    with pytest.raises(ValueError, match="latents"):
        g(torch.randn(2, 64))
    with pytest.raises(ValueError, match="stage 1 expects"):
        d(torch.randn(2, 3, 16, 16), stage=1)


@pytest.mark.parametrize(
    ("config", "fields", "message"),
    [
        (PGGANGeneratorConfig, {"max_resolution": 48}, "power of two"),
        (PGGANGeneratorConfig, {"max_resolution": 4}, "power of two"),
        (PGGANGeneratorConfig, {"max_resolution": 2048}, "power of two"),
        (PGGANGeneratorConfig, {"channels": 2}, "channels"),
        (PGGANGeneratorConfig, {"num_classes": 10}, "unconditional"),
        (PGGANGeneratorConfig, {"fmap_base": 256}, "fmap_base"),
        (PGGANDiscriminatorConfig, {"mbstd_group_size": -1}, "mbstd_group_size"),
    ],
)
def test_invalid_configs_are_rejected(config, fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**fields)


def test_training_step_at_a_middle_stage_reaches_old_and_new_paths() -> None:
    torch.manual_seed(0)
    g = PGGANGenerator(PGGANGeneratorConfig(**SMALL))
    d = PGGANDiscriminator(PGGANDiscriminatorConfig(**SMALL))
    g.set_stage(2, alpha=0.5)
    d.set_stage(2, alpha=0.5)
    logits = d(g(torch.randn(4, LATENT)))
    assert logits.shape == (4,)
    logits.mean().backward()
    reached = [
        g.to_rgb[1].weight,  # the old path, faded out
        g.to_rgb[2].weight,
        g.blocks[2].conv0.weight,  # the new block
        g.blocks[0].dense.weight,
        d.from_rgb[1].weight,
        d.from_rgb[2].weight,
        d.blocks[2].conv0.weight,
        d.blocks[0].dense1.weight,
    ]
    for param in reached:
        assert param.grad is not None
        assert torch.isfinite(param.grad).all()
        assert param.grad.abs().sum() > 0
    assert g.to_rgb[3].weight.grad is None  # not yet grown
