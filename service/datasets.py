"""Dataset archives: a zip saved with a size limit, extracted safely, checked for its kind.

Safe extraction (`extract_zip`) reads the zip through `core.zip_reading`, the reader of model
uploads too. It refuses, before writing anything: an archive that is not a zip (or whose
directory is truncated or corrupt), more than `max_entries` entries, entries with absolute paths
(`/x`, `C:x`) or `..` parts, links and other special files, encrypted entries, entries compressed
with a method Python's zipfile does not read (stored, deflate, bzip2 and LZMA are read), and a
declared uncompressed total over `max_bytes`. While writing, it counts the bytes actually
produced, so an entry whose header lies about its size (a zip bomb) is stopped at its declared
size (its CRC-32 then fails), and the total at `max_bytes`; an entry whose data is corrupt or cut
off is refused by its name in the zip. Every refusal is a 400 `bad_archive` naming the reason.

A dataset lives in the store under `datasets/<id>/`: its files as extracted, with its record
`dataset.json` beside them ({id, name, kind, owner, image_count, classes, layout, created_at}); the
training worker reads that folder (`Storage.folders`: the stored one, or on S3 a cached download)
as the dataset's root. The uploaded zip (spooled to a temporary file by the web framework) is
extracted into a hidden local staging folder under the data directory; only when it is valid is
the folder uploaded, its record last: a dataset whose record is missing is invisible (a refused
archive, or an upload cut off, leaves nothing anyone sees, and an upload that fails is removed
again). A zip whose only top-level entry is a folder wrapping the rest is unwrapped
(`facades/train/...` reads as `train/...`). A store that does not answer is a 503
`storage_unavailable`.

Kinds (the layouts the training package reads):

- `paired` (pix2pix): files with matching names in `A/` and `B/` (optionally `A/train/` +
  `B/train/`, or `train/A/` + `train/B/`), or aligned A|B files side by side in `train/` or
  directly at the top; `image_count` is the number of pairs of the train split.
- `images`: image files anywhere in the archive (an unconditional image set).
- `labeled`: one folder per class (`cat/*.png`, `dog/*.png`); `classes` lists the class names.

Images are counted when Pillow can read their header; hidden files and folders are ignored. A
dataset without a usable image is refused with 422 `invalid_dataset` and nothing is kept.

Deleting a dataset (`delete_dataset`) is refused with 409 `dataset_in_use` while a queued or
running training run reads it; otherwise its record is removed first (the dataset is gone at once
for every reader; it is put back should a run have been submitted meanwhile), then its files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import time
import uuid
import zipfile
from pathlib import Path
from typing import BinaryIO

from fastapi import UploadFile
from obstore.exceptions import BaseError as StoreError
from PIL import Image
from pydantic import BaseModel

from core.datasets import IMAGE_EXTENSIONS, SPLIT_NAMES, DatasetKind
from core.jobs import JobKind, JobNotFound, JobStore
from core.object_store import ObjectStore
from core.public_jobs import iso_time
from core.storage import DATASET_FILE, SAFE_ID, Storage, dataset_key
from core.zip_reading import (
    PYTHON_METHODS,
    ZipProblem,
    check_entry,
    open_zip,
    read_entry,
)
from service.errors import ApiError
from service.uploads import check_size

_IGNORED_TOP = frozenset({"__MACOSX"})
DATASETS_PREFIX = "datasets"
log = logging.getLogger(__name__)


class DatasetInfo(BaseModel):
    """The record of a dataset (`dataset.json`)."""

    id: str
    name: str
    kind: DatasetKind
    owner: str
    image_count: int
    classes: list[str]
    layout: str | None = None
    created_at: str


def bad_archive(reason: str) -> ApiError:
    """A 400 `bad_archive` error saying why."""
    return ApiError(400, "bad_archive", f"The archive was refused: {reason}.")


# ---------------------------------------------------------------------------------------------
# Safe extraction


def _entry_parts(info: zipfile.ZipInfo) -> list[str] | None:
    """The path parts of an entry inside the destination, None to skip it; refuses unsafe names."""
    name = info.filename
    if "\x00" in name:
        raise bad_archive(f"the entry name {name!r} contains a NUL character")
    normal = name.replace("\\", "/")
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":"):
        raise bad_archive(f"the entry {name!r} has an absolute path")
    parts = [p for p in normal.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise bad_archive(f"the entry {name!r} points outside the archive ('..')")
    if not parts or parts[0] in _IGNORED_TOP:
        return None
    return parts


def _check_entry_type(info: zipfile.ZipInfo) -> None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise bad_archive(f"the entry {info.filename!r} is a symbolic link")
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise bad_archive(f"the entry {info.filename!r} is not a regular file or folder")


def extract_zip(archive: Path | BinaryIO, dest: Path, *, max_entries: int, max_bytes: int) -> int:
    """Extract `archive` (a path or an open file) into the new folder `dest`; the bytes written.

    The zip is read through `core.zip_reading` (the reader of model uploads too); on a refusal
    `dest` is removed again, with whatever was written into it.
    """
    try:
        with open_zip(archive, max_entries=max_entries) as zf:
            return _extract(zf, dest, max_bytes)
    except ZipProblem as problem:
        raise bad_archive(problem.message) from None


def _extract(zf: zipfile.ZipFile, dest: Path, max_bytes: int) -> int:
    plan: list[tuple[zipfile.ZipInfo, list[str]]] = []
    for info in zf.infolist():
        parts = _entry_parts(info)
        _check_entry_type(info)
        check_entry(info, PYTHON_METHODS)
        if parts is not None:
            plan.append((info, parts))
    declared = sum(info.file_size for info in zf.infolist())
    if declared > max_bytes:
        raise bad_archive(
            f"it expands to {declared} bytes, more than the limit of {max_bytes} bytes"
        )
    dest.mkdir(parents=True)
    root = dest.resolve()
    written = 0
    try:
        for info, parts in plan:
            target = dest.joinpath(*parts)
            if not target.resolve().is_relative_to(root):
                raise bad_archive(f"the entry {info.filename!r} points outside the archive")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                for chunk in read_entry(zf, info, max_bytes=info.file_size, methods=PYTHON_METHODS):
                    written += len(chunk)
                    if written > max_bytes:
                        raise bad_archive(f"it expands to more than the limit of {max_bytes} bytes")
                    out.write(chunk)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        shutil.rmtree(dest, ignore_errors=True)
        raise bad_archive("it has a file and a folder of the same name") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return written


# ---------------------------------------------------------------------------------------------
# Layout checks


def _visible(folder: Path) -> list[Path]:
    """The non-hidden entries of a folder, sorted."""
    return sorted(
        p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in _IGNORED_TOP
    )


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _image_files(folder: Path, *, recursive: bool) -> list[Path]:
    if not recursive:
        return [p for p in _visible(folder) if p.is_file() and _is_image_name(p)]
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath, f) for f in sorted(filenames) if not f.startswith(".")]
    return [p for p in found if _is_image_name(p)]


def _image_size(path: Path) -> tuple[int, int] | None:
    """Width and height from the image's header, None when Pillow cannot read it."""
    try:
        with Image.open(path) as image:
            return image.size
    except Exception:
        return None


