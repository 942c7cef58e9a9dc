"""Sampling jobs (U-Net GAN, Progressive GAN): from a seed, from given latents, or filtered by the
model's discriminator (discriminator rejection sampling, Azadi et al., ICLR 2019)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from core.jobs import JobKind, JobStore
from core.params import LatentsOfJob, SampleParams, random_seed
from service.api.deps import CallerDep, JobQueueDep, OwnerDep, SettingsDep, StorageDep
from service.catalog import (
    ModelInfo,
    check_class_label,
    require_capable,
    require_discriminator,
    require_model,
)
from service.errors import ApiError
from service.latents import check_indices, check_latent_length, kept_latents, labels_for
from service.schemas import JobOut, SampleRequest, error_responses
from service.webhooks import WEBHOOK_FIELDS, webhook_target

router = APIRouter(tags=["samples"])


@router.post("/samples", status_code=202, responses=error_responses(401, 404, 409, 422, 429, 503))
def create_sample(
    body: SampleRequest,
    settings: SettingsDep,
    storage: StorageDep,
    jobs: JobQueueDep,
    caller: CallerDep,
    owner: OwnerDep,
) -> JobOut:
    """Queue `count` new images. From a seed (chosen at random if omitted, and recorded in
    `params`), or from `latents` (vectors, or an earlier job's), which give the same images bit
    for bit; with `filter`, the model's discriminator picks the candidates it finds most real.
    The result keeps every image's latent (`latents_url`, and inline when small)."""
    info = require_model(storage, body.model, "sample", caller)
    check_class_label(info, body.class_label)
    if body.filter is not None:
        require_capable(info, "filterable", "filter samples with its discriminator")
        require_discriminator(info, "filter samples")
    webhook = webhook_target(body.webhook, body.webhook_events, settings)
    job = jobs.new(JobKind.sample, info.ref, info.digest, webhook)
    fields = body.model_dump(exclude={"model", "seed", *WEBHOOK_FIELDS}, exclude_unset=True)
    if body.filter is not None:
        fields["filter"] = body.filter.model_dump()  # recorded with every default it runs with
    if body.latents is None:
        params = SampleParams(**fields, seed=random_seed() if body.seed is None else body.seed)
    else:
        params = SampleParams(**_given_latents(body, info, jobs.store, owner))
    return jobs.submit(job, params)


def _given_latents(
    body: SampleRequest, info: ModelInfo, store: JobStore, owner: str
) -> dict[str, Any]:
    """The params of a job drawing given latents: their count and one class label each."""
    fields = body.model_dump(
        exclude={"model", *WEBHOOK_FIELDS}, exclude_unset=True, exclude_none=True
    )
    fields.pop("class_label", None)
    if isinstance(body.latents, LatentsOfJob):
        kept = kept_latents(store, body.latents.job, owner, info)
        indices = body.latents.indices or list(range(kept.count))
        check_indices(kept, indices)
        fields["latents"] = {"job": kept.job, "indices": indices}
        kept_labels = None if kept.class_labels is None else [kept.class_labels[k] for k in indices]
        count = len(indices)
    else:
        check_latent_length(info, len(body.latents[0]), "The latents")
        kept_labels = None
        count = len(body.latents)
    if "count" in body.model_fields_set and body.count != count:
        raise ApiError(
            422,
            "invalid_field",
            f"The field 'count' is {body.count} but {count} latents were given; leave it out.",
        )
    fields["count"] = count
    labels = labels_for(
        info,
        count,
        class_label=body.class_label,
        class_labels=body.class_labels,
        kept=kept_labels,
    )
    fields.pop("class_labels", None)
    if labels is not None:
        fields["class_labels"] = labels
    return fields
