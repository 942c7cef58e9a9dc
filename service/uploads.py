"""Uploaded files: read with a size limit while streaming, and images checked with Pillow.

An uploaded image is spooled to a file of the request's spool folder (`spooled`, removed once
the route has stored it) while its size is counted (413 as soon as it passes the limit),
then accepted only when Pillow identifies it as PNG, JPEG, WebP or BMP (the plugins of other
formats are never tried), when its header's width x height is within the pixel limit (read
before any pixel is decoded, so a decompression bomb is refused cheaply), and when it then decodes
completely (a truncated or corrupt file is refused). Nothing reaches the store before these
checks pass. Accepted images are stored as PNG (`store_png`, one streamed `upload_file` to the
store), so workers read one well-formed format: a PNG that is already what a worker reads (RGB or
greyscale, no EXIF rotation) is stored as it was sent, from its spool file, without being encoded
again; anything else is re-encoded into the spool folder first. The whole upload is never held
in memory: only what Pillow's decode needs.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import UploadFile
from PIL import ExifTags, Image, ImageOps

from core.object_store import ObjectStore
from core.settings import Settings
from core.storage import GREY_MODES, PNG_COMPRESS_LEVEL
from service.errors import ApiError

CHUNK_BYTES = 64 * 1024
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(413, "too_large", f"The {what} is larger than the limit of {limit} bytes.")


def copy_limited(upload: UploadFile, dest: BinaryIO, limit: int, *, what: str = "upload") -> int:
    """Copy an uploaded file to `dest` in chunks; 413 `too_large` as soon as it passes `limit`."""
    upload.file.seek(0)
    size = 0
    while chunk := upload.file.read(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise _too_large(what, limit)
        dest.write(chunk)
    return size


def check_size(upload: UploadFile, limit: int, *, what: str) -> None:
    """413 `too_large` when the received `upload` is larger than `limit` bytes (it is not read)."""
    upload.file.seek(0, os.SEEK_END)
    if upload.file.tell() > limit:
        raise _too_large(what, limit)
    upload.file.seek(0)


def spool_folder() -> Iterator[Path]:
    """A spool folder for a request's uploads, removed with what it holds once the route is done
    with it, whatever happens (`spooled`)."""
    with tempfile.TemporaryDirectory(prefix="ganserve-spool-") as folder:
        yield Path(folder)


# `with spooled() as spool:` in a route: the folder made and removed in the route's own thread
# (no dependency of its own, no hand-off to another thread to remove it)
spooled = contextmanager(spool_folder)


def spool_limited(upload: UploadFile, spool: Path, limit: int, *, what: str = "image") -> Path:
    """Copy an uploaded file into a new file of `spool` in chunks; 413 `too_large` once past
    `limit` (the partial copy removed). The new file's path."""
    handle, name = tempfile.mkstemp(dir=spool, prefix="upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            copy_limited(upload, out, limit, what=what)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _too_many_pixels(width: int | None, height: int | None, limit: int) -> ApiError:
    size = f" ({width}x{height})" if width and height else ""
    return ApiError(
        413,
        "too_many_pixels",
        f"The image{size} has more pixels than the limit of {limit} (width x height).",
    )


def open_image(source: bytes | Path, max_pixels: int) -> Image.Image:
    """Identify, size-check and fully decode an image, given as bytes or as a file (the first
    frame of an animated one).

    Errors: 415 `unsupported_type` (not a PNG, JPEG, WebP or BMP image), 413 `too_many_pixels`
    (width x height over `max_pixels`, or a decompression bomb), 400 `bad_image` (empty,
    truncated or corrupt).
    """
    empty = not source if isinstance(source, bytes) else source.stat().st_size == 0
    if empty:
        raise ApiError(400, "bad_image", "The image file is empty.")
    try:
        image = Image.open(
            io.BytesIO(source) if isinstance(source, bytes) else source, formats=ALLOWED_FORMATS
        )
    except Image.DecompressionBombError:
        raise _too_many_pixels(None, None, max_pixels) from None
    except Exception:
        raise ApiError(
            415,
            "unsupported_type",
            "The upload is not an image of an accepted type (PNG, JPEG, WebP or BMP).",
        ) from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ApiError(400, "bad_image", "The image has no pixels.")
    if width * height > max_pixels:
        raise _too_many_pixels(width, height, max_pixels)
    try:
        image.load()
    except Image.DecompressionBombError:
        raise _too_many_pixels(width, height, max_pixels) from None
    except Exception as exc:
        raise ApiError(
            400, "bad_image", f"The {image.format} image cannot be decoded (truncated or corrupt)."
        ) from exc
    return image


@dataclass(frozen=True)
class UploadedImage:
    """An uploaded image that passed `open_image`, and its spool file: the bytes it was sent as."""

    image: Image.Image
    path: Path


def read_image(
    upload: UploadFile, settings: Settings, spool: Path, *, what: str = "image"
) -> UploadedImage:
    """An uploaded image, spooled into `spool` and checked (`open_image`) within the configured
    limits."""
    path = spool_limited(upload, spool, settings.max_upload_bytes, what=what)
    try:
        return UploadedImage(open_image(path, settings.max_image_pixels), path)
    except ApiError:
        path.unlink(missing_ok=True)
        raise


def _storable_as_sent(image: Image.Image) -> bool:
    """Whether a decoded upload's own bytes are already the PNG `store_png` would write."""
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    return image.format == "PNG" and image.mode in ("RGB", "L") and orientation == 1


def store_png(
    picture: Image.Image | UploadedImage, objects: ObjectStore, key: str, spool: Path
) -> tuple[int, int]:
    """Store `picture` as the PNG object `key` (EXIF orientation applied; grey stays grey,
    colour -> RGB); an upload that is already such a PNG is stored as it was sent.

    Streamed from a file (the upload's spool file, or the PNG encoded into `spool`) with one
    atomic `upload_file`: a reader never sees half an object. Returns the stored (width, height).
    """
    if isinstance(picture, UploadedImage) and _storable_as_sent(picture.image):
        objects.upload_file(key, picture.path)
        return picture.image.size
    image = picture.image if isinstance(picture, UploadedImage) else picture
    image = ImageOps.exif_transpose(image)
    image = image.convert("L") if image.mode in GREY_MODES else image.convert("RGB")
    handle, name = tempfile.mkstemp(dir=spool, prefix="encoded-", suffix=".png")
    try:
        with os.fdopen(handle, "wb") as out:
            image.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        objects.upload_file(key, Path(name))
    finally:
        Path(name).unlink(missing_ok=True)
    return image.width, image.height
