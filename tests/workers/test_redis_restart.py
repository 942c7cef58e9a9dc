"""Redis stopped and started again under 40 queued jobs: every job ends, none completes twice.

A real redis-server (the embedded one, append-only with `appendfsync always`) on its own port, a
real infer worker, 40 sample jobs recorded and sent as the gateway does. Mid-stream, Redis is
stopped (SIGTERM, a clean shutdown) or killed (SIGKILL) and started again on the same port and
data 3 s later. The worker's task that met the dead Redis requeues its job once Redis answers;
a job whose message was lost with the connection is sent again by the reconciler
(`workers.reconciler`), here every second with a 2 s lease.
"""

from __future__ import annotations

import signal
import time

import pytest
import redis

from core.jobs import QUEUE_INFER, TASK_SAMPLE, Job, JobKind, JobStatus, JobStore
from core.storage import Storage
from ganserve.embedded_redis import EmbeddedRedis
from tests.workers.processes import WorkerProcess, client, logged
from tests.workers.tiny import save_tiny_model

JOBS = 40


def restart(server: EmbeddedRedis, how: signal.Signals, down_seconds: float = 3.0) -> None:
    """Stop the server with `how`, wait, and start it again on the same port and data."""
    assert server.process is not None
    server.process.send_signal(how)
    server.process.wait(timeout=20)
    server.stop()
    time.sleep(down_seconds)
    server.start()


def wait_all_ended(store: JobStore, ids: list[str], timeout: float) -> list[Job]:
    """Poll until every job ended (reads that meet a Redis still starting are tried again)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            jobs = [store.get(job_id) for job_id in ids]
            if all(job.status.ended for job in jobs):
                return jobs
        except redis.ConnectionError:
            jobs = []
        if time.monotonic() > deadline:
            stuck = [f"{job.id}: {job.status.value}" for job in jobs if not job.status.ended]
            raise AssertionError(f"jobs did not end within {timeout} s: {stuck}")
        time.sleep(0.2)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_every_job_ends_once_through_a_redis_restart(tmp_path, how):
    storage = Storage(tmp_path / "data")
    storage.ensure()
    save_tiny_model(storage.models, "digits")
    with EmbeddedRedis(tmp_path / "redis") as server:
        env = {
            "GANSERVE_REDIS_URL": server.url,
            "GANSERVE_DATA_DIR": str(storage.root),
            "GANSERVE_VISIBILITY_TIMEOUT": "4",  # leases of 2 s
            "GANSERVE_RECONCILE_SECONDS": "1",
        }
        # each first attempt takes a while (tests/workers/slow_tasks.py)
        worker = WorkerProcess(QUEUE_INFER, "restarts", env, tmp_path / "worker.log", 0.15)
        try:
            worker.wait_ready()
            store = JobStore(redis.Redis.from_url(server.url, socket_timeout=5))
            sender = client(server.url)
            ids = []
            for k in range(JOBS):
                job = store.create(
                    Job(kind=JobKind.sample, model="digits", params={"count": 1, "seed": k})
                )
                sender.send_task(TASK_SAMPLE, args=[job.id], queue=QUEUE_INFER, task_id=job.id)
                ids.append(job.id)
            deadline = time.monotonic() + 60
            while sum(store.get(i).status == JobStatus.succeeded for i in ids) < 5:
                assert time.monotonic() < deadline, worker.text()[-3000:]
                time.sleep(0.05)
            restart(server, how)  # while the worker is in the middle of a job
            jobs = wait_all_ended(store, ids, timeout=150)
            for job_id in ids:  # the end is recorded just before it is logged
                log = logged([worker], f"job {job_id} succeeded")
        finally:
            worker.kill()
    assert [job.status for job in jobs] == [JobStatus.succeeded] * JOBS, [
        (job.id, job.error) for job in jobs if job.status != JobStatus.succeeded
    ]
    twice = [job_id for job_id in ids if log.count(f"job {job_id} succeeded") != 1]
    assert twice == [], log[-4000:]
    assert sorted(p.name for p in storage.root.joinpath("results").iterdir()) == sorted(ids)
    for job_id in ids:  # each result complete, no staging folder left behind
        assert sorted(p.name for p in storage.result_dir(job_id).iterdir()) == [
            "0.png",
            "latents.npy",
        ]
