"""Result image formats end to end: the real stack (embedded Redis, gateway over HTTP, Celery
workers, tiny models) writes translations and samples as PNG unless asked for WebP or JPEG,
serves each with its Content-Type at the same URLs, refuses a bad format or quality with a 422
naming the field, and the Python client asks for a format and decodes what comes back."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from ganserve.client import Client, InvalidField
from tests.e2e.stack import png, running_stack, save_tiny_models, wait_job

TRANSLATOR, SAMPLER = "tiny-p2p", "tiny-u"


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("formats")
    save_tiny_models(data_dir / "models", translator=TRANSLATOR, sampler=SAMPLER)
    with running_stack(data_dir) as (client, _stack):
        yield client


def ended(http: httpx.Client, response: httpx.Response) -> dict:
    assert response.status_code == 202, response.text
    job = wait_job(http, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def decoded(response: httpx.Response) -> tuple[str | None, tuple[int, int]]:
    """The format and size of an image answer, every pixel decoded by Pillow."""
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(response.content)) as image:
        image.load()
        return image.format, image.size


def translate(http: httpx.Client, **form: str) -> httpx.Response:
    return http.post(
        "/v1/translations",
        data={"model": TRANSLATOR, "seed": "3", **form},
        files={"image": ("in.png", png(50, 37, seed=1), "image/png")},
    )


@pytest.mark.parametrize(
    ("form", "pillow", "media_type", "encoding"),
    [
        ({}, "PNG", "image/png", ("png", None)),
        ({"format": "png"}, "PNG", "image/png", ("png", None)),
        ({"format": "webp"}, "WEBP", "image/webp", ("webp", 90)),
        ({"format": "jpeg", "quality": "60"}, "JPEG", "image/jpeg", ("jpeg", 60)),
    ],
)
def test_a_translation_in_each_format(http, form, pillow, media_type, encoding):
    job = ended(http, translate(http, **form))
    assert (job["result"]["format"], job["result"]["quality"]) == encoding
    assert job["result"]["images"] == [f"/v1/jobs/{job['id']}/images/0"]
    answer = http.get(job["result"]["images"][0])
    assert answer.headers["content-type"] == media_type
    assert decoded(answer) == (pillow, (50, 37))
    part = http.get(job["result"]["images"][0], headers={"Range": "bytes=2-5"})
    assert (part.status_code, part.content) == (206, answer.content[2:6])


def test_webp_samples_and_the_smaller_jpeg_of_a_lower_quality(http):
    body = {"model": SAMPLER, "count": 3, "seed": 5, "class_label": 1, "format": "webp"}
    job = ended(http, http.post("/v1/samples", json=body))
    assert (job["result"]["format"], job["result"]["quality"]) == ("webp", 90)
    assert job["result"]["latent_count"] == 3
    for url in job["result"]["images"]:
        answer = http.get(url)
        assert answer.headers["content-type"] == "image/webp"
        assert decoded(answer) == ("WEBP", (32, 32))
    sizes = []
    for quality in (10, 95):
        body = {"model": SAMPLER, "seed": 5, "class_label": 1, "format": "jpeg", "quality": quality}
        sample = ended(http, http.post("/v1/samples", json=body))
        answer = http.get(sample["result"]["images"][0])
        assert decoded(answer) == ("JPEG", (32, 32))
        sizes.append(len(answer.content))
    assert sizes[0] < sizes[1]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"format": "gif"}, "format"),
        ({"format": "jpg"}, "format"),
        ({"format": "webp", "quality": "0"}, "quality"),
        ({"format": "jpeg", "quality": "101"}, "quality"),
        ({"format": "png", "quality": "90"}, "quality"),
        ({"quality": "90"}, "quality"),
    ],
)
def test_a_bad_format_or_quality_is_refused_with_the_field_named(http, fields, field):
    before = len(http.get("/v1/jobs").json()["jobs"])
    form = translate(http, **fields)
    as_json = {k: int(v) if k == "quality" else v for k, v in fields.items()}
    body = http.post("/v1/samples", json={"model": SAMPLER, **as_json})
    for answer in (form, body):
        assert answer.status_code == 422, answer.text
        problem = answer.json()
        assert problem["code"] == "invalid_field" and f"'{field}'" in problem["detail"]
    assert [e["field"] for e in body.json()["errors"]] == [field]
    assert len(http.get("/v1/jobs").json()["jobs"]) == before  # nothing queued


def test_the_python_client_asks_for_a_format(http):
    with Client(str(http.base_url)) as client:
        picture = client.translate(png(20, 16, seed=2), TRANSLATOR, format="webp", quality=70)
        assert (picture.format, picture.size) == ("WEBP", (20, 16))
        (sample,) = client.sample(SAMPLER, 1, seed=1, format="jpeg")
        assert (sample.format, sample.size) == ("JPEG", (32, 32))
        assert client.translate(png(8, 8), TRANSLATOR).format == "PNG"
        with pytest.raises(InvalidField) as info:
            client.sample(SAMPLER, 1, quality=50)
        assert "quality" in str(info.value)
