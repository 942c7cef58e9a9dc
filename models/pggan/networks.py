"""Progressive GAN generator and discriminator.

Karras, Aila, Laine and Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability,
and Variation", ICLR 2018 (arXiv:1710.10196), following the reference code
(tkarras/progressive_growing_of_gans, networks.py: `G_paper` and `D_paper`, 'linear' structure).

Both networks are built for `max_resolution` from the start; every block is a registered submodule,
so the state_dict is the same at every stage. Growing is a matter of which blocks `forward` runs:
stage k works at resolution 4 * 2**k (stage 0 is 4x4). While a stage fades in (alpha < 1) the new
block is blended linearly with the previous stage's path, upsampled (G) or downsampled (D), so at
alpha = 0 each network computes exactly what the previous stage computed.

Channels follow the reference's nf(level) = min(fmap_base / 2**level, fmap_max) with
level = log2(resolution) - 1, i.e. stage k uses nf(k + 1). The up/downsampling convolutions are
written unfused (nearest upsample then conv; conv then 2x2 average pool): the reference's
`fused_scale` variants compute the same functions.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.pggan.layers import (
    HE_GAIN,
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    downsample2x,
    upsample2x,
)
from models.registry import register

LRELU_SLOPE = 0.2


def feature_maps(level: int, fmap_base: int, fmap_max: int) -> int:
    """The reference's nf(level) = min(fmap_base / 2**level, fmap_max), level = log2(res) - 1."""
    return min(fmap_base // 2**level, fmap_max)


class _GrowingConfig:
    """What the generator's and the discriminator's configs share: resolution and channels."""

    max_resolution: int
    channels: int
    fmap_base: int
    fmap_max: int

    @property
    def image_size(self) -> int:
        """Side of the largest (final) images, in pixels."""
        return self.max_resolution

    @property
    def num_stages(self) -> int:
        """Number of resolutions from 4x4 to `max_resolution`; stages are 0..num_stages-1."""
        return int(math.log2(self.max_resolution)) - 1

    def nf(self, stage: int) -> int:
        """Feature maps of the block at growing stage `stage` (resolution 4 * 2**stage)."""
        return feature_maps(stage + 1, self.fmap_base, self.fmap_max)

    def _validate(self) -> None:
        res = self.max_resolution
        if not (isinstance(res, int) and 8 <= res <= 1024 and res & (res - 1) == 0):
            raise ValueError(f"max_resolution must be a power of two from 8 to 1024, got {res!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels!r}")
        if self.fmap_max < 1:
            raise ValueError(f"fmap_max must be at least 1, got {self.fmap_max!r}")
        if self.nf(self.num_stages - 1) < 1:
            raise ValueError(
                f"fmap_base {self.fmap_base!r} leaves no feature maps at {res}x{res}; "
                f"it must be at least {res // 2}"
            )


@dataclass(frozen=True)
class PGGANGeneratorConfig(_GrowingConfig):
    """Progressive GAN generator; the defaults are the paper's 1024x1024 CelebA-HQ network."""

    max_resolution: int = 1024
    channels: int = 3
    latent_dim: int = 512
    fmap_base: int = 8192
    fmap_max: int = 512
    num_classes: int = 0

    def __post_init__(self) -> None:
        self._validate()
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be at least 1, got {self.latent_dim!r}")
        if self.num_classes != 0:
            raise ValueError(
                "The Progressive GAN here is unconditional: num_classes must be 0, "
                f"got {self.num_classes!r}."
            )


@dataclass(frozen=True)
class PGGANDiscriminatorConfig(_GrowingConfig):
    """Progressive GAN discriminator; the defaults are the paper's 1024x1024 CelebA-HQ network.

    `mbstd_group_size` below 2 leaves the minibatch standard deviation layer out, as in the
    reference (`mbstd_group_size > 1` enables it).
    """

    max_resolution: int = 1024
    channels: int = 3
    fmap_base: int = 8192
    fmap_max: int = 512
    mbstd_group_size: int = 4

    def __post_init__(self) -> None:
        self._validate()
        if self.mbstd_group_size < 0:
            raise ValueError(
                f"mbstd_group_size must be 0 or more (below 2 disables it), "
                f"got {self.mbstd_group_size!r}"
            )


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LRELU_SLOPE)


