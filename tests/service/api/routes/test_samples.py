"""POST /v1/samples."""

import pytest

from tests.service.factories import given


def test_sample_job_records_a_seed(client, gateway):
    response = client.post("/v1/samples", json={"model": "faces", "count": 4})
    assert response.status_code == 202
    job = response.json()
    assert job["kind"] == "sample"
    assert job["status"] == "queued"
    assert job["model"] == "faces@1" and job["model_digest"].startswith("sha256:")
    params = job["params"]
    assert params["count"] == 4
    assert isinstance(params["seed"], int)  # chosen at random, recorded for reproducibility
    assert gateway.store().get(job["id"]).params["seed"] == params["seed"]


def test_conditional_sample(client):
    response = client.post(
        "/v1/samples",
        json={"model": "digits", "count": 64, "seed": 3, "class_label": 9, "truncation": 0.7},
    )
    assert response.status_code == 202
    assert given(response.json()["params"]) == {
        "count": 64,
        "seed": 3,
        "class_label": 9,
        "truncation": 0.7,
    }


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"model": "faces", "count": 0}, "invalid_field", "count"),
        ({"model": "faces", "count": 65}, "invalid_field", "count"),
        ({"model": "faces", "count": "many"}, "invalid_field", "count"),
        ({"model": "faces", "truncation": 0}, "invalid_field", "truncation"),
        ({"model": "faces", "seed": -5}, "invalid_field", "seed"),
        ({"model": "faces", "colour": "red"}, "invalid_field", "colour"),
        ({"count": 2}, "invalid_field", "model"),
        ({"model": "digits", "class_label": 10}, "invalid_field", "class_label"),
        ({"model": "digits", "class_label": -1}, "invalid_field", "class_label"),
        ({"model": "faces", "class_label": 0}, "invalid_field", "class_label"),
        ({"model": "facades"}, "wrong_model_task", "facades"),
    ],
)
def test_invalid_samples_are_422(client, body, code, field):
    response = client.post("/v1/samples", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == code
    assert field in error["detail"]


def test_unknown_model_is_404(client):
    response = client.post("/v1/samples", json={"model": "nope"})
    assert response.status_code == 404
    assert response.json()["code"] == "model_not_found"


def test_the_result_format_asked_for_is_recorded(client):
    body = {"model": "faces", "count": 2, "seed": 1, "format": "jpeg", "quality": 55}
    response = client.post("/v1/samples", json=body)
    assert response.status_code == 202, response.text
    assert given(response.json()["params"]) == {
        "count": 2,
        "seed": 1,
        "format": "jpeg",
        "quality": 55,
    }
    latents = client.post(
        "/v1/samples", json={"model": "faces", "latents": [[0.0] * 8], "format": "webp"}
    )
    assert latents.status_code == 202, latents.text
    assert latents.json()["params"]["format"] == "webp"


@pytest.mark.parametrize(
    ("fields", "field", "needle"),
    [
        ({"format": "gif"}, "format", "'png', 'webp' or 'jpeg'"),
        ({"format": "webp", "quality": 0}, "quality", "greater than or equal to 1"),
        ({"format": "jpeg", "quality": 100.5}, "quality", "valid integer"),
        ({"format": "png", "quality": 80}, "quality", "png is lossless"),
        ({"quality": 80}, "quality", "png is lossless"),
    ],
)
def test_a_bad_format_or_quality_is_422(client, fields, field, needle):
    response = client.post("/v1/samples", json={"model": "faces", **fields})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_field"
    assert [error["field"] for error in problem["errors"]] == [field]
    assert needle in problem["detail"]
