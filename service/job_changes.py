"""Waiting for a job's record to change, pushed by Redis instead of polled.

Every `JobStore.update` publishes on the job's `event_channel`; a long-poll (`GET
/v1/jobs/{id}?wait=`) or an event stream subscribes to it and re-reads the record when a message
comes, so it answers as soon as the worker writes instead of at the next 200 ms poll. A message
can be missed (Redis restarted between subscribe and publish): the wait re-reads the record at
least every `FLOOR_SECONDS` anyway, and when Redis refuses the subscription it falls back to
polling every `POLL_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import redis
import redis.asyncio

from core.jobs import event_channel

log = logging.getLogger(__name__)

FLOOR_SECONDS = 1.0
POLL_SECONDS = 0.2

NextChange = Callable[[float], Awaitable[None]]


@asynccontextmanager
async def watch(client: redis.asyncio.Redis, job_id: str) -> AsyncIterator[NextChange]:
    """Subscribe to a job's changes; yields `next_change(timeout)`, which returns when the job
    may have changed (a message, or `timeout` seconds, at most FLOOR_SECONDS, passed).

    Subscribe before reading the record, then read it: no change between the two is lost.
    """
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(event_channel(job_id))
    except redis.RedisError as exc:
        log.info("job %s: no pub/sub (%s); polling", job_id, exc)
        await pubsub.aclose()

        async def poll(timeout: float) -> None:
            await asyncio.sleep(min(timeout, POLL_SECONDS))

        yield poll
        return

    async def next_change(timeout: float) -> None:
        try:
            await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=min(timeout, FLOOR_SECONDS)
            )
        except redis.RedisError:  # Redis went away mid-wait: poll until it is back
            await asyncio.sleep(min(timeout, POLL_SECONDS))

    try:
        yield next_change
    finally:
        with contextlib.suppress(redis.RedisError):
            await pubsub.aclose()
