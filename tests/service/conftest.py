"""Gateway servers for the tests: the gateway command of `ganserve up` in a subprocess.

Each server gets its own storage root and its own Redis database (on the session's real
redis-server), so queues and job records of one server never mix with another's. Servers are
shared: `gateway` (default settings) by most tests, `keyed_gateway` (API keys) and
`strict_gateway` (small limits) by the tests of those features. No worker runs: jobs stay queued.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from core.jobs import JobStore
from core.settings import Settings
from ganserve.embedded_redis import free_port
from ganserve.processes import gateway_command
from tests.conftest import TEST_DATABASES, redis_db
from tests.service.factories import write_test_models

REPO = Path(__file__).resolve().parents[2]
KEYS = ("alpha-key-1", "beta-key-2")
STRICT = {
    "GANSERVE_MAX_UPLOAD_BYTES": "20000",
    "GANSERVE_MAX_ARCHIVE_BYTES": "30000",
    "GANSERVE_MAX_ARCHIVE_ENTRIES": "5",
    "GANSERVE_MAX_EXTRACTED_BYTES": "50000",
    "GANSERVE_MAX_QUEUED_JOBS": "2",
    "GANSERVE_MAX_MODEL_BYTES": "40000",
}
_databases = itertools.count(1)


@dataclass
class Gateway:
    """A running gateway: its URL, storage root and Redis database."""

    url: str
    data_dir: Path
    redis_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client for the gateway (with `Authorization: Bearer key` when given)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def redis(self) -> redis.Redis:
        """A client on the gateway's Redis database."""
        return redis.Redis.from_url(self.redis_url)

    def store(self) -> JobStore:
        """The gateway's job records."""
        return JobStore(self.redis())

    def stop(self) -> None:
        """End the server process."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_gateway(
    folder: Path, redis_url: str, env: dict[str, str] | None = None, *, own_database: bool = True
) -> Gateway:
    """Start a gateway on a free port, with the test models in its storage root.

    With `own_database`, the gateway uses a fresh database of the Redis at `redis_url`.
    """
    db_url = redis_url
    if own_database:
        database = next(_databases)
        assert database < TEST_DATABASES, "more servers than Redis databases"
        db_url = redis_db(redis_url, database)
        redis.Redis.from_url(db_url).flushdb()
    data_dir = folder / "data"
    write_test_models(data_dir / "models")
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
    environment.update(GANSERVE_DATA_DIR=str(data_dir), GANSERVE_REDIS_URL=db_url, **(env or {}))
    log_path = folder / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*gateway_command(Settings(host="127.0.0.1", port=port)), "--log-level", "warning"],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    gateway = Gateway(f"http://127.0.0.1:{port}", data_dir, db_url, process, log_path)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{gateway.url}/healthz", timeout=1).status_code == 200:
                return gateway
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            gateway.stop()
            raise RuntimeError(f"the gateway did not start:\n{log_path.read_text()}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def gateway(redis_url, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway with default settings (no API keys)."""
    server = start_gateway(tmp_path_factory.mktemp("gateway"), redis_url)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keyed_gateway(redis_url, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway that needs one of `KEYS`."""
    server = start_gateway(
        tmp_path_factory.mktemp("keyed"), redis_url, {"GANSERVE_API_KEYS": ",".join(KEYS)}
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def strict_gateway(redis_url, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway with small limits (`STRICT`)."""
    server = start_gateway(tmp_path_factory.mktemp("strict"), redis_url, STRICT)
    yield server
    server.stop()


@pytest.fixture
def client(gateway) -> Iterator[httpx.Client]:
    """An HTTP client on the default gateway."""
    with gateway.client() as http:
        yield http
