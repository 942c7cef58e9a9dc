"""Registering a model version from a worker: a training run's checkpoint, an import.

The version is added under the job owner's claim on the model id (`core.model_registry`, which
checks the owner again at that moment), then the model's versions beyond
`GANSERVE_MODEL_VERSIONS_KEPT` are removed, except those a queued or running job pinned.
Torch-free.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from core.model_registry import ModelRegistry, ModelTaken, VersionRecord
from workers.errors import JobFailure
from workers.jobs import JobContext

log = logging.getLogger(__name__)


def register_version(
    ctx: JobContext, model_id: str, staging: Path, source: dict[str, Any]
) -> VersionRecord:
    """Add the local model folder `staging` as the next version of `model_id` (owned by the
    job's owner; else `model_exists`), uploaded to the store and then removed, then apply the
    retention of versions."""
    registry = ModelRegistry.of(ctx.storage)
    try:
        version = registry.add_version(
            model_id, ctx.job.owner, staging, {**source, "job": ctx.job_id}
        )
    except ModelTaken as exc:
        raise JobFailure("model_exists", str(exc)) from None
    try:  # best effort: the version is registered whatever happens to the old ones
        removed = registry.prune(
            model_id, ctx.settings.model_versions_kept, ctx.store.pinned_models
        )
    except Exception:
        log.exception("model %s: the retention of old versions failed; kept them", model_id)
    else:
        if removed:
            log.info("model %s: removed old versions %s", model_id, removed)
    return version
