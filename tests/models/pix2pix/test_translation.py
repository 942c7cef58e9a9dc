"""pix2pix at test time: batches equal single images, native resolution, tiles without seams."""

import copy
import resource

import pytest
import torch

import models
from models.batch_invariance import ROW_ALIGN, pad_rows
from models.pix2pix.translation import (
    plan_tiles,
    reflect_pad,
    translate,
    translate_batch,
    translate_native,
)
from models.sampling import generate, sample_inputs


def generator(image_size: int = 32, width: int = 8, **config) -> torch.nn.Module:
    torch.manual_seed(0)
    return models.create("pix2pix-generator", image_size=image_size, base_width=width, **config)


def smooth_image(height: int, width: int) -> torch.Tensor:
    """A smooth colour picture (1, 3, H, W) in [-1, 1], with structure at several scales."""
    yy, xx = torch.meshgrid(
        torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij"
    )
    channels = [
        torch.sin(6 * xx + 2 * yy),
        torch.cos(5 * yy * xx),
        torch.sin(9 * (xx * xx + yy * yy)),
    ]
    return torch.stack(channels).clamp(-1, 1)[None]


@pytest.mark.parametrize("image_size,norm", [(256, "batch"), (32, "instance")])
def test_a_batch_gives_each_image_what_it_gives_alone(image_size, norm):
    g = generator(image_size, 8 if image_size == 256 else 4, norm=norm)
    x = torch.rand(8, 3, image_size, image_size) * 2 - 1
    seeds = [11, 12, 13, 14, 15, 16, 17, 11]
    batch = translate_batch(g, x, seeds)
    for i in range(8):
        assert torch.equal(batch[i : i + 1], translate(g, x[i : i + 1], seeds[i]))


def test_the_seed_repeats_a_translation_and_drives_the_dropout():
    g = generator()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(translate(g, x, 3), translate(g, x, 3))
    assert not torch.equal(translate(g, x, 3), translate(g, x, 4))


def test_without_dropout_it_is_batch_norm_at_batch_one_in_training_mode():
    g = generator(dropout=0.0)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    running = g.model.inner.down[2].running_mean.clone()
    with torch.no_grad():
        paper = copy.deepcopy(g).train()(x)  # the image's own statistics
    assert torch.allclose(translate(g, x, 0), paper, atol=1e-5)
    assert torch.equal(g.model.inner.down[2].running_mean, running)  # averages untouched


def test_native_keeps_the_size_and_equals_translate_at_the_model_size():
    g = generator()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(translate_native(g, x, 5, 10**8), translate(g, x, 5))
    odd = torch.rand(1, 3, 45, 19) * 2 - 1  # padded to 64x32, wider than the image: repeated
    assert translate_native(g, odd, 5, 10**8).shape == (1, 3, 45, 19)


def test_reflect_padding_reaches_a_multiple_of_the_stride():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    padded, (top, left) = reflect_pad(x, 8)
    assert padded.shape == (1, 1, 8, 8)
    assert torch.equal(padded[:, :, top : top + 3, left : left + 4], x)


def test_tiles_leave_no_seams_and_stay_close_to_the_whole_image():
    g = generator()
    x = smooth_image(768, 1024)
    whole = translate_native(g, x, 9, 10**8)
    plan = plan_tiles(768, 1024, 32, 256 * 256)
    assert plan is not None and plan.count > 4
    tiled = translate_native(g, x, 9, 256 * 256)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().mean() < 0.1  # of a range of 2
    jumps = (tiled[..., 1:] - tiled[..., :-1]).abs().mean(dim=(0, 1, 2))  # (W - 1,)
    borders = {c for c in plan.columns[1:]} | {c + plan.size[1] for c in plan.columns[:-1]}
    at_borders = jumps[[b - 1 for b in sorted(borders) if b < 1024]].mean()
    assert at_borders <= 1.1 * jumps.mean()


def test_pooled_statistics_beat_per_tile_statistics():
    """Tiles normalised each by their own statistics drift from the whole image more."""
    g = generator()
    x = smooth_image(512, 512)
    whole = translate_native(g, x, 2, 10**8)
    pooled = translate_native(g, x, 2, 128 * 128)
    alone = torch.cat(
        [translate_native(g, x[..., :, c : c + 128], 2, 10**8) for c in range(0, 512, 128)], dim=-1
    )
    assert (pooled - whole).abs().mean() < (alone - whole).abs().mean()


def test_a_4096_square_image_runs_in_tiles_within_bounded_memory():
    g = generator()
    x = smooth_image(4096, 4096)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    y = translate_native(g, x, 1, 1024 * 1024)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert y.shape == (1, 3, 4096, 4096) and torch.isfinite(y).all()
    assert grown < 2 * 1024 * 1024  # under 2 GiB more than before


def test_rows_are_padded_to_the_alignment() -> None:
    x = torch.arange(5.0)[:, None]
    (padded,) = pad_rows(x)
    assert padded.shape[0] % ROW_ALIGN == 0 and torch.equal(padded[:5], x)


@pytest.mark.parametrize(
    "name,config",
    [
        ("unetgan-generator", {"image_size": 32, "width": 4, "latent_dim": 8, "num_classes": 3}),
        (
            "pggan-generator",
            {"latent_dim": 16, "max_resolution": 16, "fmap_max": 16, "fmap_base": 64},
        ),
    ],
)
def test_samples_do_not_depend_on_their_batch_mates(name, config):
    torch.manual_seed(0)
    g = models.create(name, **config)
    z, y = sample_inputs(g.config, 11, seed=4)
    together = generate(g, z, y)
    for start, rows in [(0, 1), (1, 2), (3, 3), (6, 5)]:
        part = generate(g, z[start : start + rows], None if y is None else y[start : start + rows])
        assert torch.equal(part, together[start : start + rows])


def test_tiles_run_under_bf16_autocast():
    g = generator()
    x = smooth_image(256, 256)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tiled = translate_native(g, x, 3, 128 * 128)
    whole = translate_native(g, x, 3, 10**8)
    assert tiled.shape == (1, 3, 256, 256) and (tiled.float() - whole).abs().mean() < 0.15
