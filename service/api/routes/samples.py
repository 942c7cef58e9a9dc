"""Sampling jobs (U-Net GAN, Progressive GAN)."""

from __future__ import annotations

from fastapi import APIRouter

from core.jobs import JobKind
from core.params import SampleParams, random_seed
from service.api.deps import CallerDep, JobQueueDep, SettingsDep
from service.catalog import check_class_label, require_model
from service.schemas import JobOut, SampleRequest, error_responses

router = APIRouter(tags=["samples"])


@router.post("/samples", status_code=202, responses=error_responses(401, 404, 422, 429, 503))
def create_samples(
    body: SampleRequest, settings: SettingsDep, jobs: JobQueueDep, caller: CallerDep
) -> JobOut:
    """Queue `count` new images; the seed (chosen at random if omitted) is recorded in `params`."""
    info = require_model(settings.models_dir, body.model, "sample", caller)
    check_class_label(info, body.class_label)
    job = jobs.new(JobKind.sample, body.model)
    params = SampleParams(
        **body.model_dump(exclude={"model", "seed"}),
        seed=random_seed() if body.seed is None else body.seed,
    )
    return jobs.submit(job, params)
