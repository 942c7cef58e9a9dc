"""Exports of a model that run outside ganserve: its folder as a zip, its generator as ONNX.

An export is created with `POST /v1/models/{id}/exports` and read with
`GET /v1/models/{id}/exports/{format}`. `safetensors` zips the model folder (`config.json`,
`model.safetensors`, `discriminator.safetensors` when it has one), which `POST /v1/models` imports
again: made at once (and on a first read). `onnx` needs torch, which the gateway never imports:
creating it queues an export job on the infer queue (202, the job inside; with `wait`, up to that
many seconds for it). Both are cached per model version in the object store (`core.exports`), so
later requests answer at once, streamed from the store. The old `GET /v1/models/{id}/export?format=`
still answers, with a `Deprecation` header, until the next release.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Literal

import redis
from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from core.exports import SUFFIX, export_key, export_stamp
from core.jobs import JobKind, JobNotFound, JobStatus, JobStore
from core.model_archive import write_folder_zip
from core.params import ExportParams
from core.public_jobs import public_job
from core.storage import Storage
from service.api.deps import (
    CallerDep,
    JobChangesDep,
    JobQueueDep,
    RedisDep,
    StorageDep,
    StoreDep,
)
from service.catalog import ModelInfo, find_model, require_capable
from service.errors import RETRY_AFTER_SECONDS, ApiError
from service.schemas import JobOut, error_responses

router = APIRouter(prefix="/models", tags=["models"])

MAX_WAIT_S = 30.0
_PENDING_TTL = 3600  # an export job in flight, found again by later requests for the same files


def _pending_key(model_id: str, stamp: str) -> str:
    return f"ganserve:export:{model_id}:{stamp}"


def _stamp(info: ModelInfo) -> str:
    return export_stamp(info.version, info.digest)


def _zip_export(storage: Storage, info: ModelInfo, key: str) -> None:
    """Zip the version's folder (on disk through `Storage.folders`) and upload it as `key`."""
    folder = storage.folders.folder(info.prefix, info.digest, "models")
    fd, tmp = tempfile.mkstemp(dir=storage.root, prefix=".export-")
    os.close(fd)
    try:
        write_folder_zip(folder, Path(tmp), info.id)
        storage.objects.upload_file(key, Path(tmp))
    finally:
        Path(tmp).unlink(missing_ok=True)


ExportFormat = Literal["safetensors", "onnx"]
# RFC 9745: the old export route is deprecated since this release (2026-12-07, as a Unix time)
DEPRECATED_SINCE = "@1796601600"


class ExportRequest(BaseModel):
    """Which export of the model to make."""

    model_config = ConfigDict(extra="forbid")

    format: ExportFormat = Field(
        default="safetensors",
        description="safetensors: the model folder as a zip; onnx: the generator as ONNX.",
    )


class ExportOut(BaseModel):
    """An export of a model version: ready to download at `url`, or being made by `job`."""

    model: str = Field(description="The exported version, `<id>@<version>`.")
    format: ExportFormat
    status: Literal["ready", "pending"]
    url: str = Field(description="Where to download it (`GET`) once ready.")
    job: JobOut | None = Field(description="The ONNX export job (null for safetensors).")


def _file(storage: Storage, key: str, model_id: str, fmt: str) -> StreamingResponse:
    """The export `key`, streamed from the store as a download named after the model."""
    media = "application/octet-stream" if fmt == "onnx" else "application/zip"
    headers = {"Content-Disposition": f'attachment; filename="{model_id}{SUFFIX[fmt]}"'}
    found = storage.objects.info(key)
    if found is not None:
        headers["Content-Length"] = str(found.size)
    return StreamingResponse(storage.objects.stream(key), media_type=media, headers=headers)


def _export_job(
    client: redis.Redis, store: JobStore, owner: str, model_id: str, stamp: str
) -> JobOut | None:
    """The export job in flight for these files (None if none, or it failed or is gone)."""
    raw = client.get(_pending_key(model_id, stamp))
    if raw is None:
        return None
    try:
        job = store.get(raw.decode() if isinstance(raw, bytes) else raw, owner=owner)
    except JobNotFound:
        return None
    return None if job.status in (JobStatus.failed, JobStatus.cancelled) else public_job(job)


def _export_url(info: ModelInfo, fmt: str) -> str:
    return f"/v1/models/{info.ref}/exports/{fmt}"


