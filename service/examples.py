"""Example inputs of a translation model: the input side of its dataset's held-out pairs.

A newcomer does not know what a pix2pix model (Isola et al. 2017) expects: a model trained on
grey photos turns a colour photo into noise. The held-out split (`val/`, else `test/`) of the
dataset the model was trained on holds inputs of exactly its kind; the page offers them one click
each. Aligned A|B files are cut in half (the left half is A); A/ and B/ folders are read as they
are. The model's direction (AtoB or BtoA, from its config.json) picks the side. Read with Pillow
only, no torch.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from core.datasets import HELD_OUT_SPLITS

# the formats a browser shows (the page offers the examples as they are stored)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MAX_EXAMPLES = 6


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def example_sources(dataset_root: Path, direction: str) -> list[tuple[Path, str]]:
    """Up to MAX_EXAMPLES (file, part) pairs, part "left", "right" or "whole"."""
    side = "B" if direction == "BtoA" else "A"
    for split in HELD_OUT_SPLITS:
        for folder in (dataset_root / side / split, dataset_root / split / side):
            files = _images(folder)
            if files:
                return [(p, "whole") for p in files[:MAX_EXAMPLES]]
        files = _images(dataset_root / split)
        if files:
            part = "right" if direction == "BtoA" else "left"
            return [(p, part) for p in files[:MAX_EXAMPLES]]
    return []


def example_png(path: Path, part: str) -> bytes:
    """The example as PNG bytes: the whole image, or its left or right half."""
    with Image.open(path) as img:
        img.load()
        if part != "whole":
            half = img.width // 2
            box = (0, 0, half, img.height) if part == "left" else (half, 0, img.width, img.height)
            img = img.crop(box)
        buffer = io.BytesIO()
        img.save(buffer, format="PNG")
    return buffer.getvalue()