class _Growing(nn.Module):
    """The stage/alpha state shared by the generator and the discriminator."""

    def __init__(self, num_stages: int) -> None:
        super().__init__()
        self.num_stages = num_stages
        self.stage = num_stages - 1
        self.alpha = 1.0

    @property
    def max_stage(self) -> int:
        """The last stage, at `max_resolution`."""
        return self.num_stages - 1

    @property
    def resolution(self) -> int:
        """Image side at the current stage: 4 * 2**stage."""
        return 4 * 2**self.stage

    def set_stage(self, stage: int, alpha: float = 1.0) -> None:
        """Work at `stage` (0 is 4x4) with the new block faded in by `alpha` in [0, 1].

        At stage 0 there is no previous stage to fade from, so alpha has no effect there.
        """
        self.stage, self.alpha = self._checked(stage, alpha)

    def runtime_state(self) -> dict[str, float]:
        """The growth state a checkpoint records (`config.json`'s `runtime_state`)."""
        return {"stage": self.stage, "alpha": self.alpha}

    def load_runtime_state(self, state: dict[str, float]) -> None:
        """Restore what `runtime_state` returned (a run saved mid-growth samples where it was)."""
        self.set_stage(int(state["stage"]), float(state["alpha"]))

    def _resolve(self, stage: int | None, alpha: float | None) -> tuple[int, float]:
        """The call's stage and alpha: explicit arguments override the state one by one."""
        return self._checked(
            self.stage if stage is None else stage, self.alpha if alpha is None else alpha
        )

    def _checked(self, stage: int, alpha: float) -> tuple[int, float]:
        if isinstance(stage, bool) or not isinstance(stage, numbers.Integral):
            raise ValueError(f"stage must be an integer, got {stage!r}")
        stage = int(stage)
        if not 0 <= stage <= self.max_stage:
            raise ValueError(
                f"stage must be from 0 (4x4) to {self.max_stage} "
                f"({4 * 2**self.max_stage}x{4 * 2**self.max_stage}), got {stage}"
            )
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        return stage, float(alpha)


class _GeneratorInputBlock(nn.Module):
    """The 4x4 block: PN(latent) -> dense -> LReLU -> PN -> conv3x3 -> LReLU -> PN."""

    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.norm = PixelNorm()
        # Gain sqrt(2)/4 and a per-channel bias after the reshape, as in the reference.
        self.dense = EqualizedLinear(latent_dim, channels * 16, gain=HE_GAIN / 4, bias=False)
        self.bias = nn.Parameter(torch.zeros(channels))  # (C,)
        self.conv = EqualizedConv2d(channels, channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, C, 4, 4)."""
        x = self.dense(self.norm(z)).reshape(-1, self.channels, 4, 4)  # (B, C, 4, 4)
        x = self.norm(_lrelu(x + self.bias.reshape(1, -1, 1, 1)))  # (B, C, 4, 4)
        return self.norm(_lrelu(self.conv(x)))  # (B, C, 4, 4)


class _GeneratorBlock(nn.Module):
    """upsample x2 -> conv3x3 -> LReLU -> PN -> conv3x3 -> LReLU -> PN."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = PixelNorm()
        self.conv0 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, 2H, 2W)."""
        x = self.norm(_lrelu(self.conv0(upsample2x(x))))  # (B, C_out, 2H, 2W)
        return self.norm(_lrelu(self.conv1(x)))  # (B, C_out, 2H, 2W)


@register(
    "pggan-generator", family="pggan", role="generator", task="sample", config=PGGANGeneratorConfig
)
class PGGANGenerator(_Growing):
    """Progressive GAN generator: latents (B, latent_dim) -> linear images (B, channels, R, R).

    `blocks[k]` and `to_rgb[k]` belong to stage k. With 0 <= alpha < 1 at stage k > 0 the output is
    lerp(upsample(to_rgb[k-1](h)), to_rgb[k](blocks[k](h)), alpha), h being stage k-1's features.
    """

    def __init__(self, config: PGGANGeneratorConfig) -> None:
        super().__init__(config.num_stages)
        self.config = config
        nf = config.nf
        self.blocks = nn.ModuleList(
            [_GeneratorInputBlock(config.latent_dim, nf(0))]
            + [_GeneratorBlock(nf(k - 1), nf(k)) for k in range(1, config.num_stages)]
        )
        self.to_rgb = nn.ModuleList(
            EqualizedConv2d(nf(k), config.channels, 1, gain=1.0) for k in range(config.num_stages)
        )

    def forward(
        self, z: torch.Tensor, stage: int | None = None, alpha: float | None = None
    ) -> torch.Tensor:
        """(B, latent_dim) -> (B, channels, R, R), R = 4 * 2**stage; None uses `set_stage`'s."""
        stage, alpha = self._resolve(stage, alpha)
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(
                f"expected latents of shape (B, {self.config.latent_dim}), got {tuple(z.shape)}"
            )
        h = self.blocks[0](z)  # (B, nf(0), 4, 4)
        for block in self.blocks[1:stage]:
            h = block(h)  # (B, nf(stage-1), R/2, R/2) after the last one
        if stage == 0:
            return self.to_rgb[0](h)  # (B, channels, 4, 4)
        new = self.to_rgb[stage](self.blocks[stage](h))  # (B, channels, R, R)
        if alpha == 1.0:
            return new
        old = upsample2x(self.to_rgb[stage - 1](h))  # (B, channels, R, R)
        return torch.lerp(old, new, alpha)  # (B, channels, R, R)


