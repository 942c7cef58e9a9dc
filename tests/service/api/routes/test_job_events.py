"""GET /v1/jobs/{id}/events: server-sent events of a job's status and progress."""

import json
import threading
import time
from collections.abc import Iterator

import pytest

from core.jobs import JobStatus
from tests.service.conftest import KEYS, Gateway, start_gateway


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


def read_stream(gateway: Gateway, job_id: str, key: str = KEYS[0]) -> list[tuple[str, str]]:
    """(kind, payload) per message until the server closes the stream: ("job", json) or
    ("comment", text)."""
    messages = []
    with gateway.client(key) as http, http.stream("GET", f"/v1/jobs/{job_id}/events") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith(":"):
                messages.append(("comment", line[1:].strip()))
            elif line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                messages.append((event, line.removeprefix("data: ")))
    return messages


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
            result={"count": 1},
        )

    thread = threading.Thread(target=worker)
    thread.start()
    messages = read_stream(sse_gateway, job_id)  # returns only because the server ends it
    thread.join()
    jobs = [json.loads(payload) for kind, payload in messages if kind == "job"]
    states = [(job["status"], job["progress"]) for job in jobs]
    assert states == [("queued", 0.0), ("running", 0.0), ("running", 0.5), ("succeeded", 1.0)]
    assert jobs[-1]["result"]["images"] == [f"/v1/jobs/{job_id}/images/0"]
    assert ("comment", "keep-alive") in messages  # 0.8 s of silence at a 0.3 s keep-alive


def test_an_ended_job_sends_one_event_and_closes(sse_gateway):
    job_id = new_job(sse_gateway)
    with sse_gateway.client(KEYS[0]) as http:
        assert http.delete(f"/v1/jobs/{job_id}").status_code == 200
    messages = read_stream(sse_gateway, job_id)
    assert [kind for kind, _ in messages] == ["job"]
    assert json.loads(messages[0][1])["status"] == "cancelled"


def test_auth_and_ownership(sse_gateway):
    job_id = new_job(sse_gateway, KEYS[0])
    with sse_gateway.client() as anonymous:
        missing = anonymous.get(f"/v1/jobs/{job_id}/events")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    with sse_gateway.client(KEYS[1]) as other:
        foreign = other.get(f"/v1/jobs/{job_id}/events")
        unknown = other.get("/v1/jobs/no-such-job/events")
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "job_not_found"
    assert unknown.status_code == 404
