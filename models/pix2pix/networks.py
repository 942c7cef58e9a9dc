"""pix2pix networks: the U-Net generator and the PatchGAN discriminator.

Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial Networks",
CVPR 2017. Layer sizes follow the paper's appendix 6.1.1 and the authors' PyTorch reference
(junyanz/pytorch-CycleGAN-and-pix2pix, `unet_256` / `basic` D):

- generator encoder C64-C128-C256-C512-C512-C512-C512-C512 (no norm on C64, LeakyReLU 0.2),
  decoder CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128 counting the concatenated skips
  (ReLU, dropout 0.5 in the first three decoder blocks as the paper says), final conv + tanh;
  all convolutions 4x4 with stride 2. With batch norm, convolutions followed by a norm carry no
  bias, as in the reference; the first convolution keeps its bias (the reference drops it too:
  64 parameters, 54,414,019 here vs the reference's 54,413,955 for unet_256; an imported
  reference checkpoint gets a zero bias there, `models.pix2pix.reference`).
- discriminator: PatchGAN on concat(input, output); C64-C128-C256-C512 then a 1-channel conv
  (70x70 receptive field, 2.769 M parameters, 30x30 logits on a 256x256 pair); 1x1 ("pixel"),
  16x16 and 286x286 variants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from models.registry import register

Norm = Literal["batch", "instance"]
PATCH_LAYERS = {16: 1, 70: 3, 286: 5}  # receptive field -> strided conv layers (reference n_layers)


def _norm_layer(norm: Norm, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    # The reference's instance norm has no affine parameters and no running statistics.
    return nn.InstanceNorm2d(channels)


def _check_norm(norm: str) -> None:
    if norm not in ("batch", "instance"):
        raise ValueError(f"norm must be 'batch' or 'instance', not {norm!r}")


@dataclass(frozen=True)
class Pix2PixGeneratorConfig:
    """U-Net generator; the defaults are the paper's unet_256."""

    image_size: int = 256
    in_channels: int = 3
    out_channels: int = 3
    base_width: int = 64
    norm: Norm = "batch"
    dropout: float = 0.5
    dropout_blocks: int = 3
    dropout_skip: int = 0  # decoder blocks next to the bottleneck without dropout (reference: 1)

    def __post_init__(self) -> None:
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise ValueError(
                f"image_size must be a power of two (256 for unet_256, 128 for unet_128), "
                f"not {self.image_size}"
            )
        _check_norm(self.norm)

    @property
    def downsamplings(self) -> int:
        """Encoder depth: log2(image_size), down to a 1x1 bottleneck (8 for 256, 7 for 128)."""
        return int(math.log2(self.image_size))

    @property
    def channels(self) -> int:
        """Channels of the generated image."""
        return self.out_channels

    @property
    def num_classes(self) -> int:
        """pix2pix is conditioned on an image, not on a class."""
        return 0


class UNetBlock(nn.Module):
    """One encoder level and its mirrored decoder level with the skip connection around `inner`.

    x: (B, outer, H, W) -> (B, 2*outer, H, W) (input concatenated with the decoded features),
    except the outermost level, which returns (B, out_channels, H, W).
    """

    def __init__(
        self,
        outer: int,
        inner: int,
        *,
        inner_block: UNetBlock | None,
        norm: Norm,
        dropout: float,
        outermost_out: int | None = None,
    ) -> None:
        super().__init__()
        outermost = outermost_out is not None
        innermost = inner_block is None
        bias = norm == "instance"  # a conv followed by batch norm needs no bias
        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2)]
        down.append(nn.Conv2d(outer, inner, 4, stride=2, padding=1, bias=bias or outermost))
        if not (outermost or innermost):
            down.append(_norm_layer(norm, inner))
        up_in = inner if innermost else inner * 2  # decoder input carries the skip from below
        up_out = outermost_out if outermost else outer
        up: list[nn.Module] = [
            nn.ReLU(),
            nn.ConvTranspose2d(up_in, up_out, 4, stride=2, padding=1, bias=bias or outermost),
        ]
        if outermost:
            up.append(nn.Tanh())
        else:
            up.append(_norm_layer(norm, up_out))
            if dropout > 0:
                up.append(nn.Dropout(dropout))
        self.outermost = outermost
        self.down = nn.Sequential(*down)
        self.inner = inner_block if inner_block is not None else nn.Identity()
        self.up = nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.inner(self.down(x)))  # (B, outer, H, W)
        return y if self.outermost else torch.cat([x, y], dim=1)


