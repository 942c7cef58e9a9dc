"""service.uploads: size-limited reading and Pillow checks (in process; HTTP in api/routes)."""

import io

import pytest
from fastapi import UploadFile
from PIL import Image

from service.errors import ApiError
from service.uploads import UploadedImage, check_size, open_image, read_limited, store_png
from tests.service.factories import bilevel_png, image_bytes, png_claiming, truncated_png

PIXELS = 4096 * 4096


def _code(call) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value.status_code, caught.value.code


def test_read_limited_stops_past_the_limit():
    upload = UploadFile(io.BytesIO(b"x" * 1000))
    assert len(read_limited(upload, 1000)) == 1000
    assert _code(lambda: read_limited(upload, 999)) == (413, "too_large")


def test_check_size_measures_without_reading_and_rewinds():
    upload = UploadFile(io.BytesIO(b"x" * 1000))
    upload.file.seek(400)
    check_size(upload, 1000, what="archive")
    assert upload.file.tell() == 0  # ready for whoever reads it next
    with pytest.raises(ApiError) as caught:
        check_size(upload, 999, what="archive")
    assert (caught.value.status_code, caught.value.code) == (413, "too_large")
    assert caught.value.message == "The archive is larger than the limit of 999 bytes."


def test_open_image_checks():
    assert open_image(image_bytes((5, 7)), PIXELS).size == (5, 7)
    assert _code(lambda: open_image(b"text", PIXELS)) == (415, "unsupported_type")
    assert _code(lambda: open_image(image_bytes(fmt="TIFF"), PIXELS)) == (415, "unsupported_type")
    assert _code(lambda: open_image(truncated_png(), PIXELS)) == (400, "bad_image")
    assert _code(lambda: open_image(png_claiming(10**5, 10**5), PIXELS)) == (413, "too_many_pixels")
    assert _code(lambda: open_image(bilevel_png(5000, 4000), PIXELS)) == (413, "too_many_pixels")
    assert _code(lambda: open_image(image_bytes((10, 10)), 99)) == (413, "too_many_pixels")


def test_store_png(tmp_path):
    rgba = Image.new("RGBA", (6, 4), (1, 2, 3, 4))
    assert store_png(rgba, tmp_path / "a" / "input.png") == (6, 4)
    with Image.open(tmp_path / "a" / "input.png") as stored:
        assert (stored.format, stored.mode) == ("PNG", "RGB")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["input.png"]


def _uploaded(image: Image.Image, **save) -> UploadedImage:
    buffer = io.BytesIO()
    image.save(buffer, **save)
    return UploadedImage(open_image(buffer.getvalue(), PIXELS), buffer.getvalue())


def test_an_rgb_or_grey_png_upload_is_stored_as_sent(tmp_path):
    for mode in ("RGB", "L"):
        upload = _uploaded(Image.new(mode, (9, 5), 77), format="PNG", compress_level=9)
        assert store_png(upload, tmp_path / mode / "input.png") == (9, 5)
        assert (tmp_path / mode / "input.png").read_bytes() == upload.data


def test_other_uploads_are_re_encoded_as_png(tmp_path):
    rotated = Image.new("RGB", (6, 4), (200, 10, 10))
    exif = rotated.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    cases = {
        "rotated": (_uploaded(rotated, format="PNG", exif=exif), (4, 6), "RGB"),
        "rgba": (_uploaded(Image.new("RGBA", (6, 4)), format="PNG"), (6, 4), "RGB"),
        "palette": (_uploaded(Image.new("P", (6, 4)), format="PNG"), (6, 4), "RGB"),
        "jpeg": (_uploaded(Image.new("RGB", (6, 4)), format="JPEG"), (6, 4), "RGB"),
    }
    for name, (upload, size, mode) in cases.items():
        path = tmp_path / name / "input.png"
        assert store_png(upload, path) == size
        assert path.read_bytes() != upload.data
        with Image.open(path) as stored:
            assert (stored.format, stored.size, stored.mode) == ("PNG", size, mode)
