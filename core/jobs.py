"""The job contract the gateway and the workers share: queues, task names, job records in Redis.

Torch-free (the gateway imports it). The gateway writes a job record, then sends a Celery task by
name with the job id; the worker reads the record, updates status, progress and result, and
honours the cancellation flag. A job's status is never inferred from Celery: an id without a
record is unknown (404), not "pending".
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import redis
from pydantic import BaseModel, Field

from core.webhook_outbox import (
    WebhookEvent,
    WebhookTarget,
    add_events,
    event_key,
    events_of_change,
    job_events_key,
)

QUEUE_INFER = "infer"
QUEUE_TRAIN = "train"
QUEUES = (QUEUE_INFER, QUEUE_TRAIN)
TASK_TRANSLATE = "ganserve.translate"
TASK_SAMPLE = "ganserve.sample"
TASK_TRAIN = "ganserve.train"
TASK_INSPECT = "ganserve.inspect"
TASK_IMPORT = "ganserve.import_model"
TASK_EXPORT = "ganserve.export_model"
TASK_INTERPOLATE = "ganserve.interpolate"
TASK_PROJECT = "ganserve.project"

JOB_TTL_SECONDS = 7 * 24 * 3600  # default life of an ended job's record after its last change
BATCH_LIST_CAP = 10_000  # waiting ids kept per model and kind for workers to batch
_PREFIX = "ganserve:"


class JobKind(StrEnum):
    """What a job does."""

    translation = "translation"
    sample = "sample"
    training = "training"
    inspection = "inspection"  # a realness map of an image by a model's discriminator
    model_import = "model_import"  # an uploaded model zip or reference checkpoint registered
    model_export = "model_export"  # a model written as ONNX (cached beside nothing else)
    interpolation = "interpolation"  # frames along a path between two latents, and animations
    projection = "projection"  # the latent from which a sampling model redraws an uploaded image


class JobStatus(StrEnum):
    """Where a job is in its life."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def ended(self) -> bool:
        """Succeeded, failed or cancelled: nothing more will happen."""
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


QUEUE_OF_KIND = {
    JobKind.translation: QUEUE_INFER,
    JobKind.sample: QUEUE_INFER,
    JobKind.training: QUEUE_TRAIN,
    JobKind.inspection: QUEUE_INFER,
    JobKind.model_import: QUEUE_INFER,
    JobKind.model_export: QUEUE_INFER,
    JobKind.interpolation: QUEUE_INFER,
    JobKind.projection: QUEUE_INFER,
}
TASK_OF_KIND = {
    JobKind.translation: TASK_TRANSLATE,
    JobKind.sample: TASK_SAMPLE,
    JobKind.training: TASK_TRAIN,
    JobKind.inspection: TASK_INSPECT,
    JobKind.model_import: TASK_IMPORT,
    JobKind.model_export: TASK_EXPORT,
    JobKind.interpolation: TASK_INTERPOLATE,
    JobKind.projection: TASK_PROJECT,
}


def task_message(job: Job, priority: int | None = None) -> dict[str, Any]:
    """How a job's task is sent (`celery_app.send_task(**task_message(job))`): by name, to its
    queue, with the job id as its only argument and as the task id; with a `priority` (0 first,
    9 last: kombu's Redis transport), see `fair_priority`."""
    message: dict[str, Any] = {
        "name": TASK_OF_KIND[job.kind],
        "args": [job.id],
        "queue": QUEUE_OF_KIND[job.kind],
        "task_id": job.id,
    }
    if priority is not None:
        message["priority"] = priority
    return message


FAIR_SHARE_STEP = 8  # an owner's queued jobs per priority level: a CPU worker's largest batch


def fair_priority(queued_before: int) -> int:
    """The priority of an owner's new job when `queued_before` of its jobs already wait in the
    same queue: 0 for its first `FAIR_SHARE_STEP`, then 3, 6 and 9 for 4, 16 and more times
    that. Workers take lower numbers first, so another owner's few jobs pass a flood's tail:
    round-robin in steps, approximately, with no scheduler of its own (kombu keeps one list per
    priority, `core.queues`)."""
    for level, bound in ((0, 1), (3, 4), (6, 16)):
        if queued_before < bound * FAIR_SHARE_STEP:
            return level
    return 9


