"""Test-only stand-ins for the pix2pix reference implementation's networks.

junyanz/pytorch-CycleGAN-and-pix2pix, `models/networks.py`: `UnetGenerator`,
`UnetSkipConnectionBlock`, `NLayerDiscriminator`, `PixelDiscriminator`. Written here from the
documented structure so that `state_dict()` has the reference's exact keys and shapes and the
forward pass computes the same function; the tests save these as `latest_net_G.pth` /
`latest_net_D.pth` the way the reference does (`torch.save(net.state_dict(), path)`).

Structure facts this reproduces (the ones a converter depends on):

- a convolution followed by a norm has a bias only with instance norm (`use_bias`), and that
  includes the outermost down-convolution, which has *no* norm after it: with batch norm the
  reference's first conv has no bias;
- the outermost up-convolution and the innermost block's up-convolution use the default
  bias=True / `use_bias` respectively;
- instance norm is `InstanceNorm2d(affine=False, track_running_stats=False)` (current master; an
  older version tracked running statistics, which is why old files carry them);
- dropout (0.5) sits after `upnorm` in the `num_downs - 5` intermediate 8*ngf blocks just outside
  the innermost block; the innermost block itself never gets dropout.
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class UnetSkipConnectionBlock(nn.Module):
    """Keys: `model.<i>` for the layers of one Sequential, the submodule at its own index."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        *,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        use_dropout: bool = False,
        dropout_p: float = 0.5,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        use_bias = norm == "instance"
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            layers = [downconv, submodule, nn.ReLU(True), upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            layers = [
                nn.LeakyReLU(0.2, True),
                downconv,
                nn.ReLU(True),
                upconv,
                _norm(norm, outer_nc),
            ]
        else:
            upconv = nn.ConvTranspose2d(
                inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=use_bias
            )
            layers = [
                nn.LeakyReLU(0.2, True),
                downconv,
                _norm(norm, inner_nc),
                submodule,
                nn.ReLU(True),
                upconv,
                _norm(norm, outer_nc),
            ]
            if use_dropout:
                layers.append(nn.Dropout(dropout_p))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """`unet_256` is num_downs=8, `unet_128` is num_downs=7."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        num_downs: int,
        ngf: int = 64,
        *,
        norm: str = "batch",
        use_dropout: bool = False,
        dropout_p: float = 0.5,
    ) -> None:
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(
                ngf * 8,
                ngf * 8,
                submodule=block,
                norm=norm,
                use_dropout=use_dropout,
                dropout_p=dropout_p,
            )
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """PatchGAN on the concatenated (input, output) pair: `model.<i>` of one Sequential."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, *, norm: str = "batch"):
        super().__init__()
        use_bias = norm == "instance"
        seq: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            seq += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=use_bias),
                _norm(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        seq.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: `net.<i>` of one Sequential."""

    def __init__(self, input_nc: int, ndf: int = 64, *, norm: str = "batch") -> None:
        super().__init__()
        use_bias = norm == "instance"
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=use_bias),
            _norm(norm, ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=use_bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def randomize_batch_norm_stats(net: nn.Module, generator: torch.Generator) -> None:
    """Give every BatchNorm non-trivial affine parameters and running statistics, so that a
    conversion which drops or misplaces one changes the eval-mode output."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(1.0 + 0.2 * torch.randn(c, generator=generator))
                m.bias.copy_(0.1 * torch.randn(c, generator=generator))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(c, generator=generator))
                m.num_batches_tracked.fill_(1234)
