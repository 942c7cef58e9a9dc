"""Workers killed mid-job: the job completes once a worker is back, and runs to completion once.

Workers here sleep 60 s on a job's first attempt after marking it running
(`tests/workers/slow_tasks.py`, a test-only module the test's worker imports), and are killed
during that sleep.

- The whole worker SIGKILLed (process group and all): its message was never acknowledged, so
  Redis delivers it again once the visibility timeout (a few seconds here, through
  GANSERVE_VISIBILITY_TIMEOUT) has passed, to the worker started in its place.
- Only the pool child SIGKILLed: the worker's main process requeues the message at once
  (`task_reject_on_worker_lost`) and its new child takes the job over (had the dead child's
  lease not expired yet, the task would retry until it has: tests/workers/test_jobs.py).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from core.jobs import QUEUE_INFER, TASK_SAMPLE, Job, JobKind, JobStatus
from tests.workers.processes import WorkerSetting, client, ended, logged, wait_for
from tests.workers.tiny import save_tiny_model


class Setting(WorkerSetting):
    """A storage root with a model, a Redis database, workers whose first attempt sleeps 60 s."""

    def __init__(self, redis_url: str, tmp_path: Path) -> None:
        super().__init__(redis_url, tmp_path, db=2, slow_first_attempt=60.0)
        save_tiny_model(self.storage.models, "digits")

    def send_sample(self) -> Job:
        job = self.store.create(
            Job(kind=JobKind.sample, model="digits", params={"count": 4, "seed": 9})
        )
        client(self.url).send_task(TASK_SAMPLE, args=[job.id], queue=QUEUE_INFER)
        wait_for(self.store, job.id, lambda j: j.status == JobStatus.running, timeout=60)
        return job

    def check_completed_once(self, job: Job) -> None:
        done = wait_for(self.store, job.id, ended, timeout=60)
        assert done.status == JobStatus.succeeded, done.error
        assert done.attempts == 2
        results = sorted(p.name for p in (self.storage.root / "results").iterdir())
        assert results == [job.id]  # no leftover temporary folder of either attempt
        assert sorted(p.name for p in self.storage.result_dir(job.id).iterdir()) == [
            *(f"{k}.png" for k in range(4)),
            "latents.npy",
        ]
        logs = logged(self.workers, f"job {job.id} succeeded")
        assert logs.count(f"job {job.id} succeeded") == 1


@pytest.fixture
def setting(redis_url, tmp_path):
    setting = Setting(redis_url, tmp_path)
    yield setting
    setting.kill_workers()


def pool_children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (the prefork pool of a worker's main process)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return children


def test_a_job_whose_worker_is_killed_completes_once_on_a_new_worker(setting):
    first = setting.worker("doomed")
    job = setting.send_sample()
    first.kill()  # SIGKILL to the whole process group, mid-job
    assert setting.store.get(job.id).status == JobStatus.running  # and nobody runs it
    assert not setting.storage.result_dir(job.id).exists()
    setting.worker("rescuer")
    setting.check_completed_once(job)
    assert "previous attempt did not finish" in setting.workers[1].text()


def test_a_job_whose_pool_process_is_killed_is_requeued_at_once(setting):
    worker = setting.worker("survivor")
    job = setting.send_sample()
    children = pool_children(worker.process.pid)
    assert len(children) == 1
    os.kill(children[0], signal.SIGKILL)
    started = time.monotonic()
    setting.check_completed_once(job)
    assert time.monotonic() - started < 30  # requeued by the worker, not by the timeout alone
    assert "WorkerLostError" in worker.text()


def test_a_job_leased_by_a_dead_worker_waits_for_the_lease_then_completes(setting):
    job = setting.store.create(
        Job(
            kind=JobKind.sample,
            model="digits",
            params={"count": 4, "seed": 9},
            status=JobStatus.running,  # its worker died while holding the lease
            attempts=1,
        )
    )
    worker = setting.worker("patient")
    # Leased only now that the worker is up, so the lease is still held when the task arrives.
    assert setting.store.acquire_lease(job.id, "ghost:1:task", 5)
    client(setting.url).send_task(TASK_SAMPLE, args=[job.id], queue=QUEUE_INFER)
    setting.check_completed_once(job)
    assert "held by another worker" in worker.text()  # it retried rather than dropped the job
    assert "Retry in" in worker.text()


def test_a_pool_process_over_its_memory_limit_is_replaced_after_its_job(setting):
    setting.env |= {"GANSERVE_WORKER_MAX_MEMORY_MB": "1"}
    setting.slow_first_attempt = None
    worker = setting.worker("recycler")
    pids = []
    for seed in (1, 2):
        job = setting.store.create(
            Job(kind=JobKind.sample, model="digits", params={"count": 1, "seed": seed})
        )
        client(setting.url).send_task(TASK_SAMPLE, args=[job.id], queue=QUEUE_INFER)
        # a fresh pool process imports torch and the work modules before it takes a job:
        # seconds, or a minute on a loaded machine
        done = wait_for(setting.store, job.id, ended, timeout=180)
        assert done.status == JobStatus.succeeded
        pids.append(worker.text().split(f"job {job.id} (sample) running, attempt 1, pid ")[1])
    assert pids[0].split()[0] != pids[1].split()[0]  # a fresh process ran the second job
