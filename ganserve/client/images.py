"""Images in and out: what the client accepts as an image, how it is uploaded, and how a
result image (PNG, WebP or JPEG) becomes a PIL image.

An image argument may be a path (`str` or `os.PathLike`) of an image file, its bytes, a binary
file object opened for reading, or a `PIL.Image.Image` (sent as a lossless PNG). The server
identifies the format from the content (PNG, JPEG, WebP or BMP), so nothing is converted except
PIL images.
"""

from __future__ import annotations

import io
import mimetypes
import os
from pathlib import Path
from typing import BinaryIO, TypeAlias

from PIL import Image

from ganserve.client.uploads import Upload

ImageInput: TypeAlias = (
    str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | Image.Image
)

_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image.png", "image/png"),
    (b"\xff\xd8\xff", "image.jpg", "image/jpeg"),
    (b"BM", "image.bmp", "image/bmp"),
)


def _named(content: bytes) -> tuple[str, str]:
    """A file name and content type for image bytes, from their first bytes."""
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image.webp", "image/webp"
    for signature, name, content_type in _SIGNATURES:
        if content.startswith(signature):
            return name, content_type
    return "image", "application/octet-stream"


def png_bytes(image: Image.Image) -> bytes:
    """A PIL image as PNG bytes (converted to RGB or RGBA first when PNG cannot hold its mode)."""
    if image.mode not in _PNG_MODES:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def image_upload(image: ImageInput, field: str = "image") -> Upload:
    """An image argument as an upload (see the module doc); TypeError for anything else,
    FileNotFoundError for a path that names no file."""
    if isinstance(image, Image.Image):
        return Upload("image.png", png_bytes(image), "image/png")
    if isinstance(image, bytes | bytearray | memoryview):
        content = bytes(image)
        name, content_type = _named(content)
        return Upload(name, content, content_type)
    if isinstance(image, str | os.PathLike):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"The {field} {str(path)!r} is not a file.")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Upload(path.name, path, content_type)
    read = getattr(image, "read", None)
    if callable(read):
        content = read()
        if not isinstance(content, bytes):
            raise TypeError(f"The {field} file object must be opened in binary mode ('rb').")
        name = os.path.basename(str(getattr(image, "name", ""))) or _named(content)[0]
        return Upload(name, content, _named(content)[1])
    raise TypeError(
        f"The {field} must be a path, bytes, a binary file object or a PIL image, "
        f"not {type(image).__name__}."
    )


def decode_image(content: bytes) -> Image.Image:
    """A result image (PNG, WebP or JPEG bytes) as a loaded PIL image."""
    image = Image.open(io.BytesIO(content))
    image.load()
    return image
