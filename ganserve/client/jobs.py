"""Jobs as objects: `Job` (of a `Client`) and `AsyncJob` (of an `AsyncClient`), and the events
of a job's server-sent event stream.

A job object holds the job's JSON as last seen (`data`) and its client. `refresh()` reads it
again, `wait()` long-polls until it has ended, `result()` waits and returns the result (or raises
`JobFailed` / `JobCancelled`), `images()` downloads the result images, `cancel()` asks the server
to stop it, `delete()` deletes an ended job's record and files, `events()` follows its event
stream (reconnecting with `Last-Event-ID` when the connection drops).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from httpx_sse import ServerSentEvent
from PIL import Image

from ganserve.client import operations
from ganserve.client.calls import Call
from ganserve.client.errors import ConnectionFailed, GanserveError
from ganserve.client.operations import ENDED, job_path
from ganserve.client.retry import RetryPolicy

if TYPE_CHECKING:
    from ganserve.client.asynchronous import AsyncClient
    from ganserve.client.sync import Client

EventType = Literal["status", "progress"]


class JobView:
    """The fields of a job's JSON (`data`), read the same way by jobs and their events."""

    data: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def kind(self) -> str:
        return str(self.data.get("kind"))

    @property
    def status(self) -> str:
        """`queued`, `running`, `succeeded`, `failed` or `cancelled`."""
        return str(self.data["status"])

    @property
    def progress(self) -> float:
        """From 0 to 1."""
        return float(self.data.get("progress") or 0.0)

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def error(self) -> dict[str, Any] | None:
        """`{"code", "message"}` of a failed job."""
        return self.data.get("error")


@dataclass(frozen=True)
class JobEvent(JobView):
    """One event of a job's stream: `type` is `status` (the first event, and each change of
    status) or `progress` (only the progress changed); `data` is the job's JSON at that moment
    (`id`, `status`, `progress`, ... read it as on a job); `event_id` is the event's own id
    (increasing: what a reconnection resumes after)."""

    type: EventType
    data: dict[str, Any]
    event_id: str | None = None


class EventCursor:
    """Where a job's event stream is: the last event id (sent as `Last-Event-ID` when
    reconnecting), the server's `retry` advice, whether the job has ended, and how many
    reconnections in a row have failed (at most the policy's `retries`)."""

    def __init__(self, job_id: str, policy: RetryPolicy) -> None:
        self.job_id = job_id
        self.policy = policy
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self.status: str | None = None
        self.ended = False
        self.failures = 0

    @property
    def path(self) -> str:
        return f"{job_path(self.job_id)}/events"

    def headers(self) -> dict[str, str]:
        return {} if self.last_id is None else {"Last-Event-ID": self.last_id}

    def accept(self, sse: ServerSentEvent) -> JobEvent | None:
        """The job event of a received SSE message (None for one without data: a `retry:`)."""
        if sse.retry is not None:
            self.retry_ms = sse.retry
        if sse.id and self._seen(sse.id):
            return None  # sent again after a reconnection: not news
        if sse.id:
            self.last_id = sse.id
        if not sse.data:
            return None
        data = json.loads(sse.data)
        status = str(data.get("status"))
        kind: EventType
        if sse.event in ("status", "progress"):
            kind = sse.event  # type: ignore[assignment]
        else:  # a server that names its events otherwise: tell them apart here
            kind = "status" if status != self.status else "progress"
        self.status, self.ended, self.failures = status, status in ENDED, 0
        return JobEvent(kind, data, sse.id or None)

    def _seen(self, event_id: str) -> bool:
        """Whether an event with this id came already (ids are increasing numbers)."""
        last = self.last_id
        return (
            last is not None
            and event_id.isdigit()
            and last.isdigit()
            and int(event_id) <= int(last)
        )

    def reconnect_delay(self, error: GanserveError | None) -> float:
        """Seconds to wait before reconnecting after the stream ended early (`error`, or None
        when the server closed it before the job ended); raises when that may not be retried
        or too many reconnections failed in a row."""
        self.failures += 1
        if error is None:
            error = ConnectionFailed(
                f"The event stream of job {self.job_id} closed before the job ended.", sent=True
            )
        if self.failures > self.policy.retries or not self.policy.should_retry("GET", error):
            raise error
        if self.retry_ms is not None and getattr(error, "retry_after", None) is None:
            return self.retry_ms / 1000
        return self.policy.delay(self.failures, error)


