"""GET /v1/jobs/{id}/events: server-sent events of a job's status and progress."""

import json
import threading
import time
from collections.abc import Iterator

import pytest

from core.jobs import JobStatus
from tests.service.conftest import KEYS, Gateway, start_gateway
from tests.service.factories import sample_result


@pytest.fixture(scope="module")
def sse_gateway(redis_url, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway with API keys and a short keep-alive interval."""
    server = start_gateway(
        tmp_path_factory.mktemp("sse"),
        redis_url,
        {"GANSERVE_API_KEYS": ",".join(KEYS), "GANSERVE_SSE_KEEPALIVE_SECONDS": "0.3"},
    )
    yield server
    server.stop()


def new_job(gateway: Gateway, key: str = KEYS[0]) -> str:
    with gateway.client(key) as http:
        response = http.post("/v1/samples", json={"model": "faces", "count": 1, "seed": 3})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def read_stream(
    gateway: Gateway, job_id: str, key: str = KEYS[0], last_event_id: str | None = None
) -> list[tuple[str, str]]:
    """(kind, payload) per line until the server closes the stream: ("status" or "progress",
    json), ("id", n), ("retry", ms) or ("comment", text)."""
    messages = []
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    with (
        gateway.client(key) as http,
        http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith(":"):
                messages.append(("comment", line[1:].strip()))
            elif line.startswith(("id: ", "retry: ")):
                field, _, value = line.partition(": ")
                messages.append((field, value))
            elif line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                messages.append((event, line.removeprefix("data: ")))
    return messages


def events(messages: list[tuple[str, str]]) -> list[tuple[str, dict]]:
    """The (event, job) pairs of a stream."""
    return [(kind, json.loads(data)) for kind, data in messages if kind in ("status", "progress")]


def test_events_follow_the_job_in_order_and_end_with_it(sse_gateway):
    job_id = new_job(sse_gateway)
    store = sse_gateway.store()

    def worker() -> None:
        time.sleep(0.8)
        store.update(job_id, status=JobStatus.running, started_at=time.time())
        time.sleep(1.0)  # several poll intervals, so a loaded machine still sees each state
        store.update(job_id, progress=0.5)
        time.sleep(1.0)
        store.update(
            job_id,
            status=JobStatus.succeeded,
            progress=1.0,
            finished_at=time.time(),
            result=sample_result(1, seed=3),
        )

    thread = threading.Thread(target=worker)
    thread.start()
    messages = read_stream(sse_gateway, job_id)  # returns only because the server ends it
    thread.join()
    sent = events(messages)
    states = [(kind, job["status"], job["progress"]) for kind, job in sent]
    assert states == [
        ("status", "queued", 0.0),
        ("status", "running", 0.0),
        ("progress", "running", 0.5),
        ("status", "succeeded", 1.0),
    ]
    assert sent[-1][1]["result"]["images"] == [f"/v1/jobs/{job_id}/images/0"]
    assert ("comment", "keep-alive") in messages  # 0.8 s of silence at a 0.3 s keep-alive
    assert messages[0] == ("retry", "3000")  # how long a client waits before reconnecting
    ids = [int(value) for kind, value in messages if kind == "id"]
    assert ids == sorted(set(ids)) and len(ids) == 4  # one increasing id per event


def test_a_reconnection_with_last_event_id_resends_nothing_older(sse_gateway):
    job_id = new_job(sse_gateway)
    store = sse_gateway.store()
    store.update(job_id, status=JobStatus.running, started_at=time.time())
    store.update(job_id, progress=0.25)
    last = store.get(job_id).revision
    store.update(job_id, status=JobStatus.succeeded, progress=1.0, finished_at=time.time())
    # the client saw the 0.25 progress, then the stream broke: it gets only the newer end
    resumed = events(read_stream(sse_gateway, job_id, last_event_id=str(last)))
    assert [(kind, job["status"]) for kind, job in resumed] == [("status", "succeeded")]
    # all seen already: nothing is resent, the stream just ends (the job has ended)
    final = store.get(job_id).revision
    assert events(read_stream(sse_gateway, job_id, last_event_id=str(final))) == []


def test_an_ended_job_sends_one_event_and_closes(sse_gateway):
    job_id = new_job(sse_gateway)
    with sse_gateway.client(KEYS[0]) as http:
        assert http.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    sent = events(read_stream(sse_gateway, job_id))
    assert [(kind, job["status"]) for kind, job in sent] == [("status", "cancelled")]


def test_auth_and_ownership(sse_gateway):
    job_id = new_job(sse_gateway, KEYS[0])
    with sse_gateway.client() as anonymous:
        missing = anonymous.get(f"/v1/jobs/{job_id}/events")
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_api_key"
    with sse_gateway.client(KEYS[1]) as other:
        foreign = other.get(f"/v1/jobs/{job_id}/events")
        unknown = other.get("/v1/jobs/no-such-job/events")
    assert foreign.status_code == 404 and foreign.json()["code"] == "job_not_found"
    assert unknown.status_code == 404
