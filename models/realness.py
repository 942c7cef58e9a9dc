"""Realness maps: where a trained discriminator thinks an image looks real or fake.

Two of the three families' discriminators score images locally:

- U-Net GAN's D^U (Schonfeld, Schiele, Khoreva, "A U-Net Based Discriminator for Generative
  Adversarial Networks", CVPR 2020): its decoder gives a per-pixel real/fake logit map, trained
  by the per-pixel GAN loss and by CutMix consistency regularisation to mark exactly the pasted
  fake pixels of a mixed image; its encoder gives a global logit for the whole image.
- pix2pix's PatchGAN (Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional
  Adversarial Networks", CVPR 2017): a grid of logits, each judging one receptive-field patch
  (70x70 by default) of the pair (input A, output B).

`realness` turns either into a map in [0, 1] at the image's size, 1 = looks real: the sigmoid of
the per-pixel logits, or of the patch logits upsampled bilinearly (patch centres sit on the grid,
so the map is smooth between them). The sigmoid is D's probability "real" for the paper losses
(non-saturating / vanilla GAN); for the hinge loss (U-Net GAN without CutMix) it is a monotone
score, not a calibrated probability. A pix2pix D trained with the least-squares loss regresses
to 1 (real) and 0 (fake): pass `least_squares=True` to read its outputs clipped to [0, 1]. The
PatchGAN runs as pix2pix runs at test time: each image normalised by its own statistics
(`models.pix2pix.translation`, batch norm's computation at batch 1; its running averages untouched).
`realness_batch` judges many images in one forward pass; each image's map equals its map alone
(`models.batch_invariance`). Progressive GAN's critic (Karras et al., ICLR 2018) gives one unbounded
WGAN score per image and no map: it raises `NoRealnessMap`. Each family computes its map in its
hooks (`models.family`: `models/pix2pix/hooks.py`, `models/unetgan/hooks.py`); this module
checks what is common and holds the result's type.

`least_real_box` finds the bounding box of a map's least real region (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from models.family import Unsupported, hooks_of


class NoRealnessMap(ValueError):
    """The discriminator scores whole images only (Progressive GAN's critic): there is no map."""


class ConditionRequired(ValueError):
    """A conditional (pix2pix) discriminator was asked about an image without its input A."""


@dataclass(frozen=True)
class Realness:
    """What a discriminator says of one image.

    `map`: (H, W) float32 on the CPU in [0, 1], 1 = looks real. `global_score`: the probability
    "real" of the whole image from U-Net D's encoder (None for pix2pix's PatchGAN, which has no
    global head). `class_label`: the class the U-Net D judged the image as (class-conditional
    models), else None.
    """

    map: torch.Tensor
    global_score: float | None
    class_label: int | None = None


def check_image(name: str, image: torch.Tensor, channels: int, size: int | None) -> None:
    """Raise ValueError unless `image` is a float (B, channels, size, size) batch (any H, W
    when `size` is None); `name` names it in the message."""
    spatial = f"{size}, {size}" if size is not None else "H, W"
    if (
        image.ndim != 4
        or image.shape[1] != channels
        or (size is not None and tuple(image.shape[2:]) != (size, size))
    ):
        raise ValueError(f"{name} must be (B, {channels}, {spatial}), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [-1, 1], not {image.dtype}")


def device_of(module: nn.Module) -> torch.device:
    """The device a network's parameters lie on."""
    return next(module.parameters()).device


def check_class_label(discriminator: nn.Module, class_label: int | None) -> None:
    """Raise ValueError unless `class_label` fits the discriminator (None always does)."""
    hooks_of(discriminator, "discriminator").check_class_label(discriminator, class_label)


def realness(
    discriminator: nn.Module,
    image: torch.Tensor,
    condition: torch.Tensor | None = None,
    class_label: int | None = None,
    *,
    least_squares: bool = False,
) -> Realness:
    """The realness map of one `image` (1, C, H, W) in [-1, 1] (see `realness_batch`)."""
    if image.shape[0] != 1:
        raise ValueError(f"image must be one image (1, C, H, W), got {tuple(image.shape)}")
    return realness_batch(
        discriminator, image, condition, [class_label], least_squares=least_squares
    )[0]


@torch.no_grad()
def realness_batch(
    discriminator: nn.Module,
    images: torch.Tensor,
    conditions: torch.Tensor | None,
    class_labels: list[int | None],
    *,
    least_squares: bool = False,
) -> list[Realness]:
    """The realness maps of `images` (B, C, H, W) in [-1, 1] by a trained discriminator, one
    per image, each equal to that image's map judged alone.

    U-Net D: `images` at the model's training size; `class_labels` one per image for
    class-conditional models (None: the class whose projection gives the highest global logit,
    i.e. the class under which D finds the image most real, reported in the result). PatchGAN:
    `conditions` are the input A images (B, C_A, H, W) that `images` (the B images) translate;
    `least_squares` for a D trained with the LSGAN loss. Progressive GAN: `NoRealnessMap`. The
    discriminator's train/eval mode, spectral-norm vectors and batch-norm running averages are
    left as they were.
    """
    if len(class_labels) != images.shape[0]:
        raise ValueError(f"one class label per image: {len(class_labels)} for {images.shape[0]}")
    try:
        hooks = hooks_of(discriminator, "discriminator")
    except Unsupported as error:
        raise NoRealnessMap(f"{error}: it gives no realness map") from None
    return hooks.realness(
        discriminator, images, conditions, class_labels, least_squares=least_squares
    )


def least_real_box(
    map: np.ndarray,  # (H, W) realness in [0, 1]
    *,
    level: float = 0.5,
    sigma: float = 0.02,
) -> tuple[int, int, int, int]:
    """The bounding box (x0, y0, x1, y1) of the least real region of a map; x1, y1 exclusive.

    The map (H, W) is first smoothed with a Gaussian of `sigma` times its longer side (at least
    one pixel), so single noisy pixels do not make a region. The least real region is then the
    connected component (8-neighbourhood) of {smoothed <= min + level * (mean - min)} that holds
    the smoothed map's minimum: the pixels markedly less real than the image on average, joined
    to the least real one. A uniform map has no such region apart from all of it: its box is the
    whole map.
    """
    values = np.asarray(map, dtype=np.float64)  # (H, W)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"the map must be a non-empty (H, W) array, got shape {values.shape}")
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"level must lie in [0, 1], not {level}")
    smoothed = ndimage.gaussian_filter(values, sigma=max(1.0, sigma * max(values.shape)))
    low, mean = float(smoothed.min()), float(smoothed.mean())
    region = smoothed <= low + level * (mean - low)  # (H, W) bool, holds the minimum
    labels, _ = ndimage.label(region, structure=np.ones((3, 3), dtype=bool))
    y, x = np.unravel_index(int(np.argmin(smoothed)), smoothed.shape)
    component = (labels == labels[y, x]).astype(np.int32)  # (H, W), 1 on the region
    rows, columns = ndimage.find_objects(component)[0]
    return int(columns.start), int(rows.start), int(columns.stop), int(rows.stop)
