"""core.webhook_outbox through JobStore.update on a real Redis: the events a webhook asked for,
in order, written with the change; progress at most once a second."""

import json
import time

from core.jobs import Job, JobError, JobKind, JobStatus, JobStore
from core.webhook_outbox import DUE_KEY, WebhookTarget, event_key, job_events_key


def _events(redis_client, job_id: str) -> list[dict]:
    ids = redis_client.lrange(job_events_key(job_id), 0, -1)
    return [json.loads(redis_client.get(event_key(i.decode()))) for i in ids]


def test_each_wanted_event_in_order_with_the_job_as_it_was(redis_client):
    store = JobStore(redis_client)
    target = WebhookTarget(
        url="https://hooks.example.com/x", events=["start", "progress", "completed"]
    )
    job = store.create(Job(owner="o", kind=JobKind.sample, webhook=target))
    store.update(job.id, status=JobStatus.running, started_at=time.time())
    store.update(job.id, progress=0.5)
    store.update(job.id, progress=0.7)  # within a second: replaces the unsent progress event
    failure = JobError(code="bad_image", message="The image could not be read.")
    store.update(job.id, status=JobStatus.failed, finished_at=time.time(), error=failure)
    events = _events(redis_client, job.id)
    assert [e["type"] for e in events] == ["start", "progress", "completed"]
    assert json.loads(events[0]["body"])["status"] == "running"
    assert json.loads(events[1]["body"])["progress"] == 0.7
    completed = json.loads(events[2]["body"])
    assert completed["status"] == "failed" and completed["error"]["code"] == "bad_image"
    assert "owner" not in completed  # the public JSON, as GET /v1/jobs/{id} answers
    assert redis_client.zscore(DUE_KEY, job.id) is not None


def test_only_completed_by_default_and_nothing_without_a_webhook(redis_client):
    store = JobStore(redis_client)
    wanted = store.create(
        Job(owner="o", kind=JobKind.sample, webhook=WebhookTarget(url="https://h.example/x"))
    )
    silent = store.create(Job(owner="o", kind=JobKind.sample))
    for job in (wanted, silent):
        store.update(job.id, status=JobStatus.running)
        store.update(job.id, progress=0.5)
        store.update(job.id, status=JobStatus.failed)
    assert [e["type"] for e in _events(redis_client, wanted.id)] == ["completed"]
    assert _events(redis_client, silent.id) == []
