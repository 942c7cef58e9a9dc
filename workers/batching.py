"""Dynamic batching across jobs: the infer worker that holds one job runs waiting jobs of the
same model and kind in the same forward pass.

Built on Celery and Redis as they are, not on a batching library (celery-batches acknowledges
a whole batch of messages at once and runs them as one task, which would break the per-job
lease, attempt count and redelivery guarantees of `workers.jobs`). Every translation, sample
and inspection gets its own queue message; the gateway also pushes its id onto its model's
batch list (`core.jobs.batch_list`). The job whose message a worker receives is the batch's
leader: once its model is loaded, the worker pops up to `max_batch - 1` ids from that list
and takes each one that is still waiting under its own lease (the same checks and attempt
count as a job that arrives by message, `workers.jobs.begin_attempt`). Then it removes the
taken jobs' own messages from the queue (`core.queues.remove_waiting`), so a mate costs one
delivery (its leader's) instead of a delivery that would only find it ended. When the worker is
killed mid-batch, every taken job's lease expires and the reconciler (`workers.reconciler`,
which sends the task of a job with no message and no lease) runs it again, so nothing is lost
or run to completion twice; a mate whose message lay too deep in the queue to be removed is
delivered later and skipped, as before. A job whose id was popped but that could not be taken
(another worker holds it, it ended) keeps its message.

The bookkeeping is batched: leases, cancellation flags and the records of all the mates are
read and written in a few round trips per batch (`JobStore.acquire_leases`, `update_many`),
not per job, and the mates' ends are written together once each pass's results are stored
(`workers.jobs.record_ends`).

Each member is prepared alone (a bad input fails only its own job), members whose inputs have
the same shape run as one forward pass (at most `max_batch` images), and each one's
cancellation, results and error are recorded separately. Inputs are read and decoded, and
results encoded and stored, on a small pool of codec threads (`codec_pool`: Pillow and torch
release the GIL), all members' inputs at once and each pass's results while the next pass
runs. `GANSERVE_MAX_BATCH` (8 on CPU, 32 on CUDA) and `GANSERVE_BATCH_WAIT_MS` (0 on CPU: only
what is already queued; 5 on CUDA) set the size and patience.

A cancellation asked for while a pass runs stops it at its next chunk when every member of the
pass was cancelled (`should_stop`), and a member cancelled meanwhile ends `cancelled` whatever
its pass did. The task's soft time limit (`workers.jobs`) may interrupt a batch: the members
whose preparation or pass it interrupted fail `time_limit`, results being written are written,
members whose turn had not come go back to the queue (the leader's task and each removed
mate's task are sent again), and members that ended keep their end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError

from core.jobs import QUEUE_OF_KIND, Job, JobNotFound, JobStatus
from core.queues import remove_waiting
from workers import metrics
from workers.jobs import (
    Heartbeat,
    JobContext,
    Outcome,
    Yielded,
    interrupted_by_time_limit,
    lease_seconds,
    mark_cancelled,
    record_ends,
    time_limit_failure,
)
from workers.model_cache import LoadedModel
from workers.reconciler import send_again

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


def take_mates(
    ctx: JobContext, limit: int, wait_seconds: float, mates: list[JobContext]
) -> set[str]:
    """Add to `mates` up to `limit` waiting jobs of the leader's kind and model, each taken
    under a lease held by the leader's holder and marked running, waiting at most
    `wait_seconds` for more; then remove the taken jobs' own messages from the queue, so a mate
    costs no delivery later. Returns the ids whose message was removed (a mate put back in the
    queue needs its task sent again). A candidate found `running` (an earlier attempt's worker
    died: it may be what killed it) is left to run alone from its own message, as is one pinned
    to other weights than the leader's; one whose record is gone or unreadable is skipped. The
    bookkeeping takes a few round trips per batch, not per mate."""
    store, kind, model = ctx.store, ctx.job.kind, ctx.job.model
    assert model is not None
    deadline = time.monotonic() + wait_seconds
    while len(mates) < limit:
        ids = store.pop_batch_candidates(kind, model, limit - len(mates))
        new = [i for i in dict.fromkeys(ids) if i != ctx.job_id and i not in _ids(mates)]
        mates.extend(ctx.mate(job) for job in _begin_mates(ctx, new))
        if not ids:
            if time.monotonic() >= deadline:
                break
            time.sleep(min(0.001, max(0.0, deadline - time.monotonic())))
    return remove_waiting(store.redis, QUEUE_OF_KIND[kind], _ids(mates))


def _ids(members: list[JobContext]) -> list[str]:
    return [m.job_id for m in members]


def _begin_mates(ctx: JobContext, job_ids: list[str]) -> list[Job]:
    """The candidates `job_ids` that this batch takes, leased and marked running for their
    attempt in one transaction; leases of the others are given back. A candidate whose
    cancellation was asked for ends cancelled, as when its own message finds it."""
    store = ctx.store
    leased = store.acquire_leases(job_ids, ctx.holder, lease_seconds())
    job_ids = [i for i in job_ids if i in leased]  # the others: another worker runs them
    if not job_ids:
        return []
    cancelled = store.cancels_requested(job_ids)
    now = time.time()

    def begin(record: dict[str, Any]) -> dict[str, Any] | None:
        job = _readable(record)
        if job is None or job.id in cancelled or job.status is not JobStatus.queued:
            return None  # ended, running (a dead attempt: alone), or unreadable
        if job.model_digest != ctx.job.model_digest:
            return None  # pinned other weights: its own message checks its pin
        return {
            "status": JobStatus.running,
            "started_at": now,
            "attempts": job.attempts + 1,
            "error": None,
        }

    begun = store.update_many(job_ids, begin)
    for job_id in cancelled:
        with contextlib.suppress(JobNotFound):
            mark_cancelled(store, store.get(job_id))
            log.info("job %s was cancelled before it started; not running it", job_id)
    store.release_leases([i for i in job_ids if i not in begun], ctx.holder)
    jobs = [begun[i] for i in job_ids if i in begun]
    for job in jobs:
        metrics.job_started(job)
        log.info(
            "job %s (%s) running, attempt %d, in a batch", job.id, job.kind.value, job.attempts
        )
    return jobs


def _readable(record: dict[str, Any]) -> Job | None:
    """A candidate's record as a Job, or None (logged) when it does not validate."""
    try:
        return Job.model_validate(record)
    except ValidationError as exc:
        log.warning(
            "job %s: offered for batching but unreadable (%s); skipped", record.get("id"), exc
        )
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
        """Write the member's results and say how it succeeded, on a codec thread
        (`_start_finishing` has checked that it was not cancelled meanwhile)."""
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
    asked for (a pass that others still wait for goes on; the cancelled ones end cancelled after
    it), asked in one round trip."""
    contexts = [m.ctx for m in members]
    return lambda: len(contexts[0].store.cancels_requested(_ids(contexts))) == len(contexts)


def run_batched(ctx: JobContext, work: BatchedWork) -> Outcome:
    """Run the leader `ctx` with the batch-mates it can take; record the mates' ends as each
    forward pass's results are written and return (or raise) the leader's."""
    loaded = work.load(ctx)  # a leader whose model does not load fails alone, taking nobody
    limit = max_batch(ctx, loaded)
    mates: list[JobContext] = []
    batch = Batch(ctx)
    try:
        if limit > 1 and ctx.job.attempts == 1:  # a job whose worker died runs alone
            batch.messages_removed = take_mates(
                ctx, limit - 1, batch_wait_seconds(ctx, loaded), mates
            )
        if mates:
            log.info("job %s: batched with %d waiting jobs", ctx.job_id, len(mates))
        metrics.batch_formed(ctx.job.kind, 1 + len(mates))
        with Heartbeat(ctx.store, _ids(mates), ctx.holder):
            _run_members(work, loaded, [ctx, *mates], limit, batch)
    except SoftTimeLimitExceeded:
        interrupted_by_time_limit()
        _stop_at_time_limit(batch, [ctx, *mates])
    finally:
        try:
            ctx.store.release_leases(_ids(mates), ctx.holder)
        except redis.RedisError as exc:  # the leases expire on their own
            log.warning("job %s: could not release its mates' leases: %s", ctx.job_id, exc)
    return batch.leader_end()


def _stop_at_time_limit(batch: Batch, members: list[JobContext]) -> None:
    """The task's soft time limit interrupted the batch: members of the step it interrupted
    (their preparation, pass or results) fail `time_limit`; members whose turn had not come go
    back to the queue, the leader through `Yielded` (`workers.jobs` sends its task again), a
    mate by its record and a new message when the batch had removed its own."""
    _collect(batch)  # results being written when the limit came are written to their end
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
            _requeue(member, resend=member.job_id in batch.messages_removed)
    batch.flush()


def _requeue(mate: JobContext, *, resend: bool) -> None:
    """A mate whose turn had not come back to `queued` (unless its lease went elsewhere), with
    its task sent again if `resend` (the batch removed its message)."""
    try:
        if mate.renew_lease():
            job = mate.store.update(mate.job_id, status=JobStatus.queued)
            if resend:
                send_again(job)
            log.info(
                "job %s: its batch reached the time limit first; back to the queue", mate.job_id
            )
    except redis.RedisError:
        raise
    except Exception:
        log.exception("job %s: could not put it back in the queue", mate.job_id)


class Batch:
    """The ends of a batch's members: a mate's is written at the next `flush` (one transaction
    for all that ended since), the leader's kept for `workers.jobs` to record; `now`: the
    members of the step under way (what a time limit interrupts)."""

    def __init__(self, leader: JobContext) -> None:
        self.leader = leader
        self.ends: dict[str, Outcome | Exception] = {}
        self.now: list[JobContext] = []
        self.messages_removed: set[str] = set()  # mates whose own message take_mates removed
        self.finishing: list[tuple[Prepared, Future[Any]]] = []  # results being written
        self._unwritten: list[JobContext] = []

    def end(self, member: JobContext, end: Outcome | Exception) -> None:
        """How `member` ended; a mate's end is written at the next `flush`."""
        self.ends[member.job_id] = end
        if member is not self.leader:
            self._unwritten.append(member)

    def flush(self) -> None:
        """Write the ends of the mates that ended since the last flush, unless a mate's lease is
        no longer this worker's (another copy owns it then)."""
        mates, self._unwritten = self._unwritten, []
        if not mates:
            return
        store, holder = mates[0].store, mates[0].holder
        held = store.acquire_leases(_ids(mates), holder, lease_seconds())
        for mate in mates:
            if mate.job_id not in held:
                log.warning("job %s: its lease went to another worker; not recording", mate.job_id)
        record_ends(store, {m.job_id: self.ends[m.job_id] for m in mates if m.job_id in held})

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
    """Prepare every member (decoding inputs on the codec threads), run each key's members in
    passes of at most `limit` images, and write each pass's results on the codec threads while
    the next pass runs."""
    pool = codec_pool()
    preparing = [pool.submit(work.prepare, member, loaded) for member in members]
    groups: dict[tuple[Any, ...], list[Prepared]] = {}
    for member, future in zip(members, preparing, strict=True):
        batch.now = [member]  # a time limit now interrupts its preparation; later ones wait
        prepared = _step(batch, member, future.result)
        if prepared is not None:
            groups.setdefault(prepared.key, []).append(prepared)
    batch.flush()
    for group in groups.values():
        for chunk in _chunks(group, limit):
            batch.now = [p.ctx for p in chunk]
            done = _run_chunk(work, loaded, chunk, batch)
            batch.now = []
            _collect(batch)  # the previous pass's results, written while this one ran
            _start_finishing(work, pool, done, batch)
    _collect(batch)
    for member in members:
        if not batch.ended(member):
            batch.end(member, RuntimeError("the batch gave the job no result"))
    batch.flush()


