"""service.errors: a gateway whose Redis is down or full answers 503 in the error shape."""

from collections.abc import Iterator

import pytest
import redis

from core.jobs import QUEUE_INFER
from core.queues import queue_length
from ganserve.embedded_redis import EmbeddedRedis, free_port
from tests.service.conftest import Gateway, start_gateway
from tests.service.factories import image_bytes


def submissions(http) -> list:
    """A sample and a translation submitted to the gateway (the requests that queue jobs)."""
    return [
        http.post("/v1/samples", json={"model": "faces"}),
        http.post(
            "/v1/translations", files={"image": ("a.png", image_bytes())}, data={"model": "facades"}
        ),
    ]


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
        assert ready.json()["code"] == "not_ready"
        assert "Redis" in ready.json()["detail"]
        for response in (
            http.get("/v1/jobs"),
            http.get("/v1/jobs/" + "0" * 32),
            *submissions(http),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "broker_unavailable"
            assert "Retry-After" in response.headers
        assert http.get("/v1/models").status_code == 200  # files only: still served


@pytest.fixture
def full_redis(tmp_path) -> Iterator[tuple[Gateway, redis.Redis]]:
    """A gateway on its own Redis (noeviction, as the embedded one), which a test fills up."""
    with EmbeddedRedis(tmp_path / "redis") as server:
        gateway = start_gateway(tmp_path / "gateway", server.url, own_database=False)
        try:
            yield gateway, redis.Redis.from_url(server.url)
        finally:
            gateway.stop()


def test_redis_out_of_memory_refuses_new_jobs_with_503_and_keeps_the_queued_ones(full_redis):
    gateway, client = full_redis
    with gateway.client() as http:
        queued = [http.post("/v1/samples", json={"model": "faces", "seed": k}) for k in range(3)]
        assert [r.status_code for r in queued] == [202] * 3
        client.config_set("maxmemory", client.info("memory")["used_memory"] // 2)  # full now
        assert http.get("/readyz").json()["detail"].startswith("Redis is out of memory")
        uploads = gateway.data_dir / "uploads"
        before = sorted(uploads.iterdir()) if uploads.exists() else []
        for response in submissions(http):
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "queue_unavailable"
            assert "out of memory" in response.json()["detail"]
            assert "Retry-After" in response.headers
        after = sorted(uploads.iterdir()) if uploads.exists() else []
        assert after == before  # the refused translation's upload was not kept
        for response in queued:  # nothing queued before is lost
            job = http.get(response.json()["url"]).json()
            assert job["status"] == "queued"
        assert queue_length(client, QUEUE_INFER) == 3
        client.config_set("maxmemory", 0)  # room again: submissions work, nothing to restart
        assert http.post("/v1/samples", json={"model": "faces"}).status_code == 202
        assert queue_length(client, QUEUE_INFER) == 4
