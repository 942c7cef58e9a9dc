"""Datasets: zip archives of images that training runs read."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile

from service import datasets as records
from service.api.deps import OwnerDep, SettingsDep, StorageDep, StoreDep
from service.datasets import DatasetInfo, DatasetKind
from service.schemas import DatasetList, DatasetOut, error_responses

router = APIRouter(prefix="/datasets", tags=["datasets"])


def dataset_out(info: DatasetInfo) -> DatasetOut:
    """The public JSON of a dataset (no owner)."""
    public = info.model_dump(exclude={"owner"})
    return DatasetOut.model_validate({**public, "class_count": len(info.classes)})


@router.post("", status_code=201, responses=error_responses(400, 401, 413, 422, 503))
def create_dataset(
    archive: Annotated[UploadFile, File(description="A zip of images.")],
    kind: Annotated[
        DatasetKind,
        Form(
            description="paired (pix2pix), images (a folder of images) or labeled (a folder per "
            "class)."
        ),
    ],
    settings: SettingsDep,
    storage: StorageDep,
    owner: OwnerDep,
    name: Annotated[
        str | None,
        Form(min_length=1, max_length=100, description="A name (default: the file's name)."),
    ] = None,
) -> DatasetOut:
    """Store a dataset; answers its id and image count (201)."""
    if name is None:
        name = PurePath(archive.filename or "dataset").stem[:100] or "dataset"
    info = records.create_dataset(
        archive,
        name=name,
        kind=kind,
        owner=owner,
        storage=storage,
        max_archive_bytes=settings.max_archive_bytes,
        max_entries=settings.max_archive_entries,
        max_extracted_bytes=settings.max_extracted_bytes,
    )
    return dataset_out(info)


@router.get("", responses=error_responses(401))
def list_datasets(storage: StorageDep, owner: OwnerDep) -> DatasetList:
    """The caller's datasets, newest first."""
    return DatasetList(
        datasets=[dataset_out(d) for d in records.list_datasets(storage.objects, owner)]
    )


@router.get("/{dataset_id}", responses=error_responses(401, 404))
def get_dataset(dataset_id: str, storage: StorageDep, owner: OwnerDep) -> DatasetOut:
    """One of the caller's datasets; 404 `dataset_not_found` for unknown ids and others'."""
    return dataset_out(records.get_dataset(storage.objects, dataset_id, owner))


@router.delete(
    "/{dataset_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 404, 409),
)
def delete_dataset(
    dataset_id: str, storage: StorageDep, store: StoreDep, owner: OwnerDep
) -> Response:
    """Delete one of the caller's datasets (204); 404 `dataset_not_found` for unknown ids and
    others', 409 `dataset_in_use` while a queued or running training run uses it."""
    records.delete_dataset(storage.objects, dataset_id, owner, store)
    return Response(status_code=204)
