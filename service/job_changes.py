"""Waiting for a job's record to change, pushed by Redis instead of polled.

Every `JobStore.update` publishes on the job's `event_channel`. Each gateway process keeps one
subscriber connection (`JobChanges`: a pattern subscription to every job's channel, listened to
by one asyncio task) and wakes the requests waiting on that job: a long-poll (`GET
/v1/jobs/{id}?wait=`) or an event stream answers as soon as the worker writes instead of at the
next 200 ms poll. Each message names the job's new status, so a request that waits for the job's
end only (a long poll, `Prefer: wait`) is woken by an ended status, not by its start or progress
reports. A message can be missed (Redis restarted, the listener reconnecting): a waiter re-reads
the record at least every `FLOOR_SECONDS` anyway. The waiters read the record with the same
asyncio client (`JobChanges.job`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import redis
import redis.asyncio

from core.jobs import Job, JobStatus, event_channel, job_from_record, job_key

log = logging.getLogger(__name__)

FLOOR_SECONDS = 1.0
PATTERN = event_channel("*")
PREFIX = event_channel("")
ENDED = frozenset(status.value for status in JobStatus if status.ended)

NextChange = Callable[[float], Awaitable[None]]


@dataclass(eq=False)
class _Waiter:
    """A request waiting on a job: woken by any change, or (`until_ended`) by its end only."""

    until_ended: bool
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self, status: str) -> None:
        if not self.until_ended or status in ENDED:
            self.event.set()


class JobChanges:
    """One process's subscriber to every job's channel, waking the requests that wait."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.waiters: dict[str, set[_Waiter]] = {}
        self._listener: asyncio.Task[None] | None = None

    async def _listen(self) -> None:
        while True:
            try:
                async with self.client.pubsub() as pubsub:
                    await pubsub.psubscribe(PATTERN)
                    async for message in pubsub.listen():
                        if message.get("type") != "pmessage":
                            continue
                        channel, status = _text(message["channel"]), _text(message["data"])
                        for waiter in self.waiters.get(channel.removeprefix(PREFIX), ()):
                            waiter.wake(status)
            except redis.RedisError as exc:  # waiters fall back to their floor meanwhile
                log.info("job change subscriber: %s; subscribing again in 1 s", exc)
                await asyncio.sleep(1.0)

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str, *, until_ended: bool = False) -> AsyncIterator[NextChange]:
        """Wait on a job: yields `next_change(timeout)`, which returns when the job changed (with
        `until_ended`: when it ended) or `timeout` (at most FLOOR_SECONDS) passed. Register
        first, then read the record: no change between the two is lost."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen())
        waiter = _Waiter(until_ended)
        self.waiters.setdefault(job_id, set()).add(waiter)

        async def next_change(timeout: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.event.wait(), max(0.0, min(timeout, FLOOR_SECONDS)))
            waiter.event.clear()

        try:
            yield next_change
        finally:
            waiting = self.waiters.get(job_id, set())
            waiting.discard(waiter)
            if not waiting:
                self.waiters.pop(job_id, None)

    async def job(self, job_id: str, owner: str) -> Job:
        """The job's record as it is now (JobNotFound: none, or another owner's), read with
        the asyncio client: no hand-off to a thread, as the sync job store needs."""
        return job_from_record(await self.client.get(job_key(job_id)), job_id, owner)

    async def close(self) -> None:
        """Stop listening (the application shuts down)."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, redis.RedisError):
                await self._listener


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
