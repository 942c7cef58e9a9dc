"""Training runs: a job that trains a model family on one of the caller's datasets."""

from __future__ import annotations

from fastapi import APIRouter

from core.families import FAMILIES
from core.fine_tune import InitMismatch, fine_tune_config
from core.jobs import JobKind
from core.model_folder import ModelFolderError
from core.params import TrainingParams
from core.storage import Storage
from core.training_runs import InvalidConfig, check_config
from service.api.deps import CallerDep, JobQueueDep, OwnerDep, SettingsDep, StorageDep
from service.catalog import ModelInfo, find_model, version_card
from service.datasets import DatasetInfo, get_dataset
from service.errors import ApiError
from service.schemas import JobOut, TrainingRunRequest, error_responses
from service.webhooks import webhook_target

router = APIRouter(tags=["training runs"])


@router.post("/training-runs", status_code=202, responses=error_responses(401, 404, 422, 429, 503))
def create_training_run(
    body: TrainingRunRequest,
    owner: OwnerDep,
    caller: CallerDep,
    settings: SettingsDep,
    storage: StorageDep,
    jobs: JobQueueDep,
) -> JobOut:
    """Queue a training run; `config` holds option overrides (`core.training_runs` checks
    them here and again in the worker). With `init_from` the run starts from that model's
    networks and takes its architecture fields (422 `init_mismatch` naming any that differ).
    `devices` is held to GANSERVE_MAX_TRAINING_DEVICES (422 `invalid_field`)."""
    if body.devices > settings.max_training_devices:
        raise ApiError(
            422,
            "invalid_field",
            f"The field 'devices' is invalid: a training run may use at most "
            f"{settings.max_training_devices} devices here (GANSERVE_MAX_TRAINING_DEVICES), "
            f"not {body.devices}.",
        )
    dataset = get_dataset(storage.objects, body.dataset, owner)
    allowed = FAMILIES[str(body.family)].dataset_kinds
    if dataset.kind not in allowed:
        raise ApiError(
            422,
            "dataset_kind_mismatch",
            f"A {body.family} run needs a {' or '.join(allowed)} dataset; the dataset "
            f"{dataset.id!r} is {dataset.kind}.",
        )
    config = body.config
    source = None
    if body.init_from is not None:
        source, config = _fine_tune(body, caller, storage, dataset)
    try:  # the rules the training worker applies, so a bad config never becomes a failed job
        check_config(str(body.family), config, str(dataset.kind))
    except InvalidConfig as exc:
        where = "config" if exc.field == "config" else f"config.{exc.field}"
        raise ApiError(
            422, "invalid_field", f"The field '{where}' is invalid: {exc.message}"
        ) from None
    job = jobs.new(
        JobKind.training,
        None if source is None else source.ref,
        None if source is None else source.digest,
        webhook_target(body.webhook, body.webhook_events, settings),
    )
    params = TrainingParams(
        family=body.family,
        dataset=dataset.id,
        dataset_kind=str(dataset.kind),
        name=body.name,
        config=config,
        background=body.background,
        devices=body.devices,
        **({"init_from": source.ref} if source is not None else {}),
    )
    return jobs.submit(job, params)


def _fine_tune(
    body: TrainingRunRequest, caller: CallerDep, storage: Storage, dataset: DatasetInfo
) -> tuple[ModelInfo, dict]:
    """The model version a run starts from (`body.init_from`, pinned now) and the run's config
    (404 for a model the caller does not see, 422 `init_mismatch` naming what differs from the
    model's architecture)."""
    info = find_model(storage, str(body.init_from), caller)
    try:
        card = version_card(storage, info)
    except ModelFolderError:  # the version was deleted meanwhile
        raise ApiError(404, "model_not_found", f"There is no model {body.init_from!r}.") from None
    classes = len(dataset.classes) if dataset.kind == "labeled" else 0
    try:
        return info, fine_tune_config(str(body.family), card, body.config, classes)
    except InitMismatch as exc:
        raise ApiError(
            422,
            "init_mismatch",
            f"The run cannot start from the model {info.id!r}: {exc.message}.",
        ) from None