def image_url(job_id: str, index: int) -> str:
    """The gateway's URL of result image `index` of a job (workers write it to `results/`)."""
    return f"/v1/jobs/{job_id}/images/{index}"


def latents_url(job_id: str) -> str:
    """The gateway's URL of a job's latents (`latents.npy`, float32 (N, latent_dim))."""
    return f"/v1/jobs/{job_id}/latents.npy"


def animation_url(job_id: str, fmt: str) -> str:
    """The gateway's URL of an interpolation's animation (`webp` or `gif`)."""
    return f"/v1/jobs/{job_id}/animation.{fmt}"


class JobError(BaseModel):
    """Why a job failed, in words: `code` is snake_case, `message` a sentence for a person."""

    code: str
    message: str


class Job(BaseModel):
    """One job record (stored as JSON in Redis under ganserve:job:<id>)."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    owner: str = ""
    kind: JobKind
    status: JobStatus = JobStatus.queued
    model: str | None = None  # the pinned model version `<id>@<n>` the job runs on
    model_digest: str | None = None  # that version's content digest, pinned at submission
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    progress: float = 0.0
    progress_detail: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: JobError | None = None
    attempts: int = 0
    revision: int = 0  # +1 at every update: the id of the job's server-sent events
    webhook: WebhookTarget | None = None  # where its events go (`core.webhook_outbox`)


BATCHED_KINDS = (JobKind.translation, JobKind.sample, JobKind.inspection, JobKind.interpolation)
LATENT_KINDS = (JobKind.sample, JobKind.interpolation, JobKind.projection)  # keep latents.npy


def batch_list(kind: JobKind, model: str) -> str:
    """The Redis list of queued job ids of one kind and model, from which an infer worker that
    holds one such job claims more to run in the same forward pass (`workers.batching`)."""
    return f"{_PREFIX}batch:{kind.value}:{model}"


def _matches(job: Job, status: JobStatus | None, kind: JobKind | None, model: str | None) -> bool:
    """Whether a job passes the filters of `JobStore.page`."""
    if (status is not None and job.status != status) or (kind is not None and job.kind != kind):
        return False
    if model is None:
        return True
    pinned = job.model or ""
    return pinned == model if "@" in model else pinned.partition("@")[0] == model


def event_channel(job_id: str) -> str:
    """The Redis pub/sub channel on which every change of a job's record is announced."""
    return f"{_PREFIX}job-events:{job_id}"


class JobNotFound(KeyError):
    """No job with that id (or not visible to that owner)."""


def job_key(job_id: str) -> str:
    """The Redis key of a job's record (JSON of `Job`)."""
    return f"{_PREFIX}job:{job_id}"


def job_from_record(raw: bytes | str | None, job_id: str, owner: str | None = None) -> Job:
    """The job a record read from `job_key(job_id)` holds; JobNotFound when there was none or,
    `owner` given, when it is another owner's (as for unknown ids)."""
    if raw is None:
        raise JobNotFound(job_id)
    job = Job.model_validate_json(raw)
    if owner is not None and job.owner != owner:
        raise JobNotFound(job_id)
    return job


