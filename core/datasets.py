"""The dataset layout every process reads the same way: which files are images, which splits.

A dataset is a folder of images (`images`), one sub-folder per class (`labeled`) or pairs for
pix2pix (`paired`: A|B side by side, or `A/` and `B/` folders), optionally split into `train/`,
`val/` and `test/` (the pix2pix datasets' layout). The gateway checks uploads with these rules,
the training data loaders read with them, and translation models' examples come from the held-out
splits. Torch-free.
"""

from __future__ import annotations

from enum import StrEnum


class DatasetKind(StrEnum):
    """How a dataset's images are laid out (`core.families` says which families train on it)."""

    paired = "paired"
    images = "images"
    labeled = "labeled"


IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
    | {".pnm", ".tga"}
)
SPLIT_NAMES = ("train", "val", "test")
HELD_OUT_SPLITS = ("val", "test")
