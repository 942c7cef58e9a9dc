"""Fixtures shared by the tests: a real Redis server (the embedded one) and its databases, a real
S3-compatible server (SeaweedFS), and the recording of every error message the tests provoke
(none may name a server path)."""

import functools
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ganserve.embedded_redis import EmbeddedRedis
from tests.s3_server import S3Server, aws_environment, seaweedfs

# The test Redis's databases: modules and servers that need a fresh one each take their own.
TEST_DATABASES = 64


def redis_db(url: str, db: int) -> str:
    """The same Redis server's database `db` (tests give each module or server its own)."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real redis-server for the session, stopped at its end."""
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), databases=TEST_DATABASES) as server:
        yield server.url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """A real S3-compatible server (SeaweedFS) for the session, stopped at its end."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_url(s3_server) -> Iterator[str]:
    """`s3://ganserve-tests/<new prefix>`: an empty place on the session's S3 server (one bucket:
    SeaweedFS gives each bucket volumes of its own), with the server's `AWS_*` variables set in
    this process for the test."""
    with aws_environment(s3_server):
        yield f"s3://ganserve-tests/{uuid.uuid4().hex[:16]}"


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


# ---------------------------------------------------------------------------------------------
# Error messages never name a server path
#
# Every error message the suite provokes is recorded: each non-2xx JSON response body and each
# job error in a JSON response that an httpx client (the tests' HTTP clients, TestClient, the
# stack helpers) receives, each job error read from or written to a job store, each JobFailure
# and ApiError raised in the test process. After each test, the messages it provoked are
# scanned: none may contain the session's temporary base folder (every storage root of the
# tests lies in it), nor `core.server_paths.STORAGE_PLACEHOLDER` (which means a source leaked a
# path that only the last line of defence hid).


class ErrorMessages:
    """The error messages seen so far in this session, as (where, message)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def add(self, where: str, message: object) -> None:
        if isinstance(message, str) and message:
            self.seen.append((where, message))

    def add_response(self, response) -> None:
        """Record an httpx response's error body (non-2xx) or the job errors in its JSON."""
        if "json" not in response.headers.get("content-type", ""):
            return
        try:
            body = response.json()
        except Exception:  # a streamed or unreadable body: nothing to record
            return
        where = f"{response.request.method} {response.request.url.path}"
        if response.status_code >= 400:
            self.add(f"{where} -> {response.status_code}", json.dumps(body))
            return
        for error in _job_errors(body):
            self.add(f"{where} -> job error", error)


def _job_errors(value) -> list[str]:
    """The messages of every {"error": {"message": ...}} inside a JSON value."""
    found: list[str] = []
    if isinstance(value, dict):
        error = value.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            found.append(error["message"])
        for item in value.values():
            found += _job_errors(item)
    elif isinstance(value, list):
        for item in value:
            found += _job_errors(item)
    return found


ERROR_MESSAGES = ErrorMessages()


def _recording(method, record):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        result = method(*args, **kwargs)
        record(result)
        return result

    return wrapper


def _recording_init(cls, where: str):
    original = cls.__init__

    @functools.wraps(original)
    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        ERROR_MESSAGES.add(where, getattr(self, "message", None))

    return init


def _record_job(job) -> None:
    if job is not None and getattr(job, "error", None) is not None:
        ERROR_MESSAGES.add(f"job {job.id} ({job.kind.value})", job.error.message)


@pytest.fixture(scope="session", autouse=True)
def error_messages() -> Iterator[ErrorMessages]:
    """Record every error message the session's tests see (see above)."""
    import httpx

    from core.jobs import JobStore
    from service.errors import ApiError
    from workers.errors import JobFailure

    def record_async(send):
        @functools.wraps(send)
        async def wrapper(*args, **kwargs):
            response = await send(*args, **kwargs)
            if not kwargs.get("stream"):
                ERROR_MESSAGES.add_response(response)
            return response

        return wrapper

    def record_sync(send):
        @functools.wraps(send)
        def wrapper(*args, **kwargs):
            response = send(*args, **kwargs)
            if not kwargs.get("stream"):
                ERROR_MESSAGES.add_response(response)
            return response

        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.Client, "send", record_sync(httpx.Client.send))
        patch.setattr(httpx.AsyncClient, "send", record_async(httpx.AsyncClient.send))
        patch.setattr(JobStore, "get", _recording(JobStore.get, _record_job))
        patch.setattr(JobStore, "update", _recording(JobStore.update, _record_job))
        patch.setattr(JobFailure, "__init__", _recording_init(JobFailure, "JobFailure"))
        patch.setattr(ApiError, "__init__", _recording_init(ApiError, "ApiError"))
        yield ERROR_MESSAGES


def server_path_spellings(root: Path) -> list[str]:
    """The ways a message could name `root` (as given and resolved)."""
    return sorted({str(root), os.path.realpath(root)}, key=len, reverse=True)


def path_leaks(messages: list[tuple[str, str]], roots: list[Path]) -> list[tuple[str, str]]:
    """The messages that name one of `roots`, or that the last line of defence had to clean."""
    from core.server_paths import STORAGE_PLACEHOLDER

    spellings = [s for root in roots for s in server_path_spellings(root)]
    return [
        (where, message)
        for where, message in messages
        if STORAGE_PLACEHOLDER in message or any(s in message for s in spellings)
    ]


@pytest.fixture(autouse=True)
def _no_server_path_in_errors(error_messages, tmp_path_factory) -> Iterator[None]:
    """Fail a test whose provoked error messages name a path under the session's base folder."""
    start = len(error_messages.seen)
    yield
    leaks = path_leaks(error_messages.seen[start:], [tmp_path_factory.getbasetemp()])
    if leaks:
        shown = "\n".join(f"  {where}: {message}" for where, message in leaks[:10])
        pytest.fail(f"error messages name a server path:\n{shown}", pytrace=False)
