"""The sweeper: storage follows the job records, so the objects of jobs that are gone go too.

A job's objects live under `results/<job id>/`, `uploads/<job id>/` and `runs/<job id>/` in the
store (`GANSERVE_STORAGE_URL`: the data directory by default, or an S3 prefix); its record in Redis
expires `GANSERVE_RESULT_TTL` seconds after the job ended (`core.jobs.JobStore.record_ttl`). A sweep
has two parts.

The **store** part works through `Storage.objects` (`core.object_store`), the same code on both
backends: it lists each area's keys, groups them by job id (the second part of the key) and takes
the newest object's `modified` as the entry's age, then removes with `delete_prefix`:

- **orphans**: a job's objects in `results/`, `uploads/` or `runs/` whose job has no record any
  more (expired, or never recorded), once none of them changed for `grace` seconds (the gateway
  writes a job's upload just *before* it records the job, so a new upload without a record is not
  an orphan yet);
- **stale exports**: `exports/<model id>/` whose model has no object under `models/<model id>/`;
- the ids of expired records in the owners' job indexes in Redis.

It never touches a job's objects while the job's record exists (queued, running, or ended and not
yet expired), and never removes a model (a training run's registered model is a copy, which stays
when the run's objects go; model version retention is `core.model_registry`'s `prune`). An S3
entry's age is its server's `Last-Modified` against this host's clock: the grace period (10
minutes by default) absorbs ordinary clock skew. A removal that breaks off leaves objects that the
next sweep finds again.

The **local** part is inherently local: it sweeps this host's data directory (`GANSERVE_DATA_DIR`),
which is the store itself on the local backend and, with S3, this host's cache and working copies.
Interrupted writes leave hidden entries there (`.<name>.<random>`): `core.storage.staging_folder`
folders, a renamed-away old copy or a half-removed folder at the top of `results/`, `uploads/`,
`runs/`, `models/`, `datasets/` and `exports/`; hidden entries in a model's `versions/` (a version
half-removed by a delete or by retention); `core.model_folder.atomic_write` temporary files
(`.<file>.<8 characters>`) inside model folders; and `core.folder_cache` download staging folders
in `cache/<kind>/`. Each goes once unchanged for `grace` seconds, by renaming it to a hidden name
first (nobody sees it half gone); hidden entries inside a job's folder go with the job.

Where it runs: the reconciler thread of every worker (`workers.reconciler`) sweeps every
`GANSERVE_SWEEP_SECONDS` (0: never). The store part runs under a Redis lock (`ganserve:sweeper`,
held for one interval), so that one worker in the deployment does it at a time; the local part runs
in every worker at every interval, since every host has a data directory of its own. Operators run
`ganserve sweep` (both parts). Not Celery beat: no extra process to deploy and keep single. Two
sweeps at once are harmless anyway (an entry another sweep removed is skipped). Torch-free: it runs
in the Celery parent process.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from obstore.exceptions import BaseError as StoreError

from core.exports import EXPORTS_DIR
from core.jobs import JobStore
from core.model_registry import VERSIONS_DIR
from core.object_store import ObjectInfo
from core.storage import CACHE_DIR, SAFE_ID, Storage
from core.usage import JOB_AREAS, folder_bytes

log = logging.getLogger(__name__)

GRACE_SECONDS = 600.0  # how long an entry must be unchanged before the sweeper may remove it
LOCK_KEY = "ganserve:sweeper"
HIDDEN_AREAS = (*JOB_AREAS, "models", "datasets", EXPORTS_DIR)
TEMP_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}$")  # atomic_write's mkstemp(prefix=".<name>.")
_CHECK_BATCH = 1000  # job ids whose records are looked up in one Redis round trip


@dataclass
class SweepReport:
    """What a sweep removed (or, in a dry run, would remove)."""

    orphans: dict[str, int] = field(default_factory=lambda: dict.fromkeys(JOB_AREAS, 0))
    leftovers: int = 0
    exports: int = 0
    bytes: int = 0
    young: int = 0  # jobs' objects without a record kept for the grace period
    index_entries: int = 0  # expired ids dropped from the owners' job indexes
    removed: list[str] = field(default_factory=list)  # store prefixes; local: data dir paths

    @property
    def count(self) -> int:
        """Entries removed."""
        return sum(self.orphans.values()) + self.leftovers + self.exports

    def summary(self) -> str:
        """One line for a person."""
        areas = ", ".join(f"{n} {area}" for area, n in self.orphans.items())
        return (
            f"removed {self.count} entries ({self.bytes} bytes): job folders without a record: "
            f"{areas}; {self.leftovers} staging leftovers; {self.exports} stale exports; "
            f"{self.young} job folders without a record kept for the grace period"
        )


@dataclass
class StoredEntry:
    """The objects under one `<area>/<name>` prefix: their bytes and newest change."""

    size: int = 0
    newest: float = 0.0
    whole_key: bool = False  # an object named `<area>/<name>` itself, not only under it

    def add(self, info: ObjectInfo, whole_key: bool) -> None:
        self.size += info.size
        self.newest = max(self.newest, info.modified)
        self.whole_key = self.whole_key or whole_key


def stored_entries(infos: Iterable[ObjectInfo]) -> dict[str, StoredEntry]:
    """Objects of one area (`<area>/<name>/...`) grouped by `<name>`."""
    entries: dict[str, StoredEntry] = {}
    for info in infos:
        parts = info.key.split("/", 2)
        if len(parts) >= 2:
            entries.setdefault(parts[1], StoredEntry()).add(info, len(parts) == 2)
    return entries


def newest_change(path: Path) -> float:
    """The latest modification time of `path` and of everything under it (links not followed)."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for name in (*dirnames, *filenames):
                try:
                    newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
                except OSError:
                    continue
    return newest


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


