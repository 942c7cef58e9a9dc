"""service.uploads: size-limited reading and Pillow checks (in process; HTTP in api/routes)."""

import io

import pytest
from fastapi import UploadFile
from PIL import Image

from service.errors import ApiError
from service.uploads import check_size, open_image, read_limited, store_png
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
