"""Latent and class-embedding interpolation, and the generator's class_embedding input."""

from __future__ import annotations

import math

import pytest
import torch

from models.latent_paths import class_embeddings, interpolate
from models.pggan.networks import PGGANGenerator, PGGANGeneratorConfig
from models.sampling import generate, sample_inputs
from models.unetgan.networks import UNetGANGenerator, UNetGANGeneratorConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

LATENT = 8


def unet(num_classes: int = 4) -> UNetGANGenerator:
    torch.manual_seed(0)
    config = UNetGANGeneratorConfig(
        image_size=32, channels=1, num_classes=num_classes, latent_dim=LATENT, width=4
    )
    return UNetGANGenerator(config).eval()


def latents(seed: int = 0, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    return torch.randn(size, generator=rng), torch.randn(size, generator=rng)


@pytest.mark.parametrize("path", ["slerp", "linear"])
@pytest.mark.parametrize("frames", [2, 3, 17])
def test_ends_are_the_endpoints_bit_for_bit(path: str, frames: int) -> None:
    z0, z1 = latents()
    out = interpolate(z0, z1, frames, path)
    assert out.shape == (frames, 64) and out.dtype == torch.float32
    assert torch.equal(out[0], z0) and torch.equal(out[-1], z1)


def test_slerp_walks_the_arc_at_a_constant_angular_speed() -> None:
    z0, z1 = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 3.0, 0.0])
    out = interpolate(z0, z1, 7)  # 90 degrees in 6 steps of 15
    assert torch.allclose(out.norm(dim=1), torch.full((7,), 3.0))
    cosines = torch.nn.functional.cosine_similarity(out[:-1], out[1:], dim=1)  # (6,)
    assert torch.allclose(cosines, torch.full((6,), math.cos(math.pi / 12)))
    linear = interpolate(z0, z1, 7, "linear")
    assert torch.allclose(linear[3], torch.tensor([1.5, 1.5, 0.0]))  # the chord's midpoint
    assert out[3].norm() > linear[3].norm()


def test_slerp_of_gaussian_latents_keeps_their_norm() -> None:
    z0, z1 = latents(1, size=512)
    mid_slerp = interpolate(z0, z1, 3)[1]
    mid_linear = interpolate(z0, z1, 3, "linear")[1]
    typical = math.sqrt(512)
    assert abs(mid_slerp.norm() - typical) < 0.1 * typical
    assert mid_linear.norm() < 0.8 * typical  # the chord cuts through the interior


@pytest.mark.parametrize(
    ("z0", "z1"),
    [
        (torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])),  # parallel
        (torch.tensor([1.0, 2.0]), torch.tensor([-1.0, -2.0])),  # antiparallel
        (torch.zeros(2), torch.tensor([1.0, 2.0])),  # no direction
    ],
)
def test_slerp_falls_back_to_linear_where_the_arc_is_undefined(z0, z1) -> None:
    out = interpolate(z0, z1, 5)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, interpolate(z0, z1, 5, "linear"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((torch.zeros(4), torch.zeros(4), 1), "frames must be an integer of at least 2"),
        ((torch.zeros(4), torch.zeros(4), 2.5), "frames must be an integer"),
        ((torch.zeros(4), torch.zeros(4), True), "frames must be an integer"),
        ((torch.zeros(4), torch.zeros(4), 3, "cubic"), "path must be one of slerp, linear"),
        ((torch.zeros(1, 4), torch.zeros(4), 3), r"z0 must be one latent vector \(Z,\)"),
        ((torch.zeros(4), torch.zeros(5), 3), "z0 and z1 must have one length"),
        ((torch.zeros(4), torch.tensor([0.0, math.nan, 0, 0]), 3), "z1 must hold finite"),
        ((torch.zeros(4), torch.tensor([0.0, math.inf, 0, 0]), 3), "z1 must hold finite"),
        ((torch.zeros(4, dtype=torch.long), torch.zeros(4), 3), "z0 must be a float tensor"),
    ],
)
def test_bad_arguments(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        interpolate(*args)


def test_class_embeddings_run_linearly_between_two_classes_rows() -> None:
    g = unet()
    out = class_embeddings(g, 1, 3, 5)
    table = g.shared.weight.detach()
    assert out.shape == (5, g.config.shared_dim) and out.dtype == torch.float32
    assert torch.equal(out[0], table[1]) and torch.equal(out[-1], table[3])
    assert torch.allclose(out[2], (table[1] + table[3]) / 2)
    assert torch.equal(class_embeddings(g, 2, 2, 3), table[2].expand(3, -1))


def test_class_embeddings_refuse_what_has_no_classes_to_blend() -> None:
    with pytest.raises(ValueError, match="class-conditional U-Net GAN"):
        class_embeddings(unet(num_classes=0), 0, 1, 3)
    pggan = PGGANGenerator(PGGANGeneratorConfig(max_resolution=8, fmap_base=16, latent_dim=4))
    with pytest.raises(ValueError, match="class-conditional U-Net GAN"):
        class_embeddings(pggan, 0, 1, 3)
    with pytest.raises(ValueError, match=r"end_label must lie in 0\.\.3"):
        class_embeddings(unet(), 0, 4, 3)
    with pytest.raises(ValueError, match="frames must be"):
        class_embeddings(unet(), 0, 1, 1)


def test_a_class_rows_embedding_gives_the_labels_image_bit_for_bit() -> None:
    g = unet()
    z, y = sample_inputs(g.config, 6, seed=3)
    embedding = g.shared.weight.detach()[y]  # (6, E)
    with torch.no_grad():
        assert torch.equal(g(z, class_embedding=embedding), g(z, y))
    assert torch.equal(generate(g, z, None, class_embedding=embedding), generate(g, z, y))


def test_embedded_images_do_not_depend_on_their_batch_mates() -> None:
    g = unet()
    z = interpolate(*latents(2, LATENT), 9)  # (9, Z)
    embedding = class_embeddings(g, 0, 3, 9)  # (9, E)
    together = generate(g, z, None, class_embedding=embedding)  # (9, 1, 32, 32)
    alone = [
        generate(g, z[k : k + 1], None, class_embedding=embedding[k : k + 1]) for k in range(9)
    ]
    assert torch.equal(together, torch.cat(alone))
    chunked = generate(g, z, None, class_embedding=embedding, batch_size=5)
    assert torch.equal(together, chunked)


def test_the_generator_refuses_a_misused_class_embedding() -> None:
    g = unet()
    z, y = sample_inputs(g.config, 2, seed=0)
    embedding = class_embeddings(g, 0, 1, 2)
    with pytest.raises(ValueError, match="either y or class_embedding"):
        g(z, y, class_embedding=embedding)
    with pytest.raises(ValueError, match=r"class_embedding must have shape \(2, 128\)"):
        g(z, class_embedding=embedding[:, :5])
    with pytest.raises(ValueError, match="unconditional: it takes no class embedding"):
        unet(num_classes=0)(z, class_embedding=embedding)
    with pytest.raises(ValueError, match="one class embedding per latent"):
        generate(g, z, None, class_embedding=embedding[:1])
