"""Synchronous mode: `Prefer: wait=N` (RFC 7240, section 4.3) on a job-creating request.

A POST that creates a job answers 202 with the job and `Location: /v1/jobs/{id}`. With
`Prefer: wait=N` (N seconds, at most `MAX_PREFER_WAIT_S`) the gateway holds that answer until the
job has ended or N seconds have passed: an ended job (succeeded, failed or cancelled) is answered
`201 Created` with its JSON as `GET /v1/jobs/{id}` returns it, the same `Location` and
`Preference-Applied: wait=N`; a job still queued or running after N seconds gets the usual 202.
A quick job's result is then one request away instead of three. (A model export's POST has
its own `wait` parameter and answers 201 with the export when it is ready.)

The waiting is the long poll of `GET /v1/jobs/{id}?wait=` (woken by Redis's push the moment the
worker records the job, `service.job_changes`), asked of the application itself with the
caller's own headers, so the job's ownership check and its JSON are those of that route. Requests
without the preference, and answers other than a 202 pointing at a job, pass through untouched.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.jobs import JobStatus

MAX_PREFER_WAIT_S = 60
LONG_POLL_S = 30.0  # the longest `wait` of GET /v1/jobs/{id}
JOBS_PATH = "/v1/jobs/"


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

    def job_path(self) -> str | None:
        """`/v1/jobs/{id}` when this is a 202 answering that job itself (a job-creating
        request: not an export's 202, whose body describes the export), else None."""
        location = Headers(raw=self.headers).get("location", "")
        if self.status != 202 or not location.startswith(JOBS_PATH):
            return None
        try:
            answered = json.loads(self.body).get("id")
        except (ValueError, AttributeError):
            return None
        return location if answered == location.removeprefix(JOBS_PATH) else None

    async def replay(self, send: Send) -> None:
        """Send this answer on, as it was."""
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        for message in self.more:
            await send(message)


def _ended_job(answer: Answer) -> bool:
    if answer.status != 200:
        return False
    try:
        return JobStatus(json.loads(answer.body)["status"]).ended
    except (ValueError, KeyError, TypeError):
        return False


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class PreferWait:
    """Hold a job-creating POST's answer while its job runs, when the caller prefers to wait."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wait = None
        if scope["type"] == "http" and scope["method"] == "POST":
            wait = preferred_wait(Headers(scope=scope))
        if wait is None:
            await self.app(scope, receive, send)
            return
        created = Answer()
        await self.app(scope, receive, created.send)
        job_path = created.job_path()
        ended = None if job_path is None else await self._wait_for_end(scope, job_path, wait)
        if ended is None:
            await created.replay(send)
            return
        headers = MutableHeaders(raw=list(created.headers))
        headers["content-length"] = str(len(ended.body))
        headers["preference-applied"] = f"wait={wait}"
        await send({"type": "http.response.start", "status": 201, "headers": headers.raw})
        await send({"type": "http.response.body", "body": bytes(ended.body)})

    async def _wait_for_end(self, scope: Scope, job_path: str, wait: float) -> Answer | None:
        """The job's `GET` answer once it has ended within `wait` seconds, else None."""
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            answer = Answer()
            await self.app(
                _long_poll_scope(scope, job_path, min(left, LONG_POLL_S)), _no_body, answer.send
            )
            if _ended_job(answer):
                return answer
            if answer.status != 200:
                return None
        return None


def _long_poll_scope(scope: Scope, job_path: str, seconds: float) -> Scope:
    """A `GET {job_path}?wait=seconds` with the original request's headers (its API key)."""
    kept = [(k, v) for k, v in scope["headers"] if k not in (b"content-length", b"content-type")]
    return {
        **scope,
        "method": "GET",
        "path": job_path,
        "raw_path": job_path.encode(),
        "query_string": f"wait={seconds:.3f}".encode(),
        "headers": kept,
    }
