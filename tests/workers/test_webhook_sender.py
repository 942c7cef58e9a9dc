"""workers.webhook_sender against a real HTTP receiver on this machine and a real Redis: signed,
in order, retried until it succeeds, stopped by 410, refused when the target is not allowed."""

import time

import httpx
import pytest
from standardwebhooks import Webhook

from core.jobs import Job, JobKind, JobStatus, JobStore
from core.webhook_outbox import WebhookTarget, deliveries
from core.webhook_signing import WebhookSecrets
from core.webhook_targets import AllowList
from tests.webhook_receiver import Receiver
from workers.webhook_sender import WebhookSender


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(statuses: list[int] = ()) -> Receiver:
        made.append(Receiver(list(statuses)))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _sender(redis_client, allowed: list[str]) -> WebhookSender:
    return WebhookSender(
        redis_client,
        AllowList.parse(allowed),
        False,
        "test-holder",
        httpx.Client(),
        base_delay=0.01,
    )


def _job_with_events(redis_client, url: str, events=("start", "completed")) -> Job:
    store = JobStore(redis_client)
    target = WebhookTarget(url=url, events=list(events))
    job = store.create(Job(owner="hooked", kind=JobKind.sample, webhook=target))
    store.update(job.id, status=JobStatus.running, started_at=time.time())
    store.update(job.id, status=JobStatus.cancelled, finished_at=time.time(), result={})
    return job


def _drain(sender: WebhookSender, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sender.run_once()
        time.sleep(0.02)


def test_events_arrive_signed_in_order_after_five_failures(redis_client, receiver):
    hook = receiver([500, 500, 502, 503, 500])
    job = _job_with_events(redis_client, hook.url)
    _drain(_sender(redis_client, ["127.0.0.0/8"]), 5.0)
    secret = WebhookSecrets(redis_client).get("hooked")
    bodies = [Webhook(secret).verify(body, headers) for headers, body in hook.received]
    assert [b["status"] for b in bodies] == ["running"] * 6 + ["cancelled"]
    first_ids = {headers["webhook-id"] for headers, _ in hook.received[:6]}
    assert len(first_ids) == 1  # one event, retried: the same webhook-id every time
    records = deliveries(redis_client, job.id)
    assert [(r["type"], r["state"], r["attempts"]) for r in records] == [
        ("start", "delivered", 6),
        ("completed", "delivered", 1),
    ]
    assert [o.get("status") for o in records[0]["outcomes"]] == [500, 500, 502, 503, 500, 200]
    assert "body" not in records[0]


def test_a_410_stops_the_jobs_deliveries(redis_client, receiver):
    hook = receiver([410])
    job = _job_with_events(redis_client, hook.url)
    _drain(_sender(redis_client, ["127.0.0.0/8"]), 1.0)
    assert len(hook.received) == 1
    assert [r["state"] for r in deliveries(redis_client, job.id)] == ["stopped", "stopped"]


def test_a_target_not_allowed_is_refused_and_never_called(redis_client, receiver):
    hook = receiver()
    job = _job_with_events(redis_client, hook.url, events=["completed"])
    _drain(_sender(redis_client, []), 1.0)  # 127.0.0.1 without the allow-list; http refused too
    assert hook.received == []
    (record,) = deliveries(redis_client, job.id)
    assert record["state"] == "refused" and "https" in record["outcomes"][0]["error"]
