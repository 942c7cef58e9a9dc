"""The toy family's networks: a tiny DCGAN-like generator and a discriminator with two heads.

After Radford, Metz, Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016: G maps z to a 4x4 grid and doubles it with
transposed convolutions up to the image size; D halves the image with strided convolutions down
to 4x4 and gives a global logit, and (like U-Net GAN's D^U, at toy scale) a per-pixel logit map
from its first layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from models.registry import register


@dataclass
class ToyGeneratorConfig:
    """G: `image_size` a power of two from 8, `channels` out, `latent_dim` in."""

    image_size: int = 16
    channels: int = 3
    latent_dim: int = 8
    width: int = 8
    num_classes: int = 0  # unconditional


@dataclass
class ToyDiscriminatorConfig:
    """D: judges `channels`-channel images of `image_size`."""

    image_size: int = 16
    channels: int = 3
    width: int = 8
    num_classes: int = 0


def _doublings(image_size: int) -> int:
    return int(math.log2(image_size // 4))


@register("toy-generator", family="toy", role="generator", task="sample", config=ToyGeneratorConfig)
class ToyGenerator(nn.Module):
    """z (B, Z) -> images (B, C, S, S) in [-1, 1]."""

    def __init__(self, config: ToyGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.stem = nn.Linear(config.latent_dim, w * 16)
        layers: list[nn.Module] = []
        for _ in range(_doublings(config.image_size)):
            layers += [nn.ConvTranspose2d(w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.Conv2d(w, config.channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.stem(z).view(z.shape[0], self.config.width, 4, 4)  # (B, W, 4, 4)
        return self.body(h)  # (B, C, S, S)


@register(
    "toy-discriminator",
    family="toy",
    role="discriminator",
    task="sample",
    config=ToyDiscriminatorConfig,
)
class ToyDiscriminator(nn.Module):
    """images (B, C, S, S) -> global logits (B,) and a per-pixel logit map (B, 1, S, S)."""

    def __init__(self, config: ToyDiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.stem = nn.Sequential(nn.Conv2d(config.channels, w, 3, 1, 1), nn.LeakyReLU(0.2))
        self.pixel = nn.Conv2d(w, 1, 1)
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(w, w, 4, 2, 1), nn.LeakyReLU(0.2))
            for _ in range(_doublings(config.image_size))
        )
        self.head = nn.Linear(w * 16, 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps fine to coarse: (B, W, S, S) down to (B, W, 4, 4)."""
        features = [self.stem(x)]
        for block in self.down:
            features.append(block(features[-1]))
        return features

    def pixel_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S): one logit per pixel."""
        return self.pixel(self.stem(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encode(x)
        logits = self.head(features[-1].flatten(1)).squeeze(1)  # (B,)
        return logits, self.pixel(features[0])  # (B,), (B, 1, S, S)
