"""The gateway's side of the latent space: samples from given latents, filters, interpolations,
projections, and a job's latents file. No worker runs: jobs stay queued; earlier jobs that kept
latents are written into the real Redis and storage as a worker leaves them."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from core.jobs import Job, JobKind, JobStatus
from core.storage import LATENTS_FILE
from service.security import ANONYMOUS
from tests.service.conftest import Gateway, start_gateway
from tests.service.factories import (
    TEST_LATENT_DIM,
    expect_error,
    given,
    image_bytes,
    sample_result,
    translation_result,
    truncated_png,
    write_model_folder,
    write_test_models,
)

Z = TEST_LATENT_DIM


@pytest.fixture(scope="module")
def server(redis_url, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway with the test models, and a U-Net GAN that carries its discriminator."""
    gateway = start_gateway(tmp_path_factory.mktemp("latents"), redis_url)
    models_dir = gateway.data_dir / "models"
    write_test_models(models_dir)
    write_model_folder(
        models_dir,
        "digits-d",
        architecture="unetgan-generator",
        family="unetgan",
        task="sample",
        num_classes=10,
        discriminator="unetgan-discriminator",
    )
    yield gateway
    gateway.stop()


@pytest.fixture
def client(server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def kept_job(
    server: Gateway,
    *,
    kind: JobKind = JobKind.sample,
    count: int = 3,
    labels: list[int] | None = None,
    status: JobStatus = JobStatus.succeeded,
    owner: str = ANONYMOUS,
) -> str:
    """An earlier job that kept `count` latents, as a worker leaves it (record and file)."""
    store = server.store()
    job = store.create(Job(owner=owner, kind=kind, model="digits"))
    result = (
        sample_result(count, model="digits@1", latent_dim=Z, class_labels=labels)
        if kind is JobKind.sample
        else translation_result(8, 8, model="digits@1")
    )
    store.update(job.id, status=status, result=result if status is JobStatus.succeeded else None)
    folder = server.data_dir / "results" / job.id
    folder.mkdir(parents=True)
    np.save(folder / LATENTS_FILE, np.ones((count, Z), np.float32))
    return job.id


def test_sample_from_vectors(client):
    latents = [[0.5] * Z, [-1.25] * Z]
    response = client.post("/v1/samples", json={"model": "faces", "latents": latents})
    assert response.status_code == 202, response.text
    params = response.json()["params"]
    assert given(params) == {"count": 2, "latents": latents}  # no seed: nothing is drawn


def test_sample_from_vectors_of_a_conditional_model(client):
    body = {"model": "digits", "latents": [[0.0] * Z] * 2, "class_labels": [3, 9]}
    response = client.post("/v1/samples", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["params"]["class_labels"] == [3, 9]
    body = {"model": "digits", "latents": [[0.0] * Z] * 2, "class_label": 4}
    assert client.post("/v1/samples", json=body).json()["params"]["class_labels"] == [4, 4]


def test_sample_from_an_earlier_jobs_latents(client, server):
    source = kept_job(server, labels=[1, 2, 3])
    body = {"model": "digits", "latents": {"job": source, "indices": [2, 0]}}
    response = client.post("/v1/samples", json=body)
    assert response.status_code == 202, response.text
    params = response.json()["params"]
    assert params["latents"] == {"job": source, "indices": [2, 0]}
    assert params["class_labels"] == [3, 1]  # the classes they were drawn with
    assert params["count"] == 2
    everything = client.post("/v1/samples", json={"model": "digits", "latents": {"job": source}})
    assert everything.json()["params"]["latents"]["indices"] == [0, 1, 2]


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"latents": [[0.0] * (Z + 1)]}, "latent_length", "takes latents of 8"),
        ({"latents": [[0.0] * Z, [0.0] * (Z - 1)]}, "invalid_field", "same length"),
        ({"latents": []}, "invalid_field", "latents"),
        ({"latents": [[]]}, "invalid_field", "latents"),
        ({"latents": [["a"] * Z]}, "invalid_field", "latents.0.0"),
        ({"latents": [[0.0] * Z] * 65}, "invalid_field", "at most 64"),
        ({"latents": [[0.0] * Z], "count": 2}, "invalid_field", "count"),
        ({"latents": [[0.0] * Z], "seed": 1}, "invalid_field", "seed"),
        ({"latents": [[0.0] * Z], "truncation": 0.5}, "invalid_field", "truncation"),
        ({"latents": [[0.0] * Z], "class_labels": [1]}, "invalid_field", "unconditional"),
        ({"class_labels": [1]}, "invalid_field", "class_labels go with latents"),
        ({"latents": {"job": "x", "extra": 1}}, "invalid_field", "latents.extra"),
        ({"latents": {"job": "x", "indices": [-1]}}, "invalid_field", "indices"),
    ],
)
def test_bad_latents_are_422(client, body, code, words):
    message = expect_error(client.post("/v1/samples", json={"model": "faces", **body}), 422, code)
    assert words in message


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_latents_are_422(client, number):
    body = '{"model": "faces", "latents": [[' + number + ", 0, 0, 0, 0, 0, 0, 0]]}"
    response = client.post(
        "/v1/samples", content=body, headers={"Content-Type": "application/json"}
    )
    message = expect_error(response, 422, "invalid_field")
    assert "latents.0.0" in message and "finite" in message


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"latents": [[0.0] * Z]}, "class_labels_required"),
        ({"latents": [[0.0] * Z], "class_labels": [1, 2]}, "invalid_field"),
        ({"latents": [[0.0] * Z], "class_labels": [10]}, "invalid_field"),
        ({"latents": [[0.0] * Z], "class_labels": [1], "class_label": 1}, "invalid_field"),
    ],
)
def test_bad_classes_of_latents_are_422(client, body, code):
    expect_error(client.post("/v1/samples", json={"model": "digits", **body}), 422, code)


