"""U-Net GAN training: a U-Net discriminator with global and per-pixel GAN losses, CutMix CR.

Schonfeld, Schiele, Khoreva, "A U-Net Based Discriminator for Generative Adversarial Networks",
CVPR 2020, as trained by the authors' reference code (boschresearch/unetgan, `train_fns.py`,
`training_scripts/`). G is BigGAN's generator, D^U = (D_enc, D_dec) returns a global logit and
a per-pixel logit map (`models.unetgan`); both heads get a GAN loss with equal weight.

- Basic U-Net GAN (`cutmix=False`): hinge loss on both heads, the paper's equations with
  BigGAN's hinge: D minimises relu(1 - D_enc(x)) + relu(1 + D_enc(G(z))) plus the per-pixel
  mean of the same for D_dec; G minimises -D_enc(G(z)) - mean D_dec(G(z)).
- Full model (`cutmix=True`, the default, "U-Net GAN + CutMix CR" of the paper's tables): the
  non-saturating loss (BCE with logits) weighted as the reference, D: 0.5 (real terms) + 0.5
  (fake terms), G: 0.5 (encoder) + 0.5 (decoder); with probability p_mix(step) the D step also
  sees a CutMix batch mix(x, G(z), M): encoder target fake, decoder target M per pixel, plus
  `consistency_weight` times the consistency loss (`training.cutmix`).
- Adam (betas (0, 0.999), eps 1e-6 as BigGAN), G lr 5e-5 and D lr 2e-4 (the reference's CelebA
  and COCO-Animals scripts; its FFHQ script uses 1e-4 / 5e-4), EMA of G with decay 0.9999 from
  step 21000 (before it the EMA copies G), horizontal mirroring of the data (RandomHorizontalFlip
  in every reference dataset).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import models
from core.training_config import UNetGANConfig
from training.cutmix import consistency_loss, cutmix_mask, cutmix_targets, mix, p_mix
from training.ema import make_ema
from training.family import Batch, DataInfo, GANFamily, Stats, unwrap


@dataclass
class UNetGANStep:
    """One iteration's tensors: the real batch, G's input and output, the CutMix mask if any."""

    x: torch.Tensor  # (B, C, S, S) real images in [-1, 1]
    y: torch.Tensor | None  # (B,) class indices (class-conditional) or None
    z: torch.Tensor  # (B, latent_dim)
    fake: torch.Tensor  # (B, C, S, S), with G's graph
    mask: torch.Tensor | None  # (B, 1, S, S) mask of real pixels when this step mixes, else None


class UNetGANFamily(GANFamily):
    """U-Net GAN: BigGAN G, U-Net D^U, GAN losses on both D heads, CutMix CR, EMA of G.

    Class-conditional when the dataset has classes (and `unconditional` is off): G gets the
    real batch's labels, so one forward pass of G serves the D step, the CutMix batch (whose
    real and fake halves must share a class, as the reference's `G_D` ensures by `gy = dy`)
    and the G step.
    """

    name = "unetgan"
    data_kind = "images"
    config_class = UNetGANConfig

    def __init__(self, config: UNetGANConfig, data: DataInfo, device: torch.device) -> None:
        self.config = config
        self.device = torch.device(device)
        self.num_classes = 0 if config.unconditional else data.num_classes
        self.G = models.create(
            "unetgan-generator",
            image_size=data.image_size,
            channels=data.channels,
            num_classes=self.num_classes,
            latent_dim=config.latent_dim,
            width=config.width,
            shared_init=config.shared_init,
        ).to(self.device)
        self.D = models.create(
            "unetgan-discriminator",
            image_size=data.image_size,
            channels=data.channels,
            num_classes=self.num_classes,
            width=config.width,
        ).to(self.device)
        self.G_ema = make_ema(self.G)
        self.mix_probability = 0.0  # this step's CutMix probability
        self.mix_now = False  # whether this step uses a CutMix batch

    @property
    def loss_kind(self) -> str:
        """The GAN loss: "non-saturating" with CutMix (the paper's full model), else "hinge"."""
        return "non-saturating" if self.config.cutmix else "hinge"

    @classmethod
    def dataset_options(cls, config: UNetGANConfig) -> dict[str, Any]:
        return {"conditional": False if config.unconditional else None, "mirror": config.mirror}

    def optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        cfg = self.config
        betas = (cfg.beta1, cfg.beta2)
        return (
            torch.optim.Adam(self.G.parameters(), lr=cfg.g_lr, betas=betas, eps=cfg.adam_eps),
            torch.optim.Adam(self.D.parameters(), lr=cfg.d_lr, betas=betas, eps=cfg.adam_eps),
        )

    def begin_step(self, step: int) -> bool:
        """Draw, once per iteration from the global torch RNG, whether this step mixes."""
        cfg = self.config
        if cfg.cutmix:
            self.mix_probability = p_mix(step, cfg.warmup_steps, cfg.p_mix_max)
            self.mix_now = bool(torch.rand(()).item() < self.mix_probability)
        else:
            self.mix_probability, self.mix_now = 0.0, False
        return False

    def ema_decay(self, step: int) -> float | None:
        """0 (the EMA copies G) before `ema_start`, then the decay (the reference's `utils.ema`)."""
        return 0.0 if step < self.config.ema_start else self.config.ema_decay

    def prepare(self, batch: Batch) -> UNetGANStep:
        x = batch["x"]  # (B, C, S, S)
        b, _, h, w = x.shape
        y = batch["y"] if self.num_classes else None  # (B,) the real batch's labels
        z = torch.randn(b, self.config.latent_dim, device=x.device)  # (B, latent_dim)
        fake = self.G(z, y)  # (B, C, S, S)
        mask = cutmix_mask(b, h, w, device=x.device) if self.mix_now else None
        return UNetGANStep(x=x, y=y, z=z, fake=fake, mask=mask)

    # -- losses ------------------------------------------------------------------------------

    def _real_fake_loss(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        """D's loss of one head on all-real or all-fake logits (any shape), averaged."""
        if self.config.cutmix:
            target = torch.full_like(logits, 1.0 if real else 0.0)
            return F.binary_cross_entropy_with_logits(logits, target)
        logits = logits.float()  # hinge terms in float32 under bf16 autocast
        return F.relu(1.0 - logits).mean() if real else F.relu(1.0 + logits).mean()

    def _generator_loss(self, logits: torch.Tensor) -> torch.Tensor:
        """G's loss of one head: non-saturating -log D, or the hinge loss's -D."""
        if self.config.cutmix:
            return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return -logits.float().mean()

    @property
    def _scale(self) -> float:
        """The reference halves its BCE losses (0.5 real + 0.5 fake; 0.5 enc + 0.5 dec)."""
        return 0.5 if self.config.cutmix else 1.0

    def d_loss(self, ctx: UNetGANStep) -> tuple[torch.Tensor, Stats]:
        """Both heads on real and fake; on a CutMix step also the mixed batch and consistency.

        One forward pass of D on [x, G(z), mix] (as the reference's `G_D`). Stats D_mix and
        D_consistency appear only on CutMix steps; p_mix on every step.
        """
        b = ctx.x.shape[0]
        fake = ctx.fake.detach()
        images = [ctx.x, fake]
        if ctx.mask is not None:
            images.append(mix(ctx.x, fake, ctx.mask))  # (B, C, S, S)
        labels = None if ctx.y is None else ctx.y.repeat(len(images))  # (nB,)
        enc, dec = self.D(torch.cat(images), labels)  # (nB,), (nB, 1, S, S)
        enc_parts, dec_parts = enc.split(b), dec.split(b)

        real_enc = self._real_fake_loss(enc_parts[0], real=True)
        fake_enc = self._real_fake_loss(enc_parts[1], real=False)
        real_dec = self._real_fake_loss(dec_parts[0], real=True)
        fake_dec = self._real_fake_loss(dec_parts[1], real=False)
        plain = self._scale * (real_enc + real_dec) + self._scale * (fake_enc + fake_dec)
        names = ["D_real", "D_fake", "D_pixel_real", "D_pixel_fake"]
        values = [real_enc, fake_enc, real_dec, fake_dec]

        if ctx.mask is None:
            loss = plain
        else:
            enc_target, dec_target = cutmix_targets(ctx.mask)  # (B,) zeros, (B, 1, S, S) = M
            mixed = F.binary_cross_entropy_with_logits(
                enc_parts[2], enc_target
            ) + F.binary_cross_entropy_with_logits(dec_parts[2], dec_target)
            consistency = consistency_loss(dec_parts[2], dec_parts[0], dec_parts[1], ctx.mask)
            cutmix = mixed + self.config.consistency_weight * consistency
            loss = cutmix if self.config.mix_only else plain + cutmix
            names += ["D_mix", "D_consistency"]
            values += [mixed, consistency]
        numbers = torch.stack([v.float() for v in values]).detach().tolist()  # one sync
        stats = dict(zip(names, numbers, strict=True))
        stats["p_mix"] = self.mix_probability
        return loss, stats

    def g_loss(self, ctx: UNetGANStep) -> tuple[torch.Tensor, Stats]:
        enc, dec = self.D(ctx.fake, ctx.y)  # (B,), (B, 1, S, S)
        g_enc, g_dec = self._generator_loss(enc), self._generator_loss(dec)
        loss = self._scale * (g_enc + g_dec)
        values = torch.stack([g_enc.float(), g_dec.float()]).detach().tolist()
        return loss, {"G_enc": values[0], "G_dec": values[1]}

    # -- samples -----------------------------------------------------------------------------

    def fixed_sample_inputs(self, batch: Batch, count: int, seed: int) -> Batch:
        """z from a CPU generator seeded `seed` (same on every device); y cycles the classes.

        Unconditional models get y = zeros as a placeholder that `sample_grid` ignores.
        """
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(count, self.config.latent_dim, generator=rng).to(self.device)
        if self.num_classes:
            y = torch.arange(count, device=self.device) % self.num_classes  # (N,)
        else:
            y = torch.zeros(count, dtype=torch.long, device=self.device)  # (N,), unused
        return {"z": z, "y": y}

    @torch.no_grad()
    def sample_grid(self, generator: nn.Module, inputs: Batch) -> tuple[torch.Tensor, int]:
        """G(z, y) in eval mode; one column per class when a row can hold them all."""
        g = unwrap(generator)
        conditional = g.config.num_classes > 0
        z, y = inputs["z"], inputs["y"]
        was_training = g.training
        g.eval()
        try:
            images = g(z, y if conditional else None)  # (N, C, S, S) in [-1, 1]
        finally:
            g.train(was_training)
        count = z.shape[0]
        if conditional and count >= g.config.num_classes:
            columns = g.config.num_classes
        else:
            columns = math.ceil(math.sqrt(count))
        return images, columns

    def card_extras(self) -> dict[str, Any]:
        return {"training": asdict(self.config), "loss": self.loss_kind}
