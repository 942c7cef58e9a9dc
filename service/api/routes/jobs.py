"""Jobs: status, progress, results, cancellation, deletion; the job list pages with a cursor."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from core.jobs import Job, JobKind, JobNotFound, JobStatus, JobStore
from core.public_jobs import public_job
from core.storage import (
    RESULT_IMAGE_TYPES,
    result_image_format,
    result_image_name,
    result_key,
    run_key,
    upload_key,
)
from service.api.deps import JobChangesDep, OwnerDep, SettingsDep, StorageDep, StoreDep
from service.errors import ApiError
from service.job_changes import JobChanges
from service.schemas import JobList, JobOut, error_responses
from service.stored_files import PRESIGNED_REDIRECT, result_file

router = APIRouter(prefix="/jobs", tags=["jobs"])

MAX_WAIT_S = 30.0
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMPTY_IS_ANY = BeforeValidator(lambda value: value or None)  # `?status=` filters nothing


def owned_job(store: JobStore, job_id: str, owner: str) -> Job:
    """The caller's job with this id (JobNotFound, a 404, for other owners' and unknown ids)."""
    if not _JOB_ID.match(job_id):
        raise JobNotFound(job_id)
    return store.get(job_id, owner=owner)


async def read_owned_job(changes: JobChanges, job_id: str, owner: str) -> Job:
    """`owned_job` read with the asyncio client of the job-change subscriber (no thread)."""
    if not _JOB_ID.match(job_id):
        raise JobNotFound(job_id)
    return await changes.job(job_id, owner)


def encode_cursor(job: Job) -> str:
    """The opaque cursor of the page after `job`."""
    raw = json.dumps([job.created_at, job.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """(creation time, id) of the job a cursor follows (422 `invalid_cursor` if it is not one)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        if isinstance(created, (int, float)) and isinstance(job_id, str):
            return float(created), job_id
    except (ValueError, TypeError):
        pass
    raise ApiError(422, "invalid_cursor", "The cursor is not one this server gave; start over.")


