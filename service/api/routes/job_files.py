"""A job's files besides its images: the latents it kept (`latents.npy`) and an interpolation's
animations (`animation.webp`, `animation.gif`). Same auth and ownership rules as
`GET /v1/jobs/{id}`."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response

from core.storage import LATENTS_FILE, result_key
from service.api.deps import OwnerDep, SettingsDep, StorageDep, StoreDep
from service.api.routes.jobs import owned_job
from service.errors import ApiError
from service.schemas import error_responses
from service.stored_files import PRESIGNED_REDIRECT, result_file

router = APIRouter(prefix="/jobs", tags=["jobs"])

_MEDIA_TYPES = {"webp": "image/webp", "gif": "image/gif"}


@router.get(
    "/{job_id}/latents.npy",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        **PRESIGNED_REDIRECT,
        **error_responses(401, 404),
    },
)
def get_job_latents(
    job_id: str,
    request: Request,
    store: StoreDep,
    storage: StorageDep,
    settings: SettingsDep,
    owner: OwnerDep,
) -> Response:
    """The latents of a sample, interpolation or projection job's images: a NumPy `.npy` file of
    float32, shape (N, latent_dim), row k for image k (`numpy.load(path)`; no pickle)."""
    job = owned_job(store, job_id, owner)
    missing = ApiError(404, "no_latents", f"The job {job.id} has kept no latents.")
    key, name = result_key(job.id, LATENTS_FILE), f"{job.id}-latents.npy"
    media_type = "application/octet-stream"
    return result_file(request, storage.objects, settings, key, media_type, missing, name)


@router.get(
    "/{job_id}/animation.{fmt}",
    response_class=Response,
    responses={
        200: {"content": {"image/webp": {}, "image/gif": {}}},
        **PRESIGNED_REDIRECT,
        **error_responses(401, 404, 422),
    },
)
def get_job_animation(
    job_id: str,
    fmt: Literal["webp", "gif"],
    request: Request,
    store: StoreDep,
    storage: StorageDep,
    settings: SettingsDep,
    owner: OwnerDep,
) -> Response:
    """An interpolation's frames as one looping animation: animated WebP or GIF."""
    job = owned_job(store, job_id, owner)
    missing = ApiError(404, "no_animation", f"The job {job.id} has no animation.")
    key = result_key(job.id, f"animation.{fmt}")
    return result_file(request, storage.objects, settings, key, _MEDIA_TYPES[fmt], missing)
