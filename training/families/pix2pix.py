"""pix2pix training: conditional GAN loss + lambda * L1 (Isola et al., CVPR 2017).

Paper and reference code (junyanz/pytorch-CycleGAN-and-pix2pix): G minimises
GAN(D(A, G(A)), real) + 100 * |B - G(A)|_1; D minimises half the sum of its real and fake
losses; Adam lr 2e-4, betas (0.5, 0.999); optionally the learning rate decays linearly to zero
over the last `decay_steps` iterations (the reference's n_epochs_decay). Data augmentation is the
paper's random jitter (resize to 286, random 256 crop) and mirroring, done by `PairedDataset`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import models
from core.training_config import Pix2PixConfig
from models.pix2pix.translation import translate
from training.family import Batch, DataInfo, GANFamily, Stats, unwrap


@dataclass
class Pix2PixStep:
    """One iteration's tensors: the input, the target and G's translation."""

    a: torch.Tensor  # (B, Ca, S, S)
    b: torch.Tensor  # (B, Cb, S, S)
    fake: torch.Tensor  # (B, Cb, S, S), with G's graph


class Pix2PixFamily(GANFamily):
    """pix2pix: U-Net G, PatchGAN D, cGAN + L1."""

    name = "pix2pix"
    data_kind = "paired"
    config_class = Pix2PixConfig

    def __init__(self, config: Pix2PixConfig, data: DataInfo, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.G = models.create(
            "pix2pix-generator",
            image_size=data.image_size,
            in_channels=data.in_channels,
            out_channels=data.channels,
            base_width=config.width,
            norm=config.norm,
        ).to(device)
        self.D = models.create(
            "pix2pix-discriminator",
            in_channels=data.in_channels,
            out_channels=data.channels,
            base_width=config.width,
            patch=config.patch,
            norm=config.norm,
        ).to(device)
        self.total = 0
        self._optimizers: tuple[torch.optim.Optimizer, ...] = ()

    @classmethod
    def dataset_options(cls, config: Pix2PixConfig) -> dict[str, Any]:
        return {
            "direction": config.direction,
            "load_size": config.load_size or None,
            "augment": not config.no_augment,
        }

    def total_steps(self, requested: int) -> int:
        self.total = requested
        return requested

    def optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        betas = (self.config.beta1, self.config.beta2)
        self._optimizers = (
            torch.optim.Adam(self.G.parameters(), lr=self.config.lr, betas=betas),
            torch.optim.Adam(self.D.parameters(), lr=self.config.lr, betas=betas),
        )
        return self._optimizers  # type: ignore[return-value]

    def learning_rate(self, step: int) -> float:
        """The paper's constant rate, then a linear decay over the last `decay_steps`.

        As the reference's `lambda_rule`: the first decayed step already runs at
        lr * (1 - 1/(decay_steps + 1)) and the last at lr / (decay_steps + 1).
        """
        decay_start = self.total - self.config.decay_steps
        if self.config.decay_steps <= 0 or step < decay_start:
            return self.config.lr
        return self.config.lr * (1.0 - (step - decay_start + 1) / (self.config.decay_steps + 1))

    def begin_step(self, step: int) -> bool:
        lr = self.learning_rate(step)
        for optimizer in self._optimizers:
            for group in optimizer.param_groups:
                group["lr"] = lr
        return False

    def _gan_loss(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.full_like(logits, 1.0 if real else 0.0)
        if self.config.gan_mode == "lsgan":
            return F.mse_loss(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)

    def prepare(self, batch: Batch) -> Pix2PixStep:
        a, b = batch["A"], batch["B"]
        return Pix2PixStep(a=a, b=b, fake=self.G(a))

    def d_loss(self, ctx: Pix2PixStep) -> tuple[torch.Tensor, Stats]:
        real = self._gan_loss(self.D(ctx.a, ctx.b), real=True)
        fake = self._gan_loss(self.D(ctx.a, ctx.fake.detach()), real=False)
        loss = 0.5 * (real + fake)  # the paper halves D's objective
        return loss, {"D_real": real.item(), "D_fake": fake.item()}

    def g_loss(self, ctx: Pix2PixStep) -> tuple[torch.Tensor, Stats]:
        gan = self._gan_loss(self.D(ctx.a, ctx.fake), real=True)
        l1 = F.l1_loss(ctx.fake, ctx.b)
        loss = self.config.gan_weight * gan + self.config.lambda_l1 * l1
        return loss, {"G_GAN": gan.item(), "G_L1": l1.item()}

    def fixed_sample_inputs(self, batch: Batch, count: int, seed: int) -> Batch:
        return {"A": batch["A"][:count], "B": batch["B"][:count]}

    @torch.no_grad()
    def sample_grid(self, generator: nn.Module, inputs: Batch) -> tuple[torch.Tensor, int]:
        """Rows of (input, translation, target), each translated as a translation job does."""
        a, b = inputs["A"], inputs["B"]
        g = unwrap(generator)
        fake = torch.cat([translate(g, a[i : i + 1], seed=i) for i in range(a.shape[0])])
        channels = b.shape[1]
        a_shown = a.expand(-1, channels, -1, -1) if a.shape[1] == 1 else a
        rows = torch.stack([a_shown, fake, b], dim=1)  # (N, 3, Cb, S, S)
        return rows.flatten(0, 1), 3

    def card_extras(self) -> dict[str, Any]:
        return {"training": asdict(self.config)}
