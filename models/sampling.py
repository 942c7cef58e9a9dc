"""Drawing images from the sampling generators (U-Net GAN's BigGAN G, Progressive GAN's G).

Latents are drawn on the CPU from a generator seeded by `seed`, so the same seed and model give
the same images on any device. `truncation` applies the truncation trick of BigGAN (Brock,
Donahue, Simonyan, "Large Scale GAN Training for High Fidelity Natural Image Synthesis", ICLR
2019, section 3.1; used by U-Net GAN's reference code): every latent entry is drawn from N(0, 1)
restricted to [-t, t]. The paper resamples the values whose magnitude is above the threshold;
redrawing until every entry falls inside takes at least 1 / P(|z| <= t) rounds (over a million
at t = 1e-6, and no bound at all), so here the same distribution is drawn exactly, in one pass,
by inverting the normal CDF (`truncated_normal`). `generate` runs given latents; every batch is
padded to a multiple of `models.batch_invariance.ROW_ALIGN` rows, so an image's bytes do not
depend on how many other images (of the same job or of other jobs) share its forward pass, and
asks the caller's `should_stop` before each chunk (`models.stopping`: a cancelled job).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.batch_invariance import pad_rows
from models.stopping import ShouldStop, check_stop


def truncated_normal(
    shape: tuple[int, ...], truncation: float | None, generator: torch.Generator
) -> torch.Tensor:
    """N(0, 1) samples of `shape` (float32, on the CPU); with `truncation` t, samples of N(0, 1)
    restricted to [-t, t], drawn exactly in bounded time whatever t.

    Inverse-CDF sampling: u ~ U(Phi(-t), Phi(t)), z = Phi^-1(u), in float64 (Phi:
    `torch.special.ndtr`, Phi^-1: `ndtri`), then rounded to float32. An entry above the median
    is computed as -Phi^-1(1 - u) (1 - u is exact there), so both tails keep float64's precision.
    One uniform per entry from `generator`: the same generator state gives the same latents.
    """
    if truncation is None:
        return torch.randn(shape, generator=generator)
    if not math.isfinite(truncation) or truncation <= 0:
        raise ValueError(f"truncation must be positive, not {truncation}")
    t = torch.tensor(float(truncation), dtype=torch.float64)
    low = torch.special.ndtr(-t)  # Phi(-t) = 1 - Phi(t)
    u = low + torch.rand(shape, generator=generator, dtype=torch.float64) * (1 - 2 * low)
    z = torch.where(u < 0.5, torch.special.ndtri(u), -torch.special.ndtri(1 - u))
    return z.clamp(-t, t).float()  # clamp: rounding in ndtri's last bits


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
    should_stop: ShouldStop | None = None,
) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] on the CPU from latents z (N, Z) and labels y (N,) or None.

    `class_embedding` (N, E): for a class-conditional U-Net GAN generator, the class embeddings
    that take the place of the labels' (y is then None; `UNetGANGenerator.forward`). They are
    padded with the latents, so an image does not depend on its batch-mates either.
    `should_stop` is asked before every chunk of `batch_size` images: True raises
    `models.stopping.Stopped`.
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
            check_stop(should_stop, "drawing images")
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