class _JobState(JobView):
    """What both job classes share: the job's JSON as last seen, and the requests to cancel
    and delete it."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(id={self.id!r}, kind={self.kind!r}, "
            f"status={self.status!r}, progress={self.progress:.2f})"
        )

    def _cancel_call(self) -> Call:
        return Call("POST", f"{job_path(self.id)}/cancel")

    def _delete_call(self) -> Call:
        return Call("DELETE", job_path(self.id))


class Job(_JobState):
    """A job of a `Client` (see the module doc)."""

    def __init__(self, client: Client, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self._client = client

    def refresh(self) -> Job:
        """Read the job again."""
        self.data = self._client._run(operations.get_job(self.id))
        return self

    def wait(self, timeout: float | None = None) -> Job:
        """Wait until the job has ended (`Timeout` after `timeout` seconds; None: no limit);
        a job already seen ended is not asked for again."""
        if self.status not in operations.ENDED:
            self.data = self._client._run(operations.wait_job(self.id, timeout))
        return self

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait and return the job's `result`; `JobFailed` or `JobCancelled` when it has none."""
        return operations.outcome(self.wait(timeout).data)

    def images(self, timeout: float | None = None) -> list[Image.Image]:
        """Wait and download the result images (`JobFailed` or `JobCancelled` without)."""
        self.result(timeout)
        return self._client._run(operations.result_images(self.data))

    def cancel(self) -> Job:
        """Ask the server to cancel the job: a queued one is cancelled at once, a running one
        at its next step (`Conflict` `job_ended` when it has already ended)."""
        self.data = self._client._run(operations.request(self._cancel_call()))
        return self

    def delete(self) -> None:
        """Delete the ended job's record and files (`Conflict` `job_not_ended` before)."""
        self._client._run(operations.request(self._delete_call()))

    def events(self) -> Iterator[JobEvent]:
        """The job's events until it ends (the current state first); `data` follows them."""
        cursor = EventCursor(self.id, self._client._policy)
        while not cursor.ended:
            error = None
            try:
                for event in self._client._event_stream(cursor):
                    self.data = event.data
                    yield event
            except GanserveError as exc:
                error = exc
            if not cursor.ended:
                time.sleep(cursor.reconnect_delay(error))


class AsyncJob(_JobState):
    """A job of an `AsyncClient`: the methods of `Job`, awaited (`events()` is an async
    iterator)."""

    def __init__(self, client: AsyncClient, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self._client = client

    async def refresh(self) -> AsyncJob:
        self.data = await self._client._run(operations.get_job(self.id))
        return self

    async def wait(self, timeout: float | None = None) -> AsyncJob:
        if self.status not in operations.ENDED:
            self.data = await self._client._run(operations.wait_job(self.id, timeout))
        return self

    async def result(self, timeout: float | None = None) -> dict[str, Any]:
        return operations.outcome((await self.wait(timeout)).data)

    async def images(self, timeout: float | None = None) -> list[Image.Image]:
        await self.result(timeout)
        return await self._client._run(operations.result_images(self.data))

    async def cancel(self) -> AsyncJob:
        self.data = await self._client._run(operations.request(self._cancel_call()))
        return self

    async def delete(self) -> None:
        await self._client._run(operations.request(self._delete_call()))

    async def events(self) -> AsyncIterator[JobEvent]:
        cursor = EventCursor(self.id, self._client._policy)
        while not cursor.ended:
            error = None
            try:
                async for event in self._client._event_stream(cursor):
                    self.data = event.data
                    yield event
            except GanserveError as exc:
                error = exc
            if not cursor.ended:
                await asyncio.sleep(cursor.reconnect_delay(error))