@register(
    "pix2pix-generator",
    family="pix2pix",
    role="generator",
    task="translate",
    config=Pix2PixGeneratorConfig,
)
class Pix2PixGenerator(nn.Module):
    """U-Net generator: (B, in_channels, S, S) in [-1, 1] -> (B, out_channels, S, S) in [-1, 1]."""

    def __init__(self, config: Pix2PixGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        w = config.base_width
        # Encoder widths per level, outermost first: 64, 128, 256, 512, 512, ... (capped at 8w).
        widths = [w * min(2**i, 8) for i in range(config.downsamplings)]
        # Decoder blocks counted from the bottleneck: after the first `dropout_skip` (0 in the
        # paper, 1 in the reference code), the next `dropout_blocks` get dropout.
        block: UNetBlock | None = None
        for level in range(config.downsamplings - 1, 0, -1):
            from_bottleneck = config.downsamplings - 1 - level
            dropped = 0 <= from_bottleneck - config.dropout_skip < config.dropout_blocks
            p = config.dropout if dropped else 0.0
            block = UNetBlock(
                widths[level - 1], widths[level], inner_block=block, norm=config.norm, dropout=p
            )
        self.model = UNetBlock(
            config.in_channels,
            widths[0],
            inner_block=block,
            norm=config.norm,
            dropout=0.0,
            outermost_out=config.out_channels,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size
        if x.shape[-2:] != (size, size):
            raise ValueError(f"expected {size}x{size} input, got {tuple(x.shape[-2:])}")
        return self.model(x)


@dataclass(frozen=True)
class Pix2PixDiscriminatorConfig:
    """PatchGAN; `patch` is the receptive field: 1, 16, 70 (paper default) or 286."""

    in_channels: int = 3
    out_channels: int = 3
    base_width: int = 64
    patch: int = 70
    norm: Norm = "batch"

    def __post_init__(self) -> None:
        if self.patch != 1 and self.patch not in PATCH_LAYERS:
            raise ValueError(f"patch must be one of 1, 16, 70, 286, not {self.patch}")
        _check_norm(self.norm)


@register(
    "pix2pix-discriminator",
    family="pix2pix",
    role="discriminator",
    task="translate",
    config=Pix2PixDiscriminatorConfig,
)
class PatchDiscriminator(nn.Module):
    """PatchGAN: (input (B, Ci, H, W), output (B, Co, H, W)) -> patch logits (B, 1, h, w)."""

    def __init__(self, config: Pix2PixDiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        c_in = config.in_channels + config.out_channels
        w = config.base_width
        bias = config.norm == "instance"
        if config.patch == 1:
            layers: list[nn.Module] = [
                nn.Conv2d(c_in, w, 1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(w, 2 * w, 1, bias=bias),
                _norm_layer(config.norm, 2 * w),
                nn.LeakyReLU(0.2),
                nn.Conv2d(2 * w, 1, 1, bias=bias),
            ]
        else:
            n_layers = PATCH_LAYERS[config.patch]
            layers = [nn.Conv2d(c_in, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            width = w
            for n in range(1, n_layers + 1):
                stride = 2 if n < n_layers else 1  # the last C-layer keeps the resolution
                nxt = w * min(2**n, 8)
                layers += [
                    nn.Conv2d(width, nxt, 4, stride=stride, padding=1, bias=bias),
                    _norm_layer(config.norm, nxt),
                    nn.LeakyReLU(0.2),
                ]
                width = nxt
            layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat([condition, image], dim=1))  # (B, 1, h, w) logits
