"""pix2pix networks against the paper and the reference implementation (Isola et al., 2017)."""

import pytest
import torch
from torch import nn

from models import create
from models.pix2pix.networks import Pix2PixGenerator


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_unet_256_matches_reference_parameter_count_and_shape():
    g = create("pix2pix-generator")
    assert n_params(g) == 54_414_019  # reference unet_256, batch norm: 54.414 M
    assert g.config.downsamplings == 8
    g.eval()
    with torch.no_grad():
        y = g(torch.randn(1, 3, 256, 256))
    assert y.shape == (1, 3, 256, 256)
    assert y.abs().max() <= 1.0  # tanh output


def test_unet_128_has_seven_downsamplings():
    g = create("pix2pix-generator", image_size=128)
    assert g.config.downsamplings == 7
    assert n_params(g) == 41_829_059  # reference unet_128: 41.829 M
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 7 and all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)


def test_generator_layer_widths_follow_the_paper():
    g = create("pix2pix-generator")
    encoder = [m.out_channels for m in g.modules() if isinstance(m, nn.Conv2d)]
    assert encoder == [64, 128, 256, 512, 512, 512, 512, 512]
    # Decoder inputs counting the concatenated skips, innermost (bottleneck) first.
    decoder_in = [m.in_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert decoder_in == [512, 1024, 1024, 1024, 1024, 512, 256, 128]
    first_down = g.model.down
    assert not any(isinstance(m, nn.BatchNorm2d) for m in first_down)  # no norm on C64


def test_dropout_sits_in_the_first_three_decoder_blocks():
    g = create("pix2pix-generator")
    blocks = []
    block = g.model
    while isinstance(block, nn.Module) and hasattr(block, "up"):
        blocks.append(any(isinstance(m, nn.Dropout) for m in block.up))
        block = block.inner
    # blocks are listed outermost first; the decoder runs innermost first
    assert blocks[::-1] == [True, True, True, False, False, False, False, False]


def test_patchgan_70_matches_reference():
    d = create("pix2pix-discriminator")
    assert n_params(d) == 2_768_705  # reference 70x70 PatchGAN: 2.769 M
    out = d(torch.randn(1, 3, 256, 256), torch.randn(1, 3, 256, 256))
    assert out.shape == (1, 1, 30, 30)
    assert d.model[0].in_channels == 6  # input and output concatenated


@pytest.mark.parametrize(
    ("patch", "size", "side"), [(1, 64, 64), (16, 64, 30), (70, 64, 6), (286, 256, 6)]
)
def test_patch_variants(patch, size, side):
    d = create("pix2pix-discriminator", patch=patch, base_width=4)
    out = d(torch.randn(2, 3, size, size), torch.randn(2, 3, size, size))
    assert out.shape == (2, 1, side, side)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_forward_backward_small(norm):
    g = create("pix2pix-generator", image_size=32, base_width=8, norm=norm)
    d = create("pix2pix-discriminator", base_width=8, norm=norm)
    x = torch.randn(2, 3, 32, 32)
    fake = g(x)
    loss = d(x, fake).mean() + (fake - x).abs().mean()
    loss.backward()
    for module in (g, d):
        grads = [p.grad for p in module.parameters()]
        assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)


def test_greyscale_to_colour_channels():
    g = create("pix2pix-generator", image_size=32, base_width=8, in_channels=1, out_channels=3)
    assert g(torch.randn(2, 1, 32, 32)).shape == (2, 3, 32, 32)
    assert g.config.channels == 3 and g.config.num_classes == 0


def test_bad_configs_and_inputs_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        create("pix2pix-generator", image_size=100)
    with pytest.raises(ValueError, match="norm must be"):
        create("pix2pix-generator", norm="layer")
    with pytest.raises(ValueError, match="patch must be one of"):
        create("pix2pix-discriminator", patch=42)
    g: Pix2PixGenerator = create("pix2pix-generator", image_size=32, base_width=4)
    with pytest.raises(ValueError, match="expected 32x32 input"):
        g(torch.randn(1, 3, 64, 64))
