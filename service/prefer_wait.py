"""Synchronous mode: `Prefer: wait=N` (RFC 7240, section 4.3) on a job-creating request.

A POST that creates a job answers 202 with the job and `Location: /v1/jobs/{id}`. With
`Prefer: wait=N` (N seconds, at most `MAX_PREFER_WAIT_S`) the gateway holds that answer until the
job has ended or N seconds have passed: an ended job (succeeded, failed or cancelled) is answered
`201 Created` with its JSON as `GET /v1/jobs/{id}` returns it, the same `Location` and
`Preference-Applied: wait=N`; a job still queued or running after N seconds gets the usual 202.
A quick job's result is then one request away instead of three. (A model export's POST has
its own `wait` parameter and answers 201 with the export when it is ready.)

The waiting is that of `GET /v1/jobs/{id}?wait=`, done here without a second request through the
application: woken by Redis's push the moment the worker records the job (`service.job_changes`),
the record read as the caller's (the route's ownership check), its JSON made as the route makes
it (`JOB_JSON`). When the record cannot be read (gone, or Redis not answering) the 202 is sent
as it was. Requests without the preference, and answers other than a 202 pointing at a job, pass
through untouched.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis
from pydantic import TypeAdapter
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.jobs import Job, JobNotFound
from core.public_jobs import public_job
from service.job_changes import JobChanges
from service.schemas import JobOut
from service.security import authenticate

MAX_PREFER_WAIT_S = 60
JOBS_PATH = "/v1/jobs/"
JOB_JSON = TypeAdapter(JobOut)  # how FastAPI writes the JobOut of `GET /v1/jobs/{id}`
log = logging.getLogger(__name__)


def preferred_wait(headers: Headers) -> int | None:
    """The seconds of a `Prefer: wait=N` preference (capped at `MAX_PREFER_WAIT_S`), or None
    when there is none or it is not a whole number of seconds above 0 (a preference a server
    cannot honour is ignored, RFC 7240 section 2)."""
    for value in headers.getlist("prefer"):
        for preference in value.split(","):
            name, _, token = preference.split(";")[0].partition("=")
            if name.strip().lower() != "wait":
                continue
            seconds = token.strip().strip('"')
            if seconds.isdigit() and int(seconds) > 0:
                return min(int(seconds), MAX_PREFER_WAIT_S)
    return None


@dataclass
class Answer:
    """A response an inner application sent, kept instead of passed on."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    more: list[Message] = field(default_factory=list)  # anything after the start, in order

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status, self.headers = message["status"], list(message.get("headers", []))
        else:
            self.more.append(message)
            if message["type"] == "http.response.body":
                self.body += message.get("body", b"")

    def job_id(self) -> str | None:
        """The job's id when this is a 202 answering that job itself (a job-creating request:
        not an export's 202, whose body describes the export), else None."""
        location = Headers(raw=self.headers).get("location", "")
        if self.status != 202 or not location.startswith(JOBS_PATH):
            return None
        try:
            answered = json.loads(self.body).get("id")
        except (ValueError, AttributeError):
            return None
        return answered if answered == location.removeprefix(JOBS_PATH) else None

    async def replay(self, send: Send) -> None:
        """Send this answer on, as it was."""
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        for message in self.more:
            await send(message)


class PreferWait:
    """Hold a job-creating POST's answer while its job runs, when the caller prefers to wait.
    `changes` wakes the wait; `keys` are the API keys (whose caller owns the job)."""

    def __init__(self, app: ASGIApp, changes: JobChanges, keys: Sequence[str]) -> None:
        self.app = app
        self.changes = changes
        self.keys = list(keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wait = None
        if scope["type"] == "http" and scope["method"] == "POST":
            wait = preferred_wait(Headers(scope=scope))
        if wait is None:
            await self.app(scope, receive, send)
            return
        created = Answer()
        await self.app(scope, receive, created.send)
        job_id = created.job_id()
        ended = None if job_id is None else await self._wait_for_end(scope, job_id, wait)
        if ended is None:
            await created.replay(send)
            return
        body = JOB_JSON.dump_json(public_job(ended), by_alias=True)
        headers = MutableHeaders(raw=list(created.headers))
        headers["content-length"] = str(len(body))
        headers["preference-applied"] = f"wait={wait}"
        await send({"type": "http.response.start", "status": 201, "headers": headers.raw})
        await send({"type": "http.response.body", "body": body})

    async def _wait_for_end(self, scope: Scope, job_id: str, wait: float) -> Job | None:
        """The job once it has ended within `wait` seconds, else None (also when its record
        cannot be read: gone, or Redis not answering)."""
        owner = authenticate(Headers(scope=scope).get("authorization"), self.keys)
        deadline = time.monotonic() + wait
        try:
            async with self.changes.watch(job_id, until_ended=True) as next_change:
                job = await self.changes.job(job_id, owner)  # after subscribing
                while not job.status.ended:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    await next_change(left)
                    job = await self.changes.job(job_id, owner)
        except JobNotFound:
            return None
        except redis.RedisError as exc:
            log.warning("synchronous mode: job %s not read, answered 202: %s", job_id, exc)
            return None
        return job
