"""CutMix consistency regularisation of U-Net GAN (Schonfeld et al. 2020, sec. 3.2)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from training.cutmix import (
    boxes_to_mask,
    consistency_loss,
    cutmix_boxes,
    cutmix_mask,
    cutmix_targets,
    mix,
    p_mix,
)


def _fixed_mask() -> torch.Tensor:
    mask = torch.zeros(2, 1, 16, 16)
    mask[0, :, 4:12, 2:9] = 1.0  # a real box on a fake background
    mask[1] = 1.0
    mask[1, :, 0:6, 5:16] = 0.0  # a fake box on a real background
    return mask


def test_mask_is_binary_with_the_right_shape():
    mask = cutmix_mask(8, 16, 24, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (8, 1, 16, 24) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}


def test_box_statistics_follow_the_reference():
    boxes = cutmix_boxes(20000, 64, 64, generator=torch.Generator().manual_seed(0))
    # the area ratio r ~ U(0, 1): mean 0.5
    assert boxes.ratio.mean().item() == pytest.approx(0.5, abs=0.01)
    # a box away from the borders has sides int(64 sqrt(r)) rounded down to even (c +- side // 2)
    side = 2 * ((64 * boxes.ratio.sqrt()).long() // 2)
    height, width = boxes.bottom - boxes.top, boxes.right - boxes.left
    inner = (boxes.top > 0) & (boxes.bottom < 64) & (boxes.left > 0) & (boxes.right < 64)
    assert inner.sum() > 1000
    assert torch.equal(height[inner], side[inner]) and torch.equal(width[inner], side[inner])
    # clipping to the image shrinks the mean area from 0.5 to about 0.32 (analytically 0.321)
    area = (height * width).float() / 64**2
    assert 0.28 < area.mean().item() < 0.34
    assert boxes.invert.float().mean().item() == pytest.approx(0.5, abs=0.02)


def test_real_fraction_averages_one_half_with_inversion():
    boxes = cutmix_boxes(4000, 32, 32, generator=torch.Generator().manual_seed(1))
    mask = boxes_to_mask(boxes, 32, 32)  # (B, 1, H, W)
    assert mask.mean().item() == pytest.approx(0.5, abs=0.02)
    area = ((boxes.bottom - boxes.top) * (boxes.right - boxes.left)).float() / 32**2
    real = mask.mean(dim=(1, 2, 3))
    # not inverted: the box is fake; inverted: the box is the real part
    assert torch.allclose(real[~boxes.invert], 1 - area[~boxes.invert])
    assert torch.allclose(real[boxes.invert], area[boxes.invert])


def test_a_fixed_generator_gives_the_same_mask():
    a = cutmix_mask(16, 32, 32, generator=torch.Generator().manual_seed(7))
    b = cutmix_mask(16, 32, 32, generator=torch.Generator().manual_seed(7))
    c = cutmix_mask(16, 32, 32, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(3)
    d = cutmix_mask(16, 32, 32)
    torch.manual_seed(3)
    assert torch.equal(d, cutmix_mask(16, 32, 32))  # the global RNG without a generator


def test_mix_takes_real_where_the_mask_is_one():
    real, fake, mask = (
        torch.full((2, 3, 16, 16), 1.0),
        torch.full((2, 3, 16, 16), -1.0),
        _fixed_mask(),
    )
    mixed = mix(real, fake, mask)
    where_real = mask.expand_as(mixed).bool()
    assert torch.all(mixed[where_real] == 1.0) and torch.all(mixed[~where_real] == -1.0)


def test_targets_encoder_fake_decoder_the_mask():
    mask = _fixed_mask()
    encoder, decoder = cutmix_targets(mask)
    assert encoder.shape == (2,) and torch.all(encoder == 0)
    assert torch.equal(decoder, mask)


def test_consistency_is_zero_for_a_per_pixel_decoder():
    torch.manual_seed(0)
    x, fake, mask = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16), _fixed_mask()
    decoder = nn.Conv2d(3, 1, kernel_size=1)  # per pixel: equivariant to the mix
    with torch.no_grad():
        loss = consistency_loss(decoder(mix(x, fake, mask)), decoder(x), decoder(fake), mask)
    assert loss.item() == pytest.approx(0.0, abs=1e-10)


def test_consistency_is_positive_for_a_blurring_decoder():
    torch.manual_seed(0)
    x, fake, mask = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16), _fixed_mask()

    def decoder(images: torch.Tensor) -> torch.Tensor:
        grey = images.mean(dim=1, keepdim=True)
        return F.avg_pool2d(grey, 3, stride=1, padding=1)  # a 3x3 blur mixes across the seam

    loss = consistency_loss(decoder(mix(x, fake, mask)), decoder(x), decoder(fake), mask)
    assert loss.item() > 1e-3
    expected = ((decoder(mix(x, fake, mask)) - mix(decoder(x), decoder(fake), mask)) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item())


def test_p_mix_ramps_linearly_to_its_maximum():
    assert p_mix(0, 1000) == 0.0
    assert p_mix(500, 1000) == pytest.approx(0.25)
    assert p_mix(1000, 1000) == p_mix(5000, 1000) == 0.5
    assert p_mix(250, 1000, p_max=1.0) == pytest.approx(0.25)
    assert p_mix(0, 0) == 0.5 and p_mix(0, 0, p_max=1.0) == 1.0
