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
from pathlib import PurePosixPath

from PIL import Image

from core.datasets import HELD_OUT_SPLITS
from core.object_store import ObjectStore

# the formats a browser shows (the page offers the examples as they are stored)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MAX_EXAMPLES = 6


def _images(objects: ObjectStore, prefix: str) -> list[str]:
    """Keys of the browser-viewable images directly under `prefix/`, sorted."""
    names = objects.children(prefix)
    return [
        f"{prefix}/{name}"
        for name in names
        if not name.startswith(".") and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES
    ]


def example_sources(objects: ObjectStore, dataset_id: str, direction: str) -> list[tuple[str, str]]:
    """Up to MAX_EXAMPLES (key, part) pairs of a stored dataset, part "left", "right" or
    "whole"."""
    side = "B" if direction == "BtoA" else "A"
    root = f"datasets/{dataset_id}"
    for split in HELD_OUT_SPLITS:
        for folder in (f"{root}/{side}/{split}", f"{root}/{split}/{side}"):
            files = _images(objects, folder)
            if files:
                return [(key, "whole") for key in files[:MAX_EXAMPLES]]
        files = _images(objects, f"{root}/{split}")
        if files:
            part = "right" if direction == "BtoA" else "left"
            return [(key, part) for key in files[:MAX_EXAMPLES]]
    return []


def example_png(objects: ObjectStore, key: str, part: str) -> bytes:
    """The example as PNG bytes: the whole image, or its left or right half;
    FileNotFoundError when it is gone."""
    stored = objects.read(key)
    if stored is None:
        raise FileNotFoundError(key)
    with Image.open(io.BytesIO(stored)) as img:
        img.load()
        if part != "whole":
            half = img.width // 2
            box = (0, 0, half, img.height) if part == "left" else (half, 0, img.width, img.height)
            img = img.crop(box)
        buffer = io.BytesIO()
        img.save(buffer, format="PNG")
    return buffer.getvalue()
