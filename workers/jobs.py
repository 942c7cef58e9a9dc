"""The life of one job in a worker: claim it, mark it running, do the work, record how it ended.

Every task goes through `run_job`, which makes delivering a message more than once harmless:

- An unknown id is logged and dropped; a job that already ended (succeeded, failed, cancelled) is
  skipped, so a redelivery after completion never runs it again.
- A job whose cancellation was requested before it started is marked `cancelled` and never runs.
- Exactly one copy of a job runs at a time: the worker takes the job's lease in Redis
  (`JobStore.acquire_lease`, holder = host:pid:task id) for `lease_seconds()` and a heartbeat thread
  renews it while the work runs. A copy that finds the lease taken does not run and does not drop
  the job either: it retries the task `lease_seconds()` later (a new message), and then either sees
  the job ended (skip) or takes over the lease of a holder that died (its lease expired). This is
  how a job whose worker was SIGKILLed completes once a worker is back, and is not run to
  completion twice.
- A copy whose lease was taken over (it stalled longer than the lease, e.g. a frozen process)
  stops at its next `check_lease()` (training checks once a second) without recording anything:
  the copy holding the lease owns the job.
- A job found `running` under a free lease was started by a worker that died. It is run again
  (inference writes its result folder atomically; training resumes from its checkpoint) unless
  that already happened `max_attempts` times, in which case it fails with a message saying so
  (a job that kills its worker every time must not be retried forever).
- Any exception from the work ends the job `failed` with a readable `JobError`
  (`workers.errors`), unless another copy ended it meanwhile.
- A job that runs past its task's time limit (`Settings.time_limits`, set as Celery's soft and
  hard time limits by `workers.celery_app`) fails `time_limit`: at the soft limit the work is
  interrupted (SoftTimeLimitExceeded), this process records the failure and then leaves
  (`leave_if_interrupted`: an interrupt can land anywhere, e.g. inside a lazy import of torch's,
  and leave the process broken for the next job), and the worker's pool starts a fresh process
  for the next job; at the hard limit (the work did not stop within the grace) Celery kills the
  pool process and the worker's main process records the failure (`record_hard_time_limit`),
  so the job is not run again.
- A Redis error (Redis restarted or unreachable) is not the job's fault and never ends it: the
  task waits until Redis answers again (up to `REDIS_WAIT_SECONDS`) and rejects its message back
  to the queue. Should that message be lost with the connection, the job's record still says it
  is not done, and the reconciler (`workers.reconciler`) sends its task again: a job never stays
  `queued` or `running` for good with nobody working on it.

Torch-free: the Celery parent imports this module before forking its pool.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from celery.exceptions import Reject, SoftTimeLimitExceeded
from kombu.exceptions import OperationalError

from core.jobs import (
    BATCHED_KINDS,
    QUEUE_OF_KIND,
    QUEUE_TRAIN,
    Job,
    JobError,
    JobKind,
    JobNotFound,
    JobStatus,
    JobStore,
)
from core.logs import about_job
from core.model_registry import ModelMissing, ModelRegistry
from core.settings import Settings, get_settings
from core.storage import Storage
from workers import metrics
from workers.errors import JobFailure, describe
from workers.shutdown import WorkerShuttingDown

log = logging.getLogger(__name__)


def lease_seconds() -> int:
    """How long a lease outlives its last renewal (`Settings.lease_seconds`): a dead holder
    blocks its job at most this long."""
    return get_settings().lease_seconds


REDIS_WAIT_SECONDS = 30.0


class Yielded(Exception):
    """A background job stepped aside for work waiting in its queue: it goes back to `queued`
    and a new message for it joins the back of the queue (it resumes from its checkpoint)."""


class LeaseLost(Exception):
    """Another worker holds the job's lease now: this copy must stop without recording anything."""


@dataclass
class Outcome:
    """How the work of a job ended when it did not raise: succeeded or cancelled, with a result."""

    status: JobStatus
    result: dict[str, Any] = field(default_factory=dict)


