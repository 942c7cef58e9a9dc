"""Drawing images from the sampling generators."""

import math
import time

import pytest
import torch

import models
from models.sampling import sample, sample_inputs, truncated_normal


def small(name: str, **extra):
    sizes = {
        "unetgan-generator": {"image_size": 32, "width": 4, "latent_dim": 8},
        "pggan-generator": {
            "max_resolution": 16,
            "fmap_base": 64,
            "fmap_max": 16,
            "latent_dim": 16,
        },
    }
    return models.create(name, **sizes[name], **extra)


@pytest.mark.parametrize("name", ["unetgan-generator", "pggan-generator"])
def test_same_seed_same_images(name):
    g = small(name)
    a, b = sample(g, 3, seed=7), sample(g, 3, seed=7)
    assert torch.equal(a, b) and a.shape[0] == 3
    assert a.min() >= -1 and a.max() <= 1
    assert not torch.equal(a, sample(g, 3, seed=8))


def test_batching_does_not_change_images():
    g = small("unetgan-generator")
    assert torch.allclose(sample(g, 5, 1, batch_size=2), sample(g, 5, 1), atol=1e-5)


def test_class_labels():
    g = small("unetgan-generator", num_classes=4)
    _, y = sample_inputs(g.config, 6, 0, class_label=2)
    assert y.tolist() == [2] * 6
    _, y = sample_inputs(g.config, 50, 0)
    assert set(y.tolist()) <= {0, 1, 2, 3} and len(set(y.tolist())) > 1
    with pytest.raises(ValueError, match=r"class_label must lie in 0\.\.3"):
        sample(g, 1, 0, class_label=4)
    with pytest.raises(ValueError, match="unconditional"):
        sample(small("unetgan-generator"), 1, 0, class_label=0)


def test_truncation():
    z = truncated_normal((2000,), 0.5, torch.Generator().manual_seed(0))
    assert z.dtype == torch.float32 and z.abs().max() <= 0.5 and z.std() > 0.2
    with pytest.raises(ValueError, match="truncation must be positive"):
        truncated_normal((2,), 0.0, torch.Generator())
    with pytest.raises(ValueError, match="truncation must be positive"):
        truncated_normal((2,), math.inf, torch.Generator())
    with pytest.raises(ValueError, match="count must be at least 1"):
        sample(small("pggan-generator"), 0, 0)


def _truncated_std(t: float) -> float:
    """The standard deviation of N(0, 1) restricted to [-t, t]:
    var = 1 - 2 t phi(t) / (2 Phi(t) - 1)."""
    density = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    return math.sqrt(1 - 2 * t * density / math.erf(t / math.sqrt(2)))


def _cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@pytest.mark.parametrize("t", [0.25, 1.0, 2.0])
def test_truncated_draw_has_the_truncated_normals_distribution(t):
    z = truncated_normal((200_000,), t, torch.Generator().manual_seed(1)).double()
    assert -t <= z.min() and z.max() <= t
    assert abs(float(z.mean())) < 0.01 * t
    assert float(z.std()) == pytest.approx(_truncated_std(t), rel=0.01)  # t = 1: 0.5396
    # the CDF too: the share below t/2 is (Phi(t/2) - Phi(-t)) / (Phi(t) - Phi(-t))
    expected = (_cdf(t / 2) - _cdf(-t)) / (_cdf(t) - _cdf(-t))
    assert float((z < t / 2).double().mean()) == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize("t", [1e-6, 1e-12])
def test_tiny_truncation_is_fast_and_inside(t):
    started = time.monotonic()
    z = truncated_normal((64, 4096), t, torch.Generator().manual_seed(0))
    assert time.monotonic() - started < 5  # rejection took about a million rounds at 1e-6
    assert z.abs().max() <= t and torch.isfinite(z).all()
    assert z.abs().max() > t / 2  # spread over the interval, not collapsed to 0
    assert float(z.double().std()) == pytest.approx(t / math.sqrt(3), rel=0.02)  # ~uniform


def _draw(seed: int) -> torch.Tensor:
    return truncated_normal((8, 16), 0.7, torch.Generator().manual_seed(seed))


def test_truncated_draw_is_deterministic_by_seed():
    draw = _draw
    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))
    g = small("unetgan-generator", num_classes=4)
    a = sample_inputs(g.config, 5, 9, truncation=0.7)
    b = sample_inputs(g.config, 5, 9, truncation=0.7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].abs().max() <= 0.7
