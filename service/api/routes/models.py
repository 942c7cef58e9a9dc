"""Models: list, import or upload, rename, delete, export, and their example inputs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile

from core.jobs import JobKind
from core.model_registry import parse_ref
from service import catalog, model_admin
from service.api.deps import (
    CallerDep,
    JobQueueDep,
    SettingsDep,
    StorageDep,
    StoreDep,
)
from service.catalog import ModelInfo, find_model, record_for, resolve_model
from service.errors import ApiError
from service.examples import example_png, example_sources
from service.model_admin import require_manager, update_listing
from service.model_imports import check_upload, choose_id, import_params, store_import
from service.schemas import ExampleList, JobOut, ModelList, ModelPatch, error_responses
from service.uploads import spooled
from service.webhooks import WebhookFormDep

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", responses=error_responses(401))
def list_models(storage: StorageDep, caller: CallerDep) -> ModelList:
    """The models the caller may use (the shared ones and its own): id, name, family, task,
    image size, channels, classes, metrics, the run behind it."""
    return ModelList(models=catalog.list_models(storage, caller))


@router.post(
    "",
    status_code=202,
    responses=error_responses(400, 401, 409, 413, 422, 429, 503),
)
def import_model(
    file: Annotated[
        UploadFile,
        File(
            description="A zip of a ganserve model folder (config.json + model.safetensors, "
            "optionally discriminator.safetensors), or a pix2pix reference checkpoint "
            "(*_net_G.pth of a unet_256 or unet_128 generator)."
        ),
    ],
    settings: SettingsDep,
    storage: StorageDep,
    jobs: JobQueueDep,
    webhook: WebhookFormDep,
    discriminator: Annotated[
        UploadFile | None,
        File(description="With a reference *_net_G.pth: its *_net_D.pth (PatchGAN), optional."),
    ] = None,
    id: Annotated[
        str | None,
        Form(
            description="The model's id (default: from the name or the file's name). The id of "
            "one of your models imports a new version of it; another key's id is refused (409)."
        ),
    ] = None,
    name: Annotated[str | None, Form(min_length=1, max_length=100)] = None,
    description: Annotated[str | None, Form(max_length=2000)] = None,
) -> JobOut:
    """Queue the import of a model (202): an infer worker loads and checks the weights, converts
    a reference checkpoint, and registers the model; the job's `result.model` is its id."""
    kind, _ = check_upload(file, discriminator, settings.max_model_bytes)
    model_id, given = choose_id(storage, id, name, file.filename, jobs.owner)
    job = jobs.new(JobKind.model_import, model_id, webhook=webhook)
    with spooled() as spool:
        store_import(
            storage.objects, job.id, spool, kind, file, discriminator, settings.max_model_bytes
        )
    params = import_params(kind, model_id, given, file, discriminator, name, description)
    return jobs.submit(job, params, uploaded=True)


@router.get("/{model_id}", responses=error_responses(401, 404))
def get_model(model_id: str, storage: StorageDep, caller: CallerDep) -> ModelInfo:
    """One model at its newest version (`<id>`) or at the version asked for (`<id>@<n>`), with
    the list of its versions; 404 `model_not_found` when there is none the caller may see."""
    ref = parse_ref(model_id)
    info = None if ref is None else resolve_model(storage, ref, caller, all_versions=True)
    if info is None:
        raise ApiError(404, "model_not_found", f"There is no model {model_id!r}.")
    return info


@router.patch("/{model_id}", responses=error_responses(401, 403, 404, 422))
def update_model(
    model_id: str, body: ModelPatch, storage: StorageDep, caller: CallerDep
) -> ModelInfo:
    """Set a model's name or description (its owner, or an operator); they belong to the model,
    not to one version."""
    record = record_for(storage, model_id, caller)
    require_manager(record, caller, "change")
    update_listing(storage, record, body.model_dump(exclude_unset=True))
    return find_model(storage, record.id, caller)


@router.delete(
    "/{model_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 409),
)
def delete_model(
    model_id: str, storage: StorageDep, store: StoreDep, caller: CallerDep
) -> Response:
    """Delete one version (`<id>@<n>`) or the whole model (`<id>`; its owner, or an operator):
    jobs already running on it finish, queued jobs pinned to a deleted version fail
    `model_not_found`, new jobs get 404; 409 `model_in_training` for a whole model while the run
    that registers it goes on. A deleted model's id stays its owner's. A model whose card cannot
    be read can still be deleted."""
    record = record_for(storage, model_id, caller)
    require_manager(record, caller, "delete")
    model_admin.delete_model(storage, store, record, model_id)
    return Response(status_code=204)


def _sources(model_id: str, storage: StorageDep, caller: CallerDep) -> tuple[ModelInfo, list]:
    info = find_model(storage, model_id, caller)
    if info.dataset is None:
        return info, []
    return info, example_sources(storage.objects, info.dataset, info.direction)


@router.get("/{model_id}/examples", responses=error_responses(401, 404))
def list_model_examples(model_id: str, storage: StorageDep, caller: CallerDep) -> ExampleList:
    """Example inputs of a translation model: its dataset's held-out inputs (may be empty)."""
    info, sources = _sources(model_id, storage, caller)
    return ExampleList(examples=[f"/v1/models/{info.id}/examples/{k}" for k in range(len(sources))])


@router.get(
    "/{model_id}/examples/{index}",
    responses={**error_responses(401, 404), 200: {"content": {"image/png": {}}}},
    response_class=Response,
)
def get_model_example(
    model_id: str, index: int, storage: StorageDep, caller: CallerDep
) -> Response:
    """Example input `index` as PNG; 404 `not_found` past the last one."""
    _, sources = _sources(model_id, storage, caller)
    if not 0 <= index < len(sources):
        raise ApiError(404, "not_found", f"Model {model_id!r} has no example {index}.")
    try:
        picture = example_png(storage.objects, *sources[index])
    except (FileNotFoundError, OSError):  # removed since it was listed, or unreadable
        raise ApiError(404, "not_found", f"Model {model_id!r} has no example {index}.") from None
    return Response(picture, media_type="image/png")
