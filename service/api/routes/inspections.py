"""Realness maps: ask a model's discriminator where an image looks fake.

The U-Net GAN discriminator (Schönfeld et al., 2020, "A U-Net Based Discriminator for Generative
Adversarial Networks") gives a per-pixel real/fake decision from its decoder and a global one from
its encoder; pix2pix's PatchGAN (Isola et al., 2017) scores overlapping patches of an (A, B) pair.
This route queues an inspection job on the infer queue; a worker draws the map
(`workers.inspection`). The image is an upload, or a result image of an earlier job of the caller
(`source_job`, `source_image`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from PIL import Image

from core.families import capable_titles
from core.jobs import Job, JobKind, JobStatus
from core.params import MAX_CLASS_LABEL, MAX_SAMPLES, InspectionParams
from core.settings import Settings
from core.storage import (
    INPUT_FILE,
    Storage,
    result_image_format,
    result_image_name,
    result_key,
    upload_key,
)
from service.api.deps import (
    CallerDep,
    JobQueueDep,
    OwnerDep,
    SettingsDep,
    StorageDep,
)
from service.api.routes.jobs import owned_job
from service.catalog import ModelInfo, capable, check_class_label, require_inspectable
from service.errors import ApiError
from service.schemas import JobOut, error_responses
from service.uploads import UploadedImage, open_image, read_image, spooled, store_png
from service.webhooks import WebhookFormDep

router = APIRouter(tags=["inspections"])

IMAGE_FILE = "image.png"
_SOURCE_KINDS = (JobKind.translation, JobKind.sample)


def _source_image(source: Job, index: int) -> str:
    """The key of result image `index` of an earlier job (409/422 when it has none)."""
    if source.kind not in _SOURCE_KINDS:
        raise ApiError(
            422,
            "invalid_field",
            f"The job {source.id} is a {source.kind}; only translations and samples have images "
            "to inspect.",
        )
    if source.status is not JobStatus.succeeded:
        raise ApiError(
            409, "source_not_ready", f"The job {source.id} is {source.status}, not succeeded."
        )
    return result_key(source.id, result_image_name(index, result_image_format(source.result)))


def _read_stored(storage: Storage, key: str, settings: Settings, missing: str) -> Image.Image:
    """A stored image of an earlier job, decoded (404 `image_not_found`, saying `missing`, when
    it is not in the store)."""
    data = storage.objects.read(key)
    if data is None:
        raise ApiError(404, "image_not_found", missing)
    return open_image(data, settings.max_image_pixels)


def _picture(
    storage: Storage,
    settings: Settings,
    source: Job | None,
    index: int,
    image: UploadFile | None,
    spool: Path,
) -> Image.Image | UploadedImage:
    """The image to inspect: result image `index` of the `source` job, or the uploaded one."""
    if source is not None:
        missing = f"The job {source.id} has no result image {index}."
        return _read_stored(storage, _source_image(source, index), settings, missing)
    return read_image(image, settings, spool)


def _condition(
    storage: Storage,
    settings: Settings,
    info: ModelInfo,
    source: Job | None,
    input_image: UploadFile | None,
    spool: Path,
) -> Image.Image | UploadedImage | None:
    """The input a paired discriminator (`core.families`: pix2pix's) judges the image with, the
    image that it translates: the uploaded `input`, or the input of the `source` translation
    (422 `input_required` without either); None for other families (422 `invalid_field` when an
    `input` was sent to one)."""
    if not capable(info, "paired_discriminator"):
        if input_image is not None:
            raise ApiError(
                422,
                "invalid_field",
                f"The field 'input' is for {capable_titles('paired_discriminator')} models, not "
                f"{info.family}.",
            )
        return None
    if input_image is not None:
        return read_image(input_image, settings, spool, what="input image")
    if source is not None and source.kind is JobKind.translation:
        gone = f"The files of job {source.id} are no longer stored."
        return _read_stored(storage, upload_key(source.id), settings, gone)
    raise ApiError(
        422,
        "input_required",
        f"A {info.family} discriminator judges a pair: send `input`, the image that `image` "
        "translates (or inspect a translation job's result with `source_job`).",
    )


def _store_uploads(
    storage: Storage,
    job: Job,
    picture: Image.Image | UploadedImage,
    condition: Image.Image | UploadedImage | None,
    spool: Path,
) -> dict[str, Any]:
    """Store the image (and the paired discriminator's input, which must have its size) as the
    job's uploads; their params. When either cannot be stored or the sizes differ (422
    `size_mismatch`), nothing stays."""
    image_key = upload_key(job.id, IMAGE_FILE)
    try:
        width, height = store_png(picture, storage.objects, image_key, spool)
        params: dict[str, Any] = {"image": image_key, "width": width, "height": height}
        if condition is not None:
            input_key = upload_key(job.id, INPUT_FILE)
            if store_png(condition, storage.objects, input_key, spool) != (width, height):
                raise ApiError(
                    422,
                    "size_mismatch",
                    f"The input image must have the size of the image ({width}x{height}).",
                )
            params["input"] = input_key
    except BaseException:
        storage.objects.delete_prefix(upload_key(job.id, ""))
        raise
    return params


@router.post(
    "/inspections",
    status_code=202,
    responses=error_responses(400, 401, 404, 409, 413, 415, 422, 429, 503),
)
def create_inspection(
    model: Annotated[
        str,
        Form(
            description=f"Id of a {capable_titles('inspectable')} model: `<id>` (its newest "
            "version) or `<id>@<version>`."
        ),
    ],
    settings: SettingsDep,
    owner: OwnerDep,
    storage: StorageDep,
    jobs: JobQueueDep,
    webhook: WebhookFormDep,
    caller: CallerDep,
    image: Annotated[
        UploadFile | None, File(description="The image to inspect (or give `source_job`).")
    ] = None,
    input_image: Annotated[
        UploadFile | None,
        File(
            alias="input",
            description=f"{capable_titles('paired_discriminator')} only: the A image that "
            "`image` translates (same size).",
        ),
    ] = None,
    source_job: Annotated[
        str | None,
        Form(description="Inspect a result image of this earlier translation or sample job."),
    ] = None,
    source_image: Annotated[
        int,
        Form(ge=0, lt=MAX_SAMPLES, description="Which result image of `source_job`, from 0."),
    ] = 0,
    class_label: Annotated[
        int | None,
        Form(
            ge=0,
            le=MAX_CLASS_LABEL,
            description=f"Class-conditional {capable_titles('conditional')}: the class to judge "
            "the image as (default: a source sample's class, else the class under which D "
            "finds the image most real).",
        ),
    ] = None,
) -> JobOut:
    """Queue a realness map of an image by the model's discriminator: result image 0 is the map
    (greyscale, white = real), image 1 the map over the image with a legend; `result` also holds
    `global_score`, `map_mean`, `map_min` and `least_real_box`."""
    info = require_inspectable(storage, model, caller)
    check_class_label(info, class_label)
    if (image is None) == (source_job is None):
        raise ApiError(
            422, "invalid_field", "Send either an `image` file or a `source_job` id (not both)."
        )
    source = owned_job(jobs.store, source_job, owner) if source_job is not None else None
    with spooled() as spool:
        picture = _picture(storage, settings, source, source_image, image, spool)
        condition = _condition(storage, settings, info, source, input_image, spool)
        job = jobs.new(JobKind.inspection, info.ref, info.digest, webhook)
        params = _store_uploads(storage, job, picture, condition, spool)
    if class_label is None and source is not None and source.kind is JobKind.sample:
        # judge a sample as the class it was drawn as, when the judging model has that class
        drawn_as = source.params.get("class_label")
        if isinstance(drawn_as, int) and 0 <= drawn_as < info.class_count:
            class_label = drawn_as
    if class_label is not None:
        params["class_label"] = class_label
    if source is not None:
        params["source_job"] = source.id
        params["source_image"] = source_image
    return jobs.submit(job, InspectionParams(**params), uploaded=True)
