"""service.job_changes: a waiting request hears of a job's change from Redis pub/sub."""

from __future__ import annotations

import asyncio
import threading
import time

import redis
import redis.asyncio

from core.jobs import Job, JobKind, JobStatus, JobStore
from ganserve.embedded_redis import free_port
from service.job_changes import FLOOR_SECONDS, watch


def run(coroutine_function) -> float:
    """Run an async test body in its own thread and event loop (the browser tests' Playwright
    may leave a loop running in this thread)."""
    results: list[float] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(coroutine_function())))
    thread.start()
    thread.join(60)
    assert results, "the async body did not finish"
    return results[0]


def test_a_change_wakes_the_waiter_at_once(redis_url):
    store = JobStore(redis.Redis.from_url(redis_url))
    job = store.create(Job(kind=JobKind.sample, model="m"))

    async def wait_for_change() -> float:
        client = redis.asyncio.Redis.from_url(redis_url)
        async with watch(client, job.id) as next_change:
            threading.Timer(0.3, store.update, args=(job.id,), kwargs={"status": "running"}).start()
            started = time.monotonic()
            while store.get(job.id).status != JobStatus.running:
                await next_change(30.0)
            waited = time.monotonic() - started
        await client.aclose()
        return waited

    waited = run(wait_for_change)
    assert 0.25 < waited < 5.0  # woken by the message, long before a 30 s timeout


def test_without_a_message_the_record_is_read_again_within_the_floor(redis_url):
    """A change made behind JobStore's back (no message) is still seen within FLOOR_SECONDS."""
    client = redis.Redis.from_url(redis_url)

    async def one_wait() -> float:
        pushed = redis.asyncio.Redis.from_url(redis_url)
        async with watch(pushed, "no-such-job") as next_change:
            await next_change(0.0)  # the subscription's confirmation
            started = time.monotonic()
            await next_change(30.0)
            waited = time.monotonic() - started
        await pushed.aclose()
        return waited

    assert run(one_wait) <= FLOOR_SECONDS + 1.0
    assert client.ping()


def test_without_redis_it_falls_back_to_polling():
    async def one_wait() -> float:
        pushed = redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
        async with watch(pushed, "x") as next_change:
            started = time.monotonic()
            await next_change(30.0)
            return time.monotonic() - started

    assert run(one_wait) < 1.0  # a short poll, not a hang
