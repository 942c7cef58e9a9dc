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
(`models.test_time`, batch norm's computation at batch 1; its running averages untouched).
`realness_batch` judges many images in one forward pass; each image's map equals its map alone
(`models.batch_invariance`). Progressive GAN's critic (Karras et al., ICLR 2018) gives one unbounded
WGAN score per image and no map: it raises `NoRealnessMap`.

`least_real_box` finds the bounding box of a map's least real region (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from core.families import INSPECTABLE_FAMILIES
from models.batch_invariance import pad_rows
from models.pix2pix import PatchDiscriminator
from models.test_time import TestTimeRun, per_sample_sequential
from models.unetgan import UNetGANDiscriminator

MAP_FAMILIES = INSPECTABLE_FAMILIES  # families whose discriminators give a map


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


def _check_image(name: str, image: torch.Tensor, channels: int, size: int | None) -> None:
    spatial = f"{size}, {size}" if size is not None else "H, W"
    if (
        image.ndim != 4
        or image.shape[1] != channels
        or (size is not None and tuple(image.shape[2:]) != (size, size))
    ):
        raise ValueError(f"{name} must be (B, {channels}, {spatial}), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [-1, 1], not {image.dtype}")


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def check_class_label(discriminator: nn.Module, class_label: int | None) -> None:
    """Raise ValueError unless `class_label` fits the discriminator (None always does)."""
    if isinstance(discriminator, PatchDiscriminator):
        if class_label is not None:
            raise ValueError("a pix2pix discriminator takes no class label")
        return
    if isinstance(discriminator, UNetGANDiscriminator):
        _check_class(discriminator, class_label)


def _check_class(d: UNetGANDiscriminator, class_label: int | None) -> None:
    num_classes = d.config.num_classes
    if not num_classes and class_label is not None:
        raise ValueError("this discriminator is unconditional: it takes no class label")
    if num_classes and class_label is not None and not 0 <= class_label < num_classes:
        raise ValueError(f"class_label must lie in 0..{num_classes - 1}, not {class_label}")


def _choose_classes(
    d: UNetGANDiscriminator, bottleneck: torch.Tensor, class_labels: list[int | None]
) -> list[int | None]:
    """The class to judge each image as: the given one, else the one under which D finds it most
    real (from the encoder's bottleneck (B, C, 4, 4))."""
    if not d.config.num_classes:
        return [None] * len(class_labels)
    likeliest = d.class_logits(bottleneck).argmax(dim=1).tolist()  # (B, K) -> (B,)
    return [
        label if label is not None else int(best)
        for label, best in zip(class_labels, likeliest, strict=True)
    ]


def _unet_realness(
    d: UNetGANDiscriminator, images: torch.Tensor, class_labels: list[int | None]
) -> list[Realness]:
    rows = images.shape[0]
    (padded,) = pad_rows(images.to(_device(d)))  # (B', C, S, S), B' a multiple of ROW_ALIGN
    features = d.encode(padded)  # per resolution, down to (B', C, 4, 4)
    labels = _choose_classes(
        d, features[-1], class_labels + [class_labels[0]] * (len(padded) - rows)
    )
    y = None if labels[0] is None else torch.tensor(labels, device=features[-1].device)  # (B',)
    global_logits = d.global_logits(features[-1], y)  # (B',)
    pixel_logits = d.pixel_logits(d.decode(features), y)  # (B', 1, S, S)
    maps = torch.sigmoid(pixel_logits.float())[:rows, 0].cpu()  # (B, S, S)
    scores = torch.sigmoid(global_logits.float())[:rows].tolist()
    return [Realness(maps[i], float(scores[i]), labels[i]) for i in range(rows)]


def _patch_realness(
    d: PatchDiscriminator, images: torch.Tensor, conditions: torch.Tensor, least_squares: bool
) -> list[Realness]:
    a, b = conditions.to(_device(d)), images.to(_device(d))  # (B, Ca, H, W), (B, Cb, H, W)
    run = TestTimeRun((b.shape[-2], b.shape[-1]), masks=[])  # a PatchGAN has no dropout
    logits = per_sample_sequential(d.model, torch.cat([a, b], dim=1), run).float()  # (B, 1, h, w)
    upsampled = F.interpolate(logits, size=b.shape[-2:], mode="bilinear", align_corners=False)
    scores = upsampled.clamp(0, 1) if least_squares else torch.sigmoid(upsampled)
    return [Realness(score[0].cpu(), None) for score in scores]  # (H, W) each


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
    if isinstance(discriminator, UNetGANDiscriminator):
        cfg = discriminator.config
        _check_image("image", images, cfg.channels, cfg.image_size)
        if conditions is not None:
            raise ValueError("a U-Net GAN discriminator takes no condition image")
        for label in class_labels:
            check_class_label(discriminator, label)
        was_training = discriminator.training
        discriminator.eval()  # spectral norm: no power iteration, its vectors stay as trained
        try:
            return _unet_realness(discriminator, images, class_labels)
        finally:
            discriminator.train(was_training)
    if isinstance(discriminator, PatchDiscriminator):
        cfg = discriminator.config
        _check_image("image", images, cfg.out_channels, None)
        if conditions is None:
            raise ConditionRequired(
                "a pix2pix discriminator judges a pair: pass the input (A) image that the image "
                "translates as the condition"
            )
        _check_image("condition", conditions, cfg.in_channels, None)
        if conditions.shape[0] != images.shape[0] or conditions.shape[-2:] != images.shape[-2:]:
            raise ValueError(
                f"conditions and images must have one size, got {tuple(conditions.shape)} and "
                f"{tuple(images.shape)}"
            )
        for label in class_labels:
            check_class_label(discriminator, label)
        return _patch_realness(discriminator, images, conditions, least_squares)
    name = getattr(type(discriminator), "architecture", type(discriminator).__name__)
    raise NoRealnessMap(
        f"{name} scores whole images with one number and has no per-pixel or per-patch output, "
        "so it gives no realness map; U-Net GAN and pix2pix discriminators do"
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