class _ProcessResources:
    """The job store and storage of this process, made after the fork that made the process."""

    def __init__(self) -> None:
        self.pid = -1
        self.store: JobStore | None = None

    def job_store(self) -> JobStore:
        if self.store is None or self.pid != os.getpid():
            settings = get_settings()
            if not settings.redis_url:
                raise RuntimeError("GANSERVE_REDIS_URL is not set: the worker has no Redis")
            self.store = JobStore(redis.Redis.from_url(settings.redis_url), settings.result_ttl)
            self.pid = os.getpid()
        return self.store


_resources = _ProcessResources()


def job_store() -> JobStore:
    """The job store of this worker process (one Redis connection pool per process)."""
    return _resources.job_store()


_storages: dict[int, tuple[object, Storage]] = {}


def storage() -> Storage:
    """The storage of this worker, from its settings (opened once per settings object: an S3
    client keeps its connections)."""
    settings = get_settings()
    kept = _storages.get(id(settings))
    if kept is None or kept[0] is not settings:
        kept = _storages[id(settings)] = (settings, Storage.from_settings(settings))
    return kept[1]


class JobContext:
    """What a job's work gets: its record, the store, storage, settings and progress reporting."""

    def __init__(
        self,
        job: Job,
        store: JobStore,
        storage: Storage,
        settings: Settings,
        holder: str,
        max_attempts: int = 1,
    ) -> None:
        self.job = job
        self.store = store
        self.storage = storage
        self.settings = settings
        self.holder = holder
        self.max_attempts = max_attempts  # what batch-mates taken under this holder get too

    def mate(self, job: Job) -> JobContext:
        """The context of a batch-mate this job's worker took under the same lease holder."""
        return JobContext(
            job, self.store, self.storage, self.settings, self.holder, self.max_attempts
        )

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self.job.id

    def report(self, progress: float, detail: dict[str, Any] | None = None) -> None:
        """Record progress (0..1) and its details, and renew the lease."""
        fields: dict[str, Any] = {"progress": max(0.0, min(1.0, float(progress)))}
        if detail is not None:
            fields["progress_detail"] = detail
        self.job = self.store.update(self.job_id, **fields)
        self.renew_lease()

    def renew_lease(self) -> bool:
        """Extend this worker's lease on the job; False when another holder has it now."""
        return self.store.acquire_lease(self.job_id, self.holder, lease_seconds())

    def cancel_requested(self) -> bool:
        """Whether someone asked to cancel the job."""
        return self.store.cancel_requested(self.job_id)

    def check_lease(self) -> None:
        """Raise LeaseLost when another worker took the job over (this one stalled too long)."""
        if not self.renew_lease():
            raise LeaseLost(self.job_id)


class Heartbeat:
    """A daemon thread renewing the leases of `job_ids` every third of their life while the
    work runs (one job, or the batch-mates a worker took)."""

    def __init__(self, store: JobStore, job_ids: list[str], holder: str) -> None:
        self.store, self.job_ids, self.holder = store, job_ids, holder
        self._stop = threading.Event()
        name = f"lease-{job_ids[0][:8] if job_ids else '-'}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(lease_seconds() / 3):
            try:
                held = self.store.acquire_leases(self.job_ids, self.holder, lease_seconds())
            except redis.RedisError as exc:
                log.warning("could not renew the leases of %s: %s", self.job_ids, exc)
                continue
            for job_id in self.job_ids:
                if job_id not in held:
                    log.warning("job %s: the lease is held by another worker now", job_id)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def holder_name(task_id: str | None) -> str:
    """Who holds a lease: this host, this process and the Celery task id."""
    return f"{socket.gethostname()}:{os.getpid()}:{task_id or '-'}"