def _run_chunk(
    work: BatchedWork, loaded: LoadedModel, chunk: list[Prepared], batch: Batch
) -> list[tuple[Prepared, Any]]:
    """One forward pass for `chunk`: each member with its output; if the pass fails and holds
    several jobs, each runs alone (one job's input must not fail its batch-mates). A member
    cancelled meanwhile ends `cancelled` (a pass stopped by `should_stop` raises
    `models.stopping.Stopped`)."""
    try:
        outputs = work.run(loaded, chunk)
    except (redis.RedisError, SoftTimeLimitExceeded):
        raise
    except Exception as exc:
        cancelled = chunk[0].ctx.store.cancels_requested([p.ctx.job_id for p in chunk])
        for prepared in chunk:
            if prepared.ctx.job_id in cancelled:
                batch.end(prepared.ctx, Outcome(JobStatus.cancelled, {}))
        chunk = [p for p in chunk if not batch.ended(p.ctx)]
        if len(chunk) == 1:
            batch.end(chunk[0].ctx, exc)
        if len(chunk) <= 1:
            return []
        log.warning("a batch of %d failed (%s); running its jobs one by one", len(chunk), exc)
        return [done for prepared in chunk for done in _run_chunk(work, loaded, [prepared], batch)]
    return list(zip(chunk, outputs, strict=True))


