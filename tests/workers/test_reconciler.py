"""The reconciler against a real Redis: which jobs it sends again, and when."""

from __future__ import annotations

import json

import pytest

from core.jobs import QUEUE_INFER, Job, JobKind, JobStatus, JobStore
from workers.reconciler import ORPHANS_KEY, Reconciler


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setting(redis_client):
    store = JobStore(redis_client)
    sent: list[str] = []
    clock = Clock()
    reconciler = Reconciler(
        store, lambda job: sent.append(job.id), grace=5.0, running_grace=1.0, clock=clock
    )
    return store, reconciler, sent, clock


def new_job(store: JobStore, **fields) -> Job:
    return store.create(Job(kind=JobKind.sample, model="m", **fields))


def queue_message(store: JobStore, job_id: str) -> None:
    """A message for `job_id` waiting in the infer queue, as kombu lays it out."""
    store.redis.lpush(QUEUE_INFER, json.dumps({"headers": {"id": job_id}, "body": ""}))


def test_a_queued_job_without_message_is_sent_again_after_the_grace(setting):
    store, reconciler, sent, clock = setting
    job = new_job(store)
    assert reconciler.pass_once() == []  # first seen orphaned: the clock starts
    clock.now += 4.9
    assert reconciler.pass_once() == []  # not for long enough yet
    clock.now += 0.2
    assert reconciler.pass_once() == [job.id]
    assert sent == [job.id]
    assert reconciler.pass_once() == []  # the clock starts again after a resend


def test_a_running_job_whose_lease_lapsed_is_sent_again(setting):
    store, reconciler, _sent, clock = setting
    job = new_job(store, status=JobStatus.running, attempts=1)
    assert store.acquire_lease(job.id, "worker:1:task", 60)
    reconciler.pass_once()
    clock.now += 10
    assert reconciler.pass_once() == []  # a live lease: a worker has it
    store.release_lease(job.id, "worker:1:task")  # as if it expired: no renewal for a lease
    reconciler.pass_once()
    clock.now += 1  # the running grace, not the queued one: the lease already waited
    assert reconciler.pass_once() == [job.id]


def test_a_job_with_a_waiting_message_is_left_alone(setting):
    store, reconciler, sent, clock = setting
    job = new_job(store)
    queue_message(store, job.id)
    for _ in range(3):
        reconciler.pass_once()
        clock.now += 10
    assert sent == []
    assert not store.redis.hexists(ORPHANS_KEY, job.id)


def test_a_job_that_got_its_message_back_restarts_the_clock(setting):
    store, reconciler, sent, clock = setting
    job = new_job(store)
    reconciler.pass_once()
    queue_message(store, job.id)
    clock.now += 3
    reconciler.pass_once()  # not orphaned now: forgotten
    store.redis.delete(QUEUE_INFER)
    clock.now += 3
    assert reconciler.pass_once() == []  # orphaned again, but only just
    assert sent == []


def test_ended_and_expired_jobs_leave_the_active_index(setting):
    store, reconciler, _sent, clock = setting
    done = new_job(store)
    gone = new_job(store)
    running = new_job(store)
    assert set(store.active_ids()) == {done.id, gone.id, running.id}
    store.update(done.id, status=JobStatus.succeeded)
    assert done.id not in store.active_ids()  # ending a job takes it out at once
    store.redis.delete(f"ganserve:job:{gone.id}")  # as if its record expired
    reconciler.pass_once()
    assert store.active_ids() == [running.id]
    clock.now += 10
    assert reconciler.pass_once() == [running.id]


def test_one_pass_at_a_time_across_workers(setting):
    store, reconciler, _sent, _clock = setting
    new_job(store)
    assert store.redis.set("ganserve:reconciler", "other-worker", px=10_000)
    reconciler.pass_once = lambda: pytest.fail("ran while another worker's pass holds the lock")
    assert reconciler.pass_if_free("this-worker", 10) == []