def _end(store: JobStore, job_id: str, status: JobStatus, **fields: Any) -> Job:
    job = store.update(job_id, status=status, finished_at=time.time(), **fields)
    metrics.job_ended(job)
    return job


def mark_cancelled(store: JobStore, job: Job) -> None:
    """End a job that has not ended as cancelled."""
    if not job.status.ended:
        _end(store, job.id, JobStatus.cancelled)


Work = Callable[[JobContext], Outcome]


def wait_for_redis(store: JobStore, timeout: float = REDIS_WAIT_SECONDS) -> bool:
    """Wait until Redis answers PING again (True), or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            store.redis.ping()
            return True
        except redis.RedisError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)


def run_job(task: Any, job_id: str, work: Work, *, max_attempts: int) -> None:
    """Run `work` for the job `job_id` under its lease, recording status, result or error.

    `task` is the bound Celery task (its `retry` re-queues the job while another worker holds
    the lease). Returns when the job ended or was skipped; raises only Celery's `Retry`, or
    `Reject` with requeue when Redis failed under the job.
    """
    store = job_store()
    try:
        with about_job(job_id):
            _run_job(task, store, job_id, work, max_attempts)
    except (redis.RedisError, OperationalError) as exc:
        log.warning(
            "job %s: Redis failed under it (%s); waiting for Redis to requeue it", job_id, exc
        )
        back = wait_for_redis(store)
        log.info(
            "job %s: %s; its message goes back to the queue",
            job_id,
            "Redis answers" if back else "Redis still down",
        )
        raise Reject(f"Redis failed: {exc}", requeue=True) from None


def _run_job(task: Any, store: JobStore, job_id: str, work: Work, max_attempts: int) -> None:
    try:
        job = store.get(job_id)
    except JobNotFound:
        log.warning("job %s: no such job record (expired or never created); dropped", job_id)
        return
    if job.status.ended:
        log.info("job %s already %s; not running it again", job_id, job.status.value)
        return
    if job.status == JobStatus.queued and store.cancel_requested(job_id):
        log.info("job %s was cancelled while queued; not running it", job_id)
        mark_cancelled(store, job)
        return

    holder = holder_name(getattr(task.request, "id", None))
    if not store.acquire_lease(job_id, holder, lease_seconds()):
        log.info("job %s is held by another worker; checking again in %ss", job_id, lease_seconds())
        raise task.retry(countdown=lease_seconds(), max_retries=None)
    yielded = False
    try:
        _leave_batch_list(store, job)
        with Heartbeat(store, [job_id], holder):
            _run_leased(store, job_id, work, holder, max_attempts)
    except Yielded:
        yielded = True
    finally:
        try:
            store.release_lease(job_id, holder)
        except redis.RedisError as exc:  # the lease expires on its own
            log.warning("job %s: could not release the lease: %s", job_id, exc)
    if yielded:  # sent before this message is acknowledged: a crash in between loses nothing
        priority = None
        if get_settings().fair_queueing:  # behind other owners' first jobs, as when submitted
            priority = store.fair_priority_again(store.get(job_id))
        task.apply_async(args=(job_id,), task_id=job_id, priority=priority)


def begin_attempt(store: JobStore, job_id: str, max_attempts: int) -> Job | None:
    """Under the job's lease: the job marked `running` for a new attempt, or None when it must
    not run (it ended meanwhile, its cancellation was requested, or it was given up after
    `max_attempts` attempts whose workers died)."""
    job = store.get(job_id)  # read again under the lease: another copy may have ended it
    if job.status.ended:
        log.info("job %s already %s; not running it again", job_id, job.status.value)
        return None
    if store.cancel_requested(job_id):
        log.info("job %s was cancelled before it started; not running it", job_id)
        mark_cancelled(store, job)
        return None
    if job.status == JobStatus.running and job.attempts >= max_attempts:
        _end(
            store,
            job_id,
            JobStatus.failed,
            error=JobError(
                code="worker_lost",
                message=f"the worker running this job stopped unexpectedly {job.attempts} times "
                "(it may have run out of memory or been killed); the job was given up",
            ),
        )
        return None
    if job.status == JobStatus.running:
        log.warning(
            "job %s: its previous attempt did not finish (its worker died or lost Redis); "
            "running it again",
            job_id,
        )
    job = store.update(
        job_id,
        status=JobStatus.running,
        started_at=time.time(),
        attempts=job.attempts + 1,
        error=None,
    )
    metrics.job_started(job)
    log.info(
        "job %s (%s) running, attempt %d, pid %d", job_id, job.kind.value, job.attempts, os.getpid()
    )
    return job


def record_failure(store: JobStore, job_id: str, exc: Exception) -> None:
    """End the job `failed` with a readable error, unless another copy ended it meanwhile."""
    record_ends(store, {job_id: exc})


def record_outcome(store: JobStore, job_id: str, outcome: Outcome) -> None:
    """End the job as its work says, unless someone ended it meanwhile (e.g. cancelled it)."""
    record_ends(store, {job_id: outcome})


def record_ends(store: JobStore, ends: dict[str, Outcome | Exception]) -> None:
    """End jobs in one transaction: each as its work's Outcome says, or `failed` with a readable
    error for an exception (`workers.errors.describe`); a job that someone ended meanwhile
    (another copy, a cancellation) keeps its end."""
    for job_id, end in ends.items():
        if isinstance(end, JobFailure):
            log.info("job %s failed: %s", job_id, end.message)
        elif isinstance(end, Exception):
            log.error("job %s failed unexpectedly", job_id, exc_info=end)
    now = time.time()

    def end_fields(record: dict[str, Any]) -> dict[str, Any] | None:
        if JobStatus(record["status"]).ended:
            return None
        end = ends[record["id"]]
        if isinstance(end, Exception):
            return {"status": JobStatus.failed, "finished_at": now, "error": describe(end)}
        progress = 1.0 if end.status == JobStatus.succeeded else record.get("progress", 0.0)
        return {
            "status": end.status,
            "finished_at": now,
            "result": end.result,
            "progress": progress,
        }

    changed = store.update_many(list(ends), end_fields)
    for job_id, end in ends.items():
        job = changed.get(job_id)
        if job is None:
            log.info("job %s had ended while it ran; its end stands", job_id)
            continue
        metrics.job_ended(job)
        if isinstance(end, Outcome):
            log.info("job %s %s", job_id, end.status.value)


def _leave_batch_list(store: JobStore, job: Job) -> None:
    """Take a job that its own message runs off its batch list (best effort: a batch that pops
    it later finds it held or ended)."""
    if job.kind in BATCHED_KINDS and job.model:
        try:
            store.drop_batch_candidate(job.kind, job.model, job.id)
        except redis.RedisError as exc:
            log.warning("job %s: could not leave its batch list: %s", job.id, exc)


def require_pinned_version(ctx: JobContext) -> None:
    """`model_not_found` unless the model version the job pinned at submission is still there
    with the same content (a training run checks the model it starts from itself: a run that
    resumes its own checkpoint no longer needs it; an import names the model it creates)."""
    job = ctx.job
    if job.model is None or job.kind in (JobKind.training, JobKind.model_import):
        return
    try:
        ModelRegistry.of(ctx.storage).pinned_version(job.model, job.model_digest)
    except ModelMissing as exc:
        raise JobFailure(
            "model_not_found",
            f"{exc}: the model version this job was submitted for was deleted after the job "
            "was queued",
        ) from None


def _run_leased(store: JobStore, job_id: str, work: Work, holder: str, max_attempts: int) -> None:
    job = begin_attempt(store, job_id, max_attempts)
    if job is None:
        return
    ctx = JobContext(job, store, storage(), get_settings(), holder, max_attempts)
    try:
        require_pinned_version(ctx)
        outcome = work(ctx)
    except LeaseLost:
        log.warning("job %s: another worker took it over; this copy stopped", job_id)
        return
    except Yielded as exc:
        log.info("job %s: %s; back to the end of the queue", job_id, exc)
        store.update(job_id, status=JobStatus.queued)
        raise
    except WorkerShuttingDown as exc:
        log.info("job %s: the worker is stopping (%s); requeued to resume", job_id, exc)
        store.update(job_id, status=JobStatus.queued)
        raise Reject(str(exc), requeue=True) from None
    except (redis.RedisError, OperationalError):
        raise  # not the job's fault: run_job requeues it
    except SoftTimeLimitExceeded:
        interrupted_by_time_limit()
        record_failure(store, job_id, time_limit_failure(ctx.job, ctx.settings))
        return
    except Exception as exc:
        record_failure(store, job_id, exc)
        return
    record_outcome(store, job_id, outcome)


class _Interrupted:
    """Whether a soft time limit interrupted work in this process (then it must not take
    another job)."""

    def __init__(self) -> None:
        self.pid = -1

    def mark(self) -> None:
        self.pid = os.getpid()

    def __bool__(self) -> bool:
        return self.pid == os.getpid()


_interrupted = _Interrupted()


def interrupted_by_time_limit() -> None:
    """Note that a soft time limit interrupted this process's work (`leave_if_interrupted`)."""
    _interrupted.mark()