def _start_finishing(
    work: BatchedWork, pool: ThreadPoolExecutor, done: list[tuple[Prepared, Any]], batch: Batch
) -> None:
    """Start writing the results of a pass's members on the codec threads (`batch.finishing`);
    a member whose cancellation was asked for while it ran ends cancelled, writing nothing."""
    if not done:
        return
    contexts = [p.ctx for p, _ in done]
    cancelled = contexts[0].store.cancels_requested(_ids(contexts))
    for prepared, output in done:
        if prepared.ctx.job_id in cancelled:
            batch.end(prepared.ctx, Outcome(JobStatus.cancelled, {}))
        else:
            batch.finishing.append((prepared, pool.submit(work.finish, prepared, output)))


def _collect(batch: Batch) -> None:
    """Wait for the results being written, end their members and write the mates' ends."""
    finishing, batch.finishing = batch.finishing, []
    for prepared, future in finishing:
        _step(batch, prepared.ctx, future.result)
    batch.flush()


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


_codec_pools: dict[int, ThreadPoolExecutor] = {}


def codec_pool() -> ThreadPoolExecutor:
    """This process's threads for decoding inputs and encoding results beside the model pass
    (Pillow and torch release the GIL while they work): one per core, at most 8. Made in the
    process that uses it (threads do not survive the fork that makes a pool process)."""
    pool = _codec_pools.get(os.getpid())
    if pool is None:
        threads = min(8, os.cpu_count() or 1)
        pool = _codec_pools[os.getpid()] = ThreadPoolExecutor(threads, "codec")
    return pool
