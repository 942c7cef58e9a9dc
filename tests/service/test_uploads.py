"""service.uploads: size-limited spooling, Pillow checks and PNGs stored in the object store (in
process; HTTP in api/routes)."""

import io

import pytest
from fastapi import UploadFile
from PIL import Image

from core.object_store import ObjectStore
from core.settings import Settings
from service.errors import ApiError
from service.uploads import (
    UploadedImage,
    check_size,
    open_image,
    read_image,
    spool_folder,
    spool_limited,
    store_png,
)
from tests.service.factories import bilevel_png, image_bytes, png_claiming, truncated_png

PIXELS = 4096 * 4096


def _code(call) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value.status_code, caught.value.code


@pytest.fixture
def spool():
    folder = spool_folder()
    yield next(folder)
    folder.close()


@pytest.fixture
def objects(tmp_path) -> ObjectStore:
    return ObjectStore.local(tmp_path / "store")


def test_spool_limited_stops_past_the_limit_leaving_nothing(spool):
    upload = UploadFile(io.BytesIO(b"x" * 1000))
    assert spool_limited(upload, spool, 1000).read_bytes() == b"x" * 1000
    assert _code(lambda: spool_limited(upload, spool, 999)) == (413, "too_large")
    assert len(list(spool.iterdir())) == 1  # the refused copy removed


def test_the_spool_folder_goes_with_what_it_holds():
    folder = spool_folder()
    spool = next(folder)
    (spool / "upload").write_bytes(b"x")
    folder.close()
    assert not spool.exists()


def test_a_refused_image_leaves_no_spool_file(spool, tmp_path):
    settings = Settings(data_dir=tmp_path, redis_url=None)
    good = read_image(UploadFile(io.BytesIO(image_bytes((5, 7)))), settings, spool)
    assert good.image.size == (5, 7) and good.path.parent == spool
    bad = UploadFile(io.BytesIO(truncated_png()))
    assert _code(lambda: read_image(bad, settings, spool)) == (400, "bad_image")
    assert list(spool.iterdir()) == [good.path]


def test_check_size_measures_without_reading_and_rewinds():
    upload = UploadFile(io.BytesIO(b"x" * 1000))
    upload.file.seek(400)
    check_size(upload, 1000, what="archive")
    assert upload.file.tell() == 0  # ready for whoever reads it next
    with pytest.raises(ApiError) as caught:
        check_size(upload, 999, what="archive")
    assert (caught.value.status_code, caught.value.code) == (413, "too_large")
    assert caught.value.message == "The archive is larger than the limit of 999 bytes."


def test_open_image_checks(tmp_path):
    assert open_image(image_bytes((5, 7)), PIXELS).size == (5, 7)
    (tmp_path / "a.png").write_bytes(image_bytes((6, 2)))
    assert open_image(tmp_path / "a.png", PIXELS).size == (6, 2)
    (tmp_path / "empty").write_bytes(b"")
    assert _code(lambda: open_image(tmp_path / "empty", PIXELS)) == (400, "bad_image")
    assert _code(lambda: open_image(b"text", PIXELS)) == (415, "unsupported_type")
    assert _code(lambda: open_image(image_bytes(fmt="TIFF"), PIXELS)) == (415, "unsupported_type")
    assert _code(lambda: open_image(truncated_png(), PIXELS)) == (400, "bad_image")
    assert _code(lambda: open_image(png_claiming(10**5, 10**5), PIXELS)) == (413, "too_many_pixels")
    assert _code(lambda: open_image(bilevel_png(5000, 4000), PIXELS)) == (413, "too_many_pixels")
    assert _code(lambda: open_image(image_bytes((10, 10)), 99)) == (413, "too_many_pixels")


def _stored(objects: ObjectStore, key: str) -> Image.Image:
    return Image.open(io.BytesIO(objects.read(key)))


def test_store_png(objects, spool):
    rgba = Image.new("RGBA", (6, 4), (1, 2, 3, 4))
    assert store_png(rgba, objects, "uploads/a/input.png", spool) == (6, 4)
    stored = _stored(objects, "uploads/a/input.png")
    assert (stored.format, stored.mode) == ("PNG", "RGB")
    assert [i.key for i in objects.list()] == ["uploads/a/input.png"]
    assert list(spool.iterdir()) == []  # the encoded file was removed once stored


def _uploaded(spool, image: Image.Image, **save) -> UploadedImage:
    buffer = io.BytesIO()
    image.save(buffer, **save)
    path = spool_limited(UploadFile(buffer), spool, PIXELS)
    return UploadedImage(open_image(path, PIXELS), path)


def test_an_rgb_or_grey_png_upload_is_stored_as_sent(objects, spool):
    for mode in ("RGB", "L"):
        upload = _uploaded(spool, Image.new(mode, (9, 5), 77), format="PNG", compress_level=9)
        assert store_png(upload, objects, f"uploads/{mode}/input.png", spool) == (9, 5)
        assert objects.read(f"uploads/{mode}/input.png") == upload.path.read_bytes()


def test_other_uploads_are_re_encoded_as_png(objects, spool):
    rotated = Image.new("RGB", (6, 4), (200, 10, 10))
    exif = rotated.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    cases = {
        "rotated": (_uploaded(spool, rotated, format="PNG", exif=exif), (4, 6), "RGB"),
        "rgba": (_uploaded(spool, Image.new("RGBA", (6, 4)), format="PNG"), (6, 4), "RGB"),
        "palette": (_uploaded(spool, Image.new("P", (6, 4)), format="PNG"), (6, 4), "RGB"),
        "jpeg": (_uploaded(spool, Image.new("RGB", (6, 4)), format="JPEG"), (6, 4), "RGB"),
    }
    for name, (upload, size, mode) in cases.items():
        key = f"uploads/{name}/input.png"
        assert store_png(upload, objects, key, spool) == size
        assert objects.read(key) != upload.path.read_bytes()
        stored = _stored(objects, key)
        assert (stored.format, stored.size, stored.mode) == ("PNG", size, mode)
