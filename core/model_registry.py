"""Models as owned, immutable versions: who owns a model id, which versions it has, where they lie.

Layout in the object store (`core.object_store`; every process reads it through this module):

    models/<id>/model.json                 the model's record: its owner, for the model's whole
                                           life; its listing (name, description); the training
                                           run that registers it; `deleted`; `last_version`
    models/<id>/.lock                      the model's lock while a writer holds it
                                           (`core.lease_lock`: a lease object, safe across hosts)
    models/<id>/versions/<n>/              version n, a model folder (`core.model_folder`)
    models/<id>/versions/<n>/version.json  its content digest (sha256 of its files), when and by
                                           which job it was registered (`source`)

A version is registered from a local staging folder, uploaded file by file with `version.json`
written last: a version exists exactly when its `version.json` does (the marker), so no reader
ever sees half of one, on either backend. It never changes after that: registering (a training
run's checkpoint, an import, a fine-tune, a demo) always adds a new version. Version numbers only
grow (the number is reserved in `model.json` under the model's lock before the upload); a deleted
version's number is never given again. Deleting or retiring a version removes its marker first
(from then on nobody resolves it), then its files. A request names `<id>` (its newest version) or
`<id>@<n>`; a job pins the exact version and its digest at submission (`ModelRef`), so it runs on
the weights its submitter was allowed to use or fails with `model_not_found`.

Ids are global and are never handed to another owner: the first registration claims the id (a
create-only write of `model.json`), and deleting the model keeps `model.json` as a tombstone
(`deleted: true`), so only its owner may use the id again. Ownership is checked again at the
moment a version is registered.

A prefix `models/<id>/` that holds `config.json` and `model.safetensors` itself (the layout before
versions, or a model folder an operator copied in) is read as a model with one version, 1, whose
files are those and whose owner is its card's `provenance.owner` (none: shared). Registering a
new version of it first copies them to `versions/1`. Code that needs a version's files on disk
(torch) asks `local_folder`, which is the stored folder itself locally and a download cached by
the version's content digest on S3 (`core.folder_cache`). Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from core.exports import remove_exports
from core.lease_lock import lease_lock
from core.model_archive import FOLDER_FILES
from core.model_folder import CONFIG_FILE, WEIGHTS_FILE, ModelFolderError, parse_card
from core.object_store import ObjectStore
from core.storage import SAFE_ID

if TYPE_CHECKING:
    from core.folder_cache import FolderCache
    from core.storage import Storage

MODELS_PREFIX = "models"
MODEL_RECORD = "model.json"
VERSIONS_DIR = "versions"
VERSION_RECORD = "version.json"
LOCK_FILE = ".lock"
LOCK_LEASE_SECONDS = 120.0  # longer than anything done under a model's lock (a flat copy)
MAX_VERSION = 999_999_999
_REF = re.compile(r"^(?P<id>[A-Za-z0-9][A-Za-z0-9._-]{0,127}?)(?:@(?P<version>[0-9]{1,9}))?$")
_DIGEST_CHUNK = 1024 * 1024
# Digests of flat folders by the identity of their files (key, size, modification, entity tag).
_FLAT_DIGESTS: dict[tuple[tuple[str, int, float, str | None], ...], str] = {}


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
    """One complete version: its number, content digest (empty for a flat folder: see
    `ModelRegistry.version_digest`), the key prefix of its files and what registered it."""

    version: int
    digest: str
    created: float
    prefix: str  # `models/<id>/versions/<n>` (`models/<id>` for a flat folder)
    source: dict[str, Any] = field(default_factory=dict)

    def ref(self, model_id: str) -> ModelRef:
        """The pinned reference of this version."""
        return ModelRef(model_id, self.version)

    def key(self, name: str) -> str:
        """The key of one of its files (`config.json`, ...)."""
        return f"{self.prefix}/{name}"


class ModelMissing(LookupError):
    """No such model, or no such version of it (deleted, or never registered)."""


class ModelTaken(ValueError):
    """The id belongs to another owner (now, or before its model was deleted)."""


def _hash_files(chunks_of: Callable[[str], Iterable[bytes] | None]) -> str:
    """`sha256:<hex>` over the model files `chunks_of(name)` gives (None: no such file)."""
    digest = hashlib.sha256()
    for name in FOLDER_FILES:
        chunks = chunks_of(name)
        if chunks is None:
            continue
        digest.update(name.encode() + b"\0")
        for chunk in chunks:
            digest.update(chunk)
        digest.update(b"\0")
    return f"sha256:{digest.hexdigest()}"


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while chunk := source.read(_DIGEST_CHUNK):
            yield chunk


def content_digest(folder: Path) -> str:
    """`sha256:<hex>` over a model folder's files (`config.json`, the weights, the
    discriminator's), names and bytes: equal digests, equal models."""
    return _hash_files(
        lambda name: _file_chunks(folder / name) if (folder / name).is_file() else None
    )


