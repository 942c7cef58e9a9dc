"""The reconciler: the job records are the truth, and it keeps the queue in line with them.

A job's Celery message is only a wake-up call for the job's record. Messages can be lost where
the records are not: Redis restarted between a task's start and its first write (Celery then
acknowledges the failed task), a worker whose Redis vanished mid-job could record neither the
result nor the failure, or a worker died while holding the message. The reconciler walks the
active index (`JobStore.active_ids`: every job that has not ended) and finds the jobs that nobody
will ever run: `queued` or `running`, with no message waiting in their queue and no live lease.
A job seen like that on two passes far enough apart gets its task sent again, with the job id as
task id as the gateway sends it: `grace` (the lease length) for a `queued` job, so that a message
on its way (a submission, a requeue) is never doubled; `running_grace` (one pass interval) for a
`running` job, whose missing lease already says that no worker renewed it for a lease length (a
live worker renews it every third of that). The
existing rules of `workers.jobs.run_job` make that safe: an ended job is skipped, a lease keeps
one copy running, a job found `running` under a free lease is an attempt that died and is run
again up to its attempt limit.

It runs as a daemon thread in every worker's main process (started on Celery's `worker_ready`),
not as Celery beat: no extra process to deploy, supervise and keep single, and wherever a worker
runs the reconciler runs. A short Redis lock (`ganserve:reconciler`) lets one worker do a pass at
a time; the first-seen times live in Redis (`ganserve:orphans`), so passes by different workers
continue the same clock. The same thread runs the storage sweeper (`workers.sweeper`) every
`GANSERVE_SWEEP_SECONDS`, for the same reasons. Torch-free: it runs in the Celery parent process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from celery.signals import worker_ready, worker_shutdown

from core.jobs import (
    QUEUES,
    Job,
    JobNotFound,
    JobStatus,
    JobStore,
    task_message,
)
from core.queues import waiting_job_ids
from core.settings import get_settings
from workers.celery_app import celery_app
from workers.jobs import holder_name, job_store, lease_seconds, storage
from workers.sweeper import Sweeper

log = logging.getLogger(__name__)

ORPHANS_KEY = "ganserve:orphans"  # hash: job id -> when a pass first found it orphaned
LOCK_KEY = "ganserve:reconciler"


class Reconciler:
    """Finds jobs with no message and no lease and sends their task again (see module doc)."""

    def __init__(
        self,
        store: JobStore,
        send: Callable[[Job], None],
        grace: float,
        running_grace: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.send, self.clock = store, send, clock
        self.grace = grace
        self.running_grace = grace if running_grace is None else running_grace

    def orphaned(self, job_id: str, waiting: set[str]) -> bool:
        """Whether nothing will run the job: no message waits for it and no worker holds it."""
        return job_id not in waiting and not self.store.lease_held(job_id)

    def pass_once(self) -> list[str]:
        """One pass over the active jobs; the ids whose task it sent again."""
        client = self.store.redis
        active = self.store.active_ids()
        waiting = {job_id for queue in QUEUES for job_id in waiting_job_ids(client, queue)}
        first_seen = {
            key.decode(): float(value) for key, value in client.hgetall(ORPHANS_KEY).items()
        }
        now = self.clock()
        resent = []
        for job_id in active:
            try:
                job = self.store.get(job_id)
            except JobNotFound:  # its record expired
                self.store.forget_active(job_id)
                continue
            if job.status.ended:
                self.store.forget_active(job_id)
                continue
            if not self.orphaned(job_id, waiting):
                first_seen.pop(job_id, None)
                client.hdel(ORPHANS_KEY, job_id)
                continue
            since = first_seen.pop(job_id, None)
            if since is None:
                client.hset(ORPHANS_KEY, job_id, now)
            elif now - since >= (
                self.running_grace if job.status == JobStatus.running else self.grace
            ):
                log.warning(
                    "job %s is %s with no message and no worker for %.0f s; sending it again",
                    job_id,
                    job.status.value,
                    now - since,
                )
                self.send(job)
                client.hdel(ORPHANS_KEY, job_id)
                resent.append(job_id)
        if first_seen:  # entries of jobs that are no longer active
            client.hdel(ORPHANS_KEY, *first_seen)
        return resent

    def pass_if_free(self, holder: str, interval: float) -> list[str]:
        """A pass, unless another worker's pass holds the lock."""
        if not self.store.redis.set(LOCK_KEY, holder, nx=True, px=max(1, int(interval * 1000))):
            return []
        return self.pass_once()


class ReconcilerThread:
    """Runs `Reconciler.pass_if_free` every `interval` seconds until stopped, and after each
    pass the `sweeper`'s sweep when one is due."""

    def __init__(
        self,
        reconciler: Reconciler,
        holder: str,
        interval: float,
        sweeper: Sweeper | None = None,
    ) -> None:
        self.reconciler, self.holder, self.interval = reconciler, holder, interval
        self.sweeper = sweeper
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)

    def _run(self) -> None:
        down = False
        while not self._stop.wait(self.interval):
            try:
                self.reconciler.pass_if_free(self.holder, self.interval)
                if down:
                    log.info("Redis answers again; reconciling the queue")
                down = False
            except redis.RedisError as exc:
                if not down:
                    log.warning("reconciler: Redis does not answer (%s); trying again", exc)
                down = True
                continue
            except Exception:  # a pass that fails must not end the thread
                log.exception("reconciler pass failed")
            self._sweep()

    def _sweep(self) -> None:
        if self.sweeper is None:
            return
        try:
            self.sweeper.sweep_if_due(self.holder)
        except redis.RedisError as exc:
            log.warning("sweeper: Redis does not answer (%s); sweeping later", exc)
        except Exception:  # a sweep that fails must not end the thread
            log.exception("sweep failed")

    def start(self) -> ReconcilerThread:
        """Start the thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (it finishes the pass it is in)."""
        self._stop.set()
        self._thread.join(timeout=10)


def send_again(job: Job) -> None:
    """Send a job's task again, as the gateway first sent it (the job id is the task id, the
    priority its owner's fair share, `core.jobs.fair_priority`)."""
    priority = job_store().fair_priority_again(job) if get_settings().fair_queueing else None
    celery_app.send_task(**task_message(job, priority))


_running: list[ReconcilerThread] = []


@worker_ready.connect
def _start(**_: object) -> None:
    """Start this worker's reconciler thread (in the worker's main process)."""
    settings = get_settings()
    interval = settings.reconcile_seconds
    reconciler = Reconciler(
        job_store(), send_again, grace=max(interval, lease_seconds()), running_grace=interval
    )
    sweeper = Sweeper(
        storage(), job_store(), settings.sweep_seconds, grace=settings.sweep_grace_seconds
    )
    thread = ReconcilerThread(reconciler, holder_name("reconciler"), interval, sweeper)
    _running.append(thread.start())


@worker_shutdown.connect
def _stop(**_: object) -> None:
    while _running:
        _running.pop().stop()
