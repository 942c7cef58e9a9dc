"""A job's webhook events, kept in Redis in the same transaction as the change that causes them.

A job submitted with a webhook (`WebhookTarget`: an URL and the events it wants: `start`,
`progress`, `completed`; `completed` by default) gets an event when its record changes that way
(`JobStore.update` calls `add_events` inside its transaction): `start` when it starts running,
`progress` when its progress changes (at most one a second: a newer one replaces a pending one
that was not sent yet), `completed` when it ends (succeeded, failed or cancelled). Because the
event is written with the change, a worker killed right after, or a Redis restarted with its
append-only file, loses none.

Layout: `ganserve:webhooks:job:<job>` lists the job's event ids in order; each event is a JSON
record (`ganserve:webhooks:event:<id>`: type, URL, owner, the job's public JSON at that moment
as the body, attempts and their outcomes, the next try); `ganserve:webhooks:due` orders the jobs
whose first pending event is due. The sender (workers' side) sends one job's events in order,
the first before the next.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

WebhookEvent = Literal["start", "progress", "completed"]
DUE_KEY = "ganserve:webhooks:due"
PROGRESS_EVERY_SECONDS = 1.0
KEEP_SECONDS = 7 * 24 * 3600


class WebhookTarget(BaseModel):
    """Where a job's events go, and which."""

    url: str
    events: list[WebhookEvent] = Field(default_factory=lambda: ["completed"])


def job_events_key(job_id: str) -> str:
    """The list of a job's event ids, in order."""
    return f"ganserve:webhooks:job:{job_id}"


def ended_events_key(job_id: str) -> str:
    """The list of a job's ended event ids (delivered, stopped, refused, failed), in order."""
    return f"ganserve:webhooks:job:{job_id}:ended"


def event_key(event_id: str) -> str:
    """One event's record."""
    return f"ganserve:webhooks:event:{event_id}"


def events_of_change(
    before: dict[str, Any], after_status: str, after_progress: float, ended: bool
) -> list[WebhookEvent]:
    """The events a record change from `before` (the stored JSON) to the new status and
    progress makes, in order."""
    found: list[WebhookEvent] = []
    if after_status == "running" and before.get("status") != "running":
        found.append("start")
    if after_status == "running" and after_progress != before.get("progress", 0.0):
        found.append("progress")
    if ended and before.get("status") not in ("succeeded", "failed", "cancelled"):
        found.append("completed")
    return found


def add_events(
    pipe: Any,
    job_id: str,
    owner: str,
    target: WebhookTarget,
    events: list[WebhookEvent],
    body: str,
    last_progress: dict[str, Any] | None,
    now: float | None = None,
) -> None:
    """Queue `events` (the ones `target` wants) on `pipe`, inside the transaction that records
    the change; `last_progress` is the job's newest progress event, when it has one (its id, when
    it was made, whether an attempt was made), read before the transaction."""
    now = time.time() if now is None else now
    for event in events:
        if event not in target.events:
            continue
        recent = last_progress is not None and (
            now - last_progress["created_at"] < PROGRESS_EVERY_SECONDS
        )
        if event == "progress" and recent:
            assert last_progress is not None
            if last_progress["attempts"] == 0:  # not sent yet: the newer body replaces it
                record = {**last_progress, "body": body}
                pipe.set(event_key(record["id"]), json.dumps(record), ex=KEEP_SECONDS)
            continue
        record = {
            "id": uuid.uuid4().hex,
            "job_id": job_id,
            "owner": owner,
            "type": event,
            "url": target.url,
            "body": body,
            "created_at": now,
            "attempts": 0,
            "outcomes": [],
            "next_at": now,
            "state": "pending",
        }
        pipe.set(event_key(record["id"]), json.dumps(record), ex=KEEP_SECONDS)
        pipe.rpush(job_events_key(job_id), record["id"])
        pipe.expire(job_events_key(job_id), KEEP_SECONDS)
        pipe.zadd(DUE_KEY, {job_id: now}, nx=True)  # the job's first pending event decides


def deliveries(client: Any, job_id: str) -> list[dict[str, Any]]:
    """A job's webhook events, ended then pending, without their bodies: type, state, attempts,
    each attempt's outcome, the next try."""
    ids = client.lrange(ended_events_key(job_id), 0, -1) + client.lrange(
        job_events_key(job_id), 0, -1
    )
    found = []
    for raw_id in ids:
        raw = client.get(event_key(raw_id.decode()))
        if raw is not None:
            record = json.loads(raw)
            record.pop("body", None)
            found.append(record)
    return found
