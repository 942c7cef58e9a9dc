"""Projections: the latent from which a sampling model redraws an uploaded image (GAN inversion,
as StyleGAN2's projector, Karras et al., CVPR 2020, section 5; the worker runs
`models.projection`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile

from core.jobs import JobKind
from core.params import (
    MAX_CLASS_LABEL,
    MAX_PROJECTION_STEPS,
    MAX_SEED,
    ProjectionParams,
    random_seed,
)
from core.storage import upload_key
from service.api.deps import CallerDep, JobQueueDep, SettingsDep, StorageDep
from service.catalog import (
    check_class_label,
    require_capable,
    require_discriminator,
    require_model,
)
from service.schemas import JobOut, error_responses
from service.uploads import read_image, spooled, store_png
from service.webhooks import WebhookFormDep

router = APIRouter(tags=["projections"])


@router.post(
    "/projections",
    status_code=202,
    responses=error_responses(400, 401, 404, 409, 413, 415, 422, 429, 503),
)
def create_projection(
    image: Annotated[UploadFile, File(description="PNG, JPEG, WebP or BMP image to project.")],
    model: Annotated[
        str,
        Form(
            description="Id of a model whose task is 'sample': `<id>` (its newest version) "
            "or `<id>@<version>`."
        ),
    ],
    settings: SettingsDep,
    storage: StorageDep,
    jobs: JobQueueDep,
    webhook: WebhookFormDep,
    caller: CallerDep,
    steps: Annotated[
        int,
        Form(
            ge=1,
            le=MAX_PROJECTION_STEPS,
            description="Optimisation steps (default 300: under a minute on a CPU for the "
            "demo models).",
        ),
    ] = ProjectionParams.model_fields["steps"].default,
    seed: Annotated[
        int | None,
        Form(ge=0, le=MAX_SEED, description="Seed of the starting latent (random if omitted)."),
    ] = None,
    class_label: Annotated[
        int | None,
        Form(
            ge=0,
            le=MAX_CLASS_LABEL,
            description="Class-conditional models: the class to project into (default: every "
            "class is tried for the first 20 % of the steps and the best kept).",
        ),
    ] = None,
    discriminator_loss: Annotated[
        Literal["auto", "on", "off"],
        Form(
            description="The feature loss from the model's discriminator: auto (default) uses "
            "it when the model folder carries one; on requires it (409 without); off never."
        ),
    ] = "auto",
) -> JobOut:
    """Queue a projection of the image into the model's latent space. The image is cropped to
    a centred square, resized to the model's size and made grey or RGB as the model draws; the
    worker optimises a latent so that the generator redraws it, reporting the loss, the PSNR and
    the current reconstruction (`GET /v1/jobs/{id}/preview`) as it goes. Result: the latent
    (`latent`, `latents_url`), the class, the reconstruction (image 0), the target as the model
    sees it (image 1), PSNR and SSIM."""
    info = require_model(storage, model, "sample", caller)
    require_capable(info, "projectable", "project an image into its latent space")
    check_class_label(info, class_label)
    if discriminator_loss == "on":
        require_discriminator(info, "use its feature loss")
    with spooled() as spool:
        picture = read_image(image, settings, spool)
        job = jobs.new(JobKind.projection, info.ref, info.digest, webhook)
        key = upload_key(job.id)
        width, height = store_png(picture, storage.objects, key, spool)
    params = {
        "image": key,
        "width": width,
        "height": height,
        "steps": steps,
        "seed": random_seed() if seed is None else seed,
        "discriminator_loss": discriminator_loss,
    }
    if class_label is not None:
        params["class_label"] = class_label
    return jobs.submit(job, ProjectionParams(**params), uploaded=True)
