"""GET /healthz and GET /readyz."""

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.service.conftest import Gateway, start_gateway


def test_healthz_is_open(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_names_the_queues_without_workers(client):
    started = time.monotonic()
    response = client.get("/readyz")
    assert response.status_code == 503
    error = response.json()
    assert error["code"] == "not_ready"
    assert "infer" in error["detail"]
    assert "train" in error["detail"]
    assert time.monotonic() - started < 5


@pytest.fixture(scope="module")
def workerless_gateway(redis_url, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway told to require no worker (GANSERVE_READY_QUEUES empty), with none running."""
    server = start_gateway(
        tmp_path_factory.mktemp("workerless"), redis_url, {"GANSERVE_READY_QUEUES": ""}
    )
    yield server
    server.stop()


def test_readyz_without_required_queues_needs_only_redis(workerless_gateway):
    with workerless_gateway.client() as http:
        response = http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"redis": "ok", "queues": {"infer": 0, "train": 0}}


@pytest.fixture(scope="module")
def served_gateway(redis_url, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway with a bare Celery worker (no tasks of ours) consuming both queues."""
    server = start_gateway(tmp_path_factory.mktemp("served"), redis_url)
    command = [sys.executable, "-m", "celery", "-b", server.redis_url, "worker"]
    command += ["-Q", "infer,train", "--pool", "solo", "-n", "probe@%h", "--loglevel", "WARNING"]
    command += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
    worker = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield server
    worker.terminate()
    worker.wait(timeout=10)
    server.stop()


def test_readyz_counts_workers_per_queue(served_gateway):
    with served_gateway.client() as http:
        deadline = time.monotonic() + 20
        while (response := http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, response.text
        assert response.json() == {"redis": "ok", "queues": {"infer": 1, "train": 1}}
