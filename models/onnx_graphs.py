"""The traced form of a sampling generator for ONNX export, shared by the sampling families.

A sampling generator (U-Net GAN's BigGAN generator, Schonfeld et al., CVPR 2020; Progressive
GAN's, Karras et al., ICLR 2018; any family whose generator maps latents `z` (N, latent_dim)
and, when class-conditional, labels (N,) to images) is exported as it is called, followed by
the clamp to [-1, 1] that ganserve applies to what it serves. `models.onnx_export` writes the
graph; a family's `hooks.onnx_graph` returns `sampler_graph(generator)` or its own graph.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.family import OnnxGraph

BATCH = "N"  # the symbolic batch dimension of every graph's inputs and outputs
# torch.export specialises a dimension whose example size is 0 or 1, so examples use 2.
EXAMPLE_BATCH = 2


class _Sampler(nn.Module):
    """A sampling generator: z (N, Z) -> images (N, C, S, S) in [-1, 1], unconditional."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z).clamp(-1, 1)  # (N, C, S, S)


class _ConditionalSampler(_Sampler):
    """A class-conditional sampling generator: z (N, Z), class_label (N,) -> (N, C, S, S)."""

    def forward(self, z: torch.Tensor, class_label: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.generator(z, class_label).clamp(-1, 1)  # (N, C, S, S)


def sampler_graph(generator: nn.Module) -> OnnxGraph:
    """The graph of a sampling generator: inputs `z` (and `class_label`), output `images`; a
    generator with a runtime state (a growing one's stage) adds it to the description."""
    cfg = generator.config
    batch = torch.export.Dim(BATCH, min=1)
    z = torch.zeros(EXAMPLE_BATCH, cfg.latent_dim)  # (2, Z)
    extra: dict[str, Any] = {}
    if hasattr(generator, "runtime_state"):
        extra["runtime_state"] = generator.runtime_state()
    if cfg.num_classes > 0:
        label = torch.zeros(EXAMPLE_BATCH, dtype=torch.long)  # (2,)
        shapes = {"z": {0: batch}, "class_label": {0: batch}}
        return OnnxGraph(
            _ConditionalSampler(generator), (z, label), shapes, list(shapes), ["images"], extra
        )
    return OnnxGraph(_Sampler(generator), (z,), {"z": {0: batch}}, ["z"], ["images"], extra)
