"""Usage: what each owner keeps (job records by status, bytes of results, uploads, training runs,
datasets and models), computed by `core.usage`."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from core.usage import OwnerUsage, known_owners, usage_of
from service.api.deps import CallerDep, StorageDep, StoreDep
from service.schemas import error_responses

router = APIRouter(tags=["usage"])


class UsageOut(BaseModel):
    """One line per owner the caller may see: its own, or every owner for an operator."""

    owners: list[OwnerUsage]


@router.get("/usage", responses=error_responses(401))
def get_usage(caller: CallerDep, storage: StorageDep, store: StoreDep) -> UsageOut:
    """Usage per owner (the caller's own line; an operator gets every owner's): `jobs` counts
    job records by status, `bytes` the sizes of files (a job's results, uploads and training run
    folder; datasets; the models it owns)."""
    owners = [caller.owner]
    if caller.operator:
        owners = sorted({caller.owner, *known_owners(storage, store)})
    return UsageOut(owners=usage_of(owners, storage, store))
