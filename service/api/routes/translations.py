"""Image-to-image translation jobs (pix2pix)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from core.jobs import JobKind
from core.params import MAX_SEED, TranslationMode, TranslationParams, random_seed
from core.storage import upload_key
from service.api.deps import CallerDep, JobQueueDep, SettingsDep, SpoolDep, StorageDep
from service.catalog import require_model
from service.schemas import JobOut, error_responses
from service.uploads import read_image, store_png
from service.webhooks import WebhookFormDep

router = APIRouter(tags=["translations"])


@router.post(
    "/translations",
    status_code=202,
    responses=error_responses(400, 401, 404, 413, 415, 422, 429, 503),
)
def create_translation(
    image: Annotated[UploadFile, File(description="PNG, JPEG, WebP or BMP image to translate.")],
    model: Annotated[
        str,
        Form(
            description="Id of a model whose task is 'translate': `<id>` (its newest version) "
            "or `<id>@<version>`."
        ),
    ],
    settings: SettingsDep,
    storage: StorageDep,
    jobs: JobQueueDep,
    webhook: WebhookFormDep,
    caller: CallerDep,
    spool: SpoolDep,
    seed: Annotated[
        int | None,
        Form(ge=0, le=MAX_SEED, description="Seed of the dropout noise (random if omitted)."),
    ] = None,
    mode: Annotated[
        TranslationMode,
        Form(
            description="native (default): the generator runs at the image's own resolution, "
            "in tiles above GANSERVE_MAX_TILE_PIXELS; resize: the image is squeezed to the "
            "model's square size and the output stretched back."
        ),
    ] = "native",
) -> JobOut:
    """Queue the translation of an uploaded image; the result keeps the input's size."""
    info = require_model(storage, model, "translate", caller)
    picture = read_image(image, settings, spool)
    job = jobs.new(JobKind.translation, info.ref, info.digest, webhook)
    width, height = store_png(picture, storage.objects, upload_key(job.id), spool)
    seed = random_seed() if seed is None else seed
    params = TranslationParams(seed=seed, mode=mode, width=width, height=height)
    return jobs.submit(job, params, uploaded=True)
