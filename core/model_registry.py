"""Models as owned, immutable versions: who owns a model id, which versions it has, where they lie.

Layout under the storage root's `models/` (every process reads it through this module):

    models/<id>/model.json                 the model's record: its owner, for the model's whole
                                           life; its listing (name, description); the training
                                           run that registers it; `deleted`; `last_version`
    models/<id>/versions/<n>/              version n, a model folder (`core.model_folder`)
    models/<id>/versions/<n>/version.json  its content digest (sha256 of its files), when and by
                                           which job it was registered (`source`)

A version is written in a hidden staging folder and renamed into place, and never changes after
that: registering (a training run's checkpoint, an import, a fine-tune, a demo) always adds a new
version. Version numbers only grow; a deleted version's number is never given again. A request
names `<id>` (its newest version) or `<id>@<n>`; a job pins the exact version and its digest at
submission (`ModelRef`), so it runs on the weights its submitter was allowed to use or fails with
`model_not_found`.

Ids are global and are never handed to another owner: the first registration claims the id
(an atomic rename of a folder holding `model.json`), and deleting the model keeps `model.json` as
a tombstone (`deleted: true`), so only its owner may use the id again. Ownership is checked again
at the moment a version is registered.

A folder `models/<id>/` that holds `config.json` itself (the layout before versions, or a model
folder an operator copied in) is read as a model with one version, 1, whose folder is the folder
itself and whose owner is its card's `provenance.owner` (none: shared). Registering a new
version of it first moves it to `versions/1`. Torch-free.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from core.exports import remove_exports
from core.model_archive import FOLDER_FILES
from core.model_folder import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ModelFolderError,
    atomic_write,
    parse_card,
)
from core.model_folder import read_card_json as _read_card_json
from core.storage import SAFE_ID

MODEL_RECORD = "model.json"
VERSIONS_DIR = "versions"
VERSION_RECORD = "version.json"
LOCK_FILE = ".lock"
MAX_VERSION = 999_999_999
_REF = re.compile(r"^(?P<id>[A-Za-z0-9][A-Za-z0-9._-]{0,127}?)(?:@(?P<version>[0-9]{1,9}))?$")
_DIGEST_CHUNK = 1024 * 1024
_FLAT_DIGESTS: dict[tuple[str, tuple[tuple[int, int, int], ...]], str] = {}


class ModelRef(NamedTuple):
    """A model as a request names it: an id and, when pinned, a version."""

    id: str
    version: int | None = None

    def __str__(self) -> str:
        return self.id if self.version is None else f"{self.id}@{self.version}"


def parse_ref(text: str) -> ModelRef | None:
    """`<id>` or `<id>@<version>` as a `ModelRef`; None when it is neither."""
    match = _REF.match(text) if isinstance(text, str) else None
    if match is None or not SAFE_ID.match(match["id"]):
        return None
    version = match["version"]
    if version is not None and not 1 <= int(version) <= MAX_VERSION:
        return None
    return ModelRef(match["id"], None if version is None else int(version))


@dataclass
class ModelRecord:
    """What `model.json` says about a model (or, for a flat folder, what its card implies)."""

    id: str
    owner: str | None
    created: float = field(default_factory=time.time)
    listing: dict[str, str] = field(default_factory=dict)
    training_job: str | None = None  # the run that registers a version at each checkpoint
    deleted: bool = False
    last_version: int = 0
    flat: bool = False  # a model folder at models/<id>/ itself, with one version

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored as `model.json`."""
        data = asdict(self)
        data.pop("flat")
        return data


@dataclass(frozen=True)
class VersionRecord:
    """One complete version: its number, content digest, folder and what registered it."""

    version: int
    digest: str
    created: float
    folder: Path
    source: dict[str, Any] = field(default_factory=dict)

    def ref(self, model_id: str) -> ModelRef:
        """The pinned reference of this version."""
        return ModelRef(model_id, self.version)


class ModelMissing(LookupError):
    """No such model, or no such version of it (deleted, or never registered)."""


class ModelTaken(ValueError):
    """The id belongs to another owner (now, or before its model was deleted)."""


