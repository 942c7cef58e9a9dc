"""Exports of a model that run outside ganserve: its folder as a zip, its generator as ONNX.

`format=safetensors` (the default) zips the model folder (`config.json`, `model.safetensors`,
`discriminator.safetensors` when it has one), which `POST /v1/models` imports again. `format=onnx`
needs torch, which the gateway never imports: the first request queues an export job on the infer
queue and answers 202 with it (`Location` at the job); with `wait` it waits up to that many
seconds and answers the file itself when the export ends in time. Both are cached per model file
(`core.exports`), so later requests answer at once.
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
from fastapi.responses import FileResponse

from core.exports import export_path, export_stamp
from core.jobs import JobKind, JobNotFound, JobStatus, JobStore
from core.model_archive import write_folder_zip
from core.params import ExportParams
from service.api.deps import (
    CallerDep,
    JobChangesDep,
    JobQueueDep,
    RedisDep,
    SettingsDep,
    StorageDep,
    StoreDep,
)
from service.catalog import find_model
from service.errors import RETRY_AFTER_SECONDS, ApiError
from service.jobs import job_out
from service.schemas import JobOut, error_responses

router = APIRouter(prefix="/models", tags=["models"])

MAX_WAIT_S = 30.0
_PENDING_TTL = 3600  # an export job in flight, found again by later requests for the same files


def _pending_key(model_id: str, stamp: str) -> str:
    return f"ganserve:export:{model_id}:{stamp}"


def _zip_export(folder: Path, target: Path, model_id: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        write_folder_zip(folder, Path(tmp), model_id)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file(path: Path, model_id: str, fmt: str) -> FileResponse:
    suffix = ".onnx" if fmt == "onnx" else ".zip"
    media = "application/octet-stream" if fmt == "onnx" else "application/zip"
    return FileResponse(path, media_type=media, filename=f"{model_id}{suffix}")


def _export_job(
    client: redis.Redis, store: JobStore, jobs: JobQueueDep, model_id: str, stamp: str
) -> JobOut | None:
    """The export job in flight for these files (None if none, or it failed or is gone)."""
    raw = client.get(_pending_key(model_id, stamp))
    if raw is None:
        return None
    try:
        job = store.get(raw.decode() if isinstance(raw, bytes) else raw, owner=jobs.owner)
    except JobNotFound:
        return None
    return None if job.status in (JobStatus.failed, JobStatus.cancelled) else job_out(job)


@router.get(
    "/{model_id}/export",
    responses={
        200: {"content": {"application/zip": {}, "application/octet-stream": {}}},
        202: {"model": JobOut, "description": "ONNX export queued (or still running)"},
        **error_responses(401, 404, 422, 429, 503),
    },
    response_model=None,
)
async def export_model(
    model_id: str,
    settings: SettingsDep,
    storage: StorageDep,
    store: StoreDep,
    client: RedisDep,
    changes: JobChangesDep,
    jobs: JobQueueDep,
    caller: CallerDep,
    response: Response,
    format: Annotated[
        Literal["safetensors", "onnx"],
        Query(description="safetensors: the model folder as a zip; onnx: the generator."),
    ] = "safetensors",
    wait: Annotated[
        float | None,
        Query(gt=0, le=MAX_WAIT_S, description="ONNX: seconds (at most 30) to wait for it."),
    ] = None,
) -> FileResponse | JobOut:
    """The model as a file that runs outside ganserve (200), or the ONNX export job (202)."""
    info = await run_in_threadpool(find_model, settings.models_dir, model_id, caller)
    folder = info.folder
    stamp = export_stamp(folder, info.version)
    target = export_path(storage.root, info.id, stamp, format)
    if target.is_file():
        return _file(target, info.id, format)
    if format == "safetensors":
        try:
            await run_in_threadpool(_zip_export, folder, target, info.id)
        except FileNotFoundError:  # the version was deleted while it was zipped
            raise ApiError(404, "model_not_found", f"There is no model {model_id!r}.") from None
        return _file(target, info.id, format)
    job = await run_in_threadpool(_export_job, client, store, jobs, info.id, stamp)
    if job is None:
        new = await run_in_threadpool(jobs.new, JobKind.model_export, info.ref, info.digest)
        job = await run_in_threadpool(jobs.submit, new, ExportParams(format="onnx"))
        with contextlib.suppress(redis.RedisError):
            client.set(_pending_key(info.id, stamp), job.id, ex=_PENDING_TTL)
    if wait is not None and not job.status.ended:
        deadline = time.monotonic() + wait
        async with changes.watch(job.id) as next_change:
            while True:
                current = await run_in_threadpool(store.get, job.id)
                if current.status.ended or time.monotonic() >= deadline:
                    break
                await next_change(deadline - time.monotonic())
        job = job_out(current)
    if job.status is JobStatus.succeeded:
        made = (job.result or {}).get("stamp")
        path = export_path(storage.root, info.id, str(made), format) if made else target
        if path.is_file():
            return _file(path, info.id, format)
    if job.status is JobStatus.failed and job.error is not None:
        raise ApiError(422, job.error.code, f"The ONNX export failed: {job.error.message}")
    response.status_code = 202
    response.headers["Location"] = job.url
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return job
