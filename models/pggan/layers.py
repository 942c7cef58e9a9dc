"""Building blocks of the Progressive GAN (Karras et al., ICLR 2018, "Progressive Growing of GANs
for Improved Quality, Stability, and Variation", arXiv:1710.10196), section 4.

Follows the reference code (tkarras/progressive_growing_of_gans, networks.py):

- equalised learning rate (`get_weight` with `use_wscale=True`): weights are stored as N(0, 1) and
  multiplied at run time by the He constant `gain / sqrt(fan_in)`; biases start at zero and are
  added unscaled (`apply_bias`);
- pixelwise feature normalisation (`pixel_norm`);
- minibatch standard deviation (`minibatch_stddev_layer`);
- nearest-neighbour 2x upsampling (`upscale2d`) and 2x2 average pooling (`downscale2d`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

HE_GAIN = math.sqrt(2.0)


class EqualizedConv2d(nn.Module):
    """A stride-1 'same' convolution with an equalised learning rate.

    The stored weight is N(0, 1); `forward` uses `weight * scale` with
    `scale = gain / sqrt(in_channels * kernel_size**2)`, so every layer learns at the same speed
    under Adam whatever its fan-in.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, gain: float = HE_GAIN
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size)
        )  # (out, in, k, k)
        self.bias = nn.Parameter(torch.zeros(out_channels))  # (out,)
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, out, H, W)."""
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """A dense layer with an equalised learning rate: N(0, 1) weight times `gain / sqrt(fan_in)`."""

    def __init__(
        self, in_features: int, out_features: int, gain: float = HE_GAIN, bias: bool = True
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))  # (out, in)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None  # (out,)
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in) -> (B, out)."""
        return F.linear(x, self.weight * self.scale, self.bias)


class PixelNorm(nn.Module):
    """Pixelwise feature normalisation: b = a / sqrt(mean over channels of a^2 + eps)."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, ...) -> (B, C, ...), each position's feature vector at mean square 1."""
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


def stddev_group_size(batch_size: int, group_size: int) -> int:
    """The largest divisor of `batch_size` that is at most `group_size`.

    The reference takes `min(group_size, batch)` and requires the batch to be divisible by it;
    the largest divisor keeps that rule where it holds (a batch of 8 -> groups of 4, a batch of 2
    -> one group of 2) and still works for any other batch (a batch of 6 -> groups of 3, a prime
    batch larger than the group -> groups of 1, whose std is 0).
    """
    return max(d for d in range(1, min(group_size, batch_size) + 1) if batch_size % d == 0)


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation: appends one feature map holding the group's mean std.

    The batch is split into groups of `stddev_group_size(B, group_size)` samples; as in the
    reference, sample i belongs to group i mod (B / G). For each group the (biased) standard
    deviation of every feature at every position is taken over the group, averaged into one value,
    and broadcast as a constant extra channel to the group's samples.
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size = group_size
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C + 1, H, W)."""
        b, c, h, w = x.shape
        g = stddev_group_size(b, self.group_size)
        y = x.float().reshape(g, b // g, c, h, w)  # (G, M, C, H, W)
        y = y - y.mean(dim=0, keepdim=True)  # (G, M, C, H, W)
        y = (y.square().mean(dim=0) + self.eps).sqrt()  # (M, C, H, W)
        y = y.mean(dim=(1, 2, 3)).to(x.dtype)  # (M,)
        y = y.repeat(g).reshape(b, 1, 1, 1).expand(b, 1, h, w)  # (B, 1, H, W)
        return torch.cat([x, y], dim=1)  # (B, C + 1, H, W)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour upsampling, (B, C, H, W) -> (B, C, 2H, 2W)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling, (B, C, H, W) -> (B, C, H/2, W/2)."""
    return F.avg_pool2d(x, kernel_size=2)