class _Sweep:
    """One sweep's state: the storage, the job store, the clock, and the report it fills."""

    def __init__(
        self, storage: Storage, store: JobStore, now: float, grace: float, dry_run: bool
    ) -> None:
        self.storage, self.objects, self.store = storage, storage.objects, store
        self.now, self.grace, self.dry_run = now, grace, dry_run
        self.report = SweepReport()

    @property
    def verb(self) -> str:
        return "would remove" if self.dry_run else "removed"

    def _removed(self, where: str, size: int, why: str) -> None:
        log.info("sweeper: %s %s (%d bytes): %s", self.verb, where, size, why)
        self.report.bytes += size
        self.report.removed.append(where)

    # -- the store -----------------------------------------------------------------------------

    def remove_stored(self, prefix: str, entry: StoredEntry, why: str) -> bool:
        """Remove the objects under `prefix/` (and `prefix` itself); False when they were gone
        already or the store refused (left for a later sweep)."""
        if not self.dry_run:
            try:
                removed = self.objects.delete_prefix(prefix)
                if entry.whole_key:
                    removed += self.objects.delete(prefix)
            except (StoreError, OSError) as exc:  # logged (no paths), retried next sweep
                log.warning("sweeper: could not remove %s: %s", prefix, type(exc).__name__)
                return False
            if not removed:  # another sweep took it
                return False
        self._removed(prefix, entry.size, why)
        return True

    def stored_jobs(self, area: str) -> None:
        entries = stored_entries(self.objects.list(area, hidden=True))
        names = [name for name in entries if SAFE_ID.match(name)]
        for start in range(0, len(names), _CHECK_BATCH):
            batch = names[start : start + _CHECK_BATCH]
            recorded = self.store.existing(batch)
            for name in batch:
                entry = entries[name]
                if name in recorded:
                    continue
                if self.now - entry.newest < self.grace:
                    self.report.young += 1
                elif self.remove_stored(
                    f"{area}/{name}", entry, "its job has no record (expired or never recorded)"
                ):
                    self.report.orphans[area] += 1

    def stored_exports(self) -> None:
        for name, entry in stored_entries(self.objects.list(EXPORTS_DIR, hidden=True)).items():
            if name.startswith(".") or self.objects.list(f"models/{name}", hidden=True):
                continue  # a hidden one is the local part's
            if self.remove_stored(f"{EXPORTS_DIR}/{name}", entry, "its model is gone"):
                self.report.exports += 1

    def shared(self) -> None:
        """The store part (see the module docstring)."""
        for area in JOB_AREAS:
            self.stored_jobs(area)
        self.stored_exports()
        if not self.dry_run:
            self.report.index_entries = self.store.prune_owner_indexes()

    # -- this host's data directory ------------------------------------------------------------

    def settled(self, path: Path) -> bool:
        """Whether nothing under `path` changed for the grace period (False once it is gone)."""
        try:
            return self.now - newest_change(path) >= self.grace
        except FileNotFoundError:
            return False

    def remove_local(self, path: Path, why: str) -> bool:
        """Remove a file or folder of the data directory (a folder renamed to a hidden name
        first); False when it was gone already."""
        try:
            size = folder_bytes(path) if path.is_dir() else path.lstat().st_size
            if not self.dry_run:
                if path.is_dir() and not path.is_symlink():
                    hidden = path.with_name(f".{path.name}.swept-{time.time_ns()}")
                    path.rename(hidden)
                    shutil.rmtree(hidden)
                else:
                    path.unlink()
        except FileNotFoundError:  # another sweep took it
            return False
        except OSError as exc:  # left for a later sweep (a renamed folder is a leftover then)
            log.warning("sweeper: could not remove %s: %s", path, exc)
            return False
        self._removed(str(path.relative_to(self.storage.root)), size, why)
        return True

    def leftover(self, path: Path, why: str = "a staging leftover") -> None:
        if self.settled(path) and self.remove_local(path, why):
            self.report.leftovers += 1

    def local(self) -> None:
        """This host's data directory (see the module docstring)."""
        root = self.storage.root
        for area in HIDDEN_AREAS:
            for path in _entries(root / area):
                if path.name.startswith("."):
                    self.leftover(path)
        for kind in _entries(root / CACHE_DIR):  # core.folder_cache's downloads being staged
            for path in _entries(kind):
                if path.name.startswith("."):
                    self.leftover(path, "an unfinished download")
        for model in _entries(root / "models"):
            if model.name.startswith(".") or not model.is_dir():
                continue
            for path in _entries(model):
                if TEMP_FILE.match(path.name) and path.is_file():
                    self.leftover(path, "an unfinished write")
            for path in _entries(model / VERSIONS_DIR):  # a version half-removed or half-written
                if path.name.startswith("."):
                    self.leftover(path)


