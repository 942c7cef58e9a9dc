"""Uploaded files: read with a size limit while streaming, and images checked with Pillow.

An image is accepted only when Pillow identifies it as PNG, JPEG, WebP or BMP (the plugins of
other formats are never tried), when its header's width x height is within the pixel limit (read
before any pixel is decoded, so a decompression bomb is refused cheaply), and when it then decodes
completely (a truncated or corrupt file is refused). Accepted images are stored as PNG, so
workers read one well-formed format: a PNG that is already what a worker reads (RGB or greyscale,
no EXIF rotation) is stored as it was sent, without decoding it a second time into a new file;
anything else is re-encoded.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import UploadFile
from PIL import ExifTags, Image, ImageOps

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


def read_limited(upload: UploadFile, limit: int, *, what: str = "image") -> bytes:
    """The bytes of an uploaded file, read in chunks; 413 `too_large` once past `limit`."""
    buffer = io.BytesIO()
    copy_limited(upload, buffer, limit, what=what)
    return buffer.getvalue()


def _too_many_pixels(width: int | None, height: int | None, limit: int) -> ApiError:
    size = f" ({width}x{height})" if width and height else ""
    return ApiError(
        413,
        "too_many_pixels",
        f"The image{size} has more pixels than the limit of {limit} (width x height).",
    )


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Identify, size-check and fully decode an image (the first frame of an animated one).

    Errors: 415 `unsupported_type` (not a PNG, JPEG, WebP or BMP image), 413 `too_many_pixels`
    (width x height over `max_pixels`, or a decompression bomb), 400 `bad_image` (empty,
    truncated or corrupt).
    """
    if not data:
        raise ApiError(400, "bad_image", "The image file is empty.")
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
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
    """An uploaded image that passed `open_image`, and the bytes it was sent as."""

    image: Image.Image
    data: bytes


def read_image(upload: UploadFile, settings: Settings, *, what: str = "image") -> UploadedImage:
    """An uploaded image, read and checked (`open_image`) within the configured limits."""
    data = read_limited(upload, settings.max_upload_bytes, what=what)
    return UploadedImage(open_image(data, settings.max_image_pixels), data)


def _storable_as_sent(image: Image.Image) -> bool:
    """Whether a decoded upload's own bytes are already the PNG `store_png` would write."""
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    return image.format == "PNG" and image.mode in ("RGB", "L") and orientation == 1


def store_png(picture: Image.Image | UploadedImage, path: Path) -> tuple[int, int]:
    """Write `picture` as PNG at `path` (EXIF orientation applied; grey stays grey, colour ->
    RGB); an upload that is already such a PNG is written as it was sent.

    Written through a temporary file and renamed, so a reader never sees half a file; when it
    cannot be written (a full volume), neither the file nor a folder made for it stays. Returns
    the stored (width, height).
    """
    sent = picture.data if isinstance(picture, UploadedImage) else None
    image = picture.image if isinstance(picture, UploadedImage) else picture
    if sent is None or not _storable_as_sent(image):
        sent = None
        image = ImageOps.exif_transpose(image)
        image = image.convert("L") if image.mode in GREY_MODES else image.convert("RGB")
    made = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as out:
            if sent is None:
                image.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
            else:
                out.write(sent)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if made:
            shutil.rmtree(path.parent, ignore_errors=True)
        raise
    return image.width, image.height
