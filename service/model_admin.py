"""Changing and removing models (`PATCH` / `DELETE /v1/models/{id}`), torch-free.

A model's name and description live in its card under `provenance.listing`, written atomically
(`core.model_folder.add_provenance`); a training run that registers the model again keeps them.
Deleting renames the folder to a hidden name first (one atomic step: from then on the catalog
no longer lists it and new jobs get 404) and then removes it with its cached exports. A worker
that already loaded the network keeps it in memory, so jobs running on it finish; a queued job
that loads it later fails `model_not_found`. A model whose training run is still queued or
running is not deleted (409): the run would register it again at its next checkpoint.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from core.exports import EXPORTS_DIR
from core.jobs import JobNotFound, JobStore
from core.model_folder import add_provenance, read_card_json
from service.catalog import ModelInfo
from service.errors import ApiError
from service.security import Caller

LISTING_KEY = "listing"


def require_manager(info: ModelInfo, caller: Caller, action: str) -> None:
    """403 `not_owner` unless the caller may change or delete the model."""
    if not caller.manages(info.owner):
        raise ApiError(
            403,
            "not_owner",
            f"Only the owner of the model {info.id!r} or an operator may {action} it; it is "
            "shared with your key for use only.",
        )


def update_listing(models_dir: Path, info: ModelInfo, changes: dict[str, str]) -> None:
    """Merge `changes` (name, description) into the model's listing."""
    folder = models_dir / info.id
    listing = read_card_json(folder).get("provenance", {}).get(LISTING_KEY) or {}
    add_provenance(folder, {LISTING_KEY: {**listing, **changes}})


def _training_active(store: JobStore, info: ModelInfo) -> str | None:
    if info.training_job is None:
        return None
    try:
        job = store.get(info.training_job)
    except JobNotFound:
        return None
    return None if job.status.ended else job.id


def delete_model(models_dir: Path, store: JobStore, info: ModelInfo) -> None:
    """Remove a model folder and its exports (409 `model_in_training` while its run goes on)."""
    running = _training_active(store, info)
    if running is not None:
        raise ApiError(
            409,
            "model_in_training",
            f"The model {info.id!r} is still being trained by the run {running}, which "
            "registers it again at each checkpoint; cancel the run first "
            f"(DELETE /v1/jobs/{running}).",
        )
    folder = models_dir / info.id
    gone = folder.with_name(f".{info.id}.deleted-{time.time_ns()}")
    try:
        folder.rename(gone)
    except FileNotFoundError:
        raise ApiError(404, "model_not_found", f"There is no model {info.id!r}.") from None
    shutil.rmtree(gone, ignore_errors=True)
    shutil.rmtree(models_dir.parent / EXPORTS_DIR / info.id, ignore_errors=True)
