"""Realness maps from real tiny discriminators, and the least-real box of a map."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import models
from models.realness import ConditionRequired, NoRealnessMap, least_real_box, realness
from training.cutmix import cutmix_mask, mix

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def unet_d(num_classes: int = 0, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.create(
        "unetgan-discriminator", image_size=32, channels=1, num_classes=num_classes, width=4
    )


def patch_d(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.create("pix2pix-discriminator", in_channels=1, out_channels=3, base_width=4)


def images(count: int, channels: int = 1, size: int = 32, seed: int = 1) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    return torch.rand(count, channels, size, size, generator=rng) * 2 - 1  # (N, C, S, S)


def test_unet_map_and_score_are_the_sigmoid_of_its_two_heads():
    d = unet_d()
    d.train()
    x = images(1)
    before = {k: v.clone() for k, v in d.state_dict().items()}
    result = realness(d, x)
    assert result.map.shape == (32, 32) and result.map.dtype == torch.float32
    assert 0.0 <= float(result.map.min()) <= float(result.map.max()) <= 1.0
    d.eval()
    with torch.no_grad():
        global_logit, pixel_logits = d(x)
    assert torch.allclose(result.map, torch.sigmoid(pixel_logits)[0, 0])
    assert result.global_score == pytest.approx(float(torch.sigmoid(global_logit[0])))
    assert result.class_label is None
    d.train()
    assert d.training  # the mode it was in is restored
    after = d.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # spectral-norm vectors too


def test_a_conditional_unet_d_judges_the_image_as_its_likeliest_class():
    d = unet_d(num_classes=4).eval()
    for p in d.parameters():  # classes that score differently
        p.data.add_(torch.randn_like(p) * 0.1)
    x = images(1, seed=5)
    with torch.no_grad():
        per_class = torch.stack([d(x, torch.tensor([k]))[0][0] for k in range(4)])  # (K,)
        pixels_2 = d(x, torch.tensor([2]))[1][0, 0]  # (S, S)
    chosen = realness(d, x)
    assert chosen.class_label == int(per_class.argmax())
    assert chosen.global_score == pytest.approx(float(torch.sigmoid(per_class.max())), abs=1e-5)
    given = realness(d, x, class_label=2)
    assert given.class_label == 2 and torch.allclose(given.map, torch.sigmoid(pixels_2))
    with pytest.raises(ValueError, match=r"class_label must lie in 0\.\.3"):
        realness(d, x, class_label=4)
    with pytest.raises(ValueError, match="unconditional"):
        realness(unet_d(), x, class_label=0)


def test_patchgan_map_is_its_patch_logits_upsampled_to_the_image():
    d = patch_d()
    a, b = images(1, 1, 64, seed=2), images(1, 3, 64, seed=3)
    running = d.model[3].running_mean.clone()
    result = realness(d, b, condition=a)
    assert result.map.shape == (64, 64) and result.global_score is None
    with torch.no_grad():  # batch norm at batch 1 in training mode: the image's own statistics
        logits = copy.deepcopy(d).train()(a, b)  # (1, 1, 6, 6)
    assert logits.shape[-1] < 64  # a grid of patches, not pixels
    expected = torch.sigmoid(F.interpolate(logits, size=(64, 64), mode="bilinear"))[0, 0]
    assert torch.allclose(result.map, expected, atol=1e-6)
    assert torch.equal(d.model[3].running_mean, running)  # batch statistics, averages untouched
    squares = realness(d, b, condition=a, least_squares=True).map
    clipped = F.interpolate(logits, (64, 64), mode="bilinear")[0, 0].clamp(0, 1)
    assert torch.allclose(squares, clipped, atol=1e-6)


def test_patchgan_needs_the_input_image():
    d = patch_d()
    with pytest.raises(ConditionRequired, match="input \\(A\\) image"):
        realness(d, images(1, 3))
    with pytest.raises(ValueError, match=r"condition must be \(B, 1, H, W\)"):
        realness(d, images(1, 3), condition=images(1, 3))
    with pytest.raises(ValueError, match="must have one size"):
        realness(d, images(1, 3, 32), condition=images(1, 1, 64))


def test_progressive_gan_critic_has_no_map():
    d = models.create("pggan-discriminator", max_resolution=8, fmap_base=16, fmap_max=8)
    with pytest.raises(NoRealnessMap, match="pggan-discriminator scores whole images"):
        realness(d, images(1, 3, 8))
    assert issubclass(NoRealnessMap, ValueError)


@pytest.mark.parametrize(
    "image",
    [images(2), images(1, 3), images(1, size=16), torch.zeros(1, 1, 32, 32, dtype=torch.uint8)],
)
def test_images_of_the_wrong_shape_or_type_are_refused(image):
    with pytest.raises(ValueError, match="image must be"):
        realness(unet_d(), image)


def test_a_briefly_trained_unet_d_finds_a_pasted_patch():
    """60 steps of D^U's per-pixel loss on smooth reals and noisy fakes, CutMix batches included."""
    torch.manual_seed(0)
    d = unet_d()
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.0, 0.999))
    ramp = torch.linspace(-1, 1, 32)

    def reals(n: int) -> torch.Tensor:  # (n, 1, 32, 32) smooth gradients at random angles
        angle = torch.rand(n, 1, 1) * 6.3
        field = ramp[None, :, None] * angle.cos() + ramp[None, None, :] * angle.sin()
        return (0.8 * field)[:, None]

    def fakes(n: int) -> torch.Tensor:
        return torch.rand(n, 1, 32, 32) * 2 - 1

    for _ in range(60):
        x, g = reals(8), fakes(8)
        mask = cutmix_mask(8, 32, 32)  # (8, 1, 32, 32), 1 = real pixel
        _, dec = d(torch.cat([x, g, mix(x, g, mask)]))  # (24, 1, 32, 32)
        target = torch.cat([torch.ones_like(mask), torch.zeros_like(mask), mask])
        loss = F.binary_cross_entropy_with_logits(dec, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    image = reals(1)
    image[..., 8:20, 12:28] = fakes(1)[..., 8:20, 12:28]
    result = realness(d, image)
    inside = result.map[8:20, 12:28].mean()
    outside = (result.map.sum() - result.map[8:20, 12:28].sum()) / (32 * 32 - 12 * 16)
    assert inside < outside - 0.25
    x0, y0, x1, y1 = least_real_box(result.map.numpy())
    overlap = max(0, min(x1, 28) - max(x0, 12)) * max(0, min(y1, 20) - max(y0, 8))
    union = (x1 - x0) * (y1 - y0) + 12 * 16 - overlap
    assert overlap / union > 0.3


def test_least_real_box_frames_a_low_rectangle():
    realness_map = np.full((40, 60), 0.9)
    realness_map[10:22, 30:50] = 0.1
    assert least_real_box(realness_map) == (30, 10, 50, 22)


def test_least_real_box_takes_the_region_holding_the_minimum():
    realness_map = np.full((50, 50), 0.8)
    realness_map[5:15, 5:15] = 0.3  # low, but not the lowest
    realness_map[30:45, 20:40] = 0.2
    realness_map[36, 30] = 0.05  # the least real pixel
    assert least_real_box(realness_map) == (20, 30, 40, 45)


def test_least_real_box_ignores_a_single_noisy_pixel():
    rng = np.random.default_rng(0)
    realness_map = 0.8 + 0.05 * rng.standard_normal((64, 64))
    realness_map[40:60, 4:30] = 0.2
    realness_map[3, 50] = 0.0  # one pixel, smoothed away
    x0, y0, x1, y1 = least_real_box(realness_map)
    assert abs(x0 - 4) <= 1 and abs(y0 - 40) <= 1 and abs(x1 - 30) <= 1 and abs(y1 - 60) <= 1


def test_least_real_box_of_a_uniform_map_is_the_whole_map_and_bad_maps_are_refused():
    assert least_real_box(np.full((7, 9), 0.5)) == (0, 0, 9, 7)
    with pytest.raises(ValueError, match=r"\(H, W\) array"):
        least_real_box(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="level must lie"):
        least_real_box(np.zeros((3, 3)), level=2.0)
