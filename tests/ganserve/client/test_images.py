"""What an image argument may be, and how it is uploaded."""

import io

import pytest
from PIL import Image

from ganserve.client.images import decode_image, image_upload, png_bytes
from tests.ganserve.client.fake_server import png


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (5, 5), (200, 0, 0)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_a_path_is_streamed_from_disk(tmp_path):
    path = tmp_path / "edges.png"
    path.write_bytes(png())
    for given in (path, str(path)):
        upload = image_upload(given)
        assert upload.filename == "edges.png"
        assert upload.content == path  # read while sent, not here
        assert upload.content_type == "image/png"


def test_a_missing_path_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        image_upload(tmp_path / "nope.png")
    with pytest.raises(FileNotFoundError):
        image_upload(str(tmp_path))  # a folder is not an image


@pytest.mark.parametrize(
    ("content", "name", "content_type"),
    [
        (png(), "image.png", "image/png"),
        (_jpeg(), "image.jpg", "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image.webp", "image/webp"),
        (b"BM\x00\x00", "image.bmp", "image/bmp"),
        (b"not an image", "image", "application/octet-stream"),
    ],
)
def test_bytes_are_named_by_their_format(content, name, content_type):
    upload = image_upload(content)
    assert (upload.filename, upload.content, upload.content_type) == (name, content, content_type)
    assert image_upload(bytearray(content)).content == content


def test_a_binary_file_is_read(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(_jpeg())
    with path.open("rb") as file:
        upload = image_upload(file)
    assert upload.filename == "photo.jpg" and upload.content == _jpeg()
    assert upload.content_type == "image/jpeg"
    anonymous = image_upload(io.BytesIO(png()))
    assert anonymous.filename == "image.png" and anonymous.content == png()


def test_a_text_file_is_refused(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("hello")
    with path.open() as file, pytest.raises(TypeError, match="binary"):
        image_upload(file)


def test_a_pil_image_is_sent_as_a_lossless_png():
    picture = Image.new("RGB", (7, 3), (1, 2, 3))
    upload = image_upload(picture)
    assert upload.filename == "image.png" and upload.content_type == "image/png"
    back = decode_image(upload.content)
    assert back.size == (7, 3) and back.getpixel((0, 0)) == (1, 2, 3)


@pytest.mark.parametrize(("mode", "sent_as"), [("CMYK", "RGB"), ("LA", "LA"), ("L", "L")])
def test_modes_png_cannot_hold_are_converted(mode, sent_as):
    picture = Image.new(mode, (2, 2))
    assert decode_image(png_bytes(picture)).mode == sent_as


def test_anything_else_is_a_type_error():
    with pytest.raises(TypeError, match="path, bytes"):
        image_upload(42)  # type: ignore[arg-type]


def test_decoded_images_are_loaded():
    picture = decode_image(png(3, 2))
    assert picture.size == (3, 2) and picture.format == "PNG"
