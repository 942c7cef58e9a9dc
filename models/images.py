"""Tensor images: [-1, 1] floats to uint8 pixels and back, and to and from Pillow images.

The networks take and give images in [-1, 1]; the inference workers (results, candidates) and
training (data, samples, metrics) convert with these.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def quantize(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) float in [-1, 1] -> (N, C, H, W) uint8 in [0, 255], on the same device."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def dequantize(pixels: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 255] (uint8 or float, any shape) -> float32 in [-1, 1]; undoes `quantize`."""
    return pixels.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) float in [-1, 1] -> (N, H, W, C) uint8 on the CPU."""
    return quantize(images).permute(0, 2, 3, 1).cpu()


def to_pil(image: torch.Tensor) -> Image.Image:
    """One (C, H, W) image in [-1, 1] -> a Pillow image (mode L or RGB)."""
    array = to_uint8(image[None])[0].numpy()  # (H, W, C)
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def from_pil(image: Image.Image) -> torch.Tensor:
    """A Pillow image (L or RGB) -> (1, C, H, W) float32 in [-1, 1]; undoes `to_pil`."""
    array = np.asarray(image, dtype=np.float32)  # (H, W) or (H, W, C)
    if array.ndim == 2:
        array = array[:, :, None]
    return dequantize(torch.from_numpy(array).permute(2, 0, 1)[None])  # (1, C, H, W)
