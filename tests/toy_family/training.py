"""The toy family's training: the non-saturating GAN loss on D's global logit and, per pixel, on
its logit map (U-Net GAN's two heads at toy scale); Adam for both networks; no EMA."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import models
from tests.toy_family.row import ToyConfig
from training.family import Batch, DataInfo, GANFamily, Stats, unwrap


def _real_fake(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """BCE with logits of any shape against all-real or all-fake targets."""
    target = torch.full_like(logits, 1.0 if real else 0.0)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


class ToyFamily(GANFamily):
    """A tiny unconditional GAN trained on a folder of images."""

    name = "toy"
    data_kind = "images"
    config_class = ToyConfig

    def __init__(self, config: ToyConfig, data: DataInfo, device: torch.device) -> None:
        self.config = config
        self.device = torch.device(device)
        common = {"image_size": data.image_size, "channels": data.channels, "width": config.width}
        self.G = models.create("toy-generator", latent_dim=config.latent_dim, **common)
        self.D = models.create("toy-discriminator", **common)
        self.G, self.D = self.G.to(self.device), self.D.to(self.device)

    @classmethod
    def dataset_options(cls, config: ToyConfig) -> dict[str, Any]:
        return {"conditional": False}

    def optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        betas = (0.5, 0.999)
        return (
            torch.optim.Adam(self.G.parameters(), lr=self.config.lr, betas=betas),
            torch.optim.Adam(self.D.parameters(), lr=self.config.lr, betas=betas),
        )

    def prepare(self, batch: Batch) -> dict[str, torch.Tensor]:
        x = batch["x"]  # (B, C, S, S)
        z = torch.randn(x.shape[0], self.config.latent_dim, device=x.device)  # (B, Z)
        return {"x": x, "fake": self.G(z)}  # fake: (B, C, S, S)

    def d_loss(self, ctx: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Stats]:
        real_logit, real_map = self.D(ctx["x"])
        fake_logit, fake_map = self.D(ctx["fake"].detach())
        real = _real_fake(real_logit, True) + _real_fake(real_map, True)
        fake = _real_fake(fake_logit, False) + _real_fake(fake_map, False)
        return real + fake, {"D_real": float(real), "D_fake": float(fake)}

    def g_loss(self, ctx: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Stats]:
        logit, pixel_map = self.D(ctx["fake"])
        loss = _real_fake(logit, True) + _real_fake(pixel_map, True)
        return loss, {"G": float(loss)}

    def fixed_sample_inputs(self, batch: Batch, count: int, seed: int) -> Batch:
        rng = torch.Generator().manual_seed(seed)
        return {"z": torch.randn(count, self.config.latent_dim, generator=rng).to(self.device)}

    @torch.no_grad()
    def sample_grid(self, generator: nn.Module, inputs: Batch) -> tuple[torch.Tensor, int]:
        g = unwrap(generator)
        was_training = g.training
        g.eval()
        try:
            images = g(inputs["z"])  # (N, C, S, S)
        finally:
            g.train(was_training)
        return images, math.ceil(math.sqrt(inputs["z"].shape[0]))

    def card_extras(self) -> dict[str, Any]:
        return {"training": asdict(self.config)}