def leave_if_interrupted() -> None:
    """Called by a task once its job's end is recorded: when a soft time limit interrupted the
    work, leave this pool process (SystemExit, which the pool reports as the task's end before
    the process exits; the worker starts a new one), since the interrupt may have left it
    broken (a module half imported, a model half loaded)."""
    if _interrupted:
        log.warning("a time limit interrupted this process's work; it is replaced before the next")
        raise SystemExit("a time limit interrupted this pool process's work")


def time_limit_failure(job: Job, settings: Settings, *, batched: bool = False) -> JobFailure:
    """The failure of a job stopped at its task's time limit (`batched`: the batch it ran in,
    `workers.batching`, reached the limit while its images were drawn)."""
    queue = QUEUE_OF_KIND[job.kind]
    limit, _ = settings.time_limits(queue)
    variable = "GANSERVE_TRAIN_TIME_LIMIT" if queue == QUEUE_TRAIN else "GANSERVE_INFER_TIME_LIMIT"
    what = (
        "the batch this job ran in (waiting jobs of the same model run together)"
        if batched
        else "the job"
    )
    return JobFailure(
        "time_limit",
        f"{what} ran longer than the limit of {limit} s ({variable}) and was stopped; ask for "
        "less work (fewer images, candidates, frames or steps, a smaller image), or ask the "
        "operator to raise the limit",
    )


def record_hard_time_limit(job_id: str, worker_pid: int | None, task_id: str | None) -> None:
    """In the worker's main process, after Celery killed the pool process `worker_pid` that ran
    `job_id` past its hard time limit: the job fails `time_limit` (not `worker_lost` three
    attempts later), unless it ended or another worker holds it now. If it led a batch, its
    batch-mates' leases lapse and their own messages run them again, each alone."""
    holder = f"{socket.gethostname()}:{worker_pid}:{task_id or '-'}"  # the killed one's name
    try:
        store = job_store()
        if not store.acquire_lease(job_id, holder, lease_seconds()):
            return  # another worker took it over meanwhile
        try:
            job = store.get(job_id)
            if job.status == JobStatus.running:
                failure = time_limit_failure(job, get_settings())
                log.info("job %s failed: %s (its pool process was killed)", job_id, failure)
                _end(store, job_id, JobStatus.failed, error=failure.to_error())
        finally:
            store.release_lease(job_id, holder)
    except (redis.RedisError, JobNotFound) as exc:  # then it runs again, up to max_attempts
        log.warning("job %s: could not record its time limit: %s", job_id, exc)