def test_bad_references_to_earlier_latents(client, server):
    unknown = client.post("/v1/samples", json={"model": "digits", "latents": {"job": "nope"}})
    expect_error(unknown, 404, "job_not_found")
    queued = kept_job(server, status=JobStatus.queued)
    body = {"model": "digits", "latents": {"job": queued}}
    expect_error(client.post("/v1/samples", json=body), 409, "source_not_ready")
    translation = kept_job(server, kind=JobKind.translation)
    body = {"model": "digits", "latents": {"job": translation}}
    expect_error(client.post("/v1/samples", json=body), 422, "no_latents")
    source = kept_job(server, labels=[1, 2, 3])
    body = {"model": "digits", "latents": {"job": source, "indices": [3]}}
    assert "no index 3" in expect_error(client.post("/v1/samples", json=body), 422, "invalid_field")
    someone_else = kept_job(server, owner="another-key-owner")
    body = {"model": "digits", "latents": {"job": someone_else}}
    expect_error(client.post("/v1/samples", json=body), 404, "job_not_found")


def test_filters(client):
    body = {"model": "digits-d", "count": 4, "seed": 1, "filter": {"method": "top"}}
    response = client.post("/v1/samples", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["params"]["filter"] == {"method": "top", "keep": 0.5, "pixel_weight": 0}
    body["filter"] = {"method": "drs", "percentile": 90}
    assert client.post("/v1/samples", json=body).json()["params"]["filter"]["method"] == "drs"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "digits", "filter": {"method": "top"}}, 409, "no_discriminator"),
        ({"model": "digits-d", "filter": {"method": "best"}}, 422, "invalid_field"),
        ({"model": "digits-d", "filter": {"method": "top", "keep": 0}}, 422, "invalid_field"),
        ({"model": "digits-d", "filter": {"method": "top", "keep": 1.5}}, 422, "invalid_field"),
        ({"model": "digits-d", "filter": {"method": "drs", "burn_in": 2}}, 422, "invalid_field"),
        ({"model": "digits-d", "filter": {"keep": 0.5}}, 422, "invalid_field"),
        (
            {"model": "digits-d", "filter": {"method": "top"}, "latents": [[0.0] * Z]},
            422,
            "invalid_field",
        ),
    ],
)
def test_bad_filters(client, body, status, code):
    expect_error(client.post("/v1/samples", json=body), status, code)


