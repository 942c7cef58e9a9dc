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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from workers.jobs import (
    Heartbeat,
    JobContext,
    Outcome,
    begin_attempt,
    lease_seconds,
    record_failure,
    record_outcome,
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


def take_mates(ctx: JobContext, limit: int, wait_seconds: float) -> list[JobContext]:
    """Up to `limit` waiting jobs of the leader's kind and model, each taken under a lease held
    by the leader's holder and marked running, waiting at most `wait_seconds` for more."""
    store, kind, model = ctx.store, ctx.job.kind, ctx.job.model
    assert model is not None
    mates: list[JobContext] = []
    deadline = time.monotonic() + wait_seconds
    while len(mates) < limit:
        ids = store.pop_batch_candidates(kind, model, limit - len(mates))
        for job_id in ids:
            if job_id == ctx.job_id or any(m.job_id == job_id for m in mates):
                continue
            if not store.acquire_lease(job_id, ctx.holder, lease_seconds()):
                continue  # another worker runs it
            job = begin_attempt(store, job_id, ctx.max_attempts)
            if job is None:
                store.release_lease(job_id, ctx.holder)
                continue
            mates.append(ctx.mate(job))
        if not ids:
            if time.monotonic() >= deadline:
                break
            time.sleep(min(0.001, max(0.0, deadline - time.monotonic())))
    return mates


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

    def finish(self, prepared: Prepared, output: Any) -> Outcome: ...


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


def run_batched(ctx: JobContext, work: BatchedWork) -> Outcome:
    """Run the leader `ctx` with the batch-mates it can take; record the mates' ends here and
    return (or raise) the leader's."""
    loaded = work.load(ctx)  # a leader whose model does not load fails alone, taking nobody
    limit = max_batch(ctx, loaded)
    mates = take_mates(ctx, limit - 1, batch_wait_seconds(ctx, loaded)) if limit > 1 else []
    if mates:
        log.info("job %s: batched with %d waiting jobs", ctx.job_id, len(mates))
    ends: dict[str, Outcome | Exception] = {}
    try:
        with Heartbeat(ctx.store, [m.job_id for m in mates], ctx.holder):
            _run_members(work, loaded, [ctx, *mates], limit, ends)
        for mate in mates:
            _record(mate, ends[mate.job_id])
    finally:
        for mate in mates:
            try:
                ctx.store.release_lease(mate.job_id, ctx.holder)
            except redis.RedisError as exc:  # the lease expires on its own
                log.warning("job %s: could not release the lease: %s", mate.job_id, exc)
    end = ends[ctx.job_id]
    if isinstance(end, Exception):
        raise end
    return end


def _run_members(
    work: BatchedWork,
    loaded: LoadedModel,
    members: list[JobContext],
    limit: int,
    ends: dict[str, Outcome | Exception],
) -> None:
    groups: dict[tuple[Any, ...], list[Prepared]] = {}
    for member in members:
        prepared = _attempt(ends, member, lambda m=member: work.prepare(m, loaded))
        if prepared is not None:
            groups.setdefault(prepared.key, []).append(prepared)
    for group in groups.values():
        for chunk in _chunks(group, limit):
            outputs = _attempt_all(ends, chunk, lambda c=chunk: work.run(loaded, c))
            for prepared, output in zip(chunk, outputs or [], strict=False):
                _attempt(ends, prepared.ctx, lambda p=prepared, o=output: work.finish(p, o))


def _attempt(ends: dict[str, Outcome | Exception], ctx: JobContext, step: Callable[[], Any]) -> Any:
    """Run one member's step; a job error ends that member (Redis errors propagate)."""
    try:
        value = step()
    except redis.RedisError:
        raise
    except Exception as exc:
        ends[ctx.job_id] = exc
        return None
    if isinstance(value, Outcome):
        ends[ctx.job_id] = value
    return value


def _attempt_all(
    ends: dict[str, Outcome | Exception], chunk: list[Prepared], step: Callable[[], Any]
) -> Any:
    """Run a forward pass shared by `chunk`; its failure ends every member of it."""
    try:
        return step()
    except redis.RedisError:
        raise
    except Exception as exc:
        for prepared in chunk:
            ends[prepared.ctx.job_id] = exc
        return None


def _record(mate: JobContext, end: Outcome | Exception) -> None:
    if isinstance(end, Exception):
        record_failure(mate.store, mate.job_id, end)
    else:
        record_outcome(mate.store, mate.job_id, end)
