"""Files the worker tests put in a storage root, as the gateway would, and read back from it."""

from __future__ import annotations

import uuid
from pathlib import Path

from PIL import Image

from core.storage import Storage

UPLOAD_FILE = "input.png"  # a translation's upload: uploads/<job id>/input.png


def upload(storage: Storage, job_id: str, image: Image.Image) -> None:
    """Store a translation's upload for job `job_id`, as the gateway does."""
    folder = storage.upload_dir(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / UPLOAD_FILE)


def put(storage: Storage, image: Image.Image, name: str = "image.png") -> str:
    """Store an upload for an inspection, as the gateway does; its key in the store."""
    folder = storage.root / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    image.save(folder / name)
    return (folder / name).relative_to(storage.root).as_posix()


def read_png(path: Path) -> Image.Image:
    """The image at `path`, loaded and detached from its file."""
    with Image.open(path) as img:
        img.load()
        return img.copy()


def result_image(storage: Storage, job_id: str, k: int = 0) -> Image.Image:
    """Job `job_id`'s result image `k`."""
    return read_png(storage.result_dir(job_id) / f"{k}.png")
