"""service.job_changes: waiting requests hear of a job's change from one shared subscriber."""

from __future__ import annotations

import asyncio
import threading
import time

import redis
import redis.asyncio

from core.jobs import Job, JobKind, JobStatus, JobStore
from ganserve.embedded_redis import free_port
from service.job_changes import FLOOR_SECONDS, JobChanges


def run(coroutine_function):
    """Run an async test body in its own thread and event loop (the browser tests' Playwright
    may leave a loop running in this thread)."""
    results: list = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(coroutine_function())))
    thread.start()
    thread.join(60)
    assert results, "the async body did not finish"
    return results[0]


def test_changes_wake_many_waiters_through_one_subscription(redis_url):
    store = JobStore(redis.Redis.from_url(redis_url))
    jobs = [store.create(Job(kind=JobKind.sample, model="m")) for _ in range(5)]

    async def body():
        client = redis.asyncio.Redis.from_url(redis_url)
        changes = JobChanges(client)

        async def wait_running(job_id: str) -> float:
            async with changes.watch(job_id) as next_change:
                started = time.monotonic()
                while store.get(job_id).status != JobStatus.running:
                    await next_change(30.0)
                return time.monotonic() - started

        waiting = [asyncio.create_task(wait_running(job.id)) for job in jobs]
        await asyncio.sleep(0.5)  # the subscriber is up
        subscribers = await client.pubsub_numpat()
        for job in jobs:
            store.update(job.id, status=JobStatus.running)
        waited = await asyncio.gather(*waiting)
        await changes.close()
        await client.aclose()
        return subscribers, waited, changes.waiters

    subscribers, waited, left = run(body)
    assert subscribers == 1  # one pattern subscription for all five waiters
    assert all(w < 5.0 for w in waited)  # woken by the messages, long before 30 s
    assert left == {}  # every waiter unregistered


async def one_wait(url: str, job_id: str) -> float:
    """Seconds a waiter on `job_id` asking for up to 30 s waits when no change is announced."""
    client = redis.asyncio.Redis.from_url(url)
    changes = JobChanges(client)
    async with changes.watch(job_id) as next_change:
        started = time.monotonic()
        await next_change(30.0)
        waited = time.monotonic() - started
    await changes.close()
    await client.aclose()
    return waited


def test_without_a_message_the_waiter_reads_again_within_the_floor(redis_url):
    assert run(lambda: one_wait(redis_url, "no-such-job")) <= FLOOR_SECONDS + 0.5


def test_without_redis_waiters_still_return_at_the_floor():
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert run(lambda: one_wait(url, "x")) <= FLOOR_SECONDS + 0.5  # no hang while Redis is away


def test_a_waiter_for_the_end_sleeps_through_the_start_and_progress(redis_url):
    store = JobStore(redis.Redis.from_url(redis_url))
    job = store.create(Job(kind=JobKind.sample, model="m"))

    async def body():
        client = redis.asyncio.Redis.from_url(redis_url)
        changes = JobChanges(client)

        async def first_wake(until_ended: bool) -> tuple[float, JobStatus]:
            async with changes.watch(job.id, until_ended=until_ended) as next_change:
                started = time.monotonic()
                await next_change(30.0)
                return time.monotonic() - started, store.get(job.id).status

        waiting = [asyncio.create_task(first_wake(flag)) for flag in (False, True)]
        await asyncio.sleep(0.3)  # the subscriber is up
        store.update(job.id, status=JobStatus.running)
        store.update(job.id, progress=0.5)
        await asyncio.sleep(0.5)  # within the floor
        store.update(job.id, status=JobStatus.succeeded)
        woken = await asyncio.gather(*waiting)
        await changes.close()
        await client.aclose()
        return woken

    (any_change, seen), (at_end, ended) = run(body)
    assert seen is JobStatus.running and any_change < 0.5  # woken by the start
    assert ended is JobStatus.succeeded and at_end >= 0.5  # by the end, not before