def _require_format(info: ModelInfo, fmt: str) -> None:
    """422 `not_exportable` for ONNX of a model whose family's generator does not export."""
    if fmt == "onnx":
        require_capable(info, "exportable", "export its generator as ONNX")


async def _ready_file(info: ModelInfo, storage: Storage, fmt: str) -> str | None:
    """The export's key when it exists (a safetensors zip is made here if need be)."""
    key = export_key(info.id, _stamp(info), fmt)
    if await run_in_threadpool(storage.objects.exists, key):
        return key
    if fmt != "safetensors":
        return None
    try:
        await run_in_threadpool(_zip_export, storage, info, key)
    except FileNotFoundError:  # the version was deleted while it was zipped
        raise ApiError(404, "model_not_found", f"There is no model {info.ref!r}.") from None
    return key


async def _wait_for(job: JobOut, store: JobStore, changes: JobChangesDep, wait: float) -> JobOut:
    """The job once it has ended or `wait` seconds have passed."""
    deadline = time.monotonic() + wait
    async with changes.watch(job.id) as next_change:
        while True:
            current = await run_in_threadpool(store.get, job.id)
            if current.status.ended or time.monotonic() >= deadline:
                return public_job(current)
            await next_change(deadline - time.monotonic())


async def _made_file(info: ModelInfo, storage: Storage, job: JobOut) -> str | None:
    """The key of the export a succeeded ONNX export job wrote (None if it has not, or it is
    gone)."""
    if job.status is not JobStatus.succeeded:
        return None
    stamp = getattr(job.result, "stamp", None)
    if not stamp:
        return None
    key = export_key(info.id, str(stamp), "onnx")
    return key if await run_in_threadpool(storage.objects.exists, key) else None


def _failed(job: JobOut) -> ApiError:
    assert job.error is not None
    return ApiError(422, job.error.code, f"The ONNX export failed: {job.error.message}")


async def _onnx_job(
    info: ModelInfo, client: redis.Redis, store: JobStore, jobs: JobQueueDep
) -> JobOut:
    """The ONNX export job of this version: the one in flight, or a new one."""
    stamp = _stamp(info)
    job = await run_in_threadpool(_export_job, client, store, jobs.owner, info.id, stamp)
    if job is None:
        new = await run_in_threadpool(jobs.new, JobKind.model_export, info.ref, info.digest)
        job = await run_in_threadpool(jobs.submit, new, ExportParams(format="onnx"))
        with contextlib.suppress(redis.RedisError):
            client.set(_pending_key(info.id, stamp), job.id, ex=_PENDING_TTL)
    return job


async def _make_export(
    info: ModelInfo,
    fmt: ExportFormat,
    wait: float | None,
    storage: Storage,
    store: JobStore,
    client: redis.Redis,
    changes: JobChangesDep,
    jobs: JobQueueDep,
) -> tuple[str | None, JobOut | None]:
    """Make an export: its file when it is ready (a zip is made at once), and the ONNX export
    job when there is one (the one in flight or a new one, waited for up to `wait` seconds);
    a job that failed raises its error; 422 `not_exportable` (ONNX of a family whose generator
    does not export)."""
    _require_format(info, fmt)
    path = await _ready_file(info, storage, fmt)
    if path is not None:
        return path, None
    job = await _onnx_job(info, client, store, jobs)
    if wait is not None and not job.status.ended:
        job = await _wait_for(job, store, changes, wait)
    if job.status is JobStatus.failed and job.error is not None:
        raise _failed(job)
    return await _made_file(info, storage, job), job


WaitQuery = Annotated[
    float | None,
    Query(gt=0, le=MAX_WAIT_S, description="ONNX: seconds (at most 30) to wait for it."),
]


