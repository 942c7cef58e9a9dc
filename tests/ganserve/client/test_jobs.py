"""Job objects: waiting, results, failures, cancel and delete, and the event stream with its
reconnections (against a scripted server)."""

import json
from collections.abc import Callable

import httpx
import pytest

from ganserve.client import AsyncClient, Client, RetryPolicy
from ganserve.client.errors import (
    Conflict,
    ConnectionFailed,
    JobCancelled,
    JobFailed,
    NotFound,
    Timeout,
)
from tests.ganserve.client import run_async
from tests.ganserve.client.fake_server import FakeServer, job, png, problem

FAST = RetryPolicy(retries=2, backoff=0.001, max_backoff=0.01, max_retry_after=0.01)
URL = "http://ganserve.test"


def sse(*events: tuple[str | None, str | None, dict | None], retry: int | None = None) -> bytes:
    """An event stream: (id, event, job JSON) triples, a `retry:` block first when given."""
    text = f"retry: {retry}\n\n" if retry is not None else ""
    text += ": keep-alive\n\n"
    for event_id, name, data in events:
        lines = [f"id: {event_id}"] if event_id else []
        lines += [f"event: {name}"] if name else []
        lines += [f"data: {json.dumps(data)}"] if data is not None else []
        text += "\n".join(lines) + "\n\n"
    return text.encode()