class _DiscriminatorBlock(nn.Module):
    """conv3x3 -> LReLU -> conv3x3 -> LReLU -> 2x2 average pool."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H/2, W/2)."""
        x = _lrelu(self.conv0(x))  # (B, C_in, H, W)
        return downsample2x(_lrelu(self.conv1(x)))  # (B, C_out, H/2, W/2)


class _DiscriminatorOutputBlock(nn.Module):
    """The 4x4 block: mbstd -> conv3x3 -> LReLU -> dense -> LReLU -> dense (gain 1) -> logit."""

    def __init__(self, channels: int, hidden: int, mbstd_group_size: int) -> None:
        super().__init__()
        use_mbstd = mbstd_group_size > 1
        self.mbstd = MinibatchStdDev(mbstd_group_size) if use_mbstd else nn.Identity()
        self.conv = EqualizedConv2d(channels + int(use_mbstd), channels, 3)
        self.dense0 = EqualizedLinear(channels * 16, hidden)
        self.dense1 = EqualizedLinear(hidden, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 4, 4) -> (B,)."""
        x = _lrelu(self.conv(self.mbstd(x)))  # (B, C, 4, 4)
        x = _lrelu(self.dense0(x.flatten(1)))  # (B, hidden)
        return self.dense1(x).squeeze(1)  # (B,)


@register(
    "pggan-discriminator",
    family="pggan",
    role="discriminator",
    task="sample",
    config=PGGANDiscriminatorConfig,
)
class PGGANDiscriminator(_Growing):
    """Progressive GAN discriminator: image (B, channels, R, R) -> logits (B,).

    `from_rgb[k]` and `blocks[k]` belong to stage k (`blocks[0]` is the final 4x4 block). With
    0 <= alpha < 1 at stage k > 0, stage k-1's features are
    lerp(from_rgb[k-1](avgpool(x)), blocks[k](from_rgb[k](x)), alpha).
    """

    def __init__(self, config: PGGANDiscriminatorConfig) -> None:
        super().__init__(config.num_stages)
        self.config = config
        nf = config.nf
        # The reference's Dense0 has nf(level 0) = min(fmap_base, fmap_max) outputs.
        hidden = feature_maps(0, config.fmap_base, config.fmap_max)
        self.from_rgb = nn.ModuleList(
            EqualizedConv2d(config.channels, nf(k), 1) for k in range(config.num_stages)
        )
        self.blocks = nn.ModuleList(
            [_DiscriminatorOutputBlock(nf(0), hidden, config.mbstd_group_size)]
            + [_DiscriminatorBlock(nf(k), nf(k - 1)) for k in range(1, config.num_stages)]
        )

    def forward(
        self, x: torch.Tensor, stage: int | None = None, alpha: float | None = None
    ) -> torch.Tensor:
        """(B, channels, R, R) -> (B,) logits, R = 4 * 2**stage; None uses `set_stage`'s."""
        stage, alpha = self._resolve(stage, alpha)
        size = 4 * 2**stage
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.config.channels, size, size):
            raise ValueError(
                f"stage {stage} expects images of shape (B, {self.config.channels}, {size}, "
                f"{size}), got {tuple(x.shape)}"
            )
        h = _lrelu(self.from_rgb[stage](x))  # (B, nf(stage), R, R)
        if stage > 0:
            h = self.blocks[stage](h)  # (B, nf(stage-1), R/2, R/2)
            if alpha < 1.0:
                old = downsample2x(x)  # (B, channels, R/2, R/2)
                old = _lrelu(self.from_rgb[stage - 1](old))  # (B, nf(stage-1), R/2, R/2)
                h = torch.lerp(old, h, alpha)
        for k in range(stage - 1, 0, -1):
            h = self.blocks[k](h)  # (B, nf(k-1), 2**(k+1), 2**(k+1))
        return self.blocks[0](h)  # (B,)
