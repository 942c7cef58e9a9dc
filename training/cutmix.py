"""CutMix consistency regularisation of the U-Net discriminator.

Schonfeld, Schiele, Khoreva, "A U-Net Based Discriminator for Generative Adversarial Networks",
CVPR 2020, sec. 3.2, as in the authors' reference code (boschresearch/unetgan, `mixup.py`,
`train.py`, `train_fns.py`). A real image x and a fake G(z) are mixed with a binary box mask M,

    mix(x, G(z), M) = M * x + (1 - M) * G(z),

so M is the mask of REAL pixels (1 = real, 0 = fake). The discriminator learns to call the
mixed image fake with its encoder (global) head and to segment it with its decoder (pixel) head,
whose per-pixel target is M itself. The consistency loss asks the decoder to be equivariant to
the mix:

    || D_dec(mix(x, G(z), M)) - mix(D_dec(x), D_dec(G(z)), M) ||^2.

A CutMix mini-batch is used with probability p_mix, ramped linearly from 0 to 0.5 at the start
of training (`p_mix`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class CutMixBoxes(NamedTuple):
    """One CutMix box per sample (pixel bounds, end-exclusive) and how it was drawn; all (B,)."""

    top: torch.Tensor  # (B,) long, first row of the box
    bottom: torch.Tensor  # (B,) long, one past its last row
    left: torch.Tensor  # (B,) long, first column
    right: torch.Tensor  # (B,) long, one past its last column
    ratio: torch.Tensor  # (B,) float, r ~ U(0, 1): the box's area ratio before clipping
    invert: torch.Tensor  # (B,) bool, True: the box holds the real pixels


def cutmix_boxes(
    batch: int,
    height: int,
    width: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> CutMixBoxes:
    """Draw one CutMix box per sample, exactly as the reference's `mixup.CutMix`.

    Per sample: an area ratio r ~ U(0, 1) (the reference draws lam ~ Beta(1, 1) and uses 1 - lam),
    sides int(H * sqrt(r)) and int(W * sqrt(r)), a centre drawn uniformly over the pixels, and the
    box [c - side // 2, c + side // 2) CLIPPED to the image (so boxes near a border are smaller and
    the mean clipped area is about 0.32, not 0.5); the mask is inverted with probability 0.5.
    Random numbers come from `generator` (on its device) or else from the global RNG of `device`.
    """
    draw_device = generator.device if generator is not None else torch.device(device or "cpu")
    ratio = torch.rand(batch, generator=generator, device=draw_device)  # (B,)
    cy = torch.randint(0, height, (batch,), generator=generator, device=draw_device)  # (B,)
    cx = torch.randint(0, width, (batch,), generator=generator, device=draw_device)  # (B,)
    invert = torch.rand(batch, generator=generator, device=draw_device) < 0.5  # (B,)
    scale = ratio.sqrt()  # (B,) side ratio
    half_h = (height * scale).long() // 2  # (B,) int() truncation, as the reference
    half_w = (width * scale).long() // 2  # (B,)
    boxes = CutMixBoxes(
        top=(cy - half_h).clamp(0, height),
        bottom=(cy + half_h).clamp(0, height),
        left=(cx - half_w).clamp(0, width),
        right=(cx + half_w).clamp(0, width),
        ratio=ratio,
        invert=invert,
    )
    target = torch.device(device) if device is not None else draw_device
    return CutMixBoxes(*(t.to(target) for t in boxes))


def boxes_to_mask(boxes: CutMixBoxes, height: int, width: int) -> torch.Tensor:
    """The (B, 1, H, W) float mask of REAL pixels: 0 inside the box, 1 outside, unless inverted."""
    device = boxes.top.device
    rows = torch.arange(height, device=device)[None, :, None]  # (1, H, 1)
    cols = torch.arange(width, device=device)[None, None, :]  # (1, 1, W)
    inside = (
        (rows >= boxes.top[:, None, None])
        & (rows < boxes.bottom[:, None, None])
        & (cols >= boxes.left[:, None, None])
        & (cols < boxes.right[:, None, None])
    )  # (B, H, W)
    # Reference: map = ones, map[box] = 0 (the box is fake), then map = 1 - map w.p. 0.5.
    real = inside == boxes.invert[:, None, None]  # (B, H, W)
    return real.unsqueeze(1).float()  # (B, 1, H, W)


def cutmix_mask(
    batch: int,
    height: int,
    width: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A (B, 1, H, W) float {0, 1} CutMix mask M of REAL pixels (1 = take the real image).

    Boxes as `cutmix_boxes`: area ratio r ~ U(0, 1), sides H * sqrt(r) and W * sqrt(r), centre
    uniform, clipped to the image as in the reference code. Without inversion the box is the
    fake region (M = 0 inside, 1 outside); each sample is inverted with probability 0.5, so the
    fraction of real pixels averages 0.5. M is also the decoder's per-pixel target.
    """
    boxes = cutmix_boxes(batch, height, width, generator=generator, device=device)
    return boxes_to_mask(boxes, height, width)


def mix(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mask * real + (1 - mask) * fake: real where mask == 1, fake where mask == 0.

    real, fake: (B, C, H, W); mask: (B, 1, H, W), broadcast over the channels.
    """
    return mask * real + (1.0 - mask) * fake


def cutmix_targets(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's targets for a CutMix batch: (encoder (B,), decoder (B, 1, H, W)).

    The encoder must call every mixed image fake (0); the decoder's per-pixel target is M
    (1 where the pixel is real), as in the paper and the reference's BCE losses.
    """
    encoder = torch.zeros(mask.shape[0], dtype=mask.dtype, device=mask.device)  # (B,)
    return encoder, mask


def consistency_loss(
    pixel_logits_of_mix: torch.Tensor,
    pixel_logits_real: torch.Tensor,
    pixel_logits_fake: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """Mean squared error || D_dec(mix(x, G(z), M)) - mix(D_dec(x), D_dec(G(z)), M) ||^2.

    All inputs are the decoder's LOGITS (B, 1, H, W), not sigmoid outputs: the reference computes
    `F.mse_loss(D_mixed, D_real * M + D_fake * (1 - M))` on the raw decoder outputs it also feeds
    to `binary_cross_entropy_with_logits`. As there, the mixed target is not detached: the
    gradient reaches D through all three outputs.
    """
    target = mix(pixel_logits_real, pixel_logits_fake, mask)  # (B, 1, H, W)
    return F.mse_loss(pixel_logits_of_mix, target)


def p_mix(step: int, warmup_steps: int, p_max: float = 0.5) -> float:
    """Probability of a CutMix mini-batch at `step`: linear from 0 to `p_max` over the warm-up.

    The reference uses `0.5 * min(1, epoch / warmup_epochs)`; here the ramp is counted in steps.
    A warm-up of 0 steps gives `p_max` from the start.
    """
    if warmup_steps <= 0:
        return p_max
    return p_max * min(1.0, max(0, step) / warmup_steps)