def _count_readable(files: list[Path]) -> int:
    return sum(_image_size(p) is not None for p in files)


def _subfolders(folder: Path) -> list[Path]:
    return [p for p in _visible(folder) if p.is_dir()]


def unwrap(data: Path, kind: DatasetKind) -> Path:
    """The dataset's real root: the only top-level folder when it merely wraps the rest."""
    entries = _visible(data)
    if len(entries) != 1 or not entries[0].is_dir():
        return data
    only = entries[0]
    if kind is DatasetKind.paired and only.name in (*SPLIT_NAMES, "A", "B"):
        return data
    if kind is DatasetKind.labeled and _image_files(only, recursive=False):
        return data  # a single class folder, not a wrapper
    return only


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_dataset", message)


def _paired_folders(root: Path) -> tuple[Path, Path] | None:
    for a, b in (
        (root / "A" / "train", root / "B" / "train"),
        (root / "train" / "A", root / "train" / "B"),
    ):
        if a.is_dir() and b.is_dir():
            return a, b
    a, b = root / "A", root / "B"
    if a.is_dir() != b.is_dir():
        have, lack = ("A", "B") if a.is_dir() else ("B", "A")
        raise _invalid(f"The paired dataset has a folder {have}/ but no folder {lack}/ beside it.")
    if not a.is_dir():
        return None
    if any((a / s).is_dir() for s in SPLIT_NAMES):
        raise _invalid("The paired dataset has split folders in A/ and B/ but no train split.")
    return a, b