@router.get("", responses=error_responses(401, 422))
def list_jobs(
    store: StoreDep,
    owner: OwnerDep,
    status: Annotated[JobStatus | None, _EMPTY_IS_ANY, Query()] = None,
    kind: Annotated[JobKind | None, _EMPTY_IS_ANY, Query()] = None,
    model: Annotated[
        str | None,
        _EMPTY_IS_ANY,
        Query(
            max_length=200,
            description="A model id (jobs on any of its versions) or `<id>@<version>`.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        str | None,
        _EMPTY_IS_ANY,
        Query(max_length=500, description="`next` of the previous page."),
    ] = None,
) -> JobList:
    """The caller's jobs, newest first, filtered by status, kind and model, `limit` a page;
    `next` is the cursor of the following page (null on the last)."""
    after = decode_cursor(cursor) if cursor is not None else None
    jobs, more = store.page(owner, status=status, kind=kind, model=model, limit=limit, after=after)
    following = encode_cursor(jobs[-1]) if more and jobs else None
    return JobList(jobs=[public_job(j) for j in jobs], next=following)


@router.get("/{job_id}", responses=error_responses(401, 404, 422))
async def get_job(
    job_id: str,
    changes: JobChangesDep,
    owner: OwnerDep,
    wait: Annotated[
        float | None,
        Query(gt=0, le=MAX_WAIT_S, description="Seconds (at most 30) to wait for the job to end."),
    ] = None,
) -> JobOut:
    """A job; with `wait`, answers when the job has ended (pushed by Redis the moment the
    worker records it) or `wait` seconds have passed."""
    if wait is None:
        return public_job(await read_owned_job(changes, job_id, owner))
    deadline = time.monotonic() + wait
    async with changes.watch(job_id, until_ended=True) as next_change:
        job = await read_owned_job(changes, job_id, owner)  # after subscribing
        while not job.status.ended:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await next_change(left)
            job = await read_owned_job(changes, job_id, owner)
    return public_job(job)


SSE_RETRY_MS = 3000


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(401, 404)},
)
async def stream_job_events(
    job_id: str,
    changes: JobChangesDep,
    owner: OwnerDep,
    settings: SettingsDep,
    request: Request,
    last_event_id: Annotated[
        str | None,
        Header(description="Resume: the `id` of the last event received."),
    ] = None,
) -> StreamingResponse:
    """Server-sent events of a job, each `data:` the job's JSON (as `GET /v1/jobs/{id}`) and
    `id:` its revision (increasing): `event: status` first and whenever the status changes,
    `event: progress` when only the progress did; `: keep-alive` comments while nothing
    changes; the stream ends once the job has ended. Reconnecting with `Last-Event-ID` sends
    only what is newer than that event."""
    job = await read_owned_job(changes, job_id, owner)  # 404 before the stream opens
    seen = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    return StreamingResponse(
        _job_stream(request, changes, job, owner, settings.sse_keepalive_seconds, seen),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _job_stream(
    request: Request,
    changes: JobChanges,
    job: Job,
    owner: str,
    keepalive: float,
    seen: int | None,
) -> AsyncIterator[str]:
    yield f"retry: {SSE_RETRY_MS}\n\n"
    sent_status = None  # the first event sent is a `status` one, on a reconnection too
    last_write = time.monotonic()
    async with changes.watch(job.id) as next_change:
        while True:
            if seen is None or job.revision > seen:
                event = "progress" if job.status == sent_status else "status"
                snapshot = public_job(job).model_dump_json()
                yield f"id: {job.revision}\nevent: {event}\ndata: {snapshot}\n\n"
                seen, sent_status, last_write = job.revision, job.status, time.monotonic()
            elif time.monotonic() - last_write >= keepalive:
                yield ": keep-alive\n\n"
                last_write = time.monotonic()
            if job.status.ended or await request.is_disconnected():
                return
            await next_change(max(0.01, keepalive - (time.monotonic() - last_write)))
            try:
                job = await read_owned_job(changes, job.id, owner)
            except JobNotFound:  # the record expired while we watched
                return


@router.get(
    "/{job_id}/images/{k}",
    response_class=Response,
    responses={
        200: {
            "description": "The image, in the format of the job's result (`result.format`; "
            "PNG when it records none).",
            "content": {media_type: {} for _, media_type in RESULT_IMAGE_TYPES.values()},
        },
        **PRESIGNED_REDIRECT,
        **error_responses(401, 404),
    },
)
def get_job_image(
    job_id: str,
    k: Annotated[int, Path(ge=0, description="Index of the result image, from 0.")],
    request: Request,
    store: StoreDep,
    storage: StorageDep,
    settings: SettingsDep,
    owner: OwnerDep,
) -> Response:
    """Result image k of a job, in the format the job asked for: PNG (the default), WebP or
    JPEG (with GANSERVE_RESULT_LINKS=presigned and an S3 store, a 307 to a presigned URL of
    it)."""
    job = owned_job(store, job_id, owner)
    missing = ApiError(404, "image_not_found", f"The job has no result image {k}.")
    format = result_image_format(job.result)
    key = result_key(job_id, result_image_name(k, format))
    media_type = RESULT_IMAGE_TYPES[format][1]
    return result_file(request, storage.objects, settings, key, media_type, missing)


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    responses=error_responses(401, 404, 409),
)
def cancel_job(job_id: str, store: StoreDep, owner: OwnerDep) -> JobOut:
    """Cancel a job (202): a queued one is cancelled at once and never runs; a running one is
    asked to stop and ends `cancelled` at its next step (a training run keeps its last
    checkpoint); an ended one answers 409 `job_ended`."""
    job = owned_job(store, job_id, owner)
    if job.status.ended:
        raise ApiError(409, "job_ended", f"The job has already ended ({job.status}).")
    store.request_cancel(job.id)  # first, so that a worker starting it now sees the flag
    job = store.get(job.id)
    if job.status is JobStatus.queued:
        job = store.update(job.id, status=JobStatus.cancelled, finished_at=time.time())
    return public_job(job)


@router.delete(
    "/{job_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 404, 409),
)
def delete_job(
    job_id: str,
    store: StoreDep,
    storage: StorageDep,
    owner: OwnerDep,
) -> Response:
    """Delete an ended job: its record, its inputs and its results (204); a queued or running
    one answers 409 `job_not_ended` (cancel it first: `POST /v1/jobs/{id}/cancel`). A model a
    training run registered stays."""
    job = owned_job(store, job_id, owner)
    if not job.status.ended:
        raise ApiError(
            409,
            "job_not_ended",
            f"The job is {job.status}; cancel it first (POST /v1/jobs/{job.id}/cancel), "
            "then delete it once it has ended.",
        )
    store.delete(job.id)
    for prefix in (upload_key(job.id, ""), result_key(job.id, ""), run_key(job.id)):
        storage.objects.delete_prefix(prefix)
    return Response(status_code=204)
