"""Progressive GAN's hooks (`models.family`): what its WGAN-GP critic and generator give.

Karras, Aila, Laine, Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation", ICLR 2018. The critic scores whole images with one unbounded number and draws no
realness map. Its minibatch standard deviation layer makes an image's score depend on its group
of `mbstd_group_size` batch-mates: for discriminator-guided sampling every image is judged in a
group with the same `group_mates`, mbstd_group_size - 1 fixed samples of the generator (seed
`MATES_SEED`, no truncation), as the critic judged groups of generated images in training, so
an image's score depends on it alone (see `models.discriminator_filter`). Its down-blocks'
outputs at the final stage are projection's feature maps; the generator exports as a sampler
graph at its stage and fade-in (`runtime_state`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.batch_invariance import pad_rows
from models.family import FamilyHooks, OnnxGraph, Scorer
from models.onnx_graphs import sampler_graph
from models.pggan.networks import LRELU_SLOPE, PGGANDiscriminator
from models.realness import device_of
from models.sampling import generate, sample_inputs

MATES_SEED = 0  # the critic's fixed batch-mates


@contextmanager
def _pre_hook(module: nn.Module, hook: Callable[..., Any]) -> Iterator[None]:
    handle = module.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _output_block_input(d: PGGANDiscriminator, images: torch.Tensor) -> torch.Tensor:
    """What the critic's 4x4 output block receives for `images`: (B, C, 4, 4)."""
    captured: list[torch.Tensor] = []

    def capture(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        captured.append(args[0])

    rows = images.shape[0]
    (padded,) = pad_rows(images.to(device_of(d)))  # (B', C, R, R)
    with _pre_hook(d.blocks[0], capture):
        d(padded)
    return captured[0][:rows]  # (B, C, 4, 4)


def _critic_scores(
    d: PGGANDiscriminator, images: torch.Tensor, mates: torch.Tensor | None
) -> torch.Tensor:
    """Critic scores (B,) float32 on the CPU, each image judged in a group with `mates`'
    output-block inputs (G - 1, C, 4, 4) (None: no minibatch standard deviation layer)."""
    rows = images.shape[0]
    (padded,) = pad_rows(images.to(device_of(d)))  # (B', C, R, R), B' a multiple of ROW_ALIGN
    if mates is None:
        return d(padded)[:rows].float().cpu()

    def group(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        h = args[0]  # (B', C, 4, 4)
        others = [m.to(h.dtype).expand_as(h) for m in mates]  # G - 1 of (B', C, 4, 4)
        # Row i's group is {i, i + B', i + 2B', ...} (`MinibatchStdDev`): image i and the mates.
        return (torch.cat([h, *others]),)  # (G * B', C, 4, 4)

    with _pre_hook(d.blocks[0], group):
        return d(padded)[:rows].float().cpu()  # (G * B',) -> (B,)


class PGGANHooks(FamilyHooks):
    """The critic's scores and features; the generator's ONNX graph."""

    def image_shape(self, network: nn.Module) -> tuple[int, int]:
        return network.config.channels, network.resolution

    def scorer(
        self,
        discriminator: nn.Module,
        *,
        pixel_weight: float,
        group_mates: torch.Tensor | None,
    ) -> Scorer:
        d = discriminator
        if pixel_weight:
            raise ValueError("pixel_weight needs a discriminator's per-pixel logit map")
        group = d.config.mbstd_group_size
        if group < 2:
            if group_mates is not None:
                raise ValueError(
                    "this discriminator judges each image alone: it takes no group_mates"
                )
            return lambda images, _labels: _critic_scores(d, images, None)
        if group_mates is None or group_mates.shape[0] != group - 1:
            raise ValueError(
                f"this critic judges images in groups of {group} (minibatch standard "
                f"deviation): pass {group - 1} group_mates (models.discriminator_filter."
                "group_mates)"
            )
        mates = _output_block_input(d, group_mates)  # (G - 1, C, 4, 4)
        return lambda images, _labels: _critic_scores(d, images, mates)

    def group_mates(self, generator: nn.Module, discriminator: nn.Module) -> torch.Tensor | None:
        group = discriminator.config.mbstd_group_size
        if group < 2:
            return None
        z, y = sample_inputs(generator.config, group - 1, MATES_SEED)
        return generate(generator, z, y)  # (G - 1, C, R, R)

    def features(self, discriminator: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
        """The down-block outputs at the final stage, (B, C', S/2, S/2) to 4x4."""
        d = discriminator
        h = F.leaky_relu(d.from_rgb[d.max_stage](images), LRELU_SLOPE)  # (B, nf, S, S)
        features = []
        for k in range(d.max_stage, 0, -1):
            h = d.blocks[k](h)  # (B, nf(k - 1), 2**(k + 1), 2**(k + 1))
            features.append(h)
        return features

    def onnx_graph(self, generator: nn.Module) -> OnnxGraph:
        return sampler_graph(generator)


HOOKS = PGGANHooks()
