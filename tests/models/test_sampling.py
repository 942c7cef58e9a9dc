"""Drawing images from the sampling generators."""

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
    assert z.abs().max() <= 0.5 and z.std() > 0.2
    with pytest.raises(ValueError, match="truncation must be positive"):
        truncated_normal((2,), 0.0, torch.Generator())
    with pytest.raises(ValueError, match="count must be at least 1"):
        sample(small("pggan-generator"), 0, 0)
