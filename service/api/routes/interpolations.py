"""Interpolations: frames along a path between two latents of a sampling model (the latent-space
walks of Karras et al., ICLR 2018, section 4 and their video; slerp for Gaussian latents as in
White, "Sampling Generative Networks", 2016), with an animated WebP and GIF of them."""

from __future__ import annotations

from fastapi import APIRouter

from core.jobs import JobKind, JobStore
from core.params import InterpolationParams, LatentEndpoint
from service.api.deps import CallerDep, JobQueueDep, OwnerDep, SettingsDep, StorageDep
from service.catalog import ModelInfo, check_class_label, require_model
from service.errors import ApiError
from service.latents import check_indices, check_latent_length, kept_latents
from service.schemas import InterpolationRequest, JobOut, error_responses
from service.webhooks import WEBHOOK_FIELDS, webhook_target

router = APIRouter(tags=["interpolations"])


@router.post(
    "/interpolations", status_code=202, responses=error_responses(401, 404, 409, 422, 429, 503)
)
def create_interpolation(
    body: InterpolationRequest,
    settings: SettingsDep,
    storage: StorageDep,
    jobs: JobQueueDep,
    caller: CallerDep,
    owner: OwnerDep,
) -> JobOut:
    """Queue `frames` images along the path from `start` to `end` (each a seed, a latent vector
    or an earlier job's latent; for class-conditional models each end may name a class, and the
    class embedding is interpolated between them). Result: the frames (`images`), `animation`
    (WebP and GIF URLs) and the frames' latents (`latents_url`). The first and last frames are
    the endpoints' own samples."""
    info = require_model(storage, body.model, "sample", caller)
    ends = [_endpoint(end, info, jobs.store, owner, name) for name, end in body.ends()]
    webhook = webhook_target(body.webhook, body.webhook_events, settings)
    job = jobs.new(JobKind.interpolation, info.ref, info.digest, webhook)
    exclude = {"model", "start", "end", *WEBHOOK_FIELDS}
    fields = body.model_dump(exclude=exclude, exclude_unset=True)
    params = InterpolationParams(**fields, start=ends[0], end=ends[1])
    return jobs.submit(job, params)


def _endpoint(
    end: LatentEndpoint, info: ModelInfo, store: JobStore, owner: str, name: str
) -> LatentEndpoint:
    """An endpoint checked against the model, with a job endpoint's class filled in."""
    check_class_label(info, end.class_label)
    if end.latent is not None:
        check_latent_length(info, len(end.latent), f"The latent of '{name}'")
        if info.class_count and end.class_label is None:
            raise ApiError(
                422,
                "class_labels_required",
                f"The model {info.id!r} is class-conditional: give '{name}.class_label' with "
                "a latent vector.",
            )
    if end.job is None:
        return end
    kept = kept_latents(store, end.job, owner, info)
    check_indices(kept, [end.index])
    label = end.class_label
    if info.class_count and label is None:
        if kept.class_labels is None:
            raise ApiError(
                422,
                "class_labels_required",
                f"The job {kept.job} recorded no class for its latents: give '{name}.class_label'.",
            )
        label = kept.class_labels[end.index]
    return end.model_copy(update={"job": kept.job, "class_label": label})
