"""Exponential moving average of generator weights.

Used where the papers or their reference code average G: Progressive GAN (Karras et al. 2018,
G_smoothing 0.999) and U-Net GAN (Schonfeld et al. 2020, BigGAN's EMA with decay 0.9999).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(generator: nn.Module) -> nn.Module:
    """A frozen copy of `generator` in eval mode that `update_ema` keeps averaging into."""
    ema = copy.deepcopy(generator).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, generator: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * generator; buffers (BN statistics, SN vectors) copied."""
    for averaged, current in zip(ema.parameters(), generator.parameters(), strict=True):
        averaged.lerp_(current.detach(), 1.0 - decay)
    for averaged, current in zip(ema.buffers(), generator.buffers(), strict=True):
        averaged.copy_(current)
