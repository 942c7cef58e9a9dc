"""The application: liveness, docs, metrics and the error shape for routing errors."""

import pytest

from service.app import create_app


def test_create_app_is_cheap_and_side_effect_free(tmp_path):
    from core.settings import Settings

    app = create_app(Settings(data_dir=tmp_path / "nowhere", redis_url="redis://127.0.0.1:1/0"))
    assert app.title == "ganserve"
    assert not (tmp_path / "nowhere").exists()  # folders are made at startup, not at creation


def test_docs_and_openapi(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/healthz",
        "/readyz",
        "/v1/models",
        "/v1/models/{model_id}",
        "/v1/translations",
        "/v1/samples",
        "/v1/datasets",
        "/v1/datasets/{dataset_id}",
        "/v1/training-runs",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/images/{k}",
    ):
        assert path in paths, path
    assert "delete" in paths["/v1/jobs/{job_id}"]
    assert "post" in paths["/v1/jobs/{job_id}/cancel"]


def test_metrics(client):
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "http_request" in response.text


@pytest.mark.parametrize("path", ["/nope", "/v1/nope", "/v1/jobs/x/y/z"])
def test_unknown_route_is_404_in_the_error_shape(client, path):
    response = client.get(path)
    assert response.status_code == 404
    error = response.json()
    assert error["code"] == "not_found"
    assert path in error["detail"]


def test_wrong_method_is_405_in_the_error_shape(client):
    response = client.put("/v1/models")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert "GET" in response.json()["detail"]


def test_malformed_json_is_422_in_the_error_shape(client):
    response = client.post(
        "/v1/samples", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    error = response.json()
    assert error["code"] == "invalid_field"
    assert "JSON" in error["detail"]


def test_oversized_json_body_is_413(client):
    response = client.post(
        "/v1/samples",
        content=b'{"model": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert client.get("/healthz").status_code == 200
