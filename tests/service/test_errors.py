"""service.errors: a gateway whose Redis is down answers 503 in the error shape."""

from collections.abc import Iterator

import pytest

from ganserve.embedded_redis import free_port
from tests.service.conftest import Gateway, start_gateway
from tests.service.factories import image_bytes


@pytest.fixture(scope="module")
def orphan_gateway(tmp_path_factory) -> Iterator[Gateway]:
    """A gateway pointed at a Redis that does not exist."""
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    server = start_gateway(tmp_path_factory.mktemp("orphan"), nowhere, own_database=False)
    yield server
    server.stop()


def test_redis_down_is_503(orphan_gateway):
    with orphan_gateway.client() as http:
        assert http.get("/healthz").status_code == 200
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "not_ready"
        assert "Redis" in ready.json()["error"]["message"]
        for response in (
            http.get("/v1/jobs"),
            http.get("/v1/jobs/" + "0" * 32),
            http.post("/v1/samples", json={"model": "faces"}),
            http.post(
                "/v1/translations",
                files={"image": ("a.png", image_bytes())},
                data={"model": "facades"},
            ),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "broker_unavailable"
            assert "Retry-After" in response.headers
        assert http.get("/v1/models").status_code == 200  # files only: still served