def _count_paired(root: Path) -> tuple[int, str]:
    folders = _paired_folders(root)
    if folders is not None:
        a_side, b_side = (
            {p.stem: p for p in _image_files(side, recursive=False)} for side in folders
        )
        common = sorted(a_side.keys() & b_side.keys())
        pairs = sum(
            _image_size(a_side[k]) is not None and _image_size(b_side[k]) is not None
            for k in common
        )
        return pairs, "folders"
    if (root / "train").is_dir():
        folder = root / "train"
    elif any((root / s).is_dir() for s in SPLIT_NAMES):
        raise _invalid("The paired dataset has split folders but no train/ folder.")
    else:
        folder = root
    sizes = (_image_size(p) for p in _image_files(folder, recursive=False))
    return sum(s is not None and s[0] >= 2 for s in sizes), "aligned"


def inspect_dataset(root: Path, kind: DatasetKind) -> tuple[int, list[str], str | None]:
    """(image count, class names, layout) of an extracted dataset; 422 when it has no image."""
    if kind is DatasetKind.paired:
        count, layout = _count_paired(root)
        if not count:
            raise _invalid(
                "The paired dataset has no usable image pair: expected aligned A|B image files "
                "(A on the left half, B on the right) in train/ or at the top of the archive, or "
                "files with matching names in A/ and B/."
            )
        return count, [], layout
    if kind is DatasetKind.images:
        count = _count_readable(_image_files(root, recursive=True))
        if not count:
            raise _invalid("The dataset has no readable image (PNG, JPEG, ...).")
        return count, [], None
    classes, count = [], 0
    for folder in _subfolders(root):
        found = _count_readable(_image_files(folder, recursive=True))
        if found:
            classes.append(folder.name)
            count += found
    if not count:
        raise _invalid(
            "The labeled dataset has no class folder with a readable image: expected one "
            "folder of images per class (cat/*.png, dog/*.png, ...)."
        )
    return count, classes, None


# ---------------------------------------------------------------------------------------------
# Records


