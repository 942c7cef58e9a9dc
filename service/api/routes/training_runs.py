"""Training runs: a job that trains a model family on one of the caller's datasets."""

from __future__ import annotations

from fastapi import APIRouter

from core.families import FAMILIES
from core.jobs import JobKind
from core.params import TrainingParams
from core.training_runs import InvalidConfig, check_config
from service.api.deps import JobQueueDep, OwnerDep, StorageDep
from service.datasets import get_dataset
from service.errors import ApiError
from service.schemas import JobOut, TrainingRunRequest, error_responses

router = APIRouter(tags=["training runs"])


@router.post("/training-runs", status_code=202, responses=error_responses(401, 404, 422, 429, 503))
def create_training_run(
    body: TrainingRunRequest, owner: OwnerDep, storage: StorageDep, jobs: JobQueueDep
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
    job = jobs.new(JobKind.training)
    params = TrainingParams(
        family=body.family,
        dataset=dataset.id,
        dataset_kind=str(dataset.kind),
        name=body.name,
        config=body.config,
        background=body.background,
    )
    return jobs.submit(job, params)