@router.post(
    "/{model_id}/exports",
    status_code=201,
    responses={
        201: {"description": "The export is ready at `url`"},
        202: {"model": ExportOut, "description": "The ONNX export job is queued or running"},
        **error_responses(401, 404, 422, 429, 503),
    },
)
async def create_model_export(
    model_id: str,
    request_body: ExportRequest,
    storage: StorageDep,
    store: StoreDep,
    client: RedisDep,
    changes: JobChangesDep,
    jobs: JobQueueDep,
    caller: CallerDep,
    response: Response,
    wait: WaitQuery = None,
) -> ExportOut:
    """Make an export of a model version (`<id>` is its newest): 201 when it is ready to
    download at `url` (safetensors at once, ONNX when made before), else 202 with the ONNX
    export job (`Location` at the job; with `wait`, 201 if it ends in time)."""
    info = await run_in_threadpool(find_model, storage, model_id, caller)
    fmt = request_body.format
    url = _export_url(info, fmt)
    path, job = await _make_export(info, fmt, wait, storage, store, client, changes, jobs)
    if path is None:
        assert job is not None
        response.status_code = 202
        response.headers["Location"] = job.url
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return ExportOut(model=info.ref, format=fmt, status="pending", url=url, job=job)
    response.headers["Location"] = url
    return ExportOut(model=info.ref, format=fmt, status="ready", url=url, job=job)


@router.get(
    "/{model_id}/exports/{format}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}, "application/octet-stream": {}}},
        **error_responses(401, 404, 409, 422),
    },
)
async def get_model_export(
    model_id: str,
    format: ExportFormat,
    storage: StorageDep,
    store: StoreDep,
    client: RedisDep,
    caller: CallerDep,
) -> StreamingResponse:
    """Download an export of a model version: safetensors always (made on the first read);
    ONNX once made by `POST /v1/models/{id}/exports` (404 `export_not_found` before, 409
    `export_pending` while its job runs; 422 `not_exportable` for a family whose generator does
    not export)."""
    info = await run_in_threadpool(find_model, storage, model_id, caller)
    _require_format(info, format)
    path = await _ready_file(info, storage, format)
    if path is not None:
        return await run_in_threadpool(_file, storage, path, info.id, format)
    stamp = _stamp(info)
    job = await run_in_threadpool(_export_job, client, store, caller.owner, info.id, stamp)
    if job is not None and (made := await _made_file(info, storage, job)) is not None:
        return await run_in_threadpool(_file, storage, made, info.id, format)
    if job is not None and not job.status.ended:
        raise ApiError(
            409,
            "export_pending",
            f"The ONNX export of {info.ref} is still being made (job {job.id}); try again soon.",
            {"Retry-After": str(RETRY_AFTER_SECONDS), "Location": job.url},
        )
    raise ApiError(
        404,
        "export_not_found",
        f"There is no ONNX export of {info.ref} yet; create it with "
        f"POST /v1/models/{info.ref}/exports.",
    )


@router.get(
    "/{model_id}/export",
    deprecated=True,
    response_class=StreamingResponse,  # the 200 is a file (the 202, JSON, is answered as such)
    responses={
        200: {"content": {"application/zip": {}, "application/octet-stream": {}}},
        202: {"model": JobOut, "description": "ONNX export queued (or still running)"},
        **error_responses(401, 404, 422, 429, 503),
    },
    response_model=None,
)
async def export_model_deprecated(
    model_id: str,
    storage: StorageDep,
    store: StoreDep,
    client: RedisDep,
    changes: JobChangesDep,
    jobs: JobQueueDep,
    caller: CallerDep,
    format: Annotated[
        ExportFormat,
        Query(description="safetensors: the model folder as a zip; onnx: the generator."),
    ] = "safetensors",
    wait: WaitQuery = None,
) -> StreamingResponse | JSONResponse:
    """Deprecated (answers until the next release): `POST /v1/models/{id}/exports`, then
    `GET /v1/models/{id}/exports/{format}`. The file (200), or the ONNX export job (202)."""
    deprecation = {
        "Deprecation": DEPRECATED_SINCE,
        "Link": f'</v1/models/{model_id}/exports>; rel="successor-version"',
    }
    try:
        info = await run_in_threadpool(find_model, storage, model_id, caller)
        path, job = await _make_export(info, format, wait, storage, store, client, changes, jobs)
    except ApiError as exc:  # errors say it too
        exc.headers = {**(exc.headers or {}), **deprecation}
        raise
    if path is not None:
        answer = await run_in_threadpool(_file, storage, path, info.id, format)
        answer.headers.update(deprecation)
        return answer
    assert job is not None
    headers = {**deprecation, "Location": job.url, "Retry-After": str(RETRY_AFTER_SECONDS)}
    return JSONResponse(jsonable_encoder(job), status_code=202, headers=headers)
