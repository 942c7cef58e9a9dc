"""Which failures are retried, after how long, and a job-creating POST retried only with the
same Idempotency-Key (so that its retries make one job)."""

import socket
import time

import httpx
import pytest

from ganserve.client import AsyncClient, Client
from ganserve.client.errors import (
    Conflict,
    ConnectionFailed,
    InvalidField,
    QueueFull,
    ServerError,
    ServiceUnavailable,
    Timeout,
)
from ganserve.client.retry import RetryPolicy, policy_of
from tests.ganserve.client import run_async
from tests.ganserve.client.fake_server import FakeServer, job, png, problem

FAST = RetryPolicy(retries=3, backoff=0.001, max_backoff=0.01, max_retry_after=0.01)
CREATED = httpx.Response(202, json=job("j1"))


def never_sent() -> ConnectionFailed:
    return ConnectionFailed("refused", sent=False)


def may_have_arrived() -> Timeout:
    return Timeout("read timed out", sent=True)


@pytest.mark.parametrize(
    ("method", "error", "retried"),
    [
        ("POST", never_sent(), True),
        ("POST", Timeout("connect timed out", sent=False), True),
        ("POST", may_have_arrived(), True),  # its Idempotency-Key makes the retry safe
        ("POST", ConnectionFailed("reset", sent=True), True),
        ("POST", Conflict(409, "idempotency_key_in_use", "Busy."), True),
        ("POST", Conflict(409, "job_ended", "Ended."), False),
        ("POST", QueueFull(429, "queue_full", "Full."), True),
        ("POST", ServiceUnavailable(503, "broker_unavailable", "Down."), True),
        ("POST", ServerError(500, "internal_error", "Oops."), False),
        ("POST", InvalidField(422, "invalid_field", "Bad."), False),
        ("DELETE", may_have_arrived(), False),
        ("DELETE", Conflict(409, "idempotency_key_in_use", "Busy."), False),
        ("GET", may_have_arrived(), True),
        ("GET", ConnectionFailed("reset", sent=True), True),
        ("GET", ServerError(500, "internal_error", "Oops."), False),
    ],
)
def test_what_is_retried(method, error, retried):
    assert RetryPolicy().should_retry(method, error) is retried


def test_delays_back_off_exponentially_with_jitter():
    policy = RetryPolicy(backoff=0.5, max_backoff=30)
    for attempt, low in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)):
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(low <= d <= low + 0.5 for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert policy.delay(20) == 30


def test_retry_after_is_honoured_and_capped():
    policy = RetryPolicy(backoff=0.5, max_retry_after=60)
    asked = QueueFull(429, "queue_full", "Full.", retry_after=7)
    assert all(7 <= policy.delay(1, asked) <= 7.5 for _ in range(20))
    greedy = ServiceUnavailable(503, "unavailable", "Down.", retry_after=3600)
    assert policy.delay(1, greedy) <= 60.5


def test_a_count_or_a_policy():
    assert policy_of(5) == RetryPolicy(retries=5)
    assert policy_of(FAST) is FAST
    with pytest.raises(ValueError):
        RetryPolicy(retries=-1)


def _client(server: FakeServer, policy: RetryPolicy = FAST) -> Client:
    return Client("http://ganserve.test", retries=policy, transport=server.transport())


def test_a_post_is_retried_after_a_read_timeout_with_its_idempotency_key():
    server = FakeServer().on("POST", "/v1/samples", httpx.ReadTimeout("slow"), CREATED)
    with _client(server) as client:
        assert client.submit_sample("digits").id == "j1"
        client.submit_sample("digits")  # another call: another key
    keys = [r.headers["Idempotency-Key"] for r in server.calls("POST", "/v1/samples")]
    assert len(keys) == 3 and keys[0] == keys[1] != keys[2]


def test_a_post_is_not_retried_after_a_server_error():
    server = FakeServer().on("POST", "/v1/samples", problem(500, "internal_error"), CREATED)
    with _client(server) as client, pytest.raises(ServerError):
        client.submit_sample("digits")
    assert len(server.calls("POST", "/v1/samples")) == 1


def test_a_post_that_never_left_is_retried():
    server = FakeServer().on("POST", "/v1/samples", httpx.ConnectError("refused"), CREATED)
    with _client(server) as client:
        assert client.submit_sample("digits").id == "j1"
    assert len(server.calls("POST", "/v1/samples")) == 2


def test_a_503_is_retried_after_its_retry_after():
    unavailable = problem(503, "broker_unavailable", headers={"Retry-After": "0.3"})
    server = FakeServer().on("POST", "/v1/samples", unavailable, CREATED)
    policy = RetryPolicy(retries=2, backoff=0.001, max_retry_after=60)
    start = time.monotonic()
    with _client(server, policy) as client:
        assert client.submit_sample("digits").id == "j1"
    assert time.monotonic() - start >= 0.3
    assert len(server.calls("POST", "/v1/samples")) == 2


def test_retries_are_counted():
    full = problem(429, "queue_full", headers={"Retry-After": "1"})
    server = FakeServer().on("POST", "/v1/samples", full)
    with _client(server) as client, pytest.raises(QueueFull) as caught:
        client.submit_sample("digits")
    assert caught.value.retry_after == 1.0
    assert len(server.calls("POST", "/v1/samples")) == FAST.retries + 1
    server = FakeServer().on("POST", "/v1/samples", full)
    with _client(server, RetryPolicy(retries=0)) as client, pytest.raises(QueueFull):
        client.submit_sample("digits")
    assert len(server.calls("POST", "/v1/samples")) == 1


def test_a_get_is_retried_after_any_transport_error():
    server = FakeServer().on(
        "GET",
        "/v1/jobs/j1",
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("gone"),
        httpx.Response(200, json=job("j1", "running")),
    )
    with _client(server) as client:
        assert client.job("j1").status == "running"
    assert len(server.calls("GET", "/v1/jobs/j1")) == 3


def test_a_retried_upload_sends_the_whole_file_again(tmp_path):
    path = tmp_path / "in.png"
    path.write_bytes(png())
    unavailable = problem(503, "unavailable", headers={"Retry-After": "0"})
    server = FakeServer().on("POST", "/v1/translations", unavailable, CREATED)
    with _client(server) as client:
        client.submit_translation(path, "p2p")
    bodies = [r.content for r in server.calls("POST", "/v1/translations")]
    assert len(bodies) == 2 and all(png() in body for body in bodies)  # each with its boundary


def test_the_async_client_follows_the_same_rules():
    async def scenario() -> list[int]:
        timed_out = FakeServer().on(
            "POST", "/v1/samples", httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow"), CREATED
        )
        refused = FakeServer().on(
            "POST", "/v1/samples", httpx.ConnectError("refused"), problem(503, "x"), CREATED
        )
        counts = []
        for server in (timed_out, refused):
            transport = server.transport()
            async with AsyncClient("http://ganserve.test", retries=FAST, transport=transport) as c:
                try:
                    await c.submit_sample("digits")
                except Timeout:
                    counts.append(-len(server.calls("POST", "/v1/samples")))
                else:
                    counts.append(len(server.calls("POST", "/v1/samples")))
        return counts

    assert run_async(scenario()) == [3, 3]  # a read timeout too: the key makes it safe


def test_a_refused_connection_is_connection_failed_after_its_retries():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    client = Client(f"http://127.0.0.1:{port}", retries=FAST)
    with client, pytest.raises(ConnectionFailed) as caught:
        client.submit_sample("digits")
    assert caught.value.sent is False and isinstance(caught.value, ConnectionError)
    assert time.monotonic() - start < 5
