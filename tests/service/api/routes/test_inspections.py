"""POST /v1/inspections: which models can draw a realness map, the image sources, bad input."""

from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from core.jobs import Job, JobKind, JobStatus
from core.queues import queue_length
from tests.service.conftest import KEYS, Gateway, start_gateway
from tests.service.factories import (
    expect_error,
    given,
    image_bytes,
    translation_result,
    truncated_png,
    write_model_folder,
)

MODELS = {
    # id: (architecture, family, task, classes, discriminator)
    "facades-d": ("pix2pix-generator", "pix2pix", "translate", 0, "pix2pix-discriminator"),
    "faces-d": ("unetgan-generator", "unetgan", "sample", 0, "unetgan-discriminator"),
    "digits-d": ("unetgan-generator", "unetgan", "sample", 3, "unetgan-discriminator"),
    "growing-d": ("pggan-generator", "pggan", "sample", 0, "pggan-discriminator"),
}


UPLOAD_LIMIT = 20000


@pytest.fixture(scope="module")
def server(redis_url, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway with API keys, a small upload limit and models carrying discriminators."""
    gateway = start_gateway(
        tmp_path_factory.mktemp("inspections"),
        redis_url,
        {"GANSERVE_API_KEYS": ",".join(KEYS), "GANSERVE_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)},
    )
    for model_id, (arch, family, task, classes, disc) in MODELS.items():
        write_model_folder(
            gateway.data_dir / "models",
            model_id,
            architecture=arch,
            family=family,
            task=task,
            num_classes=classes,
            discriminator=disc,
        )
    yield gateway
    gateway.stop()


@pytest.fixture
def client(server) -> Iterator[httpx.Client]:
    """A client of KEYS[0]."""
    with server.client(KEYS[0]) as http:
        yield http


def inspect(http, image: bytes | None = None, *, model: str = "faces-d", input=None, **form):
    files = {}
    if image is not None:
        files["image"] = ("x.png", image, "image/png")
    if input is not None:
        files["input"] = ("a.png", input, "image/png")
    return http.post("/v1/inspections", files=files or None, data={"model": model, **form})


def test_models_say_whether_they_carry_a_discriminator(client):
    listed = {m["id"]: m["discriminator"] for m in client.get("/v1/models").json()["models"]}
    assert listed["faces-d"] is True
    assert listed["facades"] is False


def test_an_upload_is_queued_with_its_image_stored(client, server):
    before = queue_length(server.redis(), "infer")
    response = inspect(client, image_bytes((40, 30)))
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["kind"], job["status"], job["model"]) == ("inspection", "queued", "faces-d@1")
    assert given(job["params"]) == {"width": 40, "height": 30}  # no storage path
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    record = server.store().get(job["id"])
    assert Image.open(server.data_dir / record.params["image"]).size == (40, 30)
    assert queue_length(server.redis(), "infer") == before + 1


def test_pix2pix_needs_its_input_of_the_same_size(client, server):
    message = expect_error(inspect(client, image_bytes(), model="facades-d"), 422, "input_required")
    assert "send `input`" in message
    mismatch = inspect(
        client, image_bytes((32, 24)), model="facades-d", input=image_bytes((24, 24))
    )
    assert "32x24" in expect_error(mismatch, 422, "size_mismatch")
    response = inspect(
        client, image_bytes((32, 24)), model="facades-d", input=image_bytes((32, 24), mode="L")
    )
    assert response.status_code == 202, response.text
    record = server.store().get(response.json()["id"])
    assert Image.open(server.data_dir / record.params["input"]).size == (32, 24)


def test_a_model_without_a_discriminator_is_409(client):
    message = expect_error(inspect(client, image_bytes(), model="facades"), 409, "no_discriminator")
    assert "no trained discriminator" in message


def test_progressive_gan_draws_no_map(client):
    message = expect_error(
        inspect(client, image_bytes(), model="growing-d"), 422, "not_inspectable"
    )
    assert "pix2pix or U-Net GAN" in message


def test_unknown_model_is_404(client):
    expect_error(inspect(client, image_bytes(), model="nope"), 404, "model_not_found")


def test_class_labels_follow_the_model(client):
    assert inspect(client, image_bytes(), model="digits-d", class_label="2").status_code == 202
    expect_error(
        inspect(client, image_bytes(), model="digits-d", class_label="3"), 422, "invalid_field"
    )
    expect_error(
        inspect(client, image_bytes(), model="faces-d", class_label="0"), 422, "invalid_field"
    )


@pytest.mark.parametrize(
    ("image", "status", "code"),
    [
        (b"not an image at all", 415, "unsupported_type"),
        (truncated_png(), 400, "bad_image"),
        (b"", 400, "bad_image"),
    ],
)
def test_bad_images(client, image, status, code):
    expect_error(inspect(client, image), status, code)


def test_image_and_source_job_exclude_each_other(client):
    expect_error(inspect(client), 422, "invalid_field")
    both = inspect(client, image_bytes(), source_job="0" * 32)
    assert "not both" in expect_error(both, 422, "invalid_field")
    expect_error(
        inspect(client, image_bytes(), model="faces-d", input=image_bytes()), 422, "invalid_field"
    )


def _finished_translation(gateway, key: str, size=(20, 16)) -> Job:
    """A translation of `key` that a worker has finished: its input and result on disk."""
    with gateway.client(key) as http:
        response = http.post(
            "/v1/translations",
            files={"image": ("a.png", image_bytes(size), "image/png")},
            data={"model": "facades"},
        )
    job_id = response.json()["id"]
    result = gateway.data_dir / "results" / job_id
    result.mkdir(parents=True)
    Image.new("RGB", size, "green").save(result / "0.png")
    return gateway.store().update(
        job_id, status=JobStatus.succeeded, result=translation_result(*size)
    )


def test_a_translation_result_is_inspected_with_its_own_input(server):
    source = _finished_translation(server, KEYS[0])
    with server.client(KEYS[0]) as http:
        response = inspect(http, model="facades-d", source_job=source.id)
    assert response.status_code == 202, response.text
    job = response.json()
    assert given(job["params"]) == {
        "width": 20,
        "height": 16,
        "source_job": source.id,
        "source_image": 0,
    }
    record = server.store().get(job["id"])
    image = Image.open(server.data_dir / record.params["image"]).convert("RGB")
    assert image.getpixel((0, 0)) == (0, 128, 0)  # the translation's result
    input_image = Image.open(server.data_dir / record.params["input"])
    assert input_image.size == (20, 16)  # the translation's input


def test_a_sample_is_judged_as_the_class_it_was_drawn_as(server, client):
    sample = client.post(
        "/v1/samples", json={"model": "digits-d", "count": 2, "seed": 1, "class_label": 2}
    ).json()
    result = server.data_dir / "results" / sample["id"]
    result.mkdir(parents=True)
    for k in range(2):
        Image.new("RGB", (64, 64), "white").save(result / f"{k}.png")
    server.store().update(sample["id"], status=JobStatus.succeeded)
    inherited = inspect(client, model="digits-d", source_job=sample["id"], source_image="1")
    assert inherited.status_code == 202, inherited.text
    assert inherited.json()["params"]["class_label"] == 2
    chosen = inspect(
        client, model="digits-d", source_job=sample["id"], source_image="1", class_label="0"
    )
    assert chosen.json()["params"]["class_label"] == 0
    unconditional = inspect(client, model="faces-d", source_job=sample["id"], source_image="1")
    assert unconditional.status_code == 202, unconditional.text
    assert unconditional.json()["params"]["class_label"] is None  # a class it lacks: not passed


def test_source_jobs_of_other_owners_are_404(server):
    source = _finished_translation(server, KEYS[0])
    with server.client(KEYS[1]) as http:
        expect_error(inspect(http, source_job=source.id), 404, "job_not_found")
    with server.client() as http:
        assert inspect(http, source_job=source.id).status_code == 401


def test_source_job_must_have_the_image(server):
    store = server.store()
    with server.client(KEYS[0]) as http:
        queued = http.post(
            "/v1/translations",
            files={"image": ("a.png", image_bytes(), "image/png")},
            data={"model": "facades"},
        ).json()
        expect_error(inspect(http, source_job=queued["id"]), 409, "source_not_ready")
        source = _finished_translation(server, KEYS[0])
        expect_error(inspect(http, source_job=source.id, source_image="1"), 404, "image_not_found")
        training = store.create(Job(owner=store.get(source.id).owner, kind=JobKind.training))
        expect_error(inspect(http, source_job=training.id), 422, "invalid_field")


def test_a_body_over_the_limit_is_413(client):
    big = image_bytes((300, 300), noise=True)
    message = expect_error(inspect(client, big), 413, "too_large")
    assert f"limit of {UPLOAD_LIMIT} bytes" in message


def test_result_fields_are_documented(client):
    operation = client.get("/openapi.json").json()["paths"]["/v1/inspections"]["post"]
    assert "least_real_box" in operation["description"]
