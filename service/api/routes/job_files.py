"""A job's files besides its images: the latents it kept (`latents.npy`) and an interpolation's
animations (`animation.webp`, `animation.gif`). Same auth and ownership rules as
`GET /v1/jobs/{id}`."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse

from core.storage import LATENTS_FILE
from service.api.deps import OwnerDep, StorageDep, StoreDep
from service.api.routes.jobs import owned_job
from service.errors import ApiError
from service.schemas import error_responses

router = APIRouter(prefix="/jobs", tags=["jobs"])

_MEDIA_TYPES = {"webp": "image/webp", "gif": "image/gif"}


@router.get(
    "/{job_id}/latents.npy",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **error_responses(401, 404)},
)
def get_job_latents(
    job_id: str, store: StoreDep, storage: StorageDep, owner: OwnerDep
) -> FileResponse:
    """The latents of a sample, interpolation or projection job's images: a NumPy `.npy` file of
    float32, shape (N, latent_dim), row k for image k (`numpy.load(path)`; no pickle)."""
    job = owned_job(store, job_id, owner)
    path = storage.result_dir(job.id) / LATENTS_FILE
    if not path.is_file():
        raise ApiError(404, "no_latents", f"The job {job.id} has kept no latents.")
    return FileResponse(
        path, media_type="application/octet-stream", filename=f"{job.id}-latents.npy"
    )


@router.get(
    "/{job_id}/animation.{fmt}",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/webp": {}, "image/gif": {}}},
        **error_responses(401, 404, 422),
    },
)
def get_job_animation(
    job_id: str,
    fmt: Literal["webp", "gif"],
    store: StoreDep,
    storage: StorageDep,
    owner: OwnerDep,
) -> FileResponse:
    """An interpolation's frames as one looping animation: animated WebP or GIF."""
    job = owned_job(store, job_id, owner)
    path = storage.result_dir(job.id) / f"animation.{fmt}"
    if not path.is_file():
        raise ApiError(404, "no_animation", f"The job {job.id} has no animation.")
    return FileResponse(path, media_type=_MEDIA_TYPES[fmt])
