"""BigGAN building blocks used by the U-Net GAN networks (`models.unetgan`).

Brock, Donahue, Simonyan, "Large Scale GAN Training for High Fidelity Natural Image Synthesis",
ICLR 2019, as implemented in ajbrock/BigGAN-PyTorch `layers.py` and reused unchanged by the
U-Net GAN reference code (boschresearch/unetgan):

- every convolution, linear layer and embedding is orthogonally initialised ('ortho' init);
- spectral norm uses one power iteration per training step, with the epsilon of the reference
  U-Net GAN training scripts (`--SN_eps 1e-6`);
- `GBlock`: the generator's residual up-block with conditional batch norm,
  `DBlock`: the discriminator's residual down-block,
  `UpBlock`: the U-Net discriminator's decoder block (the reference's `GBlock2`, no batch norm).
"""

from __future__ import annotations

from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

SN_EPS = 1e-6
BN_EPS = 1e-5
BN_MOMENTUM = 0.1

M = TypeVar("M", bound=nn.Module)


def _ortho(module: M) -> M:
    """Orthogonally initialise `module.weight` (BigGAN's `init_weights` with init='ortho')."""
    nn.init.orthogonal_(module.weight)
    return module


def _sn(module: M) -> M:
    """Spectral-normalise `module.weight` after its orthogonal initialisation."""
    return spectral_norm(_ortho(module), eps=SN_EPS)


def conv2d(c_in: int, c_out: int, kernel_size: int = 3, *, sn: bool = True) -> nn.Conv2d:
    """A 'same'-padded convolution, spectral-normalised unless `sn` is false."""
    conv = nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2)
    return _sn(conv) if sn else _ortho(conv)


def linear(c_in: int, c_out: int, *, bias: bool = True, sn: bool = True) -> nn.Linear:
    """A linear layer, spectral-normalised unless `sn` is false."""
    layer = nn.Linear(c_in, c_out, bias=bias)
    return _sn(layer) if sn else _ortho(layer)


def embedding(num_classes: int, dim: int, *, sn: bool = True) -> nn.Embedding:
    """A class embedding, spectral-normalised unless `sn` is false (G's shared one is not)."""
    table = nn.Embedding(num_classes, dim)
    return _sn(table) if sn else _ortho(table)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour upsampling by 2: (B, C, H, W) -> (B, C, 2H, 2W)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def _self_modulation_mlp(cond_dim: int, channels: int) -> nn.Sequential:
    """The reference's self-modulation map z -> per-channel value: Linear-ReLU-Linear, no SN."""
    return nn.Sequential(
        linear(cond_dim, cond_dim, sn=False),
        nn.ReLU(),
        linear(cond_dim, channels, bias=False, sn=False),
    )


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose per-sample gain and bias are functions of a conditioning vector c.

    BigGAN's `ccbn`: BN without affine parameters, then `out * (1 + gain(c)) + bias(c)`.
    Class-conditional: gain and bias are bias-free SN linear maps of c = [z, embed(y)].
    Self-modulated (unconditional, Chen et al. ICLR 2019, as the U-Net GAN reference): each is
    a one-hidden-layer MLP of c = z.
    """

    def __init__(self, channels: int, cond_dim: int, *, self_modulation: bool) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM, affine=False)
        if self_modulation:
            self.gain: nn.Module = _self_modulation_mlp(cond_dim, channels)
            self.bias: nn.Module = _self_modulation_mlp(cond_dim, channels)
        else:
            self.gain = linear(cond_dim, channels, bias=False)
            self.bias = linear(cond_dim, channels, bias=False)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gain = 1 + self.gain(c)[:, :, None, None]  # (B, C, 1, 1)
        bias = self.bias(c)[:, :, None, None]  # (B, C, 1, 1)
        return self.bn(x) * gain + bias  # (B, C, H, W)


class GBlock(nn.Module):
    """Generator residual up-block: (B, c_in, H, W), c -> (B, c_out, 2H, 2W).

    Main path BN-ReLU-up-conv3x3-BN-ReLU-conv3x3 (conditional BNs); shortcut up-conv1x1.
    """

    def __init__(self, c_in: int, c_out: int, cond_dim: int, *, self_modulation: bool) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(c_in, cond_dim, self_modulation=self_modulation)
        self.conv1 = conv2d(c_in, c_out)
        self.bn2 = ConditionalBatchNorm2d(c_out, cond_dim, self_modulation=self_modulation)
        self.conv2 = conv2d(c_out, c_out)
        self.conv_sc = conv2d(c_in, c_out, kernel_size=1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = upsample(F.relu(self.bn1(x, c)))  # (B, c_in, 2H, 2W)
        h = self.conv1(h)  # (B, c_out, 2H, 2W)
        h = self.conv2(F.relu(self.bn2(h, c)))  # (B, c_out, 2H, 2W)
        return h + self.conv_sc(upsample(x))


class DBlock(nn.Module):
    """Discriminator residual down-block ('wide'): (B, c_in, H, W) -> (B, c_out, H/2, W/2).

    Main path [ReLU]-conv3x3-ReLU-conv3x3-avgpool; the first block of D skips the leading ReLU
    (`preactivation=False`) and pools before its 1x1 shortcut conv, the others after it.
    """

    def __init__(self, c_in: int, c_out: int, *, preactivation: bool) -> None:
        super().__init__()
        self.preactivation = preactivation
        self.conv1 = conv2d(c_in, c_out)
        self.conv2 = conv2d(c_out, c_out)
        self.conv_sc = conv2d(c_in, c_out, kernel_size=1)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """The learnable shortcut: (B, c_in, H, W) -> (B, c_out, H/2, W/2)."""
        if self.preactivation:
            return F.avg_pool2d(self.conv_sc(x), 2)
        return self.conv_sc(F.avg_pool2d(x, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))  # (B, c_out, H, W)
        return F.avg_pool2d(h, 2) + self.shortcut(x)


class UpBlock(nn.Module):
    """U-Net D decoder residual up-block: (B, c_in, H, W) -> (B, c_out, 2H, 2W).

    The generator block without batch norm (the reference's `GBlock2`):
    ReLU-up-conv3x3-ReLU-conv3x3, shortcut up-conv1x1, all spectral-normalised.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = conv2d(c_in, c_out)
        self.conv2 = conv2d(c_out, c_out)
        self.conv_sc = conv2d(c_in, c_out, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(upsample(F.relu(x)))  # (B, c_out, 2H, 2W)
        h = self.conv2(F.relu(h))  # (B, c_out, 2H, 2W)
        return h + self.conv_sc(upsample(x))
