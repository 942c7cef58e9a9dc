"""Sampling jobs (U-Net GAN, Progressive GAN)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from core.jobs import QUEUE_INFER, Job, JobKind
from core.params import SampleParams, random_seed
from service.api.deps import CeleryDep, OwnerDep, RedisDep, SettingsDep, StoreDep
from service.catalog import check_class_label, require_model
from service.jobs import enqueue, ensure_capacity
from service.schemas import JobOut, SampleRequest, error_responses

router = APIRouter(tags=["samples"])


@router.post("/samples", status_code=202, responses=error_responses(401, 404, 422, 429, 503))
def create_samples(
    body: SampleRequest,
    settings: SettingsDep,
    owner: OwnerDep,
    store: StoreDep,
    client: RedisDep,
    celery_app: CeleryDep,
    response: Response,
) -> JobOut:
    """Queue `count` new images; the seed (chosen at random if omitted) is recorded in `params`."""
    info = require_model(settings.models_dir, body.model, "sample")
    check_class_label(info, body.class_label)
    ensure_capacity(client, QUEUE_INFER, settings.max_queued_jobs)
    job = Job(
        owner=owner,
        kind=JobKind.sample,
        model=body.model,
        params=SampleParams(
            **body.model_dump(exclude={"model", "seed"}),
            seed=random_seed() if body.seed is None else body.seed,
        ).model_dump(),
    )
    return enqueue(store, celery_app, job, response)
