"""The one storage interface of every layer: objects under a local folder or an S3 prefix.

`GANSERVE_STORAGE_URL` names where uploads, results, datasets, model versions and training-run
folders live: unset (or a path, or `file:///path`) is a local folder, by default the data directory
itself; `s3://bucket/prefix` is any S3-compatible store, configured the way the AWS SDKs are
(`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`). Both are served by
obstore (object_store, the Rust crate behind Apache Arrow's and Polars' object storage), so callers
hold keys (`results/<job id>/0.png`) and never a second code path per backend:

- every write is atomic: a reader sees the whole object or none (the local backend writes a
  staging file and renames it; S3 makes a completed upload visible at once). Folder uploads name
  their marker object (a version's `version.json`) to be written last, after everything it vouches
  for;
- `put_new` creates an object only when there is none (S3 `If-None-Match: *`, a hard link
  locally): the one primitive claims and locks need;
- files travel streamed (`upload_file`, `download`, `stream`), never held whole in memory;
- `local_path` is the object's own file on the local backend and None on S3: code that needs a
  file on disk (torch loading a model, training reading a dataset) asks `core.folder_cache` for a
  folder, which is the stored one locally and a bounded, digest-keyed download on S3.
"""

from __future__ import annotations

import datetime
import errno
import mimetypes
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotFoundError
from obstore.store import LocalStore, S3Store

# obstore reports a missing object as its NotFoundError, or (the local backend on some paths) as
# Python's own FileNotFoundError; a path through a file as NotADirectoryError.
_MISSING = (NotFoundError, FileNotFoundError, IsADirectoryError, NotADirectoryError)
_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how obstore's texts cite the OS error behind
STREAM_CHUNK = 1024 * 1024  # bytes per chunk when streaming an object
# The AWS SDKs' variables that obstore's S3 client reads itself besides these.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")


