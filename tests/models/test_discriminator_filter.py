"""Discriminator-guided sampling on tiny randomly initialised U-Net GAN and Progressive GAN nets."""

from __future__ import annotations

import math

import pytest
import torch

from models.discriminator_filter import (
    DRS_BATCH,
    MAX_CANDIDATES,
    drs_filter,
    group_mates,
    realness_scores,
    top_filter,
)
from models.pggan.networks import (
    PGGANDiscriminator,
    PGGANDiscriminatorConfig,
    PGGANGenerator,
    PGGANGeneratorConfig,
)
from models.sampling import generate, sample_inputs
from models.unetgan.networks import (
    UNetGANDiscriminator,
    UNetGANDiscriminatorConfig,
    UNetGANGenerator,
    UNetGANGeneratorConfig,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

CLASSES = 4
PGGAN_SIZES = {"max_resolution": 16, "fmap_base": 64, "fmap_max": 16}


@pytest.fixture(scope="module")
def unet() -> tuple[UNetGANGenerator, UNetGANDiscriminator]:
    """A class-conditional U-Net GAN pair, 1x32x32."""
    torch.manual_seed(0)
    g = UNetGANGenerator(
        UNetGANGeneratorConfig(
            image_size=32, channels=1, num_classes=CLASSES, latent_dim=8, width=4
        )
    )
    d = UNetGANDiscriminator(
        UNetGANDiscriminatorConfig(image_size=32, channels=1, num_classes=CLASSES, width=4)
    )
    return g, d


@pytest.fixture(scope="module")
def pggan() -> tuple[PGGANGenerator, PGGANDiscriminator]:
    """An unconditional Progressive GAN pair, 3x16x16, its critic with minibatch stddev."""
    torch.manual_seed(0)
    g = PGGANGenerator(PGGANGeneratorConfig(latent_dim=16, **PGGAN_SIZES))
    d = PGGANDiscriminator(PGGANDiscriminatorConfig(**PGGAN_SIZES))
    return g, d


@pytest.fixture(params=["unet", "pggan"])
def pair(request) -> tuple[torch.nn.Module, torch.nn.Module]:
    return request.getfixturevalue(request.param)


def drawn(g: torch.nn.Module, count: int, seed: int) -> tuple[torch.Tensor, ...]:
    """A plain sample job's latents, labels and images."""
    z, y = sample_inputs(g.config, count, seed)
    return z, y, generate(g, z, y)


def scores_of(g: torch.nn.Module, d: torch.nn.Module, images, labels, **kw) -> torch.Tensor:
    return realness_scores(d, images, labels, group_mates=group_mates(g, d), **kw)


# ---------------------------------------------------------------------------------------------
# Scores


def test_unet_scores_are_the_global_logit_plus_weighted_mean_pixel_logit(unet) -> None:
    g, d = unet
    _, y, images = drawn(g, 3, seed=1)
    d.eval()
    with torch.no_grad():
        global_logits, pixel_logits = d(images, y)  # (3,), (3, 1, 32, 32)
    d.train()
    assert torch.allclose(realness_scores(d, images, y), global_logits, atol=1e-5)
    weighted = global_logits + 0.5 * pixel_logits.mean(dim=(1, 2, 3))
    assert torch.allclose(realness_scores(d, images, y, pixel_weight=0.5), weighted, atol=1e-5)
    assert d.training  # its mode is restored


def test_a_pggan_critic_judges_each_image_among_the_fixed_mates(pggan) -> None:
    g, d = pggan
    _, _, images = drawn(g, 2, seed=1)
    mates = group_mates(g, d)
    assert mates.shape == (d.config.mbstd_group_size - 1, 3, 16, 16)
    assert torch.equal(mates, group_mates(g, d))
    scores = realness_scores(d, images, None, group_mates=mates)  # (2,)
    with torch.no_grad():  # one group of four: the image and the three mates
        first = d(torch.cat([images[:1], mates]))[0]
    assert torch.allclose(scores[0], first, atol=1e-5)


def test_scores_do_not_depend_on_the_other_images(pair) -> None:
    g, d = pair
    _, y, images = drawn(g, 7, seed=2)
    together = scores_of(g, d, images, y)  # (7,)
    alone = [
        scores_of(g, d, images[k : k + 1], None if y is None else y[k : k + 1]) for k in range(7)
    ]
    assert together.dtype == torch.float32 and together.shape == (7,)
    assert torch.equal(together, torch.cat(alone))
    assert torch.equal(together, scores_of(g, d, images, y))


def test_scores_refuse_bad_inputs(unet, pggan) -> None:
    (ug, ud), (pg, pd) = unet, pggan
    _, y, images = drawn(ug, 2, seed=0)
    with pytest.raises(ValueError, match="class-conditional"):
        realness_scores(ud, images, None)
    with pytest.raises(ValueError, match=r"images must be \(N, 1, 32, 32\)"):
        realness_scores(ud, images[:, :, :16], y)
    with pytest.raises(ValueError, match="pixel_weight must be 0 or more"):
        realness_scores(ud, images, y, pixel_weight=-1.0)
    _, _, faces = drawn(pg, 2, seed=0)
    with pytest.raises(ValueError, match="pass 3 group_mates"):
        realness_scores(pd, faces, None)
    with pytest.raises(ValueError, match="per-pixel logit map"):
        realness_scores(pd, faces, None, pixel_weight=1.0, group_mates=group_mates(pg, pd))
    with pytest.raises(ValueError, match="takes no group_mates"):
        realness_scores(ud, images, y, group_mates=faces)


# ---------------------------------------------------------------------------------------------
# Keep the most real


def test_top_keeps_the_highest_scoring_of_the_plain_sample_latents(pggan) -> None:
    g, d = pggan
    kept = top_filter(g, d, count=5, seed=11, keep=0.4)  # ceil(5 / 0.4) = 13 candidates
    z, y, images = drawn(g, 13, seed=11)
    scores = scores_of(g, d, images, y)  # (13,)
    best = sorted(torch.topk(scores, 5).indices.tolist())
    assert kept.stats == {"candidates": 13, "accepted": 5}
    assert torch.equal(kept.z, z[best]) and torch.equal(kept.images, images[best])
    assert kept.labels is None
    assert torch.equal(kept.scores, scores[best])


def test_top_ranks_within_each_class_and_keeps_the_class_mix(unet) -> None:
    g, d = unet
    kept = top_filter(g, d, count=12, seed=11, keep=0.4)  # 30 candidates of random classes
    z, y, images = drawn(g, 30, seed=11)
    scores = scores_of(g, d, images, y)  # (30,)
    assert kept.stats == {"candidates": 30, "accepted": 12}
    rows = [int(torch.nonzero((z == row).all(dim=1))[0, 0]) for row in kept.z]
    assert rows == sorted(rows) and torch.equal(kept.labels, y[rows])  # in draw order
    for c in range(CLASSES):
        of_class = torch.nonzero(y == c)[:, 0].tolist()
        chosen = [r for r in rows if r in of_class]
        assert abs(len(chosen) - 12 * len(of_class) / 30) < 1  # its share, rounded
        others = [r for r in of_class if r not in chosen]
        if chosen and others:  # the best of its class
            assert min(scores[chosen]) >= max(scores[others])


def test_top_is_reproducible_and_keep_one_is_the_plain_sample(unet) -> None:
    g, d = unet
    a, b = top_filter(g, d, count=4, seed=5), top_filter(g, d, count=4, seed=5)
    assert torch.equal(a.z, b.z) and torch.equal(a.images, b.images)
    assert not torch.equal(a.z, top_filter(g, d, count=4, seed=6).z)
    z, y, images = drawn(g, 4, seed=5)
    plain = top_filter(g, d, count=4, seed=5, keep=1.0)
    assert torch.equal(plain.z, z) and torch.equal(plain.labels, y)
    assert torch.equal(plain.images, images)


def test_top_with_a_class_label(unet) -> None:
    g, d = unet
    kept = top_filter(g, d, count=3, seed=0, class_label=2, truncation=0.8)
    assert kept.labels.tolist() == [2, 2, 2] and kept.z.abs().max() <= 0.8
    assert kept.images.shape == (3, 1, 32, 32)


# ---------------------------------------------------------------------------------------------
# Discriminator Rejection Sampling


def test_drs_is_reproducible_and_keeps_exactly_count(pair) -> None:
    g, d = pair
    a = drs_filter(g, d, count=6, seed=3, burn_in=32)
    b = drs_filter(g, d, count=6, seed=3, burn_in=32)
    assert torch.equal(a.z, b.z) and torch.equal(a.images, b.images) and a.stats == b.stats
    assert a.z.shape[0] == a.images.shape[0] == a.scores.shape[0] == 6
    assert (a.labels is None) == (g.config.num_classes == 0)
    assert not torch.equal(a.z, drs_filter(g, d, count=6, seed=4, burn_in=32).z)
    # the kept images are the generator's images of the kept latents, bit for bit
    assert torch.equal(a.images, generate(g, a.z, a.labels))


def test_drs_stats_are_consistent(pair) -> None:
    g, d = pair
    kept = drs_filter(g, d, count=20, seed=7, burn_in=16, max_candidates=300)
    stats = kept.stats
    assert stats["burn_in"] == 16 and stats["accepted"] <= 20
    assert stats["filled_up"] == (stats["accepted"] < 20)
    drawn_after = stats["candidates"] - 16
    assert 0 <= drawn_after <= 300
    assert drawn_after % DRS_BATCH == 0 or drawn_after == 300
    assert stats["max_logit"] >= float(kept.scores.max())
    assert math.isfinite(stats["gamma"])


def test_drs_candidates_start_with_the_plain_sample_latents(unet) -> None:
    g, d = unet
    z, y, images = drawn(g, 64, seed=9)
    kept = drs_filter(g, d, count=3, seed=9, burn_in=64)
    assert kept.stats["candidates"] == 64  # three accepted within the burn-in
    rows = [int((z == row).all(dim=1).nonzero()) for row in kept.z]
    assert rows == sorted(rows)  # in draw order
    assert torch.equal(kept.labels, y[rows]) and torch.equal(kept.images, images[rows])
    assert kept.stats["max_logit"] == pytest.approx(float(scores_of(g, d, images, y).max()))
    more = drs_filter(g, d, count=5, seed=9, burn_in=64)  # the same decisions, further on
    assert torch.equal(more.z[:3], kept.z)


def test_drs_fills_up_with_the_best_rejected(pggan) -> None:
    g, d = pggan
    # At the 100th percentile gamma is F at the maximum, about -log(epsilon): only candidates
    # at the maximum have a real chance; eight are needed from eight.
    kept = drs_filter(g, d, count=8, seed=1, burn_in=8, max_candidates=0, percentile=100.0)
    z, _, images = drawn(g, 8, seed=1)
    assert kept.stats["filled_up"] and kept.stats["accepted"] < 8
    assert kept.stats["candidates"] == 8
    assert torch.equal(kept.z, z) and torch.equal(kept.images, images)
    fewer = drs_filter(g, d, count=3, seed=1, burn_in=8, max_candidates=0, percentile=100.0)
    scores = scores_of(g, d, images, None)
    assert set(fewer.scores.tolist()) == set(torch.topk(scores, 3).values.tolist())


def test_drs_with_a_class_label(unet) -> None:
    g, d = unet
    kept = drs_filter(g, d, count=4, seed=2, class_label=1, burn_in=16)
    assert kept.labels.tolist() == [1] * 4


# ---------------------------------------------------------------------------------------------
# Arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0}, "count must be an integer of at least 1"),
        ({"keep": 0.0}, r"keep must lie in \(0.0, 1.0\]"),
        ({"keep": 1.5}, "keep must lie in"),
        ({"keep": math.nan}, "keep must lie in"),
        ({"keep": 1e-4}, f"at most {MAX_CANDIDATES} are drawn"),
        ({"pixel_weight": math.inf}, "pixel_weight must be a finite number"),
        ({"class_label": CLASSES}, r"class_label must lie in 0\.\.3"),
    ],
)
def test_top_refuses_bad_arguments(unet, kwargs, message) -> None:
    g, d = unet
    with pytest.raises(ValueError, match=message):
        top_filter(g, d, **{"count": 2, "seed": 0, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"burn_in": 7}, "burn_in must be an integer of at least 8"),
        ({"max_candidates": -1}, "max_candidates must be an integer of at least 0"),
        ({"max_candidates": MAX_CANDIDATES + 1}, "at most"),
        ({"percentile": 100.5}, r"percentile must lie in \[0.0, 100.0\]"),
        ({"epsilon": 0.0}, "epsilon must be a small positive number"),
        ({"pixel_weight": 1.0}, "per-pixel logit map"),
        ({"class_label": 0}, "unconditional"),
    ],
)
def test_drs_refuses_bad_arguments(pggan, kwargs, message) -> None:
    g, d = pggan
    with pytest.raises(ValueError, match=message):
        drs_filter(g, d, **{"count": 2, "seed": 0, **kwargs})


def test_a_generator_needs_its_own_familys_discriminator(unet, pggan) -> None:
    with pytest.raises(ValueError, match="is not the discriminator of a UNetGANGenerator"):
        top_filter(unet[0], pggan[1], count=1, seed=0)
    other = UNetGANDiscriminator(UNetGANDiscriminatorConfig(image_size=32, channels=1, width=4))
    with pytest.raises(ValueError, match="disagree on channels or classes"):
        drs_filter(unet[0], other, count=1, seed=0)
