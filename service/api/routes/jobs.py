"""Jobs: status, progress, results, cancellation."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BeforeValidator

from core.jobs import Job, JobKind, JobNotFound, JobStatus, JobStore
from service.api.deps import JobChangesDep, OwnerDep, SettingsDep, StorageDep, StoreDep
from service.errors import ApiError
from service.job_changes import JobChanges
from service.jobs import job_out
from service.schemas import JobList, JobOut, error_responses

router = APIRouter(prefix="/jobs", tags=["jobs"])

MAX_WAIT_S = 30.0
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMPTY_IS_ANY = BeforeValidator(lambda value: value or None)  # `?status=` filters nothing


def owned_job(store: JobStore, job_id: str, owner: str) -> Job:
    """The caller's job with this id (JobNotFound, a 404, for other owners' and unknown ids)."""
    if not _JOB_ID.match(job_id):
        raise JobNotFound(job_id)
    return store.get(job_id, owner=owner)


@router.get("", responses=error_responses(401, 422))
def list_jobs(
    store: StoreDep,
    owner: OwnerDep,
    status: Annotated[JobStatus | None, _EMPTY_IS_ANY, Query()] = None,
    kind: Annotated[JobKind | None, _EMPTY_IS_ANY, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobList:
    """The caller's jobs, newest first, filtered by status and kind."""
    jobs = store.list(owner, status=status, kind=kind, limit=limit)
    return JobList(jobs=[job_out(j) for j in jobs])


@router.get("/{job_id}", responses=error_responses(401, 404, 422))
async def get_job(
    job_id: str,
    store: StoreDep,
    changes: JobChangesDep,
    owner: OwnerDep,
    wait: Annotated[
        float | None,
        Query(gt=0, le=MAX_WAIT_S, description="Seconds (at most 30) to wait for the job to end."),
    ] = None,
) -> JobOut:
    """A job; with `wait`, answers when the job has ended (pushed by Redis the moment the
    worker records it) or `wait` seconds have passed."""
    job = await run_in_threadpool(owned_job, store, job_id, owner)
    if wait is None or job.status.ended:
        return job_out(job)
    deadline = time.monotonic() + wait
    async with changes.watch(job_id) as next_change:
        job = await run_in_threadpool(owned_job, store, job_id, owner)  # after subscribing
        while not job.status.ended:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await next_change(left)
            job = await run_in_threadpool(owned_job, store, job_id, owner)
    return job_out(job)


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(401, 404)},
)
async def job_events(
    job_id: str,
    store: StoreDep,
    changes: JobChangesDep,
    owner: OwnerDep,
    settings: SettingsDep,
    request: Request,
) -> StreamingResponse:
    """Server-sent events of a job: an `event: job` with the job's JSON (as `GET
    /v1/jobs/{id}`) now and whenever its status, progress or result changes, `: keep-alive`
    comments while nothing changes, and the end of the stream once the job has ended."""
    job = await run_in_threadpool(owned_job, store, job_id, owner)  # 404 before the stream opens
    return StreamingResponse(
        _job_stream(request, store, changes, job, owner, settings.sse_keepalive_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _job_stream(
    request: Request,
    store: JobStore,
    changes: JobChanges,
    job: Job,
    owner: str,
    keepalive: float,
) -> AsyncIterator[str]:
    sent: str | None = None
    last_write = time.monotonic()
    async with changes.watch(job.id) as next_change:
        while True:
            snapshot = job_out(job).model_dump_json()
            if snapshot != sent:
                yield f"event: job\ndata: {snapshot}\n\n"
                sent, last_write = snapshot, time.monotonic()
            elif time.monotonic() - last_write >= keepalive:
                yield ": keep-alive\n\n"
                last_write = time.monotonic()
            if job.status.ended or await request.is_disconnected():
                return
            await next_change(max(0.01, keepalive - (time.monotonic() - last_write)))
            try:
                job = await run_in_threadpool(owned_job, store, job.id, owner)
            except JobNotFound:  # the record expired while we watched
                return


@router.get(
    "/{job_id}/images/{k}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, **error_responses(401, 404)},
)
def get_job_image(
    job_id: str,
    k: Annotated[int, Path(ge=0, description="Index of the result image, from 0.")],
    store: StoreDep,
    storage: StorageDep,
    owner: OwnerDep,
) -> FileResponse:
    """Result image k of a job, as PNG."""
    owned_job(store, job_id, owner)
    path = storage.result_dir(job_id) / f"{k}.png"
    if not path.is_file():
        raise ApiError(404, "image_not_found", f"The job has no result image {k}.")
    return FileResponse(path, media_type="image/png")


@router.delete("/{job_id}", responses={202: {"model": JobOut}, **error_responses(401, 404, 409)})
def cancel_job(job_id: str, store: StoreDep, owner: OwnerDep, response: Response) -> JobOut:
    """Cancel a job: a queued one is cancelled at once (200) and never runs; a running one is
    asked to stop (202) and ends `cancelled` at its next step (a training run keeps its last
    checkpoint); an ended one answers 409 `job_ended`.
    """
    job = owned_job(store, job_id, owner)
    if job.status.ended:
        raise ApiError(409, "job_ended", f"The job has already ended ({job.status}).")
    store.request_cancel(job.id)  # first, so that a worker starting it now sees the flag
    job = store.get(job.id)
    if job.status is JobStatus.queued:
        job = store.update(job.id, status=JobStatus.cancelled, finished_at=time.time())
    elif not job.status.ended:
        response.status_code = 202
    return job_out(job)