class Dropping(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that breaks off after its bytes (the connection dropped)."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def __iter__(self):
        yield self.content
        raise httpx.ReadError("connection reset")

    async def __aiter__(self):
        yield self.content
        raise httpx.ReadError("connection reset")


def stream(content: bytes, drop: bool = False) -> Callable[[httpx.Request], httpx.Response]:
    """An answer of the events route: the stream, broken off after `content` when `drop`."""
    headers = {"content-type": "text/event-stream"}

    def answer(request: httpx.Request) -> httpx.Response:
        body = Dropping(content) if drop else httpx.ByteStream(content)
        return httpx.Response(200, headers=headers, stream=body)

    return answer


def client_of(server: FakeServer) -> Client:
    return Client(URL, retries=FAST, transport=server.transport())


def test_wait_long_polls_until_the_job_ends():
    server = FakeServer().on(
        "GET",
        "/v1/jobs/j1",
        httpx.Response(200, json=job("j1", "running", progress=0.5)),
        httpx.Response(200, json=job("j1", "succeeded", result={"images": []})),
    )
    with client_of(server) as client:
        done = client.job("j1").wait()
    assert done.status == "succeeded" and done.ended and done.progress == 1.0
    polls = server.calls("GET", "/v1/jobs/j1")[1:]
    assert [float(r.url.params["wait"]) for r in polls] == [30.0]


def test_wait_gives_up_after_its_timeout():
    server = FakeServer().json("GET", "/v1/jobs/j1", job("j1", "running"))
    with client_of(server) as client:
        running = client.job("j1")
        with pytest.raises(Timeout, match="still running") as caught:
            running.wait(timeout=0.05)
    assert isinstance(caught.value, TimeoutError) and caught.value.code == "job_not_ended"
    assert all(float(r.url.params.get("wait", 0)) <= 0.05 for r in server.requests)


def test_result_raises_for_a_failed_or_cancelled_job():
    failed = job("j1", "failed", error={"code": "model_not_found", "message": "Gone."})
    server = FakeServer().json("GET", "/v1/jobs/j1", failed)
    server.json("GET", "/v1/jobs/j2", job("j2", "cancelled"))
    with client_of(server) as client:
        with pytest.raises(JobFailed) as caught:
            client.job("j1").result()
        assert (caught.value.code, caught.value.message) == ("model_not_found", "Gone.")
        assert caught.value.job["id"] == "j1"
        with pytest.raises(JobCancelled):
            client.job("j2").images()


def test_images_are_downloaded_and_decoded():
    result = {"images": ["/v1/jobs/j1/images/0", "/v1/jobs/j1/images/1"]}
    server = FakeServer().json("GET", "/v1/jobs/j1", job("j1", "succeeded", result=result))
    server.on("GET", "/v1/jobs/j1/images/0", httpx.Response(200, content=png(2, 2)))
    server.on("GET", "/v1/jobs/j1/images/1", httpx.Response(200, content=png(3, 3)))
    with client_of(server) as client:
        found = client.job("j1")
        assert found.result() == result
        assert [p.size for p in found.images()] == [(2, 2), (3, 3)]


def test_cancel_posts_and_delete_deletes():
    server = FakeServer().json("GET", "/v1/jobs/j1", job("j1", "running"))
    server.json("POST", "/v1/jobs/j1/cancel", job("j1", "cancelled"), status=202)
    server.on("DELETE", "/v1/jobs/j1", httpx.Response(204))
    with client_of(server) as client:
        found = client.job("j1")
        assert found.cancel().status == "cancelled"
        assert found.delete() is None
    server = FakeServer().json("GET", "/v1/jobs/j1", job("j1", "succeeded"))
    server.on("POST", "/v1/jobs/j1/cancel", problem(409, "job_ended", "It has ended."))
    with client_of(server) as client, pytest.raises(Conflict) as caught:
        client.job("j1").cancel()
    assert caught.value.code == "job_ended"


def test_events_follow_the_job_until_it_ends():
    running = job("j1", "running", progress=0.0)
    events = sse(
        ("1", "status", running),
        ("2", "progress", job("j1", "running", progress=0.5)),
        ("3", "status", job("j1", "succeeded", result={"images": []})),
        retry=1500,
    )
    server = FakeServer().json("GET", "/v1/jobs/j1", job("j1", "queued"))
    server.on("GET", "/v1/jobs/j1/events", stream(events))
    with client_of(server) as client:
        found = client.job("j1")
        seen = [(e.type, e.status, e.progress, e.event_id) for e in found.events()]
    assert seen == [
        ("status", "running", 0.0, "1"),
        ("progress", "running", 0.5, "2"),
        ("status", "succeeded", 1.0, "3"),
    ]
    assert found.status == "succeeded"  # the job follows its events
    assert server.calls("GET", "/v1/jobs/j1/events")[0].headers["accept"] == "text/event-stream"


def test_events_resume_after_a_dropped_connection():
    first = sse(
        ("4", "status", job("j1", "running")), ("5", "progress", job("j1", "running", progress=0.2))
    )
    rest = sse(("6", "status", job("j1", "succeeded")))
    server = FakeServer().json("GET", "/v1/jobs/j1", job("j1", "queued"))
    server.on("GET", "/v1/jobs/j1/events", stream(first, drop=True), stream(rest))
    with client_of(server) as client:
        ids = [e.event_id for e in client.job("j1").events()]
    assert ids == ["4", "5", "6"]
    connects = server.calls("GET", "/v1/jobs/j1/events")
    assert "last-event-id" not in connects[0].headers
    assert connects[1].headers["last-event-id"] == "5"


def test_events_reconnect_when_the_stream_closes_early_and_give_up_in_the_end():
    server = FakeServer().json("GET", "/v1/jobs/j1", job("j1", "queued"))
    server.on("GET", "/v1/jobs/j1/events", stream(sse(("1", "status", job("j1", "running")))))
    with client_of(server) as client:
        iterator = client.job("j1").events()
        assert next(iterator).status == "running"
        with pytest.raises(ConnectionFailed, match="closed before the job ended"):
            list(iterator)
    # the first connection, then `retries` reconnections that bring nothing new
    assert len(server.calls("GET", "/v1/jobs/j1/events")) == 1 + FAST.retries


def test_events_of_an_unknown_job_raise_not_found():
    server = FakeServer().on("GET", "/v1/jobs/j9/events", problem(404, "job_not_found"))
    from ganserve.client.jobs import Job

    with client_of(server) as client, pytest.raises(NotFound):
        list(Job(client, job("j9")).events())
    assert len(server.calls("GET", "/v1/jobs/j9/events")) == 1  # not retried


def test_events_of_a_server_without_event_names_are_told_apart():
    events = sse(
        (None, "job", job("j1", "running", progress=0.0)),
        (None, "job", job("j1", "running", progress=0.4)),
        (None, "job", job("j1", "failed", error={"code": "x", "message": "y"})),
    )
    server = FakeServer().json("GET", "/v1/jobs/j1", job("j1", "queued"))
    server.on("GET", "/v1/jobs/j1/events", stream(events))
    with client_of(server) as client:
        assert [e.type for e in client.job("j1").events()] == ["status", "progress", "status"]


def test_async_jobs_wait_follow_and_resume():
    first = sse(("1", "status", job("j1", "running")))
    rest = sse(("2", "status", job("j1", "succeeded", result={"images": ["/v1/jobs/j1/images/0"]})))
    server = FakeServer().json("POST", "/v1/samples", job("j1"), status=202)
    server.on("GET", "/v1/jobs/j1/events", stream(first, drop=True), stream(rest))
    server.json(
        "GET", "/v1/jobs/j1", job("j1", "succeeded", result={"images": ["/v1/jobs/j1/images/0"]})
    )
    server.on("GET", "/v1/jobs/j1/images/0", httpx.Response(200, content=png(5, 4)))
    server.json("POST", "/v1/jobs/j1/cancel", job("j1", "cancelled"), status=202)

    async def scenario():
        async with AsyncClient(URL, retries=FAST, transport=server.transport()) as client:
            submitted = await client.submit_sample("digits", 1, seed=3)
            types = [(e.type, e.event_id) async for e in submitted.events()]
            pictures = await submitted.images()
            cancelled = await submitted.cancel()
            return types, [p.size for p in pictures], cancelled.status

    types, sizes, status = run_async(scenario())
    assert types == [("status", "1"), ("status", "2")]
    assert sizes == [(5, 4)] and status == "cancelled"
    assert server.calls("GET", "/v1/jobs/j1/events")[1].headers["last-event-id"] == "1"
