"""An image's bytes do not depend on how many rows share its forward pass, at 1 and 2 threads
(`models.batch_invariance`): the sampling generators and the discriminators' scores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import models
from models.batch_invariance import MIN_ROWS, ROW_ALIGN, pad_rows, padded_rows
from models.discriminator_filter import realness_scores
from models.sampling import generate, sample_inputs

ROWS = (1, 2, 3, 5, 8, 12, 16, 21)
GENERATORS = {
    "unetgan": (
        "unetgan-generator",
        {"image_size": 32, "width": 4, "latent_dim": 8, "num_classes": 3},
    ),
    "pggan": (
        "pggan-generator",
        {"max_resolution": 16, "latent_dim": 8, "fmap_base": 32, "fmap_max": 16},
    ),
}


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request) -> Iterator[int]:
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def test_padded_sizes():
    assert [padded_rows(n) for n in (1, 4, 15, 16, 17, 21, 64)] == [16, 16, 16, 16, 20, 24, 64]
    x = torch.arange(5.0)[:, None]
    (padded,) = pad_rows(x)
    assert padded.shape[0] == MIN_ROWS and padded.shape[0] % ROW_ALIGN == 0
    assert torch.equal(padded[:5], x) and torch.equal(padded[5:], x[:1].expand(11, 1))


@pytest.mark.parametrize("family", GENERATORS)
def test_generated_images_do_not_depend_on_the_batch(threads, family):
    name, config = GENERATORS[family]
    torch.manual_seed(0)
    generator = models.create(name, **config)
    z, y = sample_inputs(generator.config, 40, seed=5)
    everything = generate(generator, z, y)  # (40, C, S, S)
    for rows in ROWS:
        alone = generate(generator, z[:rows], None if y is None else y[:rows])
        assert torch.equal(alone, everything[:rows]), f"{rows} rows at {threads} thread(s)"


def test_discriminator_scores_do_not_depend_on_the_batch(threads):
    torch.manual_seed(0)
    critic = models.create("unetgan-discriminator", image_size=32, width=4, num_classes=3)
    images = torch.rand(40, 3, 32, 32) * 2 - 1
    labels = torch.arange(40) % 3
    everything = realness_scores(critic, images, labels, pixel_weight=1.0)
    for rows in ROWS:
        alone = realness_scores(critic, images[:rows], labels[:rows], pixel_weight=1.0)
        assert torch.equal(alone, everything[:rows]), f"{rows} rows at {threads} thread(s)"
