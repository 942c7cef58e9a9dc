"""The job life cycle of `run_job`: skips, cancellation, the lease, attempts, errors, outcomes."""

from __future__ import annotations

import pytest

from core.jobs import Job, JobKind, JobStatus, JobStore
from workers import jobs
from workers.errors import JobFailure
from workers.jobs import Outcome, lease_seconds, run_job


class Retry(Exception):
    """What the fake task's retry raises (Celery's is celery.exceptions.Retry)."""


class FakeRequest:
    id = "task-1"


class FakeTask:
    """Stands in for a bound Celery task: records retries."""

    request = FakeRequest()

    def __init__(self) -> None:
        self.retries: list[dict] = []

    def retry(self, **kwargs):
        self.retries.append(kwargs)
        return Retry()


@pytest.fixture
def store(redis_client, storage, monkeypatch) -> JobStore:
    monkeypatch.setenv("GANSERVE_DATA_DIR", str(storage.root))
    from core.settings import get_settings

    get_settings.cache_clear()
    job_store = JobStore(redis_client)
    monkeypatch.setattr(jobs, "job_store", lambda: job_store)
    yield job_store
    get_settings.cache_clear()


def new_job(store: JobStore, **fields) -> Job:
    return store.create(Job(kind=JobKind.sample, model="digits", params={"count": 1}, **fields))


class Work:
    """A job's work that records its calls and returns or raises what it is given."""

    def __init__(self, outcome=None, error: Exception | None = None) -> None:
        self.calls = []
        self.outcome = outcome or Outcome(JobStatus.succeeded, {"images": ["/x/0"]})
        self.error = error

    def __call__(self, ctx):
        self.calls.append(ctx.store.get(ctx.job_id))
        if self.error is not None:
            raise self.error
        return self.outcome


def lease_of(store: JobStore, job_id: str):
    return store.redis.get(f"ganserve:lease:{job_id}")


def test_a_job_runs_and_succeeds_under_its_lease(store):
    job, work = new_job(store), Work()
    run_job(FakeTask(), job.id, work, max_attempts=3)
    running = work.calls[0]
    assert running.status == JobStatus.running and running.attempts == 1
    assert running.started_at is not None
    done = store.get(job.id)
    assert done.status == JobStatus.succeeded and done.result == {"images": ["/x/0"]}
    assert done.progress == 1.0 and done.finished_at >= done.started_at
    assert lease_of(store, job.id) is None  # released


def test_unknown_and_ended_jobs_are_not_run(store):
    work = Work()
    run_job(FakeTask(), "no-such-job", work, max_attempts=3)
    for status in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled):
        job = new_job(store, status=status)
        run_job(FakeTask(), job.id, work, max_attempts=3)
        assert store.get(job.id).status == status and store.get(job.id).attempts == 0
    assert work.calls == []


def test_a_job_cancelled_while_queued_never_runs(store):
    job, work = new_job(store), Work()
    store.request_cancel(job.id)
    run_job(FakeTask(), job.id, work, max_attempts=3)
    record = store.get(job.id)
    assert work.calls == [] and record.status == JobStatus.cancelled and record.attempts == 0
    assert record.finished_at is not None


def test_a_job_leased_by_another_worker_is_retried_later_not_dropped(store):
    job, work, task = new_job(store, status=JobStatus.running, attempts=1), Work(), FakeTask()
    assert store.acquire_lease(job.id, "other-host:1:task", lease_seconds())
    with pytest.raises(Retry):
        run_job(task, job.id, work, max_attempts=3)
    assert task.retries == [{"countdown": lease_seconds(), "max_retries": None}]
    assert work.calls == [] and store.get(job.id).attempts == 1
    store.release_lease(job.id, "other-host:1:task")  # the other worker died: its lease expired
    run_job(task, job.id, work, max_attempts=3)
    assert store.get(job.id).status == JobStatus.succeeded and store.get(job.id).attempts == 2


def test_a_job_that_keeps_killing_its_worker_is_given_up(store):
    job, work = new_job(store, status=JobStatus.running, attempts=3), Work()
    run_job(FakeTask(), job.id, work, max_attempts=3)
    record = store.get(job.id)
    assert work.calls == [] and record.status == JobStatus.failed
    assert record.error.code == "worker_lost" and "stopped unexpectedly 3 times" in (
        record.error.message
    )


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (JobFailure("bad_image", "the uploaded image could not be read"), "bad_image", "could not"),
        (RuntimeError("boom"), "internal_error", "failed unexpectedly (RuntimeError: boom)"),
        (MemoryError(), "out_of_memory", "ran out of memory"),
    ],
)
def test_a_failing_job_ends_failed_with_a_readable_error(store, error, code, message):
    job = new_job(store)
    run_job(FakeTask(), job.id, Work(error=error), max_attempts=3)
    record = store.get(job.id)
    assert record.status == JobStatus.failed and record.finished_at is not None
    assert record.error.code == code and message in record.error.message
    assert lease_of(store, job.id) is None


def test_a_job_cancelled_by_the_gateway_while_running_stays_cancelled(store):
    job = new_job(store)

    def work(ctx):
        ctx.store.update(ctx.job_id, status=JobStatus.cancelled)
        return Outcome(JobStatus.succeeded, {"images": []})

    run_job(FakeTask(), job.id, work, max_attempts=3)
    assert store.get(job.id).status == JobStatus.cancelled


def test_progress_reports_renew_the_lease(store):
    job = new_job(store)
    seen = []

    def work(ctx):
        ctx.report(0.5, {"step": 1})
        seen.append((store.get(job.id).progress, store.redis.ttl(f"ganserve:lease:{job.id}")))
        return Outcome(JobStatus.succeeded, {})

    run_job(FakeTask(), job.id, work, max_attempts=3)
    assert seen[0][0] == 0.5 and 0 < seen[0][1] <= lease_seconds()


def test_a_copy_that_lost_its_lease_stops_without_touching_the_record(store):
    job = new_job(store)

    def stalled_work(ctx):
        store.redis.set(f"ganserve:lease:{job.id}", "other-host:2:task")  # taken over meanwhile
        ctx.check_lease()
        raise AssertionError("check_lease should have stopped this copy")

    run_job(FakeTask(), job.id, stalled_work, max_attempts=3)
    record = store.get(job.id)
    assert record.status == JobStatus.running and record.error is None  # the other copy's now
    assert lease_of(store, job.id) == b"other-host:2:task"  # not released by the loser
