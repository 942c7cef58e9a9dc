"""Dynamic batching across jobs: the infer worker that holds one job runs waiting jobs of the
same model and kind in the same forward pass.

Built on Celery and Redis as they are, not on a batching library (celery-batches acknowledges
a whole batch of messages at once and runs them as one task, which would break the per-job
lease, attempt count and redelivery guarantees of `workers.jobs`). Every translation, sample
and inspection keeps its own queue message; the gateway also pushes its id onto its model's
batch list (`core.jobs.batch_list`). The job whose message a worker receives is the batch's
leader: once its model is loaded, the worker pops up to `max_batch - 1` ids from that list
and takes each one that is still waiting under its own lease (`begin_attempt`: the same
checks and attempt count as a job that arrives by message). When a taken job ends, its own
message finds it ended and is skipped; when the worker is killed mid-batch, every taken job's
lease expires and its own message (or the reconciler) runs it again, so nothing is lost or
run to completion twice. A job whose id was popped but that could not be taken (another
worker holds it, it ended) is simply left to its own message.

Each member is prepared alone (a bad input fails only its own job), members whose inputs have
the same shape run as one forward pass (at most `max_batch` images), and each one's
cancellation, results and error are recorded separately. `GANSERVE_MAX_BATCH` (8 on CPU, 32
on CUDA) and `GANSERVE_BATCH_WAIT_MS` (0 on CPU: only what is already queued; 5 on CUDA) set
the size and patience.

A cancellation asked for while a pass runs stops it at its next chunk when every member of the
pass was cancelled (`should_stop`), and a member cancelled meanwhile ends `cancelled` whatever
its pass did. The task's soft time limit (`workers.jobs`) may interrupt a batch: the members
whose pass it interrupted fail `time_limit`, members whose turn had not come go back to the
queue (their own messages run them again), and members that ended keep their end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError

from core.jobs import Job, JobNotFound, JobStatus, JobStore
from workers import metrics
from workers.jobs import (
    Heartbeat,
    JobContext,
    Outcome,
    Yielded,
    begin_attempt,
    interrupted_by_time_limit,
    lease_seconds,
    record_failure,
    record_outcome,
    time_limit_failure,
)
from workers.model_cache import LoadedModel

log = logging.getLogger(__name__)

CPU_MAX_BATCH, CUDA_MAX_BATCH = 8, 32
CUDA_BATCH_WAIT_MS = 5.0


def max_batch(ctx: JobContext, loaded: LoadedModel) -> int:
    """Most images in one forward pass on the model's device (`GANSERVE_MAX_BATCH`)."""
    if ctx.settings.max_batch is not None:
        return ctx.settings.max_batch
    return CUDA_MAX_BATCH if loaded.device.type == "cuda" else CPU_MAX_BATCH


def batch_wait_seconds(ctx: JobContext, loaded: LoadedModel) -> float:
    """How long to wait for batch-mates (`GANSERVE_BATCH_WAIT_MS`)."""
    wait_ms = ctx.settings.batch_wait_ms
    if wait_ms is None:
        wait_ms = CUDA_BATCH_WAIT_MS if loaded.device.type == "cuda" else 0.0
    return wait_ms / 1000


def take_mates(ctx: JobContext, limit: int, wait_seconds: float, mates: list[JobContext]) -> None:
    """Add to `mates` up to `limit` waiting jobs of the leader's kind and model, each taken
    under a lease held by the leader's holder and marked running, waiting at most
    `wait_seconds` for more. A candidate found `running` (an earlier attempt's worker died: it
    may be what killed it) is left to run alone from its own message, as is one pinned to other
    weights than the leader's; one whose record is gone or unreadable is skipped."""
    store, kind, model = ctx.store, ctx.job.kind, ctx.job.model
    assert model is not None
    deadline = time.monotonic() + wait_seconds
    while len(mates) < limit:
        ids = store.pop_batch_candidates(kind, model, limit - len(mates))
        for job_id in ids:
            if job_id == ctx.job_id or any(m.job_id == job_id for m in mates):
                continue
            if not store.acquire_lease(job_id, ctx.holder, lease_seconds()):
                continue  # another worker runs it
            job = _begin_mate(store, job_id, ctx.max_attempts, ctx.job.model_digest)
            if job is None:
                store.release_lease(job_id, ctx.holder)
                continue
            mates.append(ctx.mate(job))
        if not ids:
            if time.monotonic() >= deadline:
                break
            time.sleep(min(0.001, max(0.0, deadline - time.monotonic())))


