"""Drawing images from the sampling generators (U-Net GAN's BigGAN G, Progressive GAN's G).

Latents are drawn on the CPU from a generator seeded by `seed`, so the same seed and model give
the same images on any device. `truncation` applies BigGAN's truncation trick (Brock et al.,
2019, used by U-Net GAN's reference code): latent entries beyond +-truncation are redrawn until
they fall inside. `generate` runs given latents; every batch is padded to a multiple of
`models.batch_invariance.ROW_ALIGN` rows, so an image's bytes do not depend on how many other
images (of the same job or of other jobs) share its forward pass.
"""

from __future__ import annotations

import torch
from torch import nn

from models.batch_invariance import pad_rows


def truncated_normal(
    shape: tuple[int, ...], truncation: float | None, generator: torch.Generator
) -> torch.Tensor:
    """N(0, 1) samples of `shape`; with `truncation`, every entry redrawn into [-t, t]."""
    z = torch.randn(shape, generator=generator)
    if truncation is None:
        return z
    if truncation <= 0:
        raise ValueError(f"truncation must be positive, not {truncation}")
    outside = z.abs() > truncation
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator)
        outside = z.abs() > truncation
    return z


def sample_inputs(
    config: object,
    count: int,
    seed: int,
    *,
    class_label: int | None = None,
    truncation: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Latents (count, latent_dim) and labels (count,) or None for a generator's config."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    generator = torch.Generator().manual_seed(seed)
    z = truncated_normal((count, config.latent_dim), truncation, generator)  # (N, Z)
    num_classes = config.num_classes
    if not num_classes:
        if class_label is not None:
            raise ValueError("this model is unconditional: it takes no class label")
        return z, None
    if class_label is None:
        return z, torch.randint(num_classes, (count,), generator=generator)  # (N,)
    if not 0 <= class_label < num_classes:
        raise ValueError(f"class_label must lie in 0..{num_classes - 1}, not {class_label}")
    return z, torch.full((count,), class_label, dtype=torch.long)


@torch.no_grad()
def generate(
    model: nn.Module,
    z: torch.Tensor,
    y: torch.Tensor | None,
    *,
    batch_size: int = 64,
    class_embedding: torch.Tensor | None = None,
) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] on the CPU from latents z (N, Z) and labels y (N,) or None.

    `class_embedding` (N, E): for a class-conditional U-Net GAN generator, the class embeddings
    that take the place of the labels' (y is then None; `UNetGANGenerator.forward`). They are
    padded with the latents, so an image does not depend on its batch-mates either.
    """
    if class_embedding is not None and class_embedding.shape[0] != z.shape[0]:
        raise ValueError(
            f"one class embedding per latent: {class_embedding.shape[0]} for {z.shape[0]}"
        )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        chunks = []
        for start in range(0, z.shape[0], batch_size):
            rows = slice(start, start + batch_size)
            inputs = [z[rows].to(device)]  # (b, Z)
            if y is not None:
                inputs.append(y[rows].to(device))  # (b,)
            if class_embedding is not None:
                inputs.append(class_embedding[rows].to(device))  # (b, E)
            count = inputs[0].shape[0]
            padded = pad_rows(*inputs)  # each (b', ...), b' a multiple of ROW_ALIGN
            if class_embedding is None:
                images = model(*padded)
            else:
                images = model(*padded[:-1], class_embedding=padded[-1])
            chunks.append(images[:count].float().clamp(-1, 1).cpu())  # (b, C, H, W)
    finally:
        model.train(was_training)
    return torch.cat(chunks)  # (N, C, H, W)


def sample(
    model: nn.Module,
    count: int,
    seed: int,
    *,
    class_label: int | None = None,
    truncation: float | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """`count` images (N, C, H, W) in [-1, 1] on the CPU from a sampling generator."""
    z, y = sample_inputs(model.config, count, seed, class_label=class_label, truncation=truncation)
    return generate(model, z, y, batch_size=batch_size)
