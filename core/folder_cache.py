"""Stored folders as local folders: the stored folder itself locally, a bounded download on S3.

PyTorch loads a model from files and training reads a dataset from files, so a process that needs
a stored folder (a model version `models/<id>/versions/<n>/`, a dataset) asks this cache for it.
On the local backend the answer is the stored folder itself (no copy). On S3 it is a download
under the data directory's `cache/<kind>/<key>/`, keyed by what identifies the content for good (a
model version's content digest, a dataset's id: both never change once written), so a second
worker host, or the same one after a restart, downloads a version at most once; downloads are
staged and renamed into place (a half-downloaded folder is never used), and the least recently
used folders are removed once the cache holds more than `max_bytes` (`GANSERVE_CACHE_MAX_BYTES`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

from core.object_store import ObjectStore

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def cache_name(identity: str) -> str:
    """A folder name for a content identity (`sha256:ab..` -> `sha256_ab..`)."""
    name = _UNSAFE.sub("_", identity)[:200]
    if not name or name.startswith("."):
        raise ValueError(f"not a cache identity: {identity!r}")
    return name


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder`."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class FolderCache:
    """Local folders of stored prefixes (see the module docstring)."""

    def __init__(self, objects: ObjectStore, root: Path, max_bytes: int) -> None:
        self.objects = objects
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self.downloads = 0  # folders downloaded by this process (a cache miss each)

    def folder(self, prefix: str, identity: str, kind: str = "models") -> Path:
        """The local folder holding the objects under `prefix/`; `identity` names their content
        for good (on S3 a folder already cached under it is used as is)."""
        local = self.objects.local_path(prefix)
        if local is not None:
            return local
        target = self.root / kind / cache_name(identity)
        with self._lock:
            if target.is_dir():
                os.utime(target)  # most recently used
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
            try:
                if not self.objects.download_folder(prefix, staging):
                    raise FileNotFoundError(f"nothing is stored under {prefix!r}")
                try:
                    os.rename(staging, target)
                except OSError:  # another process put it there meanwhile: use theirs
                    shutil.rmtree(staging, ignore_errors=True)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            self.downloads += 1
            self._evict(keep=target)
            return target

    def _evict(self, keep: Path) -> None:
        """Remove the least recently used folders until the cache fits `max_bytes` (`keep`,
        the folder just used, stays even when it alone is larger)."""
        folders = [p for p in self.root.glob("*/*") if p.is_dir() and not p.name.startswith(".")]
        sized = sorted(((p.stat().st_mtime, p, folder_bytes(p)) for p in folders), key=_age)
        total = sum(size for _, _, size in sized)
        for _, path, size in sized:
            if total <= self.max_bytes:
                return
            if path != keep:
                shutil.rmtree(path, ignore_errors=True)
                total -= size


def _age(entry: tuple[float, Path, int]) -> float:
    return entry[0]