def create_dataset(
    upload: UploadFile,
    *,
    name: str,
    kind: DatasetKind,
    owner: str,
    storage: Storage,
    max_archive_bytes: int,
    max_entries: int,
    max_extracted_bytes: int,
) -> DatasetInfo:
    """Save, extract, check and record an uploaded zip as a new dataset of `owner`."""
    dataset_id = uuid.uuid4().hex
    storage.datasets.mkdir(parents=True, exist_ok=True)
    work = storage.datasets / f".staging-{dataset_id}"
    work.mkdir()
    try:
        check_size(upload, max_archive_bytes, what="archive")
        files = work / "files"
        extract_zip(upload.file, files, max_entries=max_entries, max_bytes=max_extracted_bytes)
        root = unwrap(files, kind)
        count, classes, layout = inspect_dataset(root, kind)
        if (root / DATASET_FILE).is_dir():
            raise bad_archive(f"it has a folder named {DATASET_FILE}")
        info = DatasetInfo(
            id=dataset_id,
            name=name,
            kind=kind,
            owner=owner,
            image_count=count,
            classes=classes,
            layout=layout,
            created_at=iso_time(time.time()) or "",
        )
        (root / DATASET_FILE).write_text(info.model_dump_json(indent=2) + "\n")
        _store(storage.objects, dataset_id, root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return info


def _store(objects: ObjectStore, dataset_id: str, root: Path) -> None:
    """Upload the checked dataset folder, its record last (the dataset exists from then on);
    what was uploaded is removed again when the upload breaks off (503 `storage_unavailable`)."""
    try:
        objects.upload_folder(dataset_key(dataset_id), root, last=[DATASET_FILE])
    except StoreError:
        log.exception("storing dataset %s failed", dataset_id)
        with contextlib.suppress(StoreError):
            objects.delete_prefix(dataset_key(dataset_id))
        raise storage_unavailable() from None


def storage_unavailable() -> ApiError:
    """503 `storage_unavailable`: the object store did not answer (its own text, which names
    addresses, stays in the log)."""
    return ApiError(503, "storage_unavailable", "The storage is unavailable; try again later.")


def read_dataset(objects: ObjectStore, dataset_id: str) -> DatasetInfo | None:
    """The record of a dataset, None when there is none of that id (or its upload is not
    complete: the record is its last object)."""
    if not SAFE_ID.match(dataset_id):
        return None
    try:
        record = objects.read(dataset_key(dataset_id, DATASET_FILE))
    except StoreError:
        log.exception("reading dataset %s failed", dataset_id)
        raise storage_unavailable() from None
    if record is None:
        return None
    try:
        return DatasetInfo.model_validate(json.loads(record))
    except ValueError:
        return None


def get_dataset(objects: ObjectStore, dataset_id: str, owner: str) -> DatasetInfo:
    """The owner's dataset of that id; 404 `dataset_not_found` for unknown ids and others'."""
    info = read_dataset(objects, dataset_id)
    if info is None or info.owner != owner:
        raise ApiError(404, "dataset_not_found", "There is no such dataset.")
    return info


def list_datasets(objects: ObjectStore, owner: str) -> list[DatasetInfo]:
    """The owner's datasets, newest first."""
    try:
        names = objects.children(DATASETS_PREFIX)
    except StoreError:
        log.exception("listing datasets failed")
        raise storage_unavailable() from None
    found = (read_dataset(objects, name) for name in names)
    mine = [d for d in found if d is not None and d.owner == owner]
    return sorted(mine, key=lambda d: d.created_at, reverse=True)


def training_runs_using(store: JobStore, dataset_id: str) -> list[str]:
    """The ids of the queued or running training runs that read the dataset, oldest first."""
    using = []
    for job_id in store.active_ids():
        try:
            job = store.get(job_id)
        except JobNotFound:  # expired meanwhile
            continue
        if (
            job.kind == JobKind.training
            and not job.status.ended
            and job.params.get("dataset") == dataset_id
        ):
            using.append(job_id)
    return using


def _in_use(dataset_id: str, runs: list[str]) -> ApiError:
    return ApiError(
        409,
        "dataset_in_use",
        f"The dataset {dataset_id!r} is used by the training run {runs[0]!r} "
        f"({len(runs)} queued or running in all); cancel it or wait until it ends.",
    )


def delete_dataset(objects: ObjectStore, dataset_id: str, owner: str, store: JobStore) -> None:
    """Remove the owner's dataset: 404 `dataset_not_found` (unknown ids and others'), 409
    `dataset_in_use` while a queued or running training run uses it (nothing changes then)."""
    info = get_dataset(objects, dataset_id, owner)
    if runs := training_runs_using(store, info.id):
        raise _in_use(info.id, runs)
    marker = dataset_key(info.id, DATASET_FILE)
    try:
        record = objects.read(marker)
        if record is None or not objects.delete(marker):  # deleted by another request meanwhile
            raise ApiError(404, "dataset_not_found", "There is no such dataset.")
        if runs := training_runs_using(store, info.id):  # a run submitted meanwhile: put it back
            objects.put(marker, record)
            raise _in_use(info.id, runs)
        objects.delete_prefix(dataset_key(info.id))
    except StoreError:
        log.exception("deleting dataset %s failed", info.id)
        raise storage_unavailable() from None