def _begin_mate(store: JobStore, job_id: str, max_attempts: int, digest: str | None) -> Job | None:
    """A candidate marked running for its attempt in this batch, or None to leave it (also one
    that pinned other weights than the leader's: its own message checks its pin)."""
    try:
        candidate = store.get(job_id)
        if candidate.status == JobStatus.running or candidate.model_digest != digest:
            return None
        return begin_attempt(store, job_id, max_attempts)
    except (JobNotFound, ValidationError) as exc:
        log.warning("job %s: offered for batching but unreadable (%s); skipped", job_id, exc)
        return None


@dataclass
class Prepared:
    """One member's inputs, ready to run: `key` says which members share a forward pass."""

    ctx: JobContext
    key: tuple[Any, ...]
    rows: int  # images it adds to a forward pass
    data: Any


class BatchedWork(Protocol):
    """What one kind of infer job does, split so its members can share forward passes."""

    def load(self, ctx: JobContext) -> LoadedModel: ...

    def prepare(self, ctx: JobContext, loaded: LoadedModel) -> Prepared: ...

    def run(self, loaded: LoadedModel, members: list[Prepared]) -> list[Any]: ...

    def finish(self, prepared: Prepared, output: Any) -> Outcome:
        """Write the member's results and say how it succeeded (`_finish` has checked that it
        was not cancelled meanwhile)."""
        ...


def _chunks(members: list[Prepared], limit: int) -> list[list[Prepared]]:
    """Members of one key in forward passes of at most `limit` images (a larger one alone)."""
    chunks: list[list[Prepared]] = []
    rows = 0
    for member in members:
        if not chunks or rows + member.rows > limit:
            chunks.append([])
            rows = 0
        chunks[-1].append(member)
        rows += member.rows
    return chunks


def should_stop(members: list[Prepared]) -> Callable[[], bool]:
    """A pass's `should_stop` (`models.stopping`): True once every member's cancellation was
    asked for (a pass that others still wait for goes on; `_finish` ends the cancelled ones)."""
    return lambda: all(m.ctx.cancel_requested() for m in members)


def run_batched(ctx: JobContext, work: BatchedWork) -> Outcome:
    """Run the leader `ctx` with the batch-mates it can take; record each mate's end as soon as
    it is known and return (or raise) the leader's."""
    loaded = work.load(ctx)  # a leader whose model does not load fails alone, taking nobody
    limit = max_batch(ctx, loaded)
    mates: list[JobContext] = []
    batch = Batch(ctx)
    try:
        if limit > 1 and ctx.job.attempts == 1:  # a job whose worker died runs alone
            take_mates(ctx, limit - 1, batch_wait_seconds(ctx, loaded), mates)
        if mates:
            log.info("job %s: batched with %d waiting jobs", ctx.job_id, len(mates))
        metrics.batch_formed(ctx.job.kind, 1 + len(mates))
        with Heartbeat(ctx.store, [m.job_id for m in mates], ctx.holder):
            _run_members(work, loaded, [ctx, *mates], limit, batch)
    except SoftTimeLimitExceeded:
        interrupted_by_time_limit()
        _stop_at_time_limit(batch, [ctx, *mates])
    finally:
        for mate in mates:
            try:
                ctx.store.release_lease(mate.job_id, ctx.holder)
            except redis.RedisError as exc:  # the lease expires on its own
                log.warning("job %s: could not release the lease: %s", mate.job_id, exc)
    return batch.leader_end()


def _stop_at_time_limit(batch: Batch, members: list[JobContext]) -> None:
    """The task's soft time limit interrupted the batch: members of the step it interrupted
    (their preparation, pass or results) fail `time_limit`; members whose turn had not come go
    back to the queue, the leader through `Yielded` (`workers.jobs` sends its task again), a
    mate by its record (its own message, or the reconciler, runs it)."""
    interrupted = {m.job_id for m in batch.now}
    for member in members:
        if batch.ended(member):
            continue
        if member.job_id in interrupted:
            # a mate's time began with the leader's; a shared pass was not one job's alone
            batched = member is not batch.leader or len(interrupted) > 1
            batch.end(member, time_limit_failure(member.job, member.settings, batched=batched))
        elif member is batch.leader:
            batch.ends[member.job_id] = Yielded("its batch reached the time limit before its turn")
        else:
            _requeue(member)


