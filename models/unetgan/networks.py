"""U-Net GAN networks: BigGAN's generator and the U-Net discriminator D^U.

Schonfeld, Schiele, Khoreva, "A U-Net Based Discriminator for Generative Adversarial Networks",
CVPR 2020. Layer for layer as the authors' reference code (boschresearch/unetgan, `BigGAN.py`,
built on ajbrock/BigGAN-PyTorch) run without attention, as in all of its training scripts:

- generator: BigGAN's G. A linear map of z to a 4x4 grid, residual up-blocks with conditional
  batch norm fed the same vector at every block (no hierarchical split of z), then
  BN-ReLU-conv3x3-tanh. Unconditional (the reference's FFHQ and CelebA runs): self-modulated
  BN, the gains and biases are MLPs of z. Class-conditional: they are bias-free linear maps of
  [z, shared_embedding(y)], BigGAN's shared class embedding joined by z.
- discriminator: BigGAN's D as the encoder down to a 4x4 bottleneck, which gives the global
  real/fake logit (ReLU, sum pooling, linear, plus class projection). A decoder of residual
  up-blocks mirrors it back to HxW; each decoder block after the first sees its predecessor's
  output concatenated with the encoder features of the same resolution. A 1x1 conv (not
  spectral-normalised, as in the reference) and a per-pixel class projection give the
  1xHxW logit map.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from models.registry import register
from models.unetgan.biggan_layers import BN_EPS, BN_MOMENTUM, DBlock, GBlock, UpBlock, conv2d
from models.unetgan.biggan_layers import embedding as make_embedding
from models.unetgan.biggan_layers import linear as make_linear

BOTTOM = 4  # spatial size of G's first grid and of D's bottleneck
# BigGAN's G_arch: block i maps G_WIDTHS[i] * width -> G_WIDTHS[i + 1] * width channels.
G_WIDTHS = {
    32: (4, 4, 4, 4),
    64: (16, 16, 8, 4, 2),
    128: (16, 16, 8, 4, 2, 1),
    256: (16, 16, 8, 8, 4, 2, 1),
}
# The U-Net D's encoder block outputs (times width); each block halves the resolution.
D_WIDTHS = {
    32: (4, 4, 4),
    64: (1, 2, 4, 8),
    128: (1, 2, 4, 8, 16),
    256: (1, 2, 4, 8, 8, 16),
}
IMAGE_SIZES = tuple(G_WIDTHS)


def _check_config(image_size: int, channels: int, num_classes: int, width: int) -> None:
    if image_size not in IMAGE_SIZES:
        allowed = ", ".join(map(str, IMAGE_SIZES))
        raise ValueError(f"image_size must be one of {allowed}, not {image_size}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), not {channels}")
    if num_classes < 0:
        raise ValueError(f"num_classes must be 0 (unconditional) or positive, not {num_classes}")
    if width < 1:
        raise ValueError(f"width must be positive, not {width}")


def _check_labels(y: torch.Tensor | None, num_classes: int, batch: int, who: str) -> None:
    if num_classes and y is None:
        raise ValueError(
            f"this {who} is class-conditional ({num_classes} classes): "
            f"pass y, a ({batch},) tensor of class indices"
        )
    if not num_classes and y is not None:
        raise ValueError(f"this {who} is unconditional: y must be None")
    if y is not None and y.shape != (batch,):
        raise ValueError(f"y must have shape ({batch},), got {tuple(y.shape)}")


@dataclass(frozen=True)
class UNetGANGeneratorConfig:
    """BigGAN generator; the defaults are the paper's 128x128 setting (ch 64, dim_z 128)."""

    image_size: int = 128
    channels: int = 3
    num_classes: int = 0
    latent_dim: int = 128
    width: int = 64
    shared_dim: int = 128
    # BigGAN initialises the shared class embedding orthogonally (unit-norm rows, about 1/sqrt(Z)
    # of z's norm); "normal" draws N(0, 1) entries, so the class starts as loud as z in every
    # conditional batch norm and a short run learns it (the digits demo).
    shared_init: str = "ortho"

    def __post_init__(self) -> None:
        _check_config(self.image_size, self.channels, self.num_classes, self.width)
        if self.latent_dim < 1 or self.shared_dim < 1:
            raise ValueError("latent_dim and shared_dim must be positive")
        if self.shared_init not in ("ortho", "normal"):
            raise ValueError(f"shared_init must be 'ortho' or 'normal', not {self.shared_init!r}")


