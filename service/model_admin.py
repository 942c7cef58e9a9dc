"""Changing and removing models (`PATCH` / `DELETE /v1/models/{id}[@<version>]`), torch-free.

A model's name and description are its record's listing (`core.model_registry`), written
atomically. `DELETE /v1/models/{id}@<n>` removes one version; `DELETE /v1/models/{id}` removes
every version and keeps the record as a tombstone, so the id stays its owner's. A version's marker
(`version.json`) is removed first (one atomic step: from then on the catalog no longer lists it
and new jobs get 404), then its objects, with the model's cached exports. A worker that already
loaded the network keeps it in memory, so jobs running on it finish; a queued job pinned to a
removed version fails `model_not_found`. A model whose training run is still queued or running is
not deleted as a whole (409): the run registers a new version at each checkpoint.
"""

from __future__ import annotations

from core.exports import remove_exports
from core.jobs import JobNotFound, JobStore
from core.model_registry import ModelMissing, ModelRecord, ModelRegistry, parse_ref
from core.storage import Storage
from service.errors import ApiError
from service.security import Caller


def require_manager(record: ModelRecord, caller: Caller, action: str) -> None:
    """403 `not_owner` unless the caller may change or delete the model."""
    if not caller.manages(record.owner):
        raise ApiError(
            403,
            "not_owner",
            f"Only the owner of the model {record.id!r} or an operator may {action} it; it is "
            "shared with your key for use only.",
        )


def update_listing(storage: Storage, record: ModelRecord, changes: dict[str, str]) -> None:
    """Merge `changes` (name, description) into the model's listing."""
    try:
        ModelRegistry.of(storage).update_listing(record.id, changes)
    except ModelMissing:
        raise ApiError(404, "model_not_found", f"There is no model {record.id!r}.") from None


def _training_active(store: JobStore, record: ModelRecord) -> str | None:
    if record.training_job is None:
        return None
    try:
        job = store.get(record.training_job)
    except JobNotFound:
        return None
    return None if job.status.ended else job.id


def delete_model(storage: Storage, store: JobStore, record: ModelRecord, requested: str) -> None:
    """Remove the version `requested` names (`<id>@<n>`) or, for a bare id, the whole model
    and its exports (409 `model_in_training` while its run goes on)."""
    ref = parse_ref(requested)
    registry = ModelRegistry.of(storage)
    try:
        if ref is not None and ref.version is not None:
            registry.delete_version(record.id, ref.version)
            remove_exports(storage.objects, record.id, ref.version)
            return
        running = _training_active(store, record)
        if running is not None:
            raise ApiError(
                409,
                "model_in_training",
                f"The model {record.id!r} is still being trained by the run {running}, which "
                "registers a new version at each checkpoint; cancel the run first "
                f"(DELETE /v1/jobs/{running}), or delete single versions ({record.id}@<n>).",
            )
        registry.delete_model(record.id)
    except ModelMissing:
        raise ApiError(404, "model_not_found", f"There is no model {requested!r}.") from None
    remove_exports(storage.objects, record.id)
