"""Sample grids: a batch of tensor images tiled into one picture (no torchvision).

The conversions between tensors, pixels and Pillow images are `models.images`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from models.images import to_uint8


def grid(images: torch.Tensor, columns: int | None = None, padding: int = 2) -> Image.Image:
    """Tile (N, C, H, W) images in [-1, 1] into one picture, `columns` wide."""
    n, c, h, w = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    pixels = to_uint8(images).numpy()  # (N, H, W, C)
    canvas = np.zeros(
        (rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8
    )
    for i in range(n):
        top = padding + (i // columns) * (h + padding)
        left = padding + (i % columns) * (w + padding)
        canvas[top : top + h, left : left + w] = pixels[i]
    return Image.fromarray(canvas[:, :, 0] if c == 1 else canvas)
