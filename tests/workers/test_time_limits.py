"""Every task has a time limit (`GANSERVE_INFER_TIME_LIMIT`, Celery's soft and hard limits): a job
past it fails `time_limit` and its worker goes on with the next job; in a batch, the members
whose pass was interrupted fail and those whose turn had not come go back to the queue; a pass
whose jobs were all cancelled stops at its next chunk.

First with a stand-in for the network work on a real Redis (`run_job`, `run_batched`), then with
real worker processes, tiny real models and real long jobs (a "keep the most real" sample that
scores 16384 candidates with a wider model: minutes on one core).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from core.jobs import QUEUE_INFER, Job, JobKind, JobStatus, JobStore, task_message
from core.params import MIN_KEEP
from models.stopping import check_stop
from tests.workers.processes import WorkerProcess, WorkerSetting, client, ended, logged, wait_for
from tests.workers.test_batching_rules import Work as StandInWork
from tests.workers.test_batching_rules import leader_of
from tests.workers.tiny import save_tiny_discriminator, save_tiny_model
from workers import jobs
from workers.batching import Prepared, run_batched, should_stop
from workers.errors import JobFailure, describe
from workers.jobs import JobContext, Yielded, run_job

# ---------------------------------------------------------------------------------------------
# The rules, with a stand-in for the work


class FakeTask:
    """Stands in for a bound Celery task."""

    request = SimpleNamespace(id="task-1")

    def retry(self, **kwargs):
        raise AssertionError(f"unexpected retry {kwargs}")


@pytest.fixture
def store(redis_client, storage, monkeypatch) -> JobStore:
    monkeypatch.setenv("GANSERVE_DATA_DIR", str(storage.root))
    monkeypatch.setenv("GANSERVE_INFER_TIME_LIMIT", "42")
    from core.settings import get_settings

    get_settings.cache_clear()
    job_store = JobStore(redis_client)
    monkeypatch.setattr(jobs, "job_store", lambda: job_store)
    yield job_store
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("kind", "model", "variable"),
    [
        (JobKind.sample, "digits", "GANSERVE_INFER_TIME_LIMIT"),
        (JobKind.training, None, "GANSERVE_TRAIN_TIME_LIMIT"),
    ],
)
def test_a_job_interrupted_by_its_soft_limit_fails_time_limit(
    store, monkeypatch, kind, model, variable
):
    monkeypatch.setattr(jobs, "_interrupted", jobs._Interrupted())
    job = store.create(Job(kind=kind, model=model, params={"count": 1}))

    def work(ctx):
        raise SoftTimeLimitExceeded()

    jobs.leave_if_interrupted()  # nothing interrupted yet: stays
    run_job(FakeTask(), job.id, work, max_attempts=3)
    failed = store.get(job.id)
    assert failed.status == JobStatus.failed and failed.error.code == "time_limit"
    limit = 42 if kind == JobKind.sample else 7 * 24 * 3600
    assert f"the job ran longer than the limit of {limit} s ({variable})" in failed.error.message
    assert not store.lease_held(job.id)
    with pytest.raises(SystemExit):  # what the task does next: this pool process is replaced
        jobs.leave_if_interrupted()


class Work(StandInWork):
    """Doubles each job's `value`; a pass holding a `slow` job, or preparing a `slow_prepare`
    one, is interrupted by the soft time limit; members with different `key`s run in different
    passes (in the order their keys first appear)."""

    def prepare(self, ctx: JobContext, loaded) -> Prepared:
        if ctx.job.params.get("slow_prepare"):
            raise SoftTimeLimitExceeded()
        return Prepared(ctx, (ctx.job.params.get("key", "a"),), 1, ctx.job.params)

    def run(self, loaded, members: list[Prepared]) -> list[int]:
        self.passes.append([m.ctx.job_id for m in members])
        if any(m.data.get("slow") for m in members):
            raise SoftTimeLimitExceeded()
        return [2 * m.data["value"] for m in members]


@pytest.fixture(autouse=True)
def _no_interrupt_left_behind(monkeypatch):
    """In-process tests interrupt work on purpose: the mark must not outlive them."""
    monkeypatch.setattr(jobs, "_interrupted", jobs._Interrupted())


def test_the_limit_fails_the_interrupted_pass_and_requeues_the_members_not_yet_run(make_context):
    leader = leader_of(make_context, value=1, key="a", slow=True)
    beside = make_context(JobKind.sample, "m", value=2, key="a")  # in the leader's pass
    later = make_context(JobKind.sample, "m", value=3, key="b")  # its pass never began
    with pytest.raises(JobFailure) as raised:
        run_batched(leader, Work())
    assert raised.value.code == "time_limit" and "the batch this job ran in" in raised.value.message
    store = leader.store
    interrupted = store.get(beside.job_id)
    assert interrupted.status == JobStatus.failed and interrupted.error.code == "time_limit"
    waiting = store.get(later.job_id)
    assert waiting.status == JobStatus.queued and waiting.attempts == 1 and waiting.error is None
    assert not store.lease_held(later.job_id) and not store.lease_held(beside.job_id)


def test_members_that_ended_keep_their_end_and_a_lone_slow_pass_is_its_own_fault(make_context):
    leader = leader_of(make_context, value=1, key="a")
    slow = make_context(JobKind.sample, "m", value=2, key="b", slow=True)
    after = make_context(JobKind.sample, "m", value=3, key="c")
    outcome = run_batched(leader, Work())
    assert outcome.status == JobStatus.succeeded and outcome.result == {"value": 2}
    store = leader.store
    failed = store.get(slow.job_id)
    assert failed.error.code == "time_limit"
    assert "the batch this job ran in" in failed.error.message  # a mate's time began before it
    assert store.get(after.job_id).status == JobStatus.queued


def test_a_leader_whose_turn_had_not_come_goes_back_to_the_queue(make_context):
    leader = leader_of(make_context, value=1)
    stuck = make_context(JobKind.sample, "m", value=2, slow_prepare=True)
    with pytest.raises(Yielded):  # run_job puts it back in the queue and sends its task again
        run_batched(leader, Work())
    assert leader.store.get(stuck.job_id).error.code == "time_limit"


def test_a_pass_whose_jobs_were_all_cancelled_stops_and_they_end_cancelled(make_context):
    leader = leader_of(make_context, value=1)
    mate = make_context(JobKind.sample, "m", value=2)
    chunks: list[int] = []

    class CancelledMidway(Work):
        def run(self, loaded, members):
            stop = should_stop(members)
            for chunk in range(100):  # a long pass, asking before every chunk
                if chunk == 3:
                    for m in members:
                        m.ctx.store.request_cancel(m.ctx.job_id)
                check_stop(stop, "the test pass")
                chunks.append(chunk)
            raise AssertionError("the pass did not stop")

    outcome = run_batched(leader, CancelledMidway())
    assert chunks == [0, 1, 2]
    assert outcome.status == JobStatus.cancelled
    assert leader.store.get(mate.job_id).status == JobStatus.cancelled


def test_a_pass_goes_on_while_one_of_its_jobs_is_still_wanted(make_context):
    leader = leader_of(make_context, value=1)
    mate = make_context(JobKind.sample, "m", value=2)
    mate.store.request_cancel(mate.job_id)
    outcome = run_batched(leader, Work())
    assert outcome.result == {"value": 2}
    assert leader.store.get(mate.job_id).status == JobStatus.cancelled


def test_the_time_limit_error_is_not_an_internal_error():
    error = describe(
        jobs.time_limit_failure(Job(kind=JobKind.projection), jobs.get_settings(), batched=False)
    )
    assert error.code == "time_limit" and "GANSERVE_INFER_TIME_LIMIT" in error.message


# ---------------------------------------------------------------------------------------------
# Real workers, real jobs

LONG = {"count": 64, "seed": 1, "filter": {"method": "top", "keep": MIN_KEEP}}  # 16384 candidates


WIDTH = 24


class Setting(WorkerSetting):
    """A storage root with the tiny digits model and its discriminator, and its own Redis db."""

    def __init__(self, redis_url: str, tmp_path: Path) -> None:
        super().__init__(redis_url, tmp_path, db=6)
        # wider than the other tests' digits model, so that LONG takes well over its limit
        # (minutes on one core) on a fast machine too
        save_tiny_model(self.storage.models, "digits", width=WIDTH)
        save_tiny_discriminator(self.storage.models, "digits", width=WIDTH)
        self.celery = client(self.url)

    def queue(self, **params) -> Job:
        """Record a sample job of the digits model (offered for batching) and send its task."""
        job = self.store.create(Job(kind=JobKind.sample, model="digits", params=params))
        self.celery.send_task(**task_message(job))
        return job


def _pids(logs: str, jobs_: list[Job]) -> set[str]:
    """The pool processes that ran these jobs (each attempt logs its pid)."""
    found = set()
    for job in jobs_:
        found |= set(re.findall(rf"job {job.id} \(sample\) running, attempt \d+, pid (\d+)", logs))
    return found


def test_a_job_past_its_limit_fails_and_the_worker_serves_the_next(redis_url, tmp_path):
    setting = Setting(redis_url, tmp_path)
    long = setting.queue(**LONG)  # the batch leader: its message comes first
    mate = setting.queue(count=2, seed=2)  # taken into its batch, behind it
    try:
        # 15 s: a fresh pool process imports torch within its first job's time (some 5 s here)
        worker = setting.worker("limits", GANSERVE_INFER_TIME_LIMIT="15")
        failed = wait_for(setting.store, long.id, ended, timeout=90)
        assert failed.status == JobStatus.failed and failed.error.code == "time_limit", failed
        assert "ran longer than the limit of 15 s (GANSERVE_INFER_TIME_LIMIT)" in (
            failed.error.message
        )
        assert failed.finished_at - failed.started_at < 17  # stopped, not run to its end
        # the mate, whose pass had not begun, went back to the queue and ran again
        again = wait_for(setting.store, mate.id, ended, timeout=60)
        assert again.status == JobStatus.succeeded and again.attempts == 2, again
        after = setting.queue(count=1, seed=3)
        assert wait_for(setting.store, after.id, ended, timeout=60).status == JobStatus.succeeded
        logs = logged([worker], f"job {after.id} succeeded")
        assert worker.process.poll() is None  # the same worker went on
        assert "Hard time limit" not in logs
        # the interrupted pool process left once the job's end was recorded (an interrupt may
        # land inside a lazy import and break the process); a fresh one ran the next jobs
        assert "it is replaced before the next" in logs
        assert _pids(logs, [long]).isdisjoint(_pids(logs, [after]))
    finally:
        setting.kill_workers()


def test_a_job_that_ignores_its_soft_limit_is_killed_and_fails_time_limit(redis_url, tmp_path):
    setting = Setting(redis_url, tmp_path)
    stubborn = setting.queue(count=1, seed=1, stubborn=60)  # tests/workers/stubborn_tasks.py
    env = {
        **setting.env,
        # a fresh pool process's first job takes ~2 s here, several on a loaded machine
        "GANSERVE_INFER_TIME_LIMIT": "12",
        "GANSERVE_TIME_LIMIT_GRACE": "2",
        "GANSERVE_RECONCILE_SECONDS": "1",
    }
    worker = WorkerProcess(
        QUEUE_INFER, "hard", env, tmp_path / "hard.log", include=("tests.workers.stubborn_tasks",)
    )
    setting.workers.append(worker)
    try:
        worker.wait_ready()
        failed = wait_for(setting.store, stubborn.id, ended, timeout=60)
        assert failed.status == JobStatus.failed and failed.error.code == "time_limit", failed
        assert failed.attempts == 1
        after = setting.queue(count=1, seed=2)
        assert wait_for(setting.store, after.id, ended, timeout=60).status == JobStatus.succeeded
        logs = logged([worker], f"job {after.id} succeeded")
        assert "Hard time limit (14" in logs, logs[-3000:]
        assert len(_pids(logs, [stubborn, after])) == 2  # the killed process was replaced
        time.sleep(3)  # past its lease and several reconciler passes: never run again
        assert setting.store.get(stubborn.id).attempts == 1
    finally:
        setting.kill_workers()
