"""What each owner keeps: job counts by status and the bytes of their files under the storage root.

`usage_of(owners, storage, store)` computes one `OwnerUsage` per owner (the gateway's
`GET /v1/usage` answers the caller's; an operator's view is the same call with `known_owners`).
Who owns what:

- jobs: the owner's job index (`JobStore.list`); the bytes of `results/<job>/`, `uploads/<job>/`
  and `runs/<job>/` count for the owner of job `<job>`;
- datasets: `owner` in `datasets/<id>/dataset.json`;
- models: `provenance.owner` in `models/<id>/config.json` (a folder copied in by an operator,
  without an owner, counts for nobody).

Hidden entries (folders being written, staging leftovers) count for nobody. Torch-free: the gateway
and the workers' sweeper (`folder_bytes`) use it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pydantic import BaseModel, Field

from core.jobs import JobStatus, JobStore
from core.model_registry import ModelRegistry
from core.object_store import ObjectStore
from core.storage import DATASET_FILE, Storage


def folder_bytes(path: Path) -> int:
    """The sum of the sizes of the files under `path` (links not followed; 0 when missing)."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:  # removed meanwhile
                continue
    return total


class UsageBytes(BaseModel):
    """Bytes an owner keeps, by kind of storage."""

    results: int = 0
    uploads: int = 0
    runs: int = 0
    datasets: int = 0
    models: int = 0


class OwnerUsage(BaseModel):
    """One owner's jobs (their records, by status) and bytes."""

    owner: str
    jobs: dict[str, int] = Field(default_factory=lambda: {s.value: 0 for s in JobStatus})
    bytes: UsageBytes = Field(default_factory=UsageBytes)


def _visible_folders(parent: Path) -> list[Path]:
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if not p.name.startswith(".") and p.is_dir())


def dataset_owner(folder: Path) -> str | None:
    """The owner recorded in a dataset folder's `dataset.json`, None when unreadable."""
    try:
        owner = json.loads((folder / DATASET_FILE).read_text()).get("owner")
    except (OSError, ValueError, AttributeError):
        return None
    return owner if isinstance(owner, str) else None


def model_owner(folder: Path) -> str | None:
    """The owner of a model folder (`core.model_registry`), None when it has none."""
    record = ModelRegistry(ObjectStore.local(folder.parent.parent)).record(folder.name)
    return None if record is None else record.owner


def known_owners(storage: Storage, store: JobStore) -> list[str]:
    """Every owner of a job record, a dataset or a model, sorted."""
    owners = set(store.owners())
    owners |= {dataset_owner(p) for p in _visible_folders(storage.datasets)}
    owners |= {model_owner(p) for p in _visible_folders(storage.models)}
    owners.discard(None)
    return sorted(owners)


def usage_of(owners: list[str], storage: Storage, store: JobStore) -> list[OwnerUsage]:
    """The usage of each of `owners`, in that order (an owner with nothing gets zeros)."""
    found = {owner: OwnerUsage(owner=owner) for owner in owners}
    for owner, usage in found.items():
        for job in store.list(owner, limit=sys.maxsize):
            usage.jobs[job.status.value] += 1
            usage.bytes.results += folder_bytes(storage.result_dir(job.id))
            usage.bytes.uploads += folder_bytes(storage.upload_dir(job.id))
            usage.bytes.runs += folder_bytes(storage.run_dir(job.id))
    for folder in _visible_folders(storage.datasets):
        owner = dataset_owner(folder)
        if owner is not None and owner in found:
            found[owner].bytes.datasets += folder_bytes(folder)
    for folder in _visible_folders(storage.models):
        owner = model_owner(folder)
        if owner is not None and owner in found:
            found[owner].bytes.models += folder_bytes(folder)
    return [found[owner] for owner in owners]
