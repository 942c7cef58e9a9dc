"""What a training run produces while it runs: its latest sample grid and its loss history
(and a projection's current reconstruction).

The worker writes them into the run folder (`training.run_files`: `samples/step_<n>.png`,
`stats.jsonl`), which reaches the store within a second (`workers.run_sync`); these routes read
them from the store for the web page's live previews and loss curves. Same auth and ownership
rules as `GET /v1/jobs/{id}`.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from obstore.exceptions import BaseError as StoreError
from pydantic import BaseModel

from core.jobs import Job, JobKind
from core.storage import PROJECTION_PREVIEW_FILE, RUN_STATS_FILE, Storage, run_key, upload_key
from service.api.deps import OwnerDep, StorageDep, StoreDep
from service.api.routes.jobs import owned_job
from service.datasets import storage_unavailable
from service.errors import ApiError
from service.schemas import error_responses
from service.stored_files import stored_file

router = APIRouter(prefix="/jobs", tags=["jobs"])
log = logging.getLogger(__name__)


class TrainingStats(BaseModel):
    """Logged training statistics: one object per logged step (`step` and the losses)."""

    stats: list[dict[str, Any]]


def _training_run(job: Job) -> None:
    if job.kind is not JobKind.training:
        raise ApiError(
            404, "not_a_training_run", f"Job {job.id} is a {job.kind}, not a training run."
        )


def _read(storage: Storage, key: str) -> bytes | None:
    """A run's file from the store (a grid, the stats: small), None when there is none."""
    try:
        return storage.objects.read(key)
    except StoreError:
        log.exception("reading %s failed", key)
        raise storage_unavailable() from None


@router.get(
    "/{job_id}/preview",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **error_responses(401, 404, 422, 503)},
)
def get_run_preview(
    job_id: str,
    request: Request,
    store: StoreDep,
    storage: StorageDep,
    owner: OwnerDep,
    step: Annotated[
        int | None, Query(ge=0, description="The grid of this step (default: the newest).")
    ] = None,
) -> Response:
    """A training run's sample grid as PNG: the newest, or the one written at `step`. The
    job's `progress_detail.preview_step` says which is the newest. For a projection: its
    current reconstruction (`step` is ignored; `progress_detail.step` says which)."""
    job = owned_job(store, job_id, owner)
    if job.kind is JobKind.projection:
        missing = ApiError(404, "no_preview", "The projection has not reported a step yet.")
        key = upload_key(job.id, PROJECTION_PREVIEW_FILE)
        return stored_file(request, storage.objects, key, "image/png", missing)
    _training_run(job)
    try:
        steps = storage.sample_grids(job.id)
    except StoreError:
        log.exception("listing the sample grids of run %s failed", job.id)
        raise storage_unavailable() from None
    if not steps:
        raise ApiError(404, "no_preview", "The run has not written a sample grid yet.")
    if step is None:
        step = max(steps)
    if step not in steps:
        raise ApiError(
            404,
            "no_preview",
            f"The run wrote no sample grid at step {step}; the newest is {max(steps)}.",
        )
    picture = _read(storage, steps[step])
    if picture is None:  # the run's folder was removed meanwhile
        raise ApiError(404, "no_preview", "The run has not written a sample grid yet.")
    return Response(picture, media_type="image/png", headers={"X-Preview-Step": str(step)})


@router.get("/{job_id}/stats", responses=error_responses(401, 404, 422, 503))
def get_run_stats(
    job_id: str,
    store: StoreDep,
    storage: StorageDep,
    owner: OwnerDep,
    after: Annotated[
        int, Query(ge=-1, description="Only the steps after this one (for incremental reads).")
    ] = -1,
) -> TrainingStats:
    """A training run's logged losses and counters, oldest first: the data of its loss curves."""
    job = owned_job(store, job_id, owner)
    _training_run(job)
    record = _read(storage, run_key(job.id, RUN_STATS_FILE))
    rows: list[dict[str, Any]] = []
    for line in (record or b"").decode(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # a line being appended right now
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] > after:
            rows.append(row)
    return TrainingStats(stats=rows)