class JobStore:
    """Job records, their owners' indexes, cancellation flags and leases in Redis.

    Every job that has not ended is also in the active index (`ganserve:active`, a sorted set
    by creation time), which the workers' reconciler (`workers.reconciler`) walks to find jobs
    whose queue message was lost. A new job of a batched kind is also pushed onto its model's
    `batch_list`, where workers find batch-mates; the list only offers ids (a claimed job is
    taken under its lease, and its own queue message still runs it if nobody did).

    Records expire: an ended job's record `ttl` seconds after its last change
    (`GANSERVE_RESULT_TTL`, default `JOB_TTL_SECONDS`), a job that has not ended no sooner than
    `JOB_TTL_SECONDS` after its last change (`record_ttl`), so a short result TTL never makes a
    queued or running job vanish. Its files go with it: `workers.sweeper` removes the folders of
    jobs whose record is gone.
    """

    ACTIVE_KEY = f"{_PREFIX}active"

    def __init__(self, client: redis.Redis, ttl: int = JOB_TTL_SECONDS) -> None:
        self.redis = client
        self.ttl = ttl
        self._acquire_leases = client.register_script(_ACQUIRE_LEASES)
        self._release_leases = client.register_script(_RELEASE_LEASES)

    def record_ttl(self, job: Job) -> int:
        """Seconds the record of `job` lives after this write: `ttl` once it ended, else at least
        `JOB_TTL_SECONDS` (a live job's record is rewritten at every change)."""
        return self.ttl if job.status.ended else max(self.ttl, JOB_TTL_SECONDS)

    @staticmethod
    def _key(job_id: str) -> str:
        return job_key(job_id)

    @staticmethod
    def _owner_key(owner: str) -> str:
        return f"{_PREFIX}owner:{owner}:jobs"

    @staticmethod
    def _queued_key(owner: str, queue: str) -> str:
        """The owner's jobs waiting in `queue`, by creation time (`queued_count`)."""
        return f"{_PREFIX}owner:{owner}:queued:{queue}"

    def _index_queued(self, pipe: Any, job: Job) -> None:
        """Add `job` to its owner's queued index while it is queued, remove it otherwise."""
        key = self._queued_key(job.owner, QUEUE_OF_KIND[job.kind])
        if job.status is JobStatus.queued:
            pipe.zadd(key, {job.id: job.created_at})
            pipe.expire(key, JOB_TTL_SECONDS)
        else:
            pipe.zrem(key, job.id)

    @staticmethod
    def _running_key(queue: str) -> str:
        """The jobs of `queue` whose record says `running`, by start time (`running_counts`)."""
        return f"{_PREFIX}running:{queue}"

    def _index_running(self, pipe: Any, job: Job) -> None:
        """Add `job` to its queue's running index while it runs, remove it otherwise."""
        key = self._running_key(QUEUE_OF_KIND[job.kind])
        if job.status is JobStatus.running:
            pipe.zadd(key, {job.id: job.started_at or time.time()})
        else:
            pipe.zrem(key, job.id)

    def running_counts(self) -> dict[str, int]:
        """How many jobs of each queue are `running` now, by their records (a job whose worker
        died counts until it runs again or is given up). The running index follows every status
        change (`update`, `delete`); an entry whose record is gone (expired) is dropped."""
        pipe = self.redis.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.zrange(self._running_key(queue), 0, -1)
        counts = {}
        for queue, found in zip(QUEUES, pipe.execute(), strict=True):
            ids = [i.decode() if isinstance(i, bytes) else i for i in found]
            records = self.redis.mget([self._key(i) for i in ids]) if ids else []
            gone = [i for i, raw in zip(ids, records, strict=True) if raw is None]
            if gone:
                self.redis.zrem(self._running_key(queue), *gone)
            running = JobStatus.running.value
            counts[queue] = sum(
                1 for raw in records if raw and json.loads(raw)["status"] == running
            )
        return counts

    def queued_count(self, owner: str, queue: str) -> int:
        """How many of `owner`'s jobs wait in `queue`. The index follows every status change
        (`create`, `update`, `delete`); its oldest entries are checked against their records
        each time, so an entry a lost write left behind is dropped. One round trip to Redis when
        none is waiting, two when some are (three when a stale entry is dropped)."""
        pipe = self.redis.pipeline(transaction=False)
        self.ask_queued(pipe, owner, queue)
        return self.queued_from(owner, queue, *pipe.execute())

    def ask_queued(self, pipe: Any, owner: str, queue: str) -> None:
        """Queue on `pipe` the two reads `queued_count` starts with; their answers go to
        `queued_from` (so a caller reads them in a round trip of its own)."""
        key = self._queued_key(owner, queue)
        pipe.zrange(key, 0, 15)
        pipe.zcard(key)

    def queued_from(self, owner: str, queue: str, found: list[Any], count: int) -> int:
        """`queued_count` from the answers of `ask_queued`'s reads: the oldest entries `found`
        checked against their records, and the index's size `count`."""
        oldest = [i.decode() if isinstance(i, bytes) else i for i in found]
        if oldest:
            stale = []
            for job_id, raw in zip(
                oldest, self.redis.mget([self._key(i) for i in oldest]), strict=True
            ):
                if raw is None or json.loads(raw).get("status") != JobStatus.queued.value:
                    stale.append(job_id)
            if stale:
                count -= self.redis.zrem(self._queued_key(owner, queue), *stale)
        return max(0, int(count))

    def fair_priority_again(self, job: Job) -> int:
        """The fair priority (`fair_priority`) of a queued job whose task is sent again: counted
        among its owner's queued jobs without itself."""
        waiting = self.queued_count(job.owner, QUEUE_OF_KIND[job.kind])
        if job.status is JobStatus.queued:
            waiting -= 1
        return fair_priority(max(0, waiting))

    def create(self, job: Job) -> Job:
        """Record a new job."""
        pipe = self.redis.pipeline()
        pipe.set(self._key(job.id), job.model_dump_json(), ex=self.record_ttl(job))
        pipe.zadd(self._owner_key(job.owner), {job.id: job.created_at})
        self._index_queued(pipe, job)
        if not job.status.ended:
            pipe.zadd(self.ACTIVE_KEY, {job.id: job.created_at})
            if job.kind in BATCHED_KINDS and job.model:
                candidates = batch_list(job.kind, job.model)
                pipe.rpush(candidates, job.id)
                pipe.ltrim(candidates, -BATCH_LIST_CAP, -1)
                pipe.expire(candidates, JOB_TTL_SECONDS)
        pipe.execute()
        return job

    def pop_batch_candidates(self, kind: JobKind, model: str, count: int) -> list[str]:
        """Take up to `count` ids off the model's batch list, oldest first."""
        if count < 1:
            return []
        popped = self.redis.lpop(batch_list(kind, model), count) or []
        return [i.decode() if isinstance(i, bytes) else i for i in popped]

    def drop_batch_candidate(self, kind: JobKind, model: str, job_id: str) -> None:
        """Take a job's id off its batch list (its own message is running it)."""
        self.redis.lrem(batch_list(kind, model), 0, job_id)

    def delete(self, job_id: str) -> None:
        """Remove a job's record and index entries (a job that was never queued)."""
        raw = self.redis.get(self._key(job_id))
        pipe = self.redis.pipeline()
        if raw is not None:
            record = json.loads(raw)
            pipe.zrem(self._owner_key(record.get("owner", "")), job_id)
            if record.get("kind") in QUEUE_OF_KIND:
                queue = QUEUE_OF_KIND[JobKind(record["kind"])]
                pipe.zrem(self._queued_key(record.get("owner", ""), queue), job_id)
                pipe.zrem(self._running_key(queue), job_id)
            if record.get("kind") in BATCHED_KINDS and record.get("model"):
                pipe.lrem(batch_list(JobKind(record["kind"]), record["model"]), 0, job_id)
        pipe.delete(self._key(job_id))
        pipe.zrem(self.ACTIVE_KEY, job_id)
        pipe.execute()

    def active_ids(self) -> list[str]:
        """The ids of the jobs that have not ended, oldest first."""
        return [
            i.decode() if isinstance(i, bytes) else i
            for i in self.redis.zrange(self.ACTIVE_KEY, 0, -1)
        ]

    def pinned_models(self) -> set[str]:
        """The model versions (`<id>@<n>`) that jobs which have not ended pinned: their `model`
        and a training run's `init_from`."""
        ids = self.active_ids()
        pinned: set[str] = set()
        for start in range(0, len(ids), 1000):
            for raw in self.redis.mget([self._key(i) for i in ids[start : start + 1000]]):
                record = json.loads(raw) if raw else {}
                params = record.get("params") or {}
                for ref in (record.get("model"), params.get("init_from")):
                    if isinstance(ref, str):
                        pinned.add(ref)
        return pinned

    def existing(self, job_ids: list[str]) -> set[str]:
        """Those of `job_ids` that have a record (not expired, not deleted)."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.exists(self._key(job_id))
        return {job_id for job_id, found in zip(job_ids, pipe.execute(), strict=True) if found}

    def owners(self) -> list[str]:
        """Every owner with an index of jobs (`list`), sorted."""
        prefix, suffix = f"{_PREFIX}owner:", ":jobs"
        found = set()
        for key in self.redis.scan_iter(match=f"{prefix}*{suffix}", count=1000):
            name = key.decode() if isinstance(key, bytes) else key
            found.add(name[len(prefix) : -len(suffix)])
        return sorted(found)

    def prune_owner_indexes(self) -> int:
        """Drop the ids of expired records from every owner's index; how many were dropped."""
        dropped = 0
        for owner in self.owners():
            key = self._owner_key(owner)
            ids = [i.decode() if isinstance(i, bytes) else i for i in self.redis.zrange(key, 0, -1)]
            alive = self.existing(ids)
            gone = [i for i in ids if i not in alive]
            if gone:
                dropped += self.redis.zrem(key, *gone)
        return dropped

    def forget_active(self, job_id: str) -> None:
        """Drop an id from the active index (its record ended or expired)."""
        self.redis.zrem(self.ACTIVE_KEY, job_id)

    def get(self, job_id: str, owner: str | None = None) -> Job:
        """The job's record; `owner` given and different -> JobNotFound, as for unknown ids."""
        return job_from_record(self.redis.get(self._key(job_id)), job_id, owner)

    def update(self, job_id: str, **fields: Any) -> Job:
        """Change fields of a record atomically (optimistic locking) and announce the change on
        its `event_channel`; returns the new record."""
        changed = self.update_many([job_id], lambda _: fields)
        if job_id not in changed:
            raise JobNotFound(job_id)
        return changed[job_id]

    def update_many(
        self, job_ids: list[str], change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Job]:
        """Change several records in one transaction (optimistic locking on all of them): `change`
        gets each record as stored and returns the fields to change, or None to leave it (it may
        be called again if another writer got in first, so it must not have side effects). Each
        change is announced on its job's `event_channel`. Returns the changed records by id;
        records that are gone are left out."""
        if not job_ids:
            return {}
        keys = [self._key(i) for i in job_ids]
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(*keys)
                    staged = []
                    for raw in pipe.mget(keys):
                        if raw is None:
                            continue
                        record = json.loads(raw)
                        fields = change(record)
                        if fields is not None:
                            staged.append(self._changed(pipe, record, fields))
                    if not staged:
                        pipe.reset()
                        return {}
                    pipe.multi()
                    for record, job, events in staged:
                        self._write_change(pipe, record, job, events)
                    pipe.execute()
                    return {job.id: job for _, job, _ in staged}
                except redis.WatchError:
                    continue

    def _changed(
        self, pipe: Any, record: dict[str, Any], fields: dict[str, Any]
    ) -> tuple[dict[str, Any], Job, Any]:
        """The record `fields` make of `record` (next revision), with the webhook events of the
        change (read on the watching `pipe`)."""
        revision = int(record.get("revision", 0)) + 1
        job = Job.model_validate({**record, **fields, "revision": revision})
        return record, job, self._webhook_events(pipe, record, job)

    def _write_change(self, pipe: Any, record: dict[str, Any], job: Job, events: Any) -> None:
        """Queue the writes of one change on a transaction's `pipe` (see `_changed`)."""
        pipe.set(self._key(job.id), job.model_dump_json(), ex=self.record_ttl(job))
        if job.status.ended:
            pipe.zrem(self.ACTIVE_KEY, job.id)
        if job.status.value != record.get("status"):
            self._index_queued(pipe, job)
            self._index_running(pipe, job)
        if events is not None:
            add_events(pipe, job.id, job.owner, *events)
        pipe.publish(event_channel(job.id), job.status.value)  # wakes waiters

    def _webhook_events(
        self, pipe: Any, record: dict[str, Any], job: Job
    ) -> tuple[WebhookTarget, list[WebhookEvent], str, dict[str, Any] | None] | None:
        """What `add_events` needs for this change of a job with a webhook (read while the
        record is watched), or None when it makes no event the webhook wants."""
        if job.webhook is None:
            return None
        kinds = events_of_change(record, job.status.value, job.progress, job.status.ended)
        kinds = [k for k in kinds if k in job.webhook.events]
        if not kinds:
            return None
        from core.public_jobs import public_job

        last = None
        if "progress" in kinds:
            newest = pipe.lindex(job_events_key(job.id), -1)
            raw = pipe.get(event_key(newest.decode())) if newest else None
            event = json.loads(raw) if raw else None
            last = event if event and event["type"] == "progress" else None
        return job.webhook, kinds, public_job(job).model_dump_json(), last

    def page(
        self,
        owner: str,
        *,
        status: JobStatus | None = None,
        kind: JobKind | None = None,
        model: str | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
    ) -> tuple[list[Job], bool]:
        """One page of the owner's jobs, newest first, filtered by status, kind and model (an id:
        any of its versions; `<id>@<n>`: that version), starting after the job whose (creation
        time, id) is `after`; and whether more follow."""
        entries = self.redis.zrevrange(self._owner_key(owner), 0, -1, withscores=True)
        jobs: list[Job] = []
        for raw_id, score in entries:
            job_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            if after is not None and (score, job_id) >= after:
                continue  # on an earlier page (the index is in descending (score, id) order)
            try:
                job = self.get(job_id)
            except JobNotFound:
                self.redis.zrem(self._owner_key(owner), job_id)  # expired record
                continue
            if _matches(job, status, kind, model):
                if len(jobs) == limit:
                    return jobs, True
                jobs.append(job)
        return jobs, False

    def list(
        self,
        owner: str,
        *,
        status: JobStatus | None = None,
        kind: JobKind | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """The owner's newest `limit` jobs, filtered by status and kind."""
        return self.page(owner, status=status, kind=kind, limit=limit)[0]

    def request_cancel(self, job_id: str) -> None:
        """Raise the cooperative cancellation flag that workers check."""
        self.redis.set(_cancel_key(job_id), "1", ex=JOB_TTL_SECONDS)

    def cancel_requested(self, job_id: str) -> bool:
        """Whether someone asked to cancel the job."""
        return bool(self.redis.exists(_cancel_key(job_id)))

    def cancels_requested(self, job_ids: list[str]) -> set[str]:
        """Those of `job_ids` whose cancellation was asked for, in one round trip."""
        if not job_ids:
            return set()
        flags = self.redis.mget([_cancel_key(i) for i in job_ids])
        return {job_id for job_id, flag in zip(job_ids, flags, strict=True) if flag is not None}

    def acquire_lease(self, job_id: str, holder: str, seconds: int) -> bool:
        """Take (or renew, by the same holder) the exclusive lease on a job."""
        return job_id in self.acquire_leases([job_id], holder, seconds)

    def acquire_leases(self, job_ids: list[str], holder: str, seconds: int) -> set[str]:
        """Take (or renew, by the same holder) the leases of `job_ids` in one round trip; the
        ids whose lease `holder` has now."""
        if not job_ids:
            return set()
        held = self._acquire_leases(keys=[_lease_key(i) for i in job_ids], args=[holder, seconds])
        return {job_id for job_id, got in zip(job_ids, held, strict=True) if got}

    def lease_held(self, job_id: str) -> bool:
        """Whether some worker holds the job's lease right now."""
        return bool(self.redis.exists(_lease_key(job_id)))

    def release_lease(self, job_id: str, holder: str) -> None:
        """Give the lease back if this holder has it."""
        self.release_leases([job_id], holder)

    def release_leases(self, job_ids: list[str], holder: str) -> None:
        """Give back those of the leases of `job_ids` that `holder` has, in one round trip."""
        if job_ids:
            self._release_leases(keys=[_lease_key(i) for i in job_ids], args=[holder])


def _cancel_key(job_id: str) -> str:
    return f"{_PREFIX}cancel:{job_id}"


def _lease_key(job_id: str) -> str:
    return f"{_PREFIX}lease:{job_id}"


# KEYS: lease keys; ARGV: holder, seconds. Each lease taken if free, renewed if the holder's.
_ACQUIRE_LEASES = """
local held = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'EX', ARGV[2]) then
    held[i] = 1
  elseif redis.call('GET', key) == ARGV[1] then
    redis.call('EXPIRE', key, ARGV[2])
    held[i] = 1
  else
    held[i] = 0
  end
end
return held
"""

# KEYS: lease keys; ARGV: holder. Each lease the holder has is deleted.
_RELEASE_LEASES = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
  end
end
return 0
"""
