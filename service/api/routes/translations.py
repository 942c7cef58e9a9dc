"""Image-to-image translation jobs (pix2pix)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile

from core.jobs import QUEUE_INFER, Job, JobKind
from core.params import MAX_SEED, TranslationParams, random_seed
from core.storage import INPUT_FILE
from service.api.deps import CeleryDep, OwnerDep, RedisDep, SettingsDep, StorageDep, StoreDep
from service.catalog import require_model
from service.jobs import enqueue, ensure_capacity
from service.schemas import JobOut, error_responses
from service.uploads import read_image, store_png

router = APIRouter(tags=["translations"])


@router.post(
    "/translations",
    status_code=202,
    responses=error_responses(400, 401, 404, 413, 415, 422, 429, 503),
)
def create_translation(
    image: Annotated[UploadFile, File(description="PNG, JPEG, WebP or BMP image to translate.")],
    model: Annotated[str, Form(description="Id of a model whose task is 'translate'.")],
    settings: SettingsDep,
    owner: OwnerDep,
    store: StoreDep,
    client: RedisDep,
    celery_app: CeleryDep,
    storage: StorageDep,
    response: Response,
    seed: Annotated[
        int | None,
        Form(ge=0, le=MAX_SEED, description="Seed of the dropout noise (random if omitted)."),
    ] = None,
) -> JobOut:
    """Queue the translation of an uploaded image; the result keeps the input's size."""
    require_model(settings.models_dir, model, "translate")
    picture = read_image(image, settings)
    ensure_capacity(client, QUEUE_INFER, settings.max_queued_jobs)
    job = Job(owner=owner, kind=JobKind.translation, model=model)
    path = storage.upload_dir(job.id) / INPUT_FILE
    width, height = store_png(picture, path)
    job.params = TranslationParams(
        seed=random_seed() if seed is None else seed, width=width, height=height
    ).model_dump()
    return enqueue(store, celery_app, job, response, upload_dir=path.parent)