def content_digest(folder: Path) -> str:
    """`sha256:<hex>` over a model folder's files (`config.json`, the weights, the
    discriminator's), names and bytes: equal digests, equal models."""
    digest = hashlib.sha256()
    for name in FOLDER_FILES:
        path = folder / name
        if not path.is_file():
            continue
        digest.update(name.encode() + b"\0")
        with open(path, "rb") as source:
            while chunk := source.read(_DIGEST_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return f"sha256:{digest.hexdigest()}"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        raw = parse_card(path.read_bytes())  # JSON with NaN and Infinity refused
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any, default: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else default


def _record_from_json(model_id: str, raw: dict[str, Any]) -> ModelRecord:
    listing = raw.get("listing")
    last = raw.get("last_version")
    return ModelRecord(
        id=model_id,
        owner=_text(raw.get("owner")),
        created=_number(raw.get("created"), 0.0),
        listing={k: v for k, v in listing.items() if isinstance(v, str)}
        if isinstance(listing, dict)
        else {},
        training_job=_text(raw.get("training_job")),
        deleted=raw.get("deleted") is True,
        last_version=last if isinstance(last, int) and not isinstance(last, bool) else 0,
    )


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link of `source` at `target` (the same bytes, no copy), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _is_model_folder(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def _flat_record(model_id: str, folder: Path) -> ModelRecord:
    """The record of a flat model folder: owner and listing from its card's provenance."""
    try:
        provenance = _read_card_json(folder).get("provenance")
    except (ModelFolderError, OSError):
        provenance = None
    provenance = provenance if isinstance(provenance, dict) else {}
    listing = provenance.get("listing")
    job = provenance.get("job") if provenance.get("run") else None
    try:
        created = (folder / WEIGHTS_FILE).stat().st_mtime
    except FileNotFoundError:
        created = 0.0
    return ModelRecord(
        id=model_id,
        owner=_text(provenance.get("owner")),
        created=created,
        listing={k: v for k, v in listing.items() if isinstance(v, str)}
        if isinstance(listing, dict)
        else {},
        training_job=_text(job),
        last_version=1,
        flat=True,
    )


class ModelRegistry:
    """The models under one `models/` folder (see the module docstring)."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)

    # -- reading -------------------------------------------------------------------------------

    def model_dir(self, model_id: str) -> Path:
        """The folder of a model id; ModelMissing for an id that is not a plain name."""
        if not isinstance(model_id, str) or not SAFE_ID.match(model_id):
            raise ModelMissing(f"there is no model called {model_id!r}")
        return self.models_dir / model_id

    def ids(self) -> list[str]:
        """Ids of every model folder (deleted ones included), sorted."""
        if not self.models_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.models_dir.iterdir()
            if SAFE_ID.match(p.name) and p.is_dir() and not p.name.startswith(".")
        )

    def record(self, model_id: str) -> ModelRecord | None:
        """The model's record; None when the id was never claimed (or its folder is unusable)."""
        try:
            folder = self.model_dir(model_id)
        except ModelMissing:
            return None
        raw = _read_json(folder / MODEL_RECORD)
        if raw is not None:
            return _record_from_json(model_id, raw)
        if _is_model_folder(folder):
            return _flat_record(model_id, folder)
        return None

    def versions(self, model_id: str) -> list[VersionRecord]:
        """The model's complete versions, oldest first (none for a deleted model)."""
        record = self.record(model_id)
        if record is None or record.deleted:
            return []
        folder = self.models_dir / model_id
        if record.flat:
            try:
                created = (folder / WEIGHTS_FILE).stat().st_mtime
            except FileNotFoundError:  # converted to versions meanwhile: read it again
                return self.versions(model_id) if (folder / MODEL_RECORD).is_file() else []
            return [VersionRecord(1, "", created, folder, {"kind": "installed"})]
        found = []
        root = folder / VERSIONS_DIR
        for path in root.iterdir() if root.is_dir() else ():
            if not path.name.isdigit() or not _is_model_folder(path):
                continue
            raw = _read_json(path / VERSION_RECORD)
            if raw is None:
                continue
            source = raw.get("source")
            found.append(
                VersionRecord(
                    version=int(path.name),
                    digest=str(raw.get("digest", "")),
                    created=_number(raw.get("created"), 0.0),
                    folder=path,
                    source=source if isinstance(source, dict) else {},
                )
            )
        return sorted(found, key=lambda v: v.version)

    def resolve(self, ref: ModelRef) -> tuple[ModelRecord, VersionRecord]:
        """The model and the version a reference names (its newest when unpinned); ModelMissing
        when either is gone."""
        record = self.record(ref.id)
        if record is None or record.deleted:
            raise ModelMissing(f"there is no model called {ref.id!r}")
        versions = self.versions(ref.id)
        if ref.version is None:
            if versions:
                return record, versions[-1]
            raise ModelMissing(f"the model {ref.id!r} has no version yet")
        for version in versions:
            if version.version == ref.version:
                return record, version
        raise ModelMissing(f"the model {ref.id!r} has no version {ref.version}")

    def version_digest(self, version: VersionRecord) -> str:
        """A version's content digest (recorded at registration; computed for a flat folder,
        once per state of its files)."""
        if version.digest:
            return version.digest
        stamp = tuple(
            (s.st_mtime_ns, s.st_size, s.st_ino)
            for s in (os.stat(version.folder / n) for n in (CONFIG_FILE, WEIGHTS_FILE))
        )
        key = (str(version.folder), stamp)
        if key not in _FLAT_DIGESTS:
            _FLAT_DIGESTS[key] = content_digest(version.folder)
        return _FLAT_DIGESTS[key]

    def pinned_version(self, pinned: str, digest: str | None) -> VersionRecord:
        """The version a job pinned (`<id>@<n>`), provided it still has the content `digest`
        pinned with it (None: not checked); ModelMissing when it is gone or changed."""
        ref = parse_ref(pinned)
        if ref is None:
            raise ModelMissing(f"there is no model called {pinned!r}")
        _, version = self.resolve(ref)
        if digest is not None and self.version_digest(version) != digest:
            raise ModelMissing(f"the model version {pinned!r} is not the one the job pinned")
        return version

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def _locked(self, model_id: str) -> Iterator[None]:
        """Hold the model's lock (an advisory lock on `models/<id>/.lock`)."""
        with open(self.models_dir / model_id / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def claim(
        self, model_id: str, owner: str, training_job: str | None = None, *, fresh: bool = False
    ) -> ModelRecord:
        """The id for `owner`: a new record when the id is free, the owner's own record (revived
        when it was deleted; `training_job` set when given) when it is theirs; ModelTaken when
        it is another owner's (or, `fresh`, when it exists at all)."""
        folder = self.model_dir(model_id)
        for _ in range(3):
            record = self.record(model_id)
            if record is None:
                if self._create(folder, ModelRecord(model_id, owner, training_job=training_job)):
                    return self.record(model_id) or ModelRecord(model_id, owner)
                continue  # another process claimed it meanwhile: look again
            if record.owner != owner or fresh:
                raise ModelTaken(f"the model id {model_id!r} is taken")
            if record.flat:
                self._unflatten(model_id)
            changes: dict[str, Any] = {"deleted": False}
            if training_job is not None:
                changes["training_job"] = training_job
            return self._update(model_id, changes)
        raise ModelTaken(f"the model id {model_id!r} is taken")

    def _create(self, folder: Path, record: ModelRecord) -> bool:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.claim-"))
        try:
            (staging / VERSIONS_DIR).mkdir()
            _write_json(staging / MODEL_RECORD, record.to_json())
            try:
                os.rename(staging, folder)
            except OSError:  # the id exists now (a folder that is not empty)
                return False
            return True
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _unflatten(self, model_id: str) -> None:
        """Turn a flat model folder into version 1 of a model, in place and under the model's
        lock, with no moment at which the id looks free: its files are linked into
        `versions/1` (with its `version.json`), then `model.json` is written (the switch: from
        then on readers see the versioned layout), then the top-level files are unlinked."""
        folder = self.models_dir / model_id
        with self._locked(model_id):
            if (folder / MODEL_RECORD).is_file():  # another writer converted it meanwhile
                return
            record = _flat_record(model_id, folder)
            root = folder / VERSIONS_DIR
            root.mkdir(exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=root, prefix=".1.unflatten-"))
            try:
                for name in FOLDER_FILES:
                    if (folder / name).is_file():
                        _link_or_copy(folder / name, staging / name)
                _write_json(
                    staging / VERSION_RECORD,
                    {"digest": content_digest(staging), "created": record.created, "source": {}},
                )
                os.rename(staging, root / "1")
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)  # links and copies only
                raise
            _write_json(folder / MODEL_RECORD, {**record.to_json(), "last_version": 1})
            for name in FOLDER_FILES:
                (folder / name).unlink(missing_ok=True)

    def _update(
        self,
        model_id: str,
        changes: dict[str, Any],
        listing: dict[str, str] | None = None,
        keep_listed: bool = False,
    ) -> ModelRecord:
        """Apply `changes` to `model.json` and merge `listing` into its listing (without
        replacing what is listed already when `keep_listed`), read and written under the lock."""
        with self._locked(model_id):
            raw = _read_json(self.models_dir / model_id / MODEL_RECORD)
            if raw is None:
                raise ModelMissing(f"there is no model called {model_id!r}")
            raw.update(changes)
            if listing:
                listed = raw.get("listing") if isinstance(raw.get("listing"), dict) else {}
                raw["listing"] = {**listing, **listed} if keep_listed else {**listed, **listing}
            _write_json(self.models_dir / model_id / MODEL_RECORD, raw)
            return _record_from_json(model_id, raw)

    def update_listing(
        self, model_id: str, changes: dict[str, str], *, keep_listed: bool = False
    ) -> ModelRecord:
        """Merge `changes` (name, description) into the model's listing; `keep_listed`: only
        what it does not list yet (a training run's name never replaces one a user gave)."""
        record = self.record(model_id)
        if record is None:
            raise ModelMissing(f"there is no model called {model_id!r}")
        if record.flat:
            self._unflatten(model_id)
        return self._update(model_id, {}, listing=changes, keep_listed=keep_listed)

    def add_version(
        self, model_id: str, owner: str, staging: Path, source: dict[str, Any]
    ) -> VersionRecord:
        """Register the model folder `staging` (moved, not copied) as the next version of a model
        `owner` claimed; ModelTaken when the id is not `owner`'s at this moment."""
        if self._registrable(model_id, owner).flat:
            self._unflatten(model_id)
        created, digest = time.time(), content_digest(staging)
        _write_json(
            staging / VERSION_RECORD, {"digest": digest, "created": created, "source": source}
        )
        root = self.models_dir / model_id / VERSIONS_DIR
        root.mkdir(exist_ok=True)
        with self._locked(model_id):
            current = self._registrable(model_id, owner)  # again, under the lock
            number = max(current.last_version, *self._numbers_used(root), 0) + 1
            os.rename(staging, root / str(number))
            raw = _read_json(self.models_dir / model_id / MODEL_RECORD) or {}
            raw["last_version"] = number
            _write_json(self.models_dir / model_id / MODEL_RECORD, raw)
        return VersionRecord(number, digest, created, root / str(number), source)

    def _registrable(self, model_id: str, owner: str) -> ModelRecord:
        """The record of a model `owner` may register a version of now; else ModelTaken."""
        record = self.record(model_id)
        if record is None or record.owner != owner or record.deleted:
            raise ModelTaken(
                f"the model id {model_id!r} is not yours to register under (another owner's, "
                "or deleted meanwhile)"
            )
        return record

    @staticmethod
    def _numbers_used(root: Path) -> list[int]:
        numbers = []
        for path in root.iterdir():
            digits = path.name.lstrip(".").split(".")[0]
            if digits.isdigit():
                numbers.append(int(digits))
        return numbers

    def delete_version(self, model_id: str, number: int) -> None:
        """Remove one version (ModelMissing when it is not there)."""
        self.resolve(ModelRef(model_id, number))
        record = self.record(model_id)
        if record is not None and record.flat:
            self._unflatten(model_id)
        folder = self.models_dir / model_id / VERSIONS_DIR / str(number)
        gone = folder.with_name(f".{number}.deleted-{time.time_ns()}")
        try:
            os.rename(folder, gone)
        except FileNotFoundError:
            raise ModelMissing(f"the model {model_id!r} has no version {number}") from None
        shutil.rmtree(gone, ignore_errors=True)

    def delete_model(self, model_id: str) -> None:
        """Remove every version; the record stays as a tombstone, so the id stays its owner's."""
        record = self.record(model_id)
        if record is None or record.deleted:
            raise ModelMissing(f"there is no model called {model_id!r}")
        if record.flat:
            self._unflatten(model_id)
        self._update(model_id, {"deleted": True, "training_job": None})
        root = self.models_dir / model_id / VERSIONS_DIR
        for path in list(root.iterdir()) if root.is_dir() else ():
            if path.name.isdigit():
                gone = path.with_name(f".{path.name}.deleted-{time.time_ns()}")
                os.rename(path, gone)
                shutil.rmtree(gone, ignore_errors=True)

    def prune(self, model_id: str, keep: int, pinned: Callable[[], set[str]]) -> list[int]:
        """Remove the versions older than the newest `keep`, except those `pinned()` names
        (pinned refs `<id>@<n>` of jobs not ended); the version numbers removed.

        Each candidate is first hidden (renamed, and its time stamp renewed so the sweeper sees a
        fresh entry), then the pins are read: a job that pinned the version before it was hidden
        keeps it (it is renamed back, as is every hidden version when the pins cannot be
        read)."""
        versions = self.versions(model_id)
        old = versions[: max(0, len(versions) - max(1, keep))]
        if not old or versions[0].folder == self.models_dir / model_id:
            return []
        hidden: list[tuple[VersionRecord, Path]] = []
        refs: set[str] | None = None
        try:
            for version in old:
                gone = version.folder.with_name(f".{version.version}.retiring-{time.time_ns()}")
                try:
                    os.rename(version.folder, gone)
                    os.utime(gone)
                except FileNotFoundError:
                    continue
                hidden.append((version, gone))
            refs = pinned()
        finally:
            kept = [h for h in hidden if refs is None or str(h[0].ref(model_id)) in refs]
            for version, gone in kept:
                os.rename(gone, version.folder)
        removed = []
        for version, gone in hidden:
            if (version, gone) not in kept:
                shutil.rmtree(gone, ignore_errors=True)
                removed.append(version.version)
        for number in removed:
            remove_exports(self.models_dir.parent, model_id, number)
        return removed
