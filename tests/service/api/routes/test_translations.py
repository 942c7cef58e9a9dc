"""POST /v1/translations: uploads checked with Pillow, stored as PNG, jobs queued."""

import io

import pytest
from PIL import Image

from core.queues import queue_length
from tests.service.factories import (
    bilevel_png,
    expect_error,
    given,
    image_bytes,
    png_claiming,
    truncated_png,
)


def translate(http, data: bytes, *, model: str = "facades", filename: str = "in.png", **form):
    return http.post(
        "/v1/translations",
        files={"image": (filename, data, "application/octet-stream")},
        data={"model": model, **form},
    )


def test_translation_is_queued_with_its_input_stored(client, gateway):
    before = queue_length(gateway.redis(), "infer")  # every priority's list
    response = translate(client, image_bytes((40, 30)), seed="7")
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "queued"
    assert job["kind"] == "translation"
    assert job["model"] == "facades@1"
    assert job["url"] == f"/v1/jobs/{job['id']}"
    assert response.headers["Location"] == job["url"]
    assert given(job["params"]) == {
        "seed": 7,
        "mode": "native",
        "width": 40,
        "height": 30,
    }  # no path
    assert gateway.redis().lrange("ganserve:batch:translation:facades@1", 0, -1) == [
        job["id"].encode()
    ]  # offered to a worker that batches

    polled = client.get(job["url"])
    assert polled.status_code == 200
    assert polled.json()["status"] == "queued"

    record = gateway.store().get(job["id"])
    assert "input" not in record.params  # the worker finds the upload by the job id
    stored = gateway.data_dir / "uploads" / job["id"] / "input.png"
    with Image.open(stored) as image:
        image.load()
        assert image.format == "PNG"
        assert image.size == (40, 30)
    assert queue_length(gateway.redis(), "infer") == before + 1


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "BMP"])
def test_other_accepted_formats(client, gateway, fmt):
    response = translate(client, image_bytes((20, 20), fmt=fmt), filename="x")
    assert response.status_code == 202, response.text
    job = response.json()
    assert isinstance(job["params"]["seed"], int)  # chosen and recorded
    stored = gateway.data_dir / "uploads" / job["id"] / "input.png"
    assert Image.open(stored).format == "PNG"


def test_bad_inputs(client):
    expect_error(translate(client, b"hello, I am text"), 415, "unsupported_type")
    expect_error(translate(client, image_bytes(fmt="GIF")), 415, "unsupported_type")
    expect_error(translate(client, b""), 400, "bad_image")
    expect_error(translate(client, truncated_png()), 400, "bad_image")
    expect_error(translate(client, png_claiming(100_000, 100_000)), 413, "too_many_pixels")
    expect_error(translate(client, bilevel_png(5000, 4000)), 413, "too_many_pixels")
    expect_error(translate(client, image_bytes(), model="nope"), 404, "model_not_found")
    expect_error(translate(client, image_bytes(), model="faces"), 422, "wrong_model_task")
    expect_error(translate(client, image_bytes(), seed="-1"), 422, "invalid_field")
    expect_error(translate(client, image_bytes(), seed="abc"), 422, "invalid_field")
    expect_error(translate(client, image_bytes(), mode="tiles"), 422, "invalid_field")
    missing = client.post("/v1/translations", data={"model": "facades"})
    expect_error(missing, 422, "invalid_field")
    assert "image" in missing.json()["detail"]
    assert client.get("/healthz").status_code == 200


def test_image_over_the_upload_limit_is_413(strict_gateway):
    limit = 20000
    with strict_gateway.client() as http:
        # over the file limit but within the body limit: refused while copying the file
        expect_error(translate(http, image_bytes((100, 100), noise=True)), 413, "too_large")
        # a body far over the limit: refused from its Content-Length, before it is read
        big = image_bytes((300, 300), noise=True)
        assert len(big) > limit + 64 * 1024
        response = translate(http, big)
        expect_error(response, 413, "too_large")
        message = response.json()["detail"]
        assert message == f"The image is larger than the limit of {limit} bytes."
        assert http.get("/healthz").status_code == 200


def test_streamed_body_over_the_limit_is_refused_while_streaming(strict_gateway):
    boundary = "ganservetestboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nfacades\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    sent = 0

    def body():  # chunked: no Content-Length, about 1 MB of chunks
        nonlocal sent
        yield head
        for _ in range(64):
            sent += 16384
            yield b"\x00" * 16384
        yield f"\r\n--{boundary}--\r\n".encode()

    with strict_gateway.client() as http:
        response = http.post(
            "/v1/translations",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        expect_error(response, 413, "too_large")
        assert "limit of 20000 bytes" in response.json()["detail"]
        assert http.get("/healthz").status_code == 200


def test_stored_input_keeps_grey_images_grey(client, gateway):
    response = translate(client, image_bytes((16, 16), mode="L"))
    assert response.status_code == 202
    stored = gateway.data_dir / "uploads" / response.json()["id"] / "input.png"
    assert Image.open(io.BytesIO(stored.read_bytes())).mode == "L"


def test_the_result_format_asked_for_is_recorded(client, gateway):
    webp = translate(client, image_bytes(), format="webp", quality="70").json()
    assert given(webp["params"]) | {"seed": 0} == {
        "seed": 0,
        "mode": "native",
        "width": 32,
        "height": 24,
        "format": "webp",
        "quality": 70,
    }
    jpeg = translate(client, image_bytes(), format="jpeg").json()  # the quality: 90 (the worker)
    assert (jpeg["params"]["format"], jpeg["params"]["quality"]) == ("jpeg", None)
    assert gateway.store().get(jpeg["id"]).params["format"] == "jpeg"


@pytest.mark.parametrize(
    ("form", "field", "needle"),
    [
        ({"format": "gif"}, "format", "'png', 'webp' or 'jpeg'"),
        ({"format": "jpg"}, "format", "'png', 'webp' or 'jpeg'"),
        ({"format": "webp", "quality": "0"}, "quality", "greater than or equal to 1"),
        ({"format": "jpeg", "quality": "101"}, "quality", "less than or equal to 100"),
        ({"format": "jpeg", "quality": "high"}, "quality", "valid integer"),
        ({"format": "png", "quality": "80"}, "quality", "png is lossless"),
        ({"quality": "80"}, "quality", "png is lossless"),
    ],
)
def test_a_bad_format_or_quality_is_422_and_nothing_is_queued(client, gateway, form, field, needle):
    before = queue_length(gateway.redis(), "infer")
    response = translate(client, image_bytes(), **form)
    message = expect_error(response, 422, "invalid_field")
    assert f"'{field}'" in message and needle in message
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert queue_length(gateway.redis(), "infer") == before