def sweep(
    storage: Storage,
    store: JobStore,
    *,
    now: float | None = None,
    grace: float = GRACE_SECONDS,
    dry_run: bool = False,
    shared: bool = True,
) -> SweepReport:
    """Remove what no job, model or write in progress needs any more (see the module doc): the
    store part unless `shared` is False, then this host's data directory. `now` is the time
    entries' ages are measured at, `dry_run` only reports."""
    run = _Sweep(storage, store, time.time() if now is None else now, grace, dry_run)
    if shared:
        run.shared()
    run.local()
    report = run.report
    if report.count or report.index_entries:
        log.info("sweeper: %s", report.summary())
    return report


class Sweeper:
    """The sweep a worker's reconciler thread runs every `interval` seconds (0: never): the
    store part under `LOCK_KEY`, so that one worker does it at a time, and this host's data
    directory in every worker."""

    def __init__(
        self,
        storage: Storage,
        store: JobStore,
        interval: float,
        grace: float = GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.storage, self.store, self.interval, self.grace = storage, store, interval, grace
        self.clock = clock
        self.last = clock()  # the first sweep comes one interval after the worker started

    def due(self) -> bool:
        """Whether an interval passed since this worker's last sweep (never when off)."""
        return self.interval > 0 and self.clock() - self.last >= self.interval

    def sweep_if_due(self, holder: str) -> SweepReport | None:
        """When a sweep is due: a whole sweep and its report if no other worker holds the lock,
        else only this host's data directory, and None."""
        if not self.due():
            return None
        self.last = self.clock()
        lock_ms = max(1, int(self.interval * 1000))
        if not self.store.redis.set(LOCK_KEY, holder, nx=True, px=lock_ms):
            sweep(self.storage, self.store, grace=self.grace, shared=False)
            return None
        return sweep(self.storage, self.store, grace=self.grace)
