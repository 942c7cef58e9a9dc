"""What each owner keeps: job counts by status and the bytes of their objects in the store.

`usage_of(owners, storage, store)` computes one `OwnerUsage` per owner (the gateway's
`GET /v1/usage` answers the caller's; an operator's view is the same call with `known_owners`).
Bytes are the sizes `Storage.objects.list` reports, so the answers are the same on the local
backend and on S3. Who owns what:

- jobs: the owner's job index (`JobStore.list`); the bytes of `results/<job>/`, `uploads/<job>/`
  and `runs/<job>/` count for the owner of job `<job>`;
- datasets: `owner` in `datasets/<id>/dataset.json`;
- models: `owner` in `models/<id>/model.json` (`core.model_registry`), or for a folder without one
  (a model folder copied in by an operator) `provenance.owner` in its `config.json` (none: it
  counts for nobody).

Hidden entries (`.<name>` folders being written, staging leftovers) count for nobody; hidden files
inside an entry count with it. Torch-free: the gateway
and the workers' sweeper (`folder_bytes`, for its local part) use it.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from core.jobs import JobStatus, JobStore
from core.model_folder import CONFIG_FILE, WEIGHTS_FILE, ModelFolderError, parse_card
from core.model_registry import MODEL_RECORD
from core.object_store import ObjectStore
from core.storage import DATASET_FILE, SAFE_ID, Storage

JOB_AREAS = ("results", "uploads", "runs")  # a job's objects: `<area>/<job id>/...`
LIST_THREADS = 8  # a job's prefixes listed at once (on S3 each listing is a request)


def folder_bytes(path: Path) -> int:
    """The sum of the sizes of the files under the local folder `path` (links not followed; 0
    when missing)."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:  # removed meanwhile
                continue
    return total


def prefix_bytes(objects: ObjectStore, prefix: str) -> int:
    """The sum of the sizes of the objects under `prefix/`, hidden ones included (0 when there
    are none)."""
    return sum(info.size for info in objects.list(prefix, hidden=True))


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


def _dataset_owner_in(raw: bytes | None) -> str | None:
    try:
        owner = json.loads(raw).get("owner") if raw is not None else None
    except (ValueError, AttributeError):
        return None
    return owner if isinstance(owner, str) else None


def dataset_owner(objects: ObjectStore, dataset_id: str) -> str | None:
    """The owner a stored dataset's `dataset.json` records, None when missing or unreadable."""
    return _dataset_owner_in(objects.read(f"datasets/{dataset_id}/{DATASET_FILE}"))


def _read_object(objects: ObjectStore, key: str) -> dict[str, Any] | None:
    """A stored JSON record (NaN and Infinity refused), None when missing or unreadable."""
    raw = objects.read(key)
    try:
        value = parse_card(raw) if raw is not None else None
    except ModelFolderError:
        return None
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def model_owner(objects: ObjectStore, model_id: str, keys: set[str]) -> str | None:
    """The owner of the stored model `model_id` whose keys under `models/<id>/` are `keys`, as
    `core.model_registry` reads it; None when it has none."""
    base = f"models/{model_id}"
    if f"{base}/{MODEL_RECORD}" in keys:
        record = _read_object(objects, f"{base}/{MODEL_RECORD}")
        if record is not None:
            return _text(record.get("owner"))
    if {f"{base}/{CONFIG_FILE}", f"{base}/{WEIGHTS_FILE}"} <= keys:  # a flat model folder
        card = _read_object(objects, f"{base}/{CONFIG_FILE}") or {}
        provenance = card.get("provenance")
        return _text(provenance.get("owner")) if isinstance(provenance, dict) else None
    return None


class _Stored:
    """The visible entries of one area (`datasets`, `models`): their keys and bytes by id (hidden
    files inside an entry included)."""

    def __init__(self, objects: ObjectStore, area: str) -> None:
        self.keys: dict[str, set[str]] = {}
        self.bytes: dict[str, int] = {}
        for info in objects.list(area, hidden=True):
            entry = info.key.split("/", 2)[1]
            if SAFE_ID.match(entry):
                self.keys.setdefault(entry, set()).add(info.key)
                self.bytes[entry] = self.bytes.get(entry, 0) + info.size


def _owners(storage: Storage) -> tuple[dict[str, str], dict[str, str], _Stored, _Stored]:
    """Owners of the stored datasets and models by id, and the two areas' listings."""
    objects = storage.objects
    datasets, models = _Stored(objects, "datasets"), _Stored(objects, "models")
    dataset_owners = {entry: dataset_owner(objects, entry) for entry in datasets.keys}
    model_owners = {entry: model_owner(objects, entry, keys) for entry, keys in models.keys.items()}
    return (
        {entry: owner for entry, owner in dataset_owners.items() if owner is not None},
        {entry: owner for entry, owner in model_owners.items() if owner is not None},
        datasets,
        models,
    )


def known_owners(storage: Storage, store: JobStore) -> list[str]:
    """Every owner of a job record, a dataset or a model, sorted."""
    dataset_owners, model_owners, _, _ = _owners(storage)
    return sorted({*store.owners(), *dataset_owners.values(), *model_owners.values()})


def usage_of(owners: list[str], storage: Storage, store: JobStore) -> list[OwnerUsage]:
    """The usage of each of `owners`, in that order (an owner with nothing gets zeros)."""
    objects = storage.objects
    found = {owner: OwnerUsage(owner=owner) for owner in owners}
    counted: list[tuple[OwnerUsage, str]] = []  # (whose, prefix) of every job's objects
    for owner, usage in found.items():
        for job in store.list(owner, limit=sys.maxsize):
            usage.jobs[job.status.value] += 1
            counted += [(usage, f"{area}/{job.id}") for area in JOB_AREAS]
    with ThreadPoolExecutor(LIST_THREADS) as pool:  # list requests overlap (S3: one each)
        sizes = pool.map(lambda item: prefix_bytes(objects, item[1]), counted)
        for (usage, prefix), size in zip(counted, sizes, strict=True):
            area = prefix.split("/", 1)[0]
            setattr(usage.bytes, area, getattr(usage.bytes, area) + size)
    dataset_owners, model_owners, datasets, models = _owners(storage)
    for entry, owner in dataset_owners.items():
        if owner in found:
            found[owner].bytes.datasets += datasets.bytes[entry]
    for entry, owner in model_owners.items():
        if owner in found:
            found[owner].bytes.models += models.bytes[entry]
    return [found[owner] for owner in owners]