def stored_digest(objects: ObjectStore, prefix: str) -> str:
    """`content_digest` of the model files stored under `prefix/` (streamed)."""
    return _hash_files(
        lambda name: (
            objects.stream(f"{prefix}/{name}") if objects.exists(f"{prefix}/{name}") else None
        )
    )


def _parse_json(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        raw = parse_card(data)  # JSON with NaN and Infinity refused
    except ModelFolderError:
        return None
    return raw if isinstance(raw, dict) else None


def _json_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any, default: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else default


def _strings(value: Any) -> dict[str, str]:
    return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else {}


def _record_from_json(model_id: str, raw: dict[str, Any]) -> ModelRecord:
    last = raw.get("last_version")
    return ModelRecord(
        id=model_id,
        owner=_text(raw.get("owner")),
        created=_number(raw.get("created"), 0.0),
        listing=_strings(raw.get("listing")),
        training_job=_text(raw.get("training_job")),
        deleted=raw.get("deleted") is True,
        last_version=last if isinstance(last, int) and not isinstance(last, bool) else 0,
    )


def _version_from_json(number: int, prefix: str, raw: dict[str, Any]) -> VersionRecord:
    source = raw.get("source")
    return VersionRecord(
        version=number,
        digest=str(raw.get("digest", "")),
        created=_number(raw.get("created"), 0.0),
        prefix=prefix,
        source=source if isinstance(source, dict) else {},
    )


class ModelRegistry:
    """The models in one object store (see the module docstring); `folders` gives versions'
    files on disk (`local_folder`)."""

    def __init__(self, objects: ObjectStore, folders: FolderCache | None = None) -> None:
        self.objects = objects
        self.folders = folders

    @classmethod
    def of(cls, storage: Storage) -> ModelRegistry:
        """The registry of a deployment's storage."""
        return cls(storage.objects, storage.folders)

    # -- keys ----------------------------------------------------------------------------------

    def model_prefix(self, model_id: str) -> str:
        """The key prefix of a model id; ModelMissing for an id that is not a plain name."""
        if not isinstance(model_id, str) or not SAFE_ID.match(model_id):
            raise ModelMissing(f"there is no model called {model_id!r}")
        return f"{MODELS_PREFIX}/{model_id}"

    def version_prefix(self, model_id: str, number: int) -> str:
        """The key prefix of version `number` of a model."""
        return f"{self.model_prefix(model_id)}/{VERSIONS_DIR}/{number}"

    # -- reading -------------------------------------------------------------------------------

    def _is_flat(self, prefix: str) -> bool:
        return self.objects.exists(f"{prefix}/{CONFIG_FILE}") and self.objects.exists(
            f"{prefix}/{WEIGHTS_FILE}"
        )

    def ids(self) -> list[str]:
        """Ids of every model (deleted ones included: their records stay), sorted."""
        return [
            name
            for name in self.objects.children(MODELS_PREFIX)
            if SAFE_ID.match(name)
            and (
                self.objects.exists(f"{MODELS_PREFIX}/{name}/{MODEL_RECORD}")
                or self._is_flat(f"{MODELS_PREFIX}/{name}")
            )
        ]

    def record(self, model_id: str) -> ModelRecord | None:
        """The model's record; None when the id was never claimed (or its entry is unusable)."""
        try:
            prefix = self.model_prefix(model_id)
        except ModelMissing:
            return None
        raw = _parse_json(self.objects.read(f"{prefix}/{MODEL_RECORD}"))
        if raw is not None:
            return _record_from_json(model_id, raw)
        if self._is_flat(prefix):
            return self._flat_record(model_id)
        return None

    def _flat_record(self, model_id: str) -> ModelRecord:
        """The record of a flat model folder: owner and listing from its card's provenance."""
        prefix = self.model_prefix(model_id)
        card = _parse_json(self.objects.read(f"{prefix}/{CONFIG_FILE}")) or {}
        provenance = card.get("provenance")
        provenance = provenance if isinstance(provenance, dict) else {}
        job = provenance.get("job") if provenance.get("run") else None
        weights = self.objects.info(f"{prefix}/{WEIGHTS_FILE}")
        return ModelRecord(
            id=model_id,
            owner=_text(provenance.get("owner")),
            created=weights.modified if weights is not None else 0.0,
            listing=_strings(provenance.get("listing")),
            training_job=_text(job),
            last_version=1,
            flat=True,
        )

    def _flat_version(self, model_id: str) -> VersionRecord | None:
        prefix = self.model_prefix(model_id)
        weights = self.objects.info(f"{prefix}/{WEIGHTS_FILE}")
        if weights is None:
            return None
        return VersionRecord(1, "", weights.modified, prefix, {"kind": "installed"})

    def versions(self, model_id: str) -> list[VersionRecord]:
        """The model's complete versions (those whose marker exists), oldest first (none for a
        deleted model)."""
        record = self.record(model_id)
        if record is None or record.deleted:
            return []
        if record.flat:
            flat = self._flat_version(model_id)
            if flat is not None:
                return [flat]
            # converted to versions meanwhile: read it again
            return self.versions(model_id) if self._has_record(model_id) else []
        found = []
        for number in self._numbers(model_id)[1]:
            prefix = self.version_prefix(model_id, number)
            raw = _parse_json(self.objects.read(f"{prefix}/{VERSION_RECORD}"))
            if raw is not None:
                found.append(_version_from_json(number, prefix, raw))
        return found

    def _has_record(self, model_id: str) -> bool:
        return self.objects.exists(f"{self.model_prefix(model_id)}/{MODEL_RECORD}")

    def _numbers(self, model_id: str) -> tuple[list[int], list[int]]:
        """The version numbers that have any object, and those that have their marker."""
        base = f"{self.model_prefix(model_id)}/{VERSIONS_DIR}/"
        used, marked = set(), set()
        for info in self.objects.list(base):
            number, _, rest = info.key[len(base) :].partition("/")
            if number.isdigit():
                used.add(int(number))
                if rest == VERSION_RECORD:
                    marked.add(int(number))
        return sorted(used), sorted(marked)

    def resolve(self, ref: ModelRef) -> tuple[ModelRecord, VersionRecord]:
        """The model and the version a reference names (its newest when unpinned); ModelMissing
        when either is gone. A pinned reference reads just that version's marker, an unpinned
        one the markers from the newest down to the first complete one."""
        record = self.record(ref.id)
        if record is None or record.deleted:
            raise ModelMissing(f"there is no model called {ref.id!r}")
        if record.flat:
            return record, self._resolve_flat(ref)
        numbers = [ref.version] if ref.version is not None else self._numbers(ref.id)[1][::-1]
        for number in numbers:
            prefix = self.version_prefix(ref.id, number)
            raw = _parse_json(self.objects.read(f"{prefix}/{VERSION_RECORD}"))
            if raw is not None:
                return record, _version_from_json(number, prefix, raw)
        if ref.version is None:
            raise ModelMissing(f"the model {ref.id!r} has no version yet")
        raise ModelMissing(f"the model {ref.id!r} has no version {ref.version}")

    def _resolve_flat(self, ref: ModelRef) -> VersionRecord:
        """The version a reference names of a model read as a flat folder (its only one, 1)."""
        flat = self._flat_version(ref.id)
        if flat is None:  # converted to versions meanwhile: read it again
            if not self._has_record(ref.id):
                raise ModelMissing(f"the model {ref.id!r} has no version yet")
            return self.resolve(ref)[1]
        if ref.version not in (None, flat.version):
            raise ModelMissing(f"the model {ref.id!r} has no version {ref.version}")
        return flat

    def version_digest(self, version: VersionRecord) -> str:
        """A version's content digest (recorded at registration; computed for a flat folder,
        once per state of its files)."""
        if version.digest:
            return version.digest
        infos = [self.objects.info(version.key(name)) for name in FOLDER_FILES]
        stamp = tuple((i.key, i.size, i.modified, i.etag) for i in infos if i is not None)
        if not any(key.endswith(f"/{WEIGHTS_FILE}") for key, *_ in stamp):
            raise ModelMissing(f"the model version {version.version} is gone")
        if stamp not in _FLAT_DIGESTS:
            _FLAT_DIGESTS[stamp] = stored_digest(self.objects, version.prefix)
        return _FLAT_DIGESTS[stamp]

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

    def local_folder(self, version: VersionRecord) -> Path:
        """A local folder holding the version's files (`core.folder_cache`: the stored folder
        itself locally, a download cached by its content digest on S3)."""
        if self.folders is None:
            raise RuntimeError("this registry was made without a folder cache")
        return self.folders.folder(version.prefix, self.version_digest(version), "models")

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def _locked(self, model_id: str) -> Iterator[None]:
        """Hold the model's lock (a lease object `models/<id>/.lock`, `core.lease_lock`)."""
        key = f"{self.model_prefix(model_id)}/{LOCK_FILE}"
        with lease_lock(self.objects, key, lease=LOCK_LEASE_SECONDS):
            yield

    def _write_record(self, model_id: str, raw: dict[str, Any]) -> None:
        self.objects.put(f"{self.model_prefix(model_id)}/{MODEL_RECORD}", _json_bytes(raw))

    def _read_record(self, model_id: str) -> dict[str, Any] | None:
        return _parse_json(self.objects.read(f"{self.model_prefix(model_id)}/{MODEL_RECORD}"))

    def claim(
        self, model_id: str, owner: str, training_job: str | None = None, *, fresh: bool = False
    ) -> ModelRecord:
        """The id for `owner`: a new record when the id is free, the owner's own record (revived
        when it was deleted; `training_job` set when given) when it is theirs; ModelTaken when
        it is another owner's (or, `fresh`, when it exists at all)."""
        prefix = self.model_prefix(model_id)
        for _ in range(3):
            record = self.record(model_id)
            if record is None:
                new = ModelRecord(model_id, owner, training_job=training_job)
                if self.objects.put_new(f"{prefix}/{MODEL_RECORD}", _json_bytes(new.to_json())):
                    return new
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

    def _unflatten(self, model_id: str) -> None:
        """Turn a flat model folder into version 1 of a model, under the model's lock, with no
        moment at which the id looks free: its files are copied to `versions/1` (its
        `version.json` last), then `model.json` is written (the switch: from then on readers see
        the versioned layout), then the top-level files are removed."""
        prefix = self.model_prefix(model_id)
        with self._locked(model_id):
            if self._has_record(model_id):  # another writer converted it meanwhile
                return
            record = self._flat_record(model_id)
            flat = self._flat_version(model_id)
            if flat is None:
                raise ModelMissing(f"there is no model called {model_id!r}")
            digest = self.version_digest(flat)
            target = self.version_prefix(model_id, 1)
            names = [n for n in FOLDER_FILES if self.objects.exists(f"{prefix}/{n}")]
            for name in names:
                self.objects.copy(f"{prefix}/{name}", f"{target}/{name}")
            marker = {"digest": digest, "created": record.created, "source": {}}
            self.objects.put(f"{target}/{VERSION_RECORD}", _json_bytes(marker))
            self._write_record(model_id, {**record.to_json(), "last_version": 1})
            for name in names:
                self.objects.delete(f"{prefix}/{name}")

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
            raw = self._read_record(model_id)
            if raw is None:
                raise ModelMissing(f"there is no model called {model_id!r}")
            raw.update(changes)
            if listing:
                listed = raw.get("listing") if isinstance(raw.get("listing"), dict) else {}
                raw["listing"] = {**listing, **listed} if keep_listed else {**listed, **listing}
            self._write_record(model_id, raw)
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
        """Register the local model folder `staging` as the next version of a model `owner`
        claimed (uploaded, its marker last; the staging folder is removed once it is stored);
        ModelTaken when the id is not `owner`'s at this moment."""
        if self._registrable(model_id, owner).flat:
            self._unflatten(model_id)
        created, digest = time.time(), content_digest(staging)
        marker = {"digest": digest, "created": created, "source": source}
        (staging / VERSION_RECORD).write_bytes(_json_bytes(marker))
        with self._locked(model_id):  # the number: reserved in model.json, never given again
            current = self._registrable(model_id, owner)  # again, under the lock
            raw = self._read_record(model_id) or {}
            number = max(current.last_version, *self._numbers(model_id)[0], 0) + 1
            self._write_record(model_id, {**raw, "last_version": number})
        prefix = self.version_prefix(model_id, number)
        try:
            self.objects.upload_folder(prefix, staging, last=[VERSION_RECORD])
            now = self.record(model_id)  # deleted or given up while it uploaded: withdrawn
            if now is None or now.deleted or now.owner != owner:
                raise ModelTaken(
                    f"the model id {model_id!r} is not yours to register under (deleted meanwhile)"
                )
        except BaseException:
            self._withdraw(prefix)
            raise
        shutil.rmtree(staging, ignore_errors=True)
        return VersionRecord(number, digest, created, prefix, source)

    def _registrable(self, model_id: str, owner: str) -> ModelRecord:
        """The record of a model `owner` may register a version of now; else ModelTaken."""
        record = self.record(model_id)
        if record is None or record.owner != owner or record.deleted:
            raise ModelTaken(
                f"the model id {model_id!r} is not yours to register under (another owner's, "
                "or deleted meanwhile)"
            )
        return record

    def _withdraw(self, prefix: str) -> bool:
        """Remove a version: its marker first (from then on it is gone), then its files;
        whether it had a marker."""
        had = self.objects.delete(f"{prefix}/{VERSION_RECORD}")
        self.objects.delete_prefix(prefix)
        return had

    def delete_version(self, model_id: str, number: int) -> None:
        """Remove one version (ModelMissing when it is not there)."""
        record, _ = self.resolve(ModelRef(model_id, number))
        if record.flat:
            self._unflatten(model_id)
        if not self._withdraw(self.version_prefix(model_id, number)):
            raise ModelMissing(f"the model {model_id!r} has no version {number}")

    def delete_model(self, model_id: str) -> None:
        """Remove every version; the record stays as a tombstone, so the id stays its owner's."""
        record = self.record(model_id)
        if record is None or record.deleted:
            raise ModelMissing(f"there is no model called {model_id!r}")
        if record.flat:
            self._unflatten(model_id)
        self._update(model_id, {"deleted": True, "training_job": None})
        for number in self._numbers(model_id)[0]:
            self._withdraw(self.version_prefix(model_id, number))

    def prune(self, model_id: str, keep: int, pinned: Callable[[], set[str]]) -> list[int]:
        """Remove the versions older than the newest `keep`, except those `pinned()` names
        (pinned refs `<id>@<n>` of jobs not ended); the version numbers removed, with their
        cached exports.

        Each candidate is first hidden (its marker removed), then the pins are read: a job that
        pinned the version before it was hidden keeps it (its marker is written back, as is
        every hidden version's when the pins cannot be read)."""
        versions = self.versions(model_id)
        old = versions[: max(0, len(versions) - max(1, keep))]
        if not old or versions[0].prefix == self.model_prefix(model_id):
            return []
        hidden: list[tuple[VersionRecord, bytes]] = []
        refs: set[str] | None = None
        try:
            for version in old:
                marker = version.key(VERSION_RECORD)
                data = self.objects.read(marker)
                if data is not None and self.objects.delete(marker):
                    hidden.append((version, data))
            refs = pinned()
        finally:
            kept = [h for h in hidden if refs is None or str(h[0].ref(model_id)) in refs]
            for version, data in kept:
                self.objects.put(version.key(VERSION_RECORD), data)
        removed = []
        for version, data in hidden:
            if (version, data) not in kept:
                self.objects.delete_prefix(version.prefix)
                removed.append(version.version)
        for number in removed:
            remove_exports(self.objects, model_id, number)
        return removed