@register(
    "unetgan-generator",
    family="unetgan",
    role="generator",
    task="sample",
    config=UNetGANGeneratorConfig,
)
class UNetGANGenerator(nn.Module):
    """BigGAN G: z (B, latent_dim), y (B,) or None -> (B, channels, S, S) in [-1, 1]."""

    def __init__(self, config: UNetGANGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        widths = [m * config.width for m in G_WIDTHS[config.image_size]]
        conditional = config.num_classes > 0
        cond_dim = config.latent_dim + (config.shared_dim if conditional else 0)
        self.shared = (
            make_embedding(config.num_classes, config.shared_dim, sn=False) if conditional else None
        )
        if self.shared is not None and config.shared_init == "normal":
            nn.init.normal_(self.shared.weight)
        self.linear = make_linear(config.latent_dim, widths[0] * BOTTOM * BOTTOM)
        self.blocks = nn.ModuleList(
            GBlock(c_in, c_out, cond_dim, self_modulation=not conditional)
            for c_in, c_out in pairwise(widths)
        )
        self.out_bn = nn.BatchNorm2d(widths[-1], eps=BN_EPS, momentum=BN_MOMENTUM)
        self.out_conv = conv2d(widths[-1], config.channels)

    def condition(
        self,
        z: torch.Tensor,
        y: torch.Tensor | None,
        class_embedding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The vector every block's batch norm is modulated by: z, or [z, shared(y)], or
        [z, class_embedding] when a class embedding (B, shared_dim) is given instead of y."""
        if self.shared is None:
            return z  # (B, latent_dim)
        if class_embedding is None:
            class_embedding = self.shared(y)  # (B, shared_dim)
        return torch.cat([z, class_embedding], dim=1)  # (B, latent_dim + shared_dim)

    def forward(
        self,
        z: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        class_embedding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images (B, channels, S, S) from z (B, latent_dim) and either the class indices y (B,)
        or, for class-conditional generators, the class embeddings (B, shared_dim) that take
        the place of `shared(y)` (e.g. points between two classes' rows of `shared.weight`)."""
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"z must be (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        if class_embedding is None:
            _check_labels(y, self.config.num_classes, z.shape[0], "generator")
        else:
            class_embedding = self._checked_embedding(class_embedding, y, z.shape[0])
        c = self.condition(z, y, class_embedding)
        h = self.linear(z).view(z.shape[0], -1, BOTTOM, BOTTOM)  # (B, 16w, 4, 4)
        for block in self.blocks:
            h = block(h, c)  # (B, C', 2H, 2W)
        h = self.out_conv(F.relu(self.out_bn(h)))  # (B, channels, S, S)
        return torch.tanh(h)

    def _checked_embedding(
        self, class_embedding: torch.Tensor, y: torch.Tensor | None, batch: int
    ) -> torch.Tensor:
        """A given class embedding (B, shared_dim), in the shared table's dtype."""
        if self.shared is None:
            raise ValueError("this generator is unconditional: it takes no class embedding")
        if y is not None:
            raise ValueError("pass either y or class_embedding, not both")
        expected = (batch, self.config.shared_dim)
        if tuple(class_embedding.shape) != expected:
            raise ValueError(
                f"class_embedding must have shape {expected}, got {tuple(class_embedding.shape)}"
            )
        if not class_embedding.is_floating_point():
            raise ValueError(f"class_embedding must be a float tensor, not {class_embedding.dtype}")
        return class_embedding.to(self.shared.weight.dtype)


@dataclass(frozen=True)
class UNetGANDiscriminatorConfig:
    """U-Net discriminator D^U; the defaults are the paper's 128x128 setting (ch 64)."""

    image_size: int = 128
    channels: int = 3
    num_classes: int = 0
    width: int = 64

    def __post_init__(self) -> None:
        _check_config(self.image_size, self.channels, self.num_classes, self.width)


@register(
    "unetgan-discriminator",
    family="unetgan",
    role="discriminator",
    task="sample",
    config=UNetGANDiscriminatorConfig,
)
class UNetGANDiscriminator(nn.Module):
    """D^U: x (B, channels, S, S), y (B,) or None -> logits, global (B,) and pixel (B, 1, S, S)."""

    def __init__(self, config: UNetGANDiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        enc = [m * config.width for m in D_WIDTHS[config.image_size]]
        self.encoder = nn.ModuleList(
            DBlock(c_in, c_out, preactivation=i > 0)
            for i, (c_in, c_out) in enumerate(zip([config.channels, *enc[:-1]], enc, strict=True))
        )
        # Decoder outputs mirror the encoder: enc[-2], ..., enc[0], then enc[0] again at SxS;
        # every block but the first also takes the same-resolution encoder features.
        dec_out = [*enc[-2::-1], enc[0]]
        dec_in = [enc[-1], *(2 * c for c in dec_out[:-1])]
        self.decoder = nn.ModuleList(
            UpBlock(c_in, c_out) for c_in, c_out in zip(dec_in, dec_out, strict=True)
        )
        self.linear = make_linear(enc[-1], 1)
        self.pixel = conv2d(dec_out[-1], 1, kernel_size=1, sn=False)
        conditional = config.num_classes > 0
        self.embed = make_embedding(config.num_classes, enc[-1]) if conditional else None
        self.embed_pixel = make_embedding(config.num_classes, dec_out[-1]) if conditional else None

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features per resolution, (B, C1, S/2, S/2) down to (B, C, 4, 4) at the bottom."""
        features: list[torch.Tensor] = []
        h = x
        for block in self.encoder:
            h = block(h)  # (B, C', H/2, W/2)
            features.append(h)
        return features

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Encoder features -> the decoder's output (B, C, S, S), fed the same-resolution skips."""
        h = self.decoder[0](features[-1])  # (B, C', 8, 8)
        for block, skip in zip(self.decoder[1:], features[-2::-1], strict=True):
            h = block(torch.cat([h, skip], dim=1))  # (B, 2C', H, W) -> (B, C'', 2H, 2W)
        return h

    def global_logits(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Bottleneck (B, C, 4, 4) -> (B,): ReLU, sum pooling, linear (+ class projection)."""
        pooled = F.relu(h).sum(dim=(2, 3))  # (B, C)
        out = self.linear(pooled).squeeze(1)  # (B,)
        if self.embed is not None:
            out = out + (self.embed(y) * pooled).sum(dim=1)  # (B,)
        return out

    def class_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Bottleneck (B, C, 4, 4) -> (B, num_classes): the global logit under every class.

        Column k equals `global_logits(h, y=k)`; one encoder pass serves every class (the
        projection is linear in the class embedding).
        """
        if self.embed is None:
            raise ValueError("this discriminator is unconditional: it has no class logits")
        pooled = F.relu(h).sum(dim=(2, 3))  # (B, C)
        table = self.embed.weight  # (K, C), spectrally normalised
        return self.linear(pooled) + pooled @ table.T  # (B, 1) + (B, K) -> (B, K)

    def pixel_logits(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Decoder output (B, C, S, S) -> (B, 1, S, S): 1x1 conv (+ per-pixel class projection)."""
        out = self.pixel(h)  # (B, 1, S, S)
        if self.embed_pixel is not None:
            emb = self.embed_pixel(y)[:, :, None, None]  # (B, C, 1, 1)
            out = out + (emb * h).sum(dim=1, keepdim=True)  # (B, 1, S, S)
        return out

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        expected = (cfg.channels, cfg.image_size, cfg.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"x must be (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
            )
        _check_labels(y, cfg.num_classes, x.shape[0], "discriminator")
        features = self.encode(x)
        global_out = self.global_logits(features[-1], y)  # bottleneck (B, C, 4, 4) -> (B,)
        return global_out, self.pixel_logits(self.decode(features), y)
