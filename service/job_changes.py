"""Waiting for a job's record to change, pushed by Redis instead of polled.

Every `JobStore.update` publishes on the job's `event_channel`. Each gateway process keeps one
subscriber connection (`JobChanges`: a pattern subscription to every job's channel, listened to
by one asyncio task) and wakes the requests waiting on that job: a long-poll (`GET
/v1/jobs/{id}?wait=`) or an event stream answers as soon as the worker writes instead of at the
next 200 ms poll. A message can be missed (Redis restarted, the listener reconnecting): a waiter
re-reads the record at least every `FLOOR_SECONDS` anyway. The waiters read the record with the
same asyncio client (`JobChanges.job`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import redis
import redis.asyncio

from core.jobs import Job, event_channel, job_from_record, job_key

log = logging.getLogger(__name__)

FLOOR_SECONDS = 1.0
PATTERN = event_channel("*")
PREFIX = event_channel("")

NextChange = Callable[[float], Awaitable[None]]


class JobChanges:
    """One process's subscriber to every job's channel, waking the requests that wait."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.waiters: dict[str, set[asyncio.Event]] = {}
        self._listener: asyncio.Task[None] | None = None

    async def _listen(self) -> None:
        while True:
            try:
                async with self.client.pubsub() as pubsub:
                    await pubsub.psubscribe(PATTERN)
                    async for message in pubsub.listen():
                        if message.get("type") != "pmessage":
                            continue
                        channel = message["channel"]
                        channel = channel.decode() if isinstance(channel, bytes) else channel
                        for event in self.waiters.get(channel.removeprefix(PREFIX), ()):
                            event.set()
            except redis.RedisError as exc:  # waiters fall back to their floor meanwhile
                log.info("job change subscriber: %s; subscribing again in 1 s", exc)
                await asyncio.sleep(1.0)

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[NextChange]:
        """Wait on a job: yields `next_change(timeout)`, which returns when the job changed or
        `timeout` (at most FLOOR_SECONDS) passed. Register first, then read the record: no
        change between the two is lost."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen())
        event = asyncio.Event()
        self.waiters.setdefault(job_id, set()).add(event)

        async def next_change(timeout: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), max(0.0, min(timeout, FLOOR_SECONDS)))
            event.clear()

        try:
            yield next_change
        finally:
            waiting = self.waiters.get(job_id, set())
            waiting.discard(event)
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
