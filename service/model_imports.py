"""Checking a model upload before its import job is queued (`POST /v1/models`).

The gateway never unpickles or loads weights: it tells the two kinds of upload apart
(`core.model_archive.upload_kind`), reads a folder zip through `core.model_archive
.check_folder_zip` (at most `MAX_ZIP_ENTRIES` entries; every model file read to its end, so a
corrupt, truncated, encrypted or oddly compressed zip is a 422 `not_a_model` naming the entry,
and files over the limit a 413 `too_large`), checks its `config.json` as `models.load` would
(required fields, format version, a known family), checks the id, and stores the files in the
job's upload folder. The worker (`workers.model_import`) then loads the weights, converts a
reference checkpoint, and registers the model.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath

from fastapi import UploadFile

from core.families import FAMILIES
from core.model_archive import (
    UPLOADED_DISCRIMINATOR,
    UPLOADED_FOLDER,
    UPLOADED_GENERATOR,
    ArchiveTooLarge,
    NotAModel,
    check_folder_zip,
    upload_kind,
)
from core.model_folder import ModelFolderError, check_card_json
from core.model_registry import ModelRegistry
from core.object_store import ObjectStore
from core.params import ImportParams
from core.storage import SAFE_ID, Storage, upload_key
from service.errors import ApiError
from service.uploads import check_size, spool_limited

_NOT_ID = re.compile(r"[^A-Za-z0-9._-]+")
_REFERENCE_SUFFIX = re.compile(r"_net_[GD]$")


def default_id(name: str | None, filename: str | None) -> str:
    """An id for a model imported without one: from its name, else its file's name
    (`latest_net_G.pth` -> `latest`), else "imported"."""
    base = name or _REFERENCE_SUFFIX.sub("", PurePath(filename or "").stem)
    slug = _NOT_ID.sub("-", base).strip("-._")[:100]
    return slug if SAFE_ID.match(slug) else "imported"


def not_a_model(message: str) -> ApiError:
    """422 `not_a_model` with what was wrong and what is expected."""
    return ApiError(
        422, "not_a_model", f"The upload is not a model ganserve can import: {message}."
    )


def _refused(exc: NotAModel) -> ApiError:
    if isinstance(exc, ArchiveTooLarge):
        return ApiError(413, "too_large", f"The model zip was refused: {exc}.")
    return not_a_model(str(exc))


def check_upload(
    file: UploadFile, discriminator: UploadFile | None, max_bytes: int
) -> tuple[str, int]:
    """The upload's kind ("folder" or "reference") and, for a folder zip, the declared size of
    its model files; 413 / 422 with the reason when it cannot be imported."""
    check_size(file, max_bytes, what="model file")
    if discriminator is not None:
        check_size(discriminator, max_bytes, what="discriminator file")
    try:
        kind = upload_kind(file.file)
    except NotAModel as exc:
        raise _refused(exc) from None
    if kind == "reference":
        if discriminator is not None:
            try:
                if upload_kind(discriminator.file) != "reference":
                    raise NotAModel("the discriminator must be the reference's *_net_D.pth")
            except NotAModel as exc:
                raise _refused(exc) from None
        return kind, 0
    if discriminator is not None:
        raise ApiError(
            422,
            "invalid_field",
            "The field 'discriminator' is for a reference *_net_D.pth; a model zip carries its "
            "discriminator.safetensors inside.",
        )
    try:
        raw, _, declared = check_folder_zip(file.file, max_bytes)
        card = check_card_json(raw, "config.json")
    except NotAModel as exc:
        raise _refused(exc) from None
    except ModelFolderError as exc:
        raise not_a_model(str(exc)) from None
    if card["family"] not in FAMILIES:
        raise not_a_model(
            f"config.json names the family {card['family']!r}; ganserve serves "
            f"{', '.join(FAMILIES)}"
        )
    return kind, declared


def choose_id(
    storage: Storage, wanted: str | None, name: str | None, filename: str | None, owner: str
) -> tuple[str, bool]:
    """The id to import under and whether the caller chose it: 422 for an id that is not a plain
    name, 409 `model_exists` when a chosen id is another owner's (the id of the caller's own
    model imports a new version of it)."""
    if wanted is None:
        return default_id(name, filename), False
    if not SAFE_ID.match(wanted):
        raise ApiError(
            422,
            "invalid_field",
            "The field 'id' must be 1-128 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit.",
        )
    record = ModelRegistry.of(storage).record(wanted)
    if record is not None and record.owner != owner:
        raise ApiError(
            409,
            "model_exists",
            f"The model id {wanted!r} is taken by another owner; choose another id.",
        )
    return wanted, True


def store_import(
    objects: ObjectStore,
    job_id: str,
    spool: Path,
    kind: str,
    file: UploadFile,
    discriminator: UploadFile | None,
    max_bytes: int,
) -> None:
    """Store the upload's files as the job's uploads under the names the worker reads: each is
    spooled (size-limited) into the request's spool folder, then streamed to the store."""
    first = UPLOADED_FOLDER if kind == "folder" else UPLOADED_GENERATOR
    spooled = [(first, spool_limited(file, spool, max_bytes, what="model file"))]
    if discriminator is not None:
        spooled.append(
            (
                UPLOADED_DISCRIMINATOR,
                spool_limited(discriminator, spool, max_bytes, what="discriminator file"),
            )
        )
    for name, path in spooled:
        objects.upload_file(upload_key(job_id, name), path)


def import_params(
    kind: str,
    model_id: str,
    id_given: bool,
    file: UploadFile,
    discriminator: UploadFile | None,
    name: str | None,
    description: str | None,
) -> ImportParams:
    """The import job's params (only the fields given, as the job record shows them)."""
    fields = {
        "source": kind,
        "model_id": model_id,
        "id_given": id_given,
        "filename": PurePath(file.filename or "").name[:200] or None,
        "discriminator": discriminator is not None,
    }
    if name is not None:
        fields["name"] = name
    if description is not None:
        fields["description"] = description
    return ImportParams(**fields)