class StorageUrlError(ValueError):
    """`GANSERVE_STORAGE_URL` is neither a local path nor an `s3://bucket[/prefix]` URL."""


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its key (relative to the store's root), size, last change and entity
    tag (the server's; locally inode, modification time and size: a replaced file gets another)."""

    key: str
    size: int
    modified: float  # seconds since the epoch
    etag: str | None = None


def _key(key: str) -> str:
    """A key as given, checked: relative, '/'-separated, no empty, '.' or '..' parts."""
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"not a storage key: {key!r}")
    return key


def _prefix(prefix: str) -> str:
    """A folder-like prefix without its trailing '/', '' for the root."""
    stripped = prefix.strip("/")
    return _key(stripped) if stripped else ""


def _info(meta: Any) -> ObjectInfo:
    modified = meta["last_modified"]
    return ObjectInfo(meta["path"], int(meta["size"]), modified.timestamp(), meta.get("e_tag"))


class ObjectStore:
    """Objects under one root (see the module docstring)."""

    def __init__(
        self, store: LocalStore | S3Store | None, url: str, local_root: Path | None
    ) -> None:
        self._opened = store  # None for a local folder until first used
        self.url = url
        self.local_root = local_root

    @property
    def _store(self) -> LocalStore | S3Store:
        """The obstore store; a local folder is created (and opened) at its first use, so that
        naming a store has no side effect."""
        if self._opened is None:
            assert self.local_root is not None
            self.local_root.mkdir(parents=True, exist_ok=True)
            self._opened = LocalStore(self.local_root)
        return self._opened

    @classmethod
    def open(cls, url: str | None, data_dir: Path) -> ObjectStore:
        """The store `url` (`GANSERVE_STORAGE_URL`) names; the local folder `data_dir` if unset."""
        text = (url or "").strip()
        if not text:
            return cls.local(data_dir)
        parsed = urlparse(text)
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise StorageUrlError(f"{text!r} names no bucket: write s3://bucket/prefix")
            return cls(_s3_store(parsed.netloc, parsed.path.strip("/")), text, None)
        if parsed.scheme == "file":
            return cls.local(Path(parsed.path))
        if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
            return cls.local(Path(text))
        raise StorageUrlError(
            f"unsupported storage URL {text!r}: use a local path, file:///path or s3://bucket/prefix"
        )

    @classmethod
    def local(cls, root: Path) -> ObjectStore:
        """A store on the local folder `root` (created at the first use when missing)."""
        root = Path(root).expanduser().resolve()
        return cls(None, root.as_uri(), root)

    @property
    def is_local(self) -> bool:
        """True when the objects are files under `local_root`."""
        return self.local_root is not None

    def local_path(self, key: str) -> Path | None:
        """The file or folder of `key` on the local backend; None on S3."""
        if self.local_root is None:
            return None
        return self.local_root / _prefix(key) if key.strip("/") else self.local_root

    # -- writing -------------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        """Write `data` as `key`, replacing what was there, atomically."""
        with self._writing(key):
            obstore.put(self._store, _key(key), data, **self._attributes(key))

    def put_new(self, key: str, data: bytes) -> bool:
        """Write `data` as `key` only when no such object exists; False when one does."""
        try:
            obstore.put(self._store, _key(key), data, mode="create")
        except AlreadyExistsError:
            return False
        return True

    def upload_file(self, key: str, path: Path | BinaryIO) -> None:
        """Stream the local file `path` (or a file already open for reading, in binary, from its
        current position) to `key` (multipart when large), atomically."""
        if not isinstance(path, str | os.PathLike):
            self._put_stream(key, path)
            return
        with open(path, "rb") as source:
            self._put_stream(key, source)

    def _put_stream(self, key: str, source: BinaryIO) -> None:
        with self._writing(key):
            obstore.put(
                self._store,
                _key(key),
                source,
                chunk_size=8 * STREAM_CHUNK,
                **self._attributes(key),
            )

    @contextmanager
    def _writing(self, key: str) -> Iterator[None]:
        """obstore's errors while writing `key` raised as Python's OSError naming the key, not
        the local paths obstore's texts name: its errno that of the OS error behind them (ENOSPC
        for a full volume), else EIO. Locally, the folders the failed write made are removed."""
        try:
            yield
        except BaseError as exc:
            if self.local_root is not None:
                _prune_empty_parents(self.local_root, key)
            cited = _OS_ERROR.search(str(exc))
            code = int(cited.group(1)) if cited else errno.EIO
            raise OSError(code, os.strerror(code), key) from exc

    def _attributes(self, key: str) -> dict[str, Any]:
        """On S3, the object's Content-Type guessed from its name (`0.png`: image/png), which
        a presigned URL's answer carries; the local backend keeps no attributes (the gateway
        names the type when it serves a file)."""
        content_type = mimetypes.guess_type(key)[0]
        if self.local_root is not None or content_type is None:
            return {}
        return {"attributes": {"Content-Type": content_type}}

    def upload_folder(self, prefix: str, folder: Path, *, last: Iterable[str] = ()) -> list[str]:
        """Upload every file under `folder` to `prefix/<relative path>`; the files named in
        `last` (relative paths) after all others, in that order. The keys written."""
        base, late = _prefix(prefix), list(last)
        files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
        relative = [p.relative_to(folder).as_posix() for p in files]
        order = [r for r in relative if r not in late] + [r for r in late if r in relative]
        keys = []
        for name in order:
            key = f"{base}/{name}" if base else name
            self.upload_file(key, Path(folder) / name)
            keys.append(key)
        return keys

    def copy(self, source: str, target: str) -> None:
        """Copy one object (server-side on S3)."""
        obstore.copy(self._store, _key(source), _key(target))

    def delete(self, key: str) -> bool:
        """Remove one object; False when there was none."""
        if self.info(key) is None:
            return False
        try:
            obstore.delete(self._store, _key(key))
        except _MISSING:
            return False
        if self.local_root is not None:
            _prune_empty_parents(self.local_root, key)
        return True

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix/`, hidden names included; how many were removed."""
        keys = [info.key for info in self.list(prefix, hidden=True)]
        for start in range(0, len(keys), 1000):
            obstore.delete(self._store, keys[start : start + 1000])
        if self.local_root is not None and keys:
            folder = self.local_path(prefix)
            if folder is not None and folder != self.local_root:
                shutil.rmtree(folder, ignore_errors=True)
                _prune_empty_parents(self.local_root, _prefix(prefix))
        return len(keys)

    # -- reading -------------------------------------------------------------------------------

    def read(self, key: str) -> bytes | None:
        """The whole object `key` (for small records); None when there is none."""
        try:
            return obstore.get(self._store, _key(key)).bytes().to_bytes()
        except _MISSING:
            return None

    def fetch(self, key: str) -> tuple[ObjectInfo, bytes | Iterator[bytes]] | None:
        """An object's size and last change with its bytes, from one request to the store (a
        GET, whose answer carries both): the bytes at once when they fit in one chunk
        (`STREAM_CHUNK`), else in chunks as `stream` gives them; None when there is none."""
        try:
            result = obstore.get(self._store, _key(key))
        except _MISSING:
            return None
        info = _info(result.meta)
        if info.size <= STREAM_CHUNK:
            return info, result.bytes().to_bytes()
        return info, (bytes(chunk) for chunk in result.stream(min_chunk_size=STREAM_CHUNK))

    def stream(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks; FileNotFoundError when there is none."""
        try:
            result = obstore.get(self._store, _key(key))
        except _MISSING:
            raise FileNotFoundError(key) from None
        for chunk in result.stream(min_chunk_size=STREAM_CHUNK):
            yield bytes(chunk)

    def download(self, key: str, path: Path) -> None:
        """Stream `key` into the local file `path` (staged beside it and renamed: atomic)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as target:
                for chunk in self.stream(key):
                    target.write(chunk)
            os.replace(staging, path)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise

    def download_folder(self, prefix: str, folder: Path) -> list[str]:
        """Download every object under `prefix/` into `folder` by relative path; the names."""
        base = _prefix(prefix)
        names = []
        for info in self.list(base):
            name = info.key[len(base) + 1 :] if base else info.key
            self.download(info.key, folder / name)
            names.append(name)
        return names

    def info(self, key: str) -> ObjectInfo | None:
        """Size and last change of `key`; None when there is no such object."""
        try:
            return _info(obstore.head(self._store, _key(key)))
        except _MISSING:
            return None

    def exists(self, key: str) -> bool:
        """True when the object `key` exists."""
        return self.info(key) is not None

    def list(self, prefix: str = "", *, hidden: bool = False) -> list[ObjectInfo]:
        """Every object under `prefix/` (all depths), sorted by key. Hidden names (a part below
        `prefix` that starts with '.', such as staging files) are left out unless `hidden`."""
        base = _prefix(prefix)
        found = []
        for batch in obstore.list(self._store, f"{base}/" if base else None):
            for meta in batch:
                relative = meta["path"][len(base) :] if base else meta["path"]
                if hidden or not any(part.startswith(".") for part in relative.split("/") if part):
                    found.append(_info(meta))
        return sorted(found, key=lambda info: info.key)

    def children(self, prefix: str = "") -> list[str]:
        """The names one level under `prefix/`: sub-prefixes ("folders") and objects, sorted,
        hidden names left out. A server with real folders (SeaweedFS) may still list a folder
        whose objects were all removed: callers look for the object that makes an entry whole
        (a `model.json`, a `dataset.json`)."""
        base = _prefix(prefix)
        listed = obstore.list_with_delimiter(self._store, f"{base}/" if base else None)
        names = {p.rstrip("/").rsplit("/", 1)[-1] for p in listed["common_prefixes"]}
        names |= {meta["path"].rsplit("/", 1)[-1] for meta in listed["objects"]}
        return sorted(name for name in names if name and not name.startswith("."))

    def presigned_url(self, key: str, seconds: int) -> str | None:
        """A URL that reads `key` without credentials for `seconds`; None on the local backend
        (the gateway serves local files itself)."""
        if self.local_root is not None:
            return None
        return obstore.sign(self._store, "GET", _key(key), datetime.timedelta(seconds=seconds))


def _s3_store(bucket: str, prefix: str) -> S3Store:
    """An S3Store for `bucket`/`prefix`, its credentials, region and endpoint from the AWS SDKs'
    environment variables (obstore reads them); plain http allowed for an http:// endpoint."""
    endpoint = next((os.environ[v] for v in ENDPOINT_VARIABLES if os.environ.get(v)), "")
    options = {"allow_http": True} if endpoint.startswith("http://") else None
    extra: dict[str, Any] = {"endpoint": endpoint} if endpoint else {}
    if not os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
        extra["region"] = "us-east-1"  # what S3-compatible servers accept when none is named
    return S3Store(bucket, prefix=prefix or None, client_options=options, **extra)


def _prune_empty_parents(root: Path, key: str) -> None:
    """Remove the local folders that `key`'s removal left empty, up to (not including) `root`."""
    parent = (root / key).parent
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent
