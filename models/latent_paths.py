"""Paths through a sampling generator's inputs: the frames of a latent interpolation.

- `interpolate`: latents from z0 to z1. "slerp" walks the great circle between them (White,
  "Sampling Generative Networks", 2016): the norm of a Gaussian latent concentrates near
  sqrt(Z), and a straight line cuts through the low-norm interior a generator rarely saw in
  training, where its images fade; the arc stays near the shell. It is the path of Progressive
  GAN's latent interpolation videos (Karras, Aila, Laine, Lehtinen, ICLR 2018), and the default.
  "linear" is the straight line. As White's code, the angle is taken between the normalised
  vectors and the weights sin((1 - t) w) / sin w and sin(t w) / sin w are applied to the vectors
  themselves, so two latents of different norms meet smoothly. Where the arc is not defined
  (a zero vector, parallel vectors: sin w ~ 0; antiparallel vectors: every great circle joins
  them) the path is linear.
- `class_embeddings`: for a class-conditional U-Net GAN generator (BigGAN's G, Brock, Donahue,
  Simonyan, ICLR 2019, whose class interpolations blend the shared class embeddings), points on
  the straight line between two rows of `shared.weight`, to pass as `class_embedding` to the
  generator (`UNetGANGenerator.forward`, `models.sampling.generate`).

Frames are float32 on the CPU; frame 0 is the start and the last frame the end, bit for bit, so
the ends of a walk are exactly the images their own latents (or labels) give.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from models.family import Unsupported, hooks_of

PATHS = ("slerp", "linear")
MIN_SIN_ANGLE = 1e-6  # below this, sin(angle) makes the arc ill-defined: linear instead


def _check_frames(frames: int) -> None:
    if isinstance(frames, bool) or not isinstance(frames, numbers.Integral) or frames < 2:
        raise ValueError(f"frames must be an integer of at least 2 (start and end), not {frames!r}")


def _check_latent(name: str, z: torch.Tensor) -> None:
    if not isinstance(z, torch.Tensor) or z.ndim != 1 or z.numel() == 0:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"{name} must be one latent vector (Z,), got {shape}")
    if not z.is_floating_point():
        raise ValueError(f"{name} must be a float tensor, not {z.dtype}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError(f"{name} must hold finite numbers only")


def _weights(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, path: str) -> torch.Tensor:
    """The weights (F, 2) of z0 and z1 at the times t (F,), in float64."""
    linear = torch.stack([1 - t, t], dim=1)  # (F, 2)
    if path == "linear":
        return linear
    norms = z0.norm() * z1.norm()
    if norms == 0:
        return linear
    cos = (torch.dot(z0, z1) / norms).clamp(-1.0, 1.0)
    angle = float(torch.arccos(cos))
    if math.sin(angle) < MIN_SIN_ANGLE:  # parallel or antiparallel
        return linear
    return torch.stack([torch.sin((1 - t) * angle), torch.sin(t * angle)], dim=1) / math.sin(angle)


def interpolate(
    z0: torch.Tensor, z1: torch.Tensor, frames: int, path: str = "slerp"
) -> torch.Tensor:
    """`frames` latents (F, Z) float32 from z0 (Z,) to z1 (Z,) along `path` ("slerp" or
    "linear"), evenly spaced in t; the first row is z0 and the last z1, bit for bit."""
    _check_latent("z0", z0)
    _check_latent("z1", z1)
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must have one length, got {z0.numel()} and {z1.numel()}")
    _check_frames(frames)
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(PATHS)}, not {path!r}")
    start = z0.detach().to("cpu", torch.float32)  # (Z,)
    end = z1.detach().to("cpu", torch.float32)  # (Z,)
    a, b = start.double(), end.double()
    t = torch.linspace(0.0, 1.0, frames, dtype=torch.float64)  # (F,)
    w = _weights(a, b, t, path)  # (F, 2)
    out = (w[:, :1] * a + w[:, 1:] * b).float()  # (F, Z)
    out[0], out[-1] = start, end
    return out


def class_embeddings(
    generator: nn.Module, start_label: int, end_label: int, frames: int
) -> torch.Tensor:
    """`frames` class embeddings (F, shared_dim) float32 on the CPU, linearly from the start
    class's row of the generator's shared embedding to the end class's; the first row is the
    start class's embedding and the last the end class's, bit for bit."""
    try:
        hooks = hooks_of(generator, "generator")
    except Unsupported as error:
        raise ValueError(f"class embeddings need a sampling generator: {error}") from None
    table = hooks.class_embedding_table(generator).detach()  # (K, E)
    num_classes = table.shape[0]
    for name, label in (("start_label", start_label), ("end_label", end_label)):
        if isinstance(label, bool) or not isinstance(label, numbers.Integral):
            raise ValueError(f"{name} must be a class index, not {label!r}")
        if not 0 <= label < num_classes:
            raise ValueError(f"{name} must lie in 0..{num_classes - 1}, not {label}")
    _check_frames(frames)
    table = table.to("cpu", torch.float32)
    start, end = table[int(start_label)], table[int(end_label)]  # (E,) each
    t = torch.linspace(0.0, 1.0, frames, dtype=torch.float64)[:, None]  # (F, 1)
    out = ((1 - t) * start.double() + t * end.double()).float()  # (F, E)
    out[0], out[-1] = start, end
    return out
