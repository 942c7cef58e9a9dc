"""Training runs: a job that trains a model family on one of the caller's datasets."""

from __future__ import annotations

from fastapi import APIRouter, Response

from core.families import FAMILIES
from core.jobs import QUEUE_TRAIN, Job, JobKind
from core.training_runs import InvalidConfig, check_config
from service.api.deps import CeleryDep, OwnerDep, RedisDep, SettingsDep, StorageDep, StoreDep
from service.datasets import get_dataset
from service.errors import ApiError
from service.jobs import enqueue, ensure_capacity
from service.schemas import JobOut, TrainingRunRequest, error_responses

router = APIRouter(tags=["training runs"])


@router.post("/training-runs", status_code=202, responses=error_responses(401, 404, 422, 429, 503))
def create_training_run(
    body: TrainingRunRequest,
    settings: SettingsDep,
    owner: OwnerDep,
    store: StoreDep,
    client: RedisDep,
    celery_app: CeleryDep,
    storage: StorageDep,
    response: Response,
) -> JobOut:
    """Queue a training run; `config` holds option overrides (`core.training_runs` checks
    them here and again in the worker)."""
    dataset = get_dataset(storage.datasets, body.dataset, owner)
    allowed = FAMILIES[str(body.family)].dataset_kinds
    if dataset.kind not in allowed:
        raise ApiError(
            422,
            "dataset_kind_mismatch",
            f"A {body.family} run needs a {' or '.join(allowed)} dataset; the dataset "
            f"{dataset.id!r} is {dataset.kind}.",
        )
    try:  # the rules the training worker applies, so a bad config never becomes a failed job
        check_config(str(body.family), body.config, str(dataset.kind))
    except InvalidConfig as exc:
        where = "config" if exc.field == "config" else f"config.{exc.field}"
        raise ApiError(
            422, "invalid_field", f"The field '{where}' is invalid: {exc.message}"
        ) from None
    ensure_capacity(client, QUEUE_TRAIN, settings.max_queued_jobs)
    job = Job(
        owner=owner,
        kind=JobKind.training,
        params={
            "family": str(body.family),
            "dataset": dataset.id,
            "dataset_kind": str(dataset.kind),
            "name": body.name,
            "config": body.config,
            "background": body.background,
        },
    )
    return enqueue(store, celery_app, job, response)
