"""Fixtures shared by the tests: a real Redis server (the embedded one) and its databases."""

from collections.abc import Iterator

import pytest
import redis

from ganserve.embedded_redis import EmbeddedRedis


def redis_db(url: str, db: int) -> str:
    """The same Redis server's database `db` (tests give each module or server its own)."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real redis-server for the session, stopped at its end."""
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def redis_client(redis_url) -> Iterator[redis.Redis]:
    """A client on a flushed database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def one_torch_thread():
    """Tiny networks on a shared 2-core machine: one torch thread avoids oversubscription."""
    import torch  # here, so that tests of the torch-free gateway do not load it

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
