"""API keys (`GANSERVE_API_KEYS`): who may call /v1 and who sees what."""

import pytest

from tests.service.api.routes.test_datasets import upload
from tests.service.conftest import KEYS
from tests.service.factories import images_zip

ALPHA, BETA = KEYS


def test_open_routes_need_no_key(keyed_gateway):
    with keyed_gateway.client() as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/docs").status_code == 200
        assert http.get("/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer wrong-key"}, "invalid_api_key"),
        ({"Authorization": f"Basic {ALPHA}"}, "invalid_api_key"),
        ({"Authorization": "Bearer"}, "invalid_api_key"),
    ],
)
def test_v1_needs_a_valid_key(keyed_gateway, headers, code):
    with keyed_gateway.client() as http:
        for method, path in (("GET", "/v1/models"), ("GET", "/v1/jobs"), ("POST", "/v1/samples")):
            response = http.request(method, path, headers=headers)
            assert response.status_code == 401
            assert response.json()["code"] == code
            assert response.headers["WWW-Authenticate"] == "Bearer"


def test_upload_without_key_is_refused_before_its_body(keyed_gateway):
    with keyed_gateway.client() as http:
        response = http.post("/v1/datasets", files={"archive": ("a.zip", b"x" * 100_000)})
        assert response.status_code == 401


def test_a_key_sees_only_its_own_jobs(keyed_gateway):
    with keyed_gateway.client(ALPHA) as alpha, keyed_gateway.client(BETA) as beta:
        assert alpha.get("/v1/models").status_code == 200
        job = alpha.post("/v1/samples", json={"model": "faces"}).json()
        assert alpha.get(f"/v1/jobs/{job['id']}").status_code == 200
        hidden = beta.get(f"/v1/jobs/{job['id']}")
        assert hidden.status_code == 404
        assert hidden.json()["code"] == "job_not_found"
        assert beta.post(f"/v1/jobs/{job['id']}/cancel").status_code == 404
        assert beta.get(f"/v1/jobs/{job['id']}/images/0").status_code == 404
        assert job["id"] not in [j["id"] for j in beta.get("/v1/jobs").json()["jobs"]]
        assert job["id"] in [j["id"] for j in alpha.get("/v1/jobs").json()["jobs"]]
        record = keyed_gateway.store().get(job["id"])
        assert record.owner not in KEYS and ALPHA not in record.owner  # never the key itself


def test_a_key_sees_only_its_own_datasets(keyed_gateway):
    with keyed_gateway.client(ALPHA) as alpha, keyed_gateway.client(BETA) as beta:
        dataset = upload(alpha, images_zip(1), "images").json()
        assert alpha.get(f"/v1/datasets/{dataset['id']}").status_code == 200
        assert beta.get(f"/v1/datasets/{dataset['id']}").status_code == 404
        assert dataset not in beta.get("/v1/datasets").json()["datasets"]
        assert dataset in alpha.get("/v1/datasets").json()["datasets"]
        run = beta.post("/v1/training-runs", json={"family": "pggan", "dataset": dataset["id"]})
        assert run.status_code == 404
        assert run.json()["code"] == "dataset_not_found"
