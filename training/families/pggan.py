"""Progressive GAN training: progressive growing with WGAN-GP (Karras et al., ICLR 2018).

Karras, Aila, Laine and Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability,
and Variation", ICLR 2018 (arXiv:1710.10196), following the reference code
(tkarras/progressive_growing_of_gans: train.py, loss.py, config.py):

- growing: `training.pggan_schedule.GrowthSchedule` (4x4 stable, then a fade-in and a stable
  phase of `phase_images` images per resolution; batch size per resolution). The schedule alone
  sets the length of the run: the loop's `--steps` is refused, and so is its `--batch-size`
  (use `--batch-sizes` / `--batch-base`);
- the real images are shown at the current resolution (2x2 box-filter downsampling) and, while a
  resolution fades in, blended like G's output: lerp(upsample(avgpool(x)), x, alpha)
  (train.py `process_reals`);
- loss (loss.py `D_wgangp_acgan`, `G_wgan_acgan`): D minimises E[D(G(z))] - E[D(x)]
  + lambda * E[(||grad D(x_hat)||_2 - 1)^2] + eps_drift * E[D(x)^2], x_hat = x + u (G(z) - x),
  u ~ U(0, 1) per sample, lambda = 10, eps_drift = 0.001; G minimises -E[D(G(z))];
- Adam lr 1e-3, betas (0, 0.99), eps 1e-8, its state reset whenever the level of detail changes
  (train.py `reset_opt_for_new_lod`: at the start of every fade-in and of every stable phase
  after one);
- an exponential moving average of G's weights with decay 0.999 (`G_smoothing`), the exported
  generator.

PGGAN here is unconditional: the dataset's labels, if any, are not used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import models
from core.training_config import PGGANConfig
from training.ema import make_ema
from training.family import Batch, DataInfo, GANFamily, Stats, unwrap
from training.pggan_schedule import (
    GrowthSchedule,
    Phase,
    parse_batch_sizes,
)

SAMPLE_CHUNK = 16  # generate sample grids this many images at a time


@dataclass
class PGGANStep:
    """One iteration's tensors at the current resolution R and the schedule's phase."""

    reals: torch.Tensor  # (B, C, R, R), faded like G's output
    z: torch.Tensor  # (B, latent_dim)
    fake: torch.Tensor  # (B, C, R, R), with G's graph
    phase: Phase


def downsample_to(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """(B, C, S, S) -> (B, C, R, R) by box filtering, S a power-of-two multiple of R.

    One k x k average pool equals k/2 repeated 2x2 average pools (the reference's dataset levels).
    """
    factor = x.shape[-1] // resolution
    if factor * resolution != x.shape[-1] or x.shape[-2] != x.shape[-1]:
        raise ValueError(
            f"expected square images whose side is a multiple of {resolution}, got {tuple(x.shape)}"
        )
    return x if factor == 1 else F.avg_pool2d(x, kernel_size=factor)


def fade_reals(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Blend (B, C, R, R) images with their 2x-coarser version: lerp(up(avgpool(x)), x, alpha).

    At alpha 0 this is exactly the previous resolution's image, upsampled (what G produces at
    alpha 0); at alpha 1 it is `x`.
    """
    if alpha >= 1.0:
        return x
    coarse = F.interpolate(F.avg_pool2d(x, kernel_size=2), scale_factor=2.0, mode="nearest")
    return torch.lerp(coarse, x, alpha)


def growth_schedule(config: PGGANConfig, max_resolution: int) -> GrowthSchedule:
    """The growth schedule of a run of `config` up to `max_resolution` (ValueError if invalid)."""
    return GrowthSchedule(
        max_resolution=max_resolution,
        phase_images=config.phase_images,
        batch_sizes=parse_batch_sizes(config.batch_sizes),
        batch_base=config.batch_base,
    )


class PGGANFamily(GANFamily):
    """Progressive GAN: growing G and D, WGAN-GP with drift, EMA generator."""

    name = "pggan"
    data_kind = "images"
    config_class = PGGANConfig
    grows = True

    def __init__(self, config: PGGANConfig, data: DataInfo, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.max_resolution = data.image_size
        self.schedule = growth_schedule(config, data.image_size)
        self.G = models.create(
            "pggan-generator",
            max_resolution=data.image_size,
            channels=data.channels,
            latent_dim=config.latent_dim,
            fmap_base=config.fmap_base,
            fmap_max=config.fmap_max,
        ).to(device)
        self.D = models.create(
            "pggan-discriminator",
            max_resolution=data.image_size,
            channels=data.channels,
            fmap_base=config.fmap_base,
            fmap_max=config.fmap_max,
            mbstd_group_size=config.mbstd_group_size,
        ).to(device)
        self.G_ema = None
        if config.ema_decay > 0:
            self.G_ema = make_ema(self.G)
        self.phase = self.schedule.at(0)
        self.begin_step(0)

    @classmethod
    def dataset_options(cls, config: PGGANConfig) -> dict[str, Any]:
        return {"conditional": False, "mirror": config.mirror}

    @classmethod
    def planned_steps(cls, config: PGGANConfig, image_size: int, requested: int) -> int:
        """The growth schedule's length (the CLI and the API refuse a `steps` for PGGAN)."""
        return growth_schedule(config, image_size).total_steps

    def total_steps(self, requested: int) -> int:
        """The growth schedule's length (the CLI and the API refuse a `steps` for PGGAN)."""
        return self.schedule.total_steps

    def batch_size(self, step: int, requested: int) -> int:
        """The schedule's batch size at `step`; `requested` (--batch-size) is ignored."""
        return self.schedule.at(step).batch_size

    def optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        c = self.config
        kwargs = {"lr": c.lr, "betas": (c.beta1, c.beta2), "eps": c.adam_eps}
        return (
            torch.optim.Adam(self.G.parameters(), **kwargs),
            torch.optim.Adam(self.D.parameters(), **kwargs),
        )

    def begin_step(self, step: int) -> bool:
        """Set stage and alpha on G, D and G_ema; True on the first step of every phase but 0.

        As the reference (`reset_opt_for_new_lod`), Adam's state is reset whenever the level of
        detail changes: when a resolution starts fading in and when its fade-in ends. The answer
        depends on `step` alone, so a resumed run resets exactly where an uninterrupted one did.
        """
        self.phase = phase = self.schedule.at(step)
        for net in (self.G, self.D, self.G_ema):
            if net is not None:
                unwrap(net).set_stage(phase.stage, phase.alpha)
        return step > 0 and step == phase.phase_start

    def ema_decay(self, step: int) -> float | None:
        return self.config.ema_decay if self.G_ema is not None else None

    def prepare(self, batch: Batch) -> PGGANStep:
        phase = self.phase
        reals = downsample_to(batch["x"], phase.resolution)  # (B, C, R, R)
        if phase.fading:
            reals = fade_reals(reals, phase.alpha)
        z = torch.randn(reals.shape[0], self.config.latent_dim, device=reals.device)  # (B, Z)
        return PGGANStep(reals=reals, z=z, fake=self.G(z), phase=phase)

    def gradient_penalty(self, reals: torch.Tensor, fakes: torch.Tensor) -> torch.Tensor:
        """E[(||grad D(x_hat)||_2 - 1)^2], x_hat = reals + u (fakes - reals), u ~ U(0, 1).

        The gradient is taken with `create_graph=True`, so the penalty backpropagates into D.
        """
        u = torch.rand(reals.shape[0], 1, 1, 1, device=reals.device, dtype=reals.dtype)
        mixed = torch.lerp(reals, fakes.detach().to(reals.dtype), u).requires_grad_(True)
        scores = self.D(mixed).float()  # (B,)
        (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)  # (B, C, R, R)
        norms = torch.linalg.vector_norm(grad.float().flatten(1), dim=1)  # (B,)
        return (norms - 1.0).square().mean()

    def d_loss(self, ctx: PGGANStep) -> tuple[torch.Tensor, Stats]:
        real = self.D(ctx.reals).float()  # (B,)
        fake = self.D(ctx.fake.detach()).float()  # (B,)
        wdist = real.mean() - fake.mean()
        gp = self.gradient_penalty(ctx.reals, ctx.fake)
        drift = real.square().mean()
        loss = -wdist + self.config.lambda_gp * gp + self.config.drift * drift
        return loss, {
            "D_loss": loss.item(),
            "D_wdist": wdist.item(),
            "D_gp": gp.item(),
            "D_drift": drift.item(),
            "stage": float(ctx.phase.stage),
            "alpha": ctx.phase.alpha,
            "resolution": float(ctx.phase.resolution),
        }

    def g_loss(self, ctx: PGGANStep) -> tuple[torch.Tensor, Stats]:
        loss = -self.D(ctx.fake).float().mean()
        return loss, {"G_loss": loss.item()}

    def fixed_sample_inputs(self, batch: Batch, count: int, seed: int) -> Batch:
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn(count, self.config.latent_dim, generator=generator)  # (N, Z)
        return {"z": z.to(self.device)}

    @torch.no_grad()
    def sample_grid(self, generator: nn.Module, inputs: Batch) -> tuple[torch.Tensor, int]:
        """G(z) at its current stage and alpha, shown at `max_resolution` (nearest upsampling)."""
        g = unwrap(generator)
        was_training = g.training
        g.eval()
        try:
            images = torch.cat([g(z) for z in inputs["z"].split(SAMPLE_CHUNK)])  # (N, C, R, R)
        finally:
            g.train(was_training)
        factor = self.max_resolution // images.shape[-1]
        if factor > 1:
            images = F.interpolate(images, scale_factor=float(factor), mode="nearest")
        count = images.shape[0]
        return images.clamp(-1.0, 1.0), max(1, math.ceil(math.sqrt(count)))

    def state_dict(self) -> dict[str, Any]:
        """Nothing: stage, alpha and batch size derive from the step (the loop calls begin_step)."""
        return {}

    def card_extras(self) -> dict[str, Any]:
        schedule = self.schedule
        return {
            "training": asdict(self.config),
            "growth": {
                "phase_images": schedule.phase_images,
                "batch_sizes": {
                    str(4 * 2**k): schedule.batch_size_at(4 * 2**k)
                    for k in range(schedule.num_stages)
                },
                "total_steps": schedule.total_steps,
            },
        }