def _requeue(mate: JobContext) -> None:
    """A mate whose turn had not come back to `queued` (unless its lease went elsewhere)."""
    try:
        if mate.renew_lease():
            mate.store.update(mate.job_id, status=JobStatus.queued)
            log.info(
                "job %s: its batch reached the time limit first; back to the queue", mate.job_id
            )
    except redis.RedisError:
        raise
    except Exception:
        log.exception("job %s: could not put it back in the queue", mate.job_id)


class Batch:
    """The ends of a batch's members: a mate's is recorded at once, the leader's kept; `now`:
    the members of the step under way (what a time limit interrupts)."""

    def __init__(self, leader: JobContext) -> None:
        self.leader = leader
        self.ends: dict[str, Outcome | Exception] = {}
        self.now: list[JobContext] = []

    def end(self, member: JobContext, end: Outcome | Exception) -> None:
        """How `member` ended; a mate's end is written to its record now."""
        self.ends[member.job_id] = end
        if member is not self.leader:
            _record(member, end)

    def ended(self, member: JobContext) -> bool:
        return member.job_id in self.ends

    def leader_end(self) -> Outcome:
        end = self.ends.get(self.leader.job_id)
        if end is None:
            raise RuntimeError("the batch gave the job no result")
        if isinstance(end, Exception):
            raise end
        return end


def _run_members(
    work: BatchedWork,
    loaded: LoadedModel,
    members: list[JobContext],
    limit: int,
    batch: Batch,
) -> None:
    groups: dict[tuple[Any, ...], list[Prepared]] = {}
    for member in members:
        batch.now = [member]
        prepared = _step(batch, member, lambda m=member: work.prepare(m, loaded))
        if prepared is not None:
            groups.setdefault(prepared.key, []).append(prepared)
    for group in groups.values():
        for chunk in _chunks(group, limit):
            _run_chunk(work, loaded, chunk, batch)
    batch.now = []
    for member in members:
        if not batch.ended(member):
            batch.end(member, RuntimeError("the batch gave the job no result"))


def _run_chunk(work: BatchedWork, loaded: LoadedModel, chunk: list[Prepared], batch: Batch) -> None:
    """One forward pass for `chunk`; if it fails and holds several jobs, each runs alone (one
    job's input must not fail its batch-mates). A member cancelled meanwhile ends `cancelled`
    (a pass stopped by `should_stop` raises `models.stopping.Stopped`)."""
    batch.now = [p.ctx for p in chunk]
    try:
        outputs = work.run(loaded, chunk)
    except (redis.RedisError, SoftTimeLimitExceeded):
        raise
    except Exception as exc:
        for prepared in chunk:
            if prepared.ctx.cancel_requested():
                batch.end(prepared.ctx, Outcome(JobStatus.cancelled, {}))
        chunk = [p for p in chunk if not batch.ended(p.ctx)]
        if not chunk:
            return
        if len(chunk) == 1:
            batch.end(chunk[0].ctx, exc)
            return
        log.warning("a batch of %d failed (%s); running its jobs one by one", len(chunk), exc)
        for prepared in chunk:
            _run_chunk(work, loaded, [prepared], batch)
        return
    for prepared, output in zip(chunk, outputs, strict=True):
        _step(batch, prepared.ctx, lambda p=prepared, o=output: _finish(work, p, o))


def _finish(work: BatchedWork, prepared: Prepared, output: Any) -> Outcome:
    """A member whose cancellation was asked for while it ran ends cancelled, writing nothing."""
    if prepared.ctx.cancel_requested():
        return Outcome(JobStatus.cancelled, {})
    return work.finish(prepared, output)


def _step(batch: Batch, ctx: JobContext, step: Callable[[], Any]) -> Any:
    """Run one member's step; an error ends that member (Redis errors propagate). A step that
    returns an Outcome ends it too."""
    try:
        value = step()
    except (redis.RedisError, SoftTimeLimitExceeded):
        raise
    except Exception as exc:
        batch.end(ctx, exc)
        return None
    if isinstance(value, Outcome):
        batch.end(ctx, value)
    return value


def _record(mate: JobContext, end: Outcome | Exception) -> None:
    """Write a mate's end, unless its lease is no longer this worker's (another copy owns it)."""
    try:
        if not mate.renew_lease():
            log.warning("job %s: its lease went to another worker; not recording", mate.job_id)
            return
        if isinstance(end, Exception):
            record_failure(mate.store, mate.job_id, end)
        else:
            record_outcome(mate.store, mate.job_id, end)
    except redis.RedisError:
        raise
    except Exception:
        log.exception("job %s: could not record its end", mate.job_id)
