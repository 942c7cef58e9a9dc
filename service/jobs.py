"""Jobs from the gateway's side: backpressure, recording and queueing, and their public JSON.

The gateway writes the job record (`core.jobs.JobStore`) before it sends the Celery task
by name with the job id as the only argument, so a worker always finds the record. Results: a
worker writes result image k of job j to `results/<j>/<k>.png` and stores `result.count`; the
gateway turns that into `result.images`, the list of URLs `/v1/jobs/<j>/images/<k>`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import redis
from celery import Celery
from fastapi import Response

from core.jobs import (
    QUEUE_OF_KIND,
    Job,
    JobError,
    JobKind,
    JobStatus,
    JobStore,
    fair_priority,
)
from core.model_registry import ModelMissing, ModelRegistry
from core.object_store import ObjectStore
from core.params import JobParams
from core.public_jobs import JobBase, job_url, public_job
from core.queues import queue_lists
from core.storage import upload_key
from core.webhook_outbox import WebhookTarget
from service.errors import (
    REDIS_DOWN_MESSAGE,
    REDIS_FULL_MESSAGE,
    RETRY_AFTER_SECONDS,
    ApiError,
)
from service.task_messages import push_task

log = logging.getLogger(__name__)


@dataclass
class JobQueue:
    """What a route needs to submit a job: it checks the queue's capacity, records the job and
    sends its task (`enqueue`), for the calling owner. Routes get one from `JobQueueDep`."""

    store: JobStore
    celery_app: Celery
    client: redis.Redis
    max_queued: int
    owner: str
    response: Response
    objects: ObjectStore  # the store: the models (the pinned version is checked at submission)
    # and the jobs' uploads
    max_queued_per_key: int | None = None  # None, or an operator: no limit of its own
    fair_queueing: bool = True
    queued_before: int = 0  # the caller's jobs waiting in the new job's queue (`new`)

    def new(
        self,
        kind: JobKind,
        model: str | None = None,
        digest: str | None = None,
        webhook: WebhookTarget | None = None,
    ) -> Job:
        """A job of `kind` for the caller, once its queue has room (429 `queue_full` if not)
        and the caller's share of it too (429 `key_queue_full`); not recorded yet (its id names
        its upload folder). `model` is the pinned version (`<id>@<n>`) and `digest` its content
        digest, which the worker checks; `webhook` where its events go."""
        queue = QUEUE_OF_KIND[kind]
        self.queued_before = self._waiting(queue)
        if self.max_queued_per_key is not None and self.queued_before >= self.max_queued_per_key:
            raise ApiError(
                429,
                "key_queue_full",
                f"This API key already has {self.queued_before} jobs waiting in the {queue} "
                f"queue, its limit (GANSERVE_MAX_QUEUED_JOBS_PER_KEY); try again when some "
                "have started.",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return Job(owner=self.owner, kind=kind, model=model, model_digest=digest, webhook=webhook)

    def _waiting(self, queue: str) -> int:
        """The caller's jobs waiting in `queue` (0 when neither fair queueing nor a per-key
        limit needs them), once the queue has room (`ensure_capacity`): both read in one round
        trip (and the caller's oldest entries checked, `JobStore.queued_count`)."""
        lists = queue_lists(queue)
        counted = self.fair_queueing or self.max_queued_per_key is not None
        pipe = self.client.pipeline(transaction=False)
        for name in lists:
            pipe.llen(name)
        if counted:
            self.store.ask_queued(pipe, self.owner, queue)
        found = pipe.execute()
        ensure_capacity(queue, sum(found[: len(lists)]), self.max_queued)
        return self.store.queued_from(self.owner, queue, *found[len(lists) :]) if counted else 0

    def submit(self, job: Job, params: JobParams, uploaded: bool = False) -> JobBase:
        """Record `job` with its typed `params` and queue it (fairly between API keys: see
        `core.jobs.fair_priority`); its public JSON (see `enqueue`). `uploaded`: the route
        stored files for it under `uploads/<job id>/`, removed when it cannot be queued."""
        job.params = params.model_dump(exclude_unset=True)  # as the route set them
        pinned = None
        if job.model_digest is not None and job.model is not None:
            pinned = partial(_version_remains, self.objects, job.model, job.model_digest)
        priority = fair_priority(self.queued_before) if self.fair_queueing else None
        uploads = self.objects if uploaded else None
        return enqueue(self.store, self.celery_app, job, self.response, uploads, pinned, priority)


def _version_remains(objects: ObjectStore, ref: str, digest: str) -> bool:
    """Whether the model version a job pinned is still there with the same content."""
    try:
        ModelRegistry(objects).pinned_version(ref, digest)
    except (ModelMissing, OSError):
        return False
    return True


def ensure_capacity(queue: str, waiting: int, max_queued: int) -> None:
    """429 `queue_full` (with Retry-After) when `queue` already holds `max_queued` messages
    (`waiting` do)."""
    if waiting >= max_queued:
        raise ApiError(
            429,
            "queue_full",
            f"The {queue} queue is full ({waiting} jobs waiting); try again later.",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def enqueue(
    store: JobStore,
    celery_app: Celery,
    job: Job,
    response: Response,
    uploads: ObjectStore | None = None,
    pinned: Callable[[], bool] | None = None,
    priority: int | None = None,
) -> JobBase:
    """Record `job`, send its task to its queue (with `priority`) and point `Location` at it;
    its JSON.

    `pinned` says whether the model version the job pinned is still there: it is asked once the
    job is recorded (from then on the retention of versions keeps the version for the job), and
    a version removed in between is a 404 `model_not_found` with nothing queued. When the job
    cannot be recorded or queued, its uploaded files (`uploads/<job id>/` in `uploads`, when
    given) are removed.
    """
    try:
        return _record_and_send(store, celery_app, job, response, pinned, priority)
    except (ApiError, redis.RedisError):
        if uploads is not None:
            uploads.delete_prefix(upload_key(job.id, ""))
        raise


def _record_and_send(
    store: JobStore,
    celery_app: Celery,
    job: Job,
    response: Response,
    pinned: Callable[[], bool] | None,
    priority: int | None = None,
) -> JobBase:
    """The job recorded and its task sent (see `enqueue`).

    The task message is pushed onto its queue's list as send_task would (`service.task_messages`).
    When the broker refuses the task: 503 `queue_unavailable` if Redis is out of memory, else
    503 `broker_unavailable`; the job is recorded as failed (or, when Redis takes no write at
    all, its record removed), so no worker ever runs a job whose submitter was told it failed.
    """
    store.create(job)
    if pinned is not None and not pinned():
        store.delete(job.id)
        raise ApiError(
            404,
            "model_not_found",
            f"The model version {job.model!r} was removed just now; submit the job again.",
        )
    try:
        push_task(store.redis, celery_app, job, priority)
    except redis.RedisError as exc:
        log.warning("could not queue job %s: %s", job.id, exc)
        full = isinstance(exc, redis.exceptions.OutOfMemoryError)
        code = "queue_unavailable" if full else "broker_unavailable"
        try:
            store.update(
                job.id,
                status=JobStatus.failed,
                finished_at=time.time(),
                error=JobError(code=code, message="The job could not be queued."),
            )
        except redis.RedisError:
            with contextlib.suppress(redis.RedisError):
                store.delete(job.id)
        message = REDIS_FULL_MESSAGE if full else REDIS_DOWN_MESSAGE
        raise ApiError(503, code, message, {"Retry-After": str(RETRY_AFTER_SECONDS)}) from exc
    response.headers["Location"] = job_url(job.id)
    return public_job(job)