def test_interpolation_between_seeds(client):
    body = {"model": "faces", "start": {"seed": 1}, "end": {"seed": 2}, "frames": 5}
    response = client.post("/v1/interpolations", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "interpolation"
    assert job["params"]["frames"] == 5
    assert job["params"]["start"]["seed"] == 1


def test_interpolation_from_an_earlier_job_takes_its_class(client, server):
    source = kept_job(server, labels=[4, 5, 6])
    body = {
        "model": "digits",
        "start": {"job": source, "index": 2},
        "end": {"latent": [0.1] * Z, "class_label": 0},
        "path": "linear",
    }
    response = client.post("/v1/interpolations", json=body)
    assert response.status_code == 202, response.text
    params = response.json()["params"]
    assert params["start"]["class_label"] == 6
    assert params["end"]["class_label"] == 0
    assert params["path"] == "linear"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"frames": 1}, 422, "invalid_field"),
        ({"frames": 121}, 422, "invalid_field"),
        ({"path": "spline"}, 422, "invalid_field"),
        ({"fps": 0}, 422, "invalid_field"),
        ({"start": {"seed": 1, "latent": [0.0] * Z}}, 422, "invalid_field"),
        ({"start": {}}, 422, "invalid_field"),
        ({"start": {"latent": [0.0] * 3}}, 422, "latent_length"),
        ({"start": {"latent": [float("nan")] * Z}}, 422, "invalid_field"),
        ({"start": {"seed": 1, "class_label": 0}}, 422, "invalid_field"),
        ({"end": {"job": "nope"}}, 404, "job_not_found"),
        ({"model": "facades"}, 422, "wrong_model_task"),
        ({"model": "nope"}, 404, "model_not_found"),
    ],
)
def test_bad_interpolations(client, body, status, code):
    request = {"model": "faces", "start": {"seed": 1}, "end": {"seed": 2}, **body}
    response = client.post(
        "/v1/interpolations",
        content=json.dumps(request),
        headers={"Content-Type": "application/json"},
    )
    expect_error(response, status, code)


def test_conditional_interpolation_needs_the_class_of_a_vector(client):
    body = {"model": "digits", "start": {"latent": [0.0] * Z}, "end": {"seed": 3}}
    expect_error(client.post("/v1/interpolations", json=body), 422, "class_labels_required")


def project(http, image: bytes | None = None, **form) -> httpx.Response:
    files = {"image": ("photo.png", image or image_bytes((40, 30)), "image/png")}
    return http.post("/v1/projections", data={"model": "digits-d", **form}, files=files)


def test_projection_is_queued_with_its_upload(client, server):
    response = project(client, steps="20", seed="5", class_label="3")
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "projection"
    assert given(job["params"]) == {
        "width": 40,
        "height": 30,
        "steps": 20,
        "seed": 5,
        "class_label": 3,
        "discriminator_loss": "auto",
    }  # the upload's path stays inside
    assert (server.data_dir / "uploads" / job["id"] / "input.png").is_file()
    expect_error(client.get(f"/v1/jobs/{job['id']}/preview"), 404, "no_preview")


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"model": "faces", "discriminator_loss": "on"}, 409, "no_discriminator"),
        ({"discriminator_loss": "always"}, 422, "invalid_field"),
        ({"steps": "0"}, 422, "invalid_field"),
        ({"steps": "5001"}, 422, "invalid_field"),
        ({"class_label": "10"}, 422, "invalid_field"),
        ({"model": "faces", "class_label": "0"}, 422, "invalid_field"),
        ({"model": "facades"}, 422, "wrong_model_task"),
        ({"model": "nope"}, 404, "model_not_found"),
    ],
)
def test_bad_projections(client, form, status, code):
    expect_error(project(client, **form), status, code)


def test_bad_projection_images(client, server):
    expect_error(project(client, truncated_png()), 400, "bad_image")
    expect_error(project(client, b"not an image at all"), 415, "unsupported_type")


def test_latents_file(client, server):
    source = kept_job(server, count=2)
    response = client.get(f"/v1/jobs/{source}/latents.npy")
    assert response.status_code == 200
    assert np.load(io.BytesIO(response.content), allow_pickle=False).shape == (2, Z)
    assert client.get(f"/v1/jobs/{source}").json()["result"]["latents_url"] == (
        f"/v1/jobs/{source}/latents.npy"
    )
    queued = client.post("/v1/samples", json={"model": "faces"}).json()["id"]
    expect_error(client.get(f"/v1/jobs/{queued}/latents.npy"), 404, "no_latents")
    expect_error(client.get(f"/v1/jobs/{queued}/animation.webp"), 404, "no_animation")
    expect_error(client.get(f"/v1/jobs/{queued}/animation.png"), 422, "invalid_field")
    expect_error(client.get("/v1/jobs/nope/latents.npy"), 404, "job_not_found")
