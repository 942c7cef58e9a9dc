"""Long loops of the models ask the caller's `should_stop` (a cancelled job's flag) before each
chunk, candidate batch, tile or step, and stop with `models.stopping.Stopped`."""

from __future__ import annotations

import pytest
import torch

import models
from models.discriminator_filter import drs_filter, top_filter
from models.pix2pix.translation import translate_native
from models.projection import ProjectionStopped
from models.sampling import generate, sample_inputs
from models.stopping import Stopped, check_stop


class After:
    """should_stop that says True from its `n`-th question on, counting the questions."""

    def __init__(self, n: int) -> None:
        self.n, self.asked = n, 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.asked >= self.n


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    pass


def test_check_stop():
    check_stop(None, "work")
    check_stop(lambda: False, "work")
    with pytest.raises(Stopped, match="the work stopped"):
        check_stop(lambda: True, "the work")
    assert issubclass(ProjectionStopped, Stopped)


def test_generate_stops_between_chunks():
    g = models.create("unetgan-generator", image_size=32, width=4, latent_dim=8)
    z, _ = sample_inputs(g.config, 10, 0)
    stop = After(3)
    with pytest.raises(Stopped):
        generate(g, z, None, batch_size=2, should_stop=stop)
    assert stop.asked == 3  # two chunks drawn, the third not
    assert generate(g, z, None, batch_size=2, should_stop=lambda: False).shape[0] == 10


@pytest.mark.parametrize("method", ["top", "drs"])
def test_the_filters_stop_between_candidate_batches(method):
    torch.manual_seed(0)
    g = models.create("unetgan-generator", image_size=32, width=4, latent_dim=8)
    d = models.create("unetgan-discriminator", image_size=32, width=4)
    stop = After(4)
    with pytest.raises(Stopped):
        if method == "top":
            top_filter(g, d, count=64, seed=0, keep=1 / 256, should_stop=stop)
        else:
            drs_filter(g, d, count=64, seed=0, burn_in=4096, should_stop=stop)
    assert stop.asked == 4  # at most 3 batches of 64 candidates were drawn, of thousands


def test_a_filter_that_is_not_stopped_keeps_what_it_keeps_without_the_callback():
    torch.manual_seed(0)
    g = models.create("unetgan-generator", image_size=32, width=4, latent_dim=8)
    d = models.create("unetgan-discriminator", image_size=32, width=4)
    plain = drs_filter(g, d, count=3, seed=1, burn_in=100, max_candidates=200)
    asked = drs_filter(
        g, d, count=3, seed=1, burn_in=100, max_candidates=200, should_stop=lambda: False
    )
    assert torch.equal(plain.z, asked.z) and torch.equal(plain.images, asked.images)


def test_a_tiled_translation_stops_between_tiles():
    torch.manual_seed(0)
    g = models.create("pix2pix-generator", image_size=32, base_width=4)
    x = torch.rand(1, 3, 96, 96) * 2 - 1
    stop = After(2)
    with pytest.raises(Stopped):
        translate_native(g, x, seed=0, max_tile_pixels=64 * 64, should_stop=stop)
    assert stop.asked == 2
