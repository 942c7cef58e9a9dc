"""Image-to-image translation jobs (pix2pix)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.exceptions import RequestValidationError

from core.jobs import JobKind
from core.params import (
    DEFAULT_QUALITY,
    MAX_QUALITY,
    MAX_SEED,
    MIN_QUALITY,
    ResultFormat,
    TranslationMode,
    TranslationParams,
    quality_error,
    random_seed,
)
from core.storage import upload_key
from service.api.deps import CallerDep, JobQueueDep, SettingsDep, StorageDep
from service.catalog import require_model
from service.schemas import JobOut, error_responses
from service.uploads import read_image, spooled, store_png
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
    format: Annotated[
        ResultFormat | None,
        Form(
            description="Format of the result image: png (lossless; the default), webp or "
            "jpeg (smaller, lossy, at `quality`)."
        ),
    ] = None,
    quality: Annotated[
        int | None,
        Form(
            ge=MIN_QUALITY,
            le=MAX_QUALITY,
            description=f"Quality of a webp or jpeg result, {MIN_QUALITY}-{MAX_QUALITY} "
            f"({DEFAULT_QUALITY} if omitted); not for png.",
        ),
    ] = None,
) -> JobOut:
    """Queue the translation of an uploaded image; the result keeps the input's size."""
    _check_quality(format, quality)
    info = require_model(storage, model, "translate", caller)
    with spooled() as spool:
        picture = read_image(image, settings, spool)
        job = jobs.new(JobKind.translation, info.ref, info.digest, webhook)
        width, height = store_png(picture, storage.objects, upload_key(job.id), spool)
    seed = random_seed() if seed is None else seed
    params = TranslationParams(
        seed=seed, mode=mode, width=width, height=height, format=format, quality=quality
    )
    return jobs.submit(job, params, uploaded=True)


def _check_quality(format: str | None, quality: int | None) -> None:
    """A 422 naming `quality` (as every invalid field) when it is given for png."""
    if error := quality_error(format, quality):
        loc = ("body", "quality")
        raise RequestValidationError([{"type": "value_error", "loc": loc, "msg": error}])
