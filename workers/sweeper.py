"""The sweeper: storage follows the job records, so files of jobs that are gone go too.

A job's files live in `results/<job id>/`, `uploads/<job id>/` and `runs/<job id>/`; its record in
Redis expires `GANSERVE_RESULT_TTL` seconds after the job ended (`core.jobs.JobStore.record_ttl`).
`sweep` removes:

- **orphans**: a job folder in `results/`, `uploads/` or `runs/` whose job has no record any more
  (expired, or never recorded), once nothing under it changed for `grace` seconds (the gateway
  writes a job's upload folder just *before* it records the job, so a new folder without a record
  is not an orphan yet);
- **leftovers**: hidden entries (`.<name>.<random>`: `core.storage.staging_folder` folders, a
  renamed-away old copy, a half-removed folder) at the top of `results/`, `uploads/`, `runs/`,
  `models/`, `datasets/` and `exports/`, hidden entries in a model's `versions/` (a version
  half-removed by a delete or by retention), and `core.model_folder.atomic_write` temporary
  files (`.<file>.<8 characters>`) inside model folders, once unchanged for `grace` seconds;
- **stale exports**: `exports/<model id>/` whose model folder `models/<model id>/` is gone;
- the ids of expired records in the owners' job indexes in Redis.

It never touches a folder of a job whose record exists (queued, running, or ended and not yet
expired), and never removes a model folder (a training run's registered model is a copy, which
stays when the run's folder goes). A folder is removed by renaming it to a hidden name first, so
nobody sees it half gone, and a removal that breaks off is finished by a later sweep.

Where it runs: the reconciler thread of every worker (`workers.reconciler`) sweeps every
`GANSERVE_SWEEP_SECONDS` (0: never), under a Redis lock (`ganserve:sweeper`, held for one
interval) so that one worker sweeps at a time; operators run `ganserve sweep`. Not Celery beat:
no extra process to deploy and keep single. Two sweeps at once are harmless anyway (a folder
another sweep removed is skipped). Torch-free: it runs in the Celery parent process.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.jobs import JobStore
from core.model_registry import VERSIONS_DIR
from core.storage import SAFE_ID, Storage
from core.usage import folder_bytes

log = logging.getLogger(__name__)

GRACE_SECONDS = 600.0  # how long an entry must be unchanged before the sweeper may remove it
LOCK_KEY = "ganserve:sweeper"
JOB_AREAS = ("results", "uploads", "runs")  # one folder per job id
EXPORTS_DIR = "exports"  # exports/<model id>/...: cached exports of a model
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
    young: int = 0  # job folders without a record kept for the grace period
    index_entries: int = 0  # expired ids dropped from the owners' job indexes
    removed: list[str] = field(default_factory=list)  # paths relative to the storage root

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
    except FileNotFoundError:
        return []


class _Sweep:
    """One sweep's state: the storage, the store, the clock, and the report it fills."""

    def __init__(
        self, storage: Storage, store: JobStore, now: float, grace: float, dry_run: bool
    ) -> None:
        self.storage, self.store = storage, store
        self.now, self.grace, self.dry_run = now, grace, dry_run
        self.report = SweepReport()

    def settled(self, path: Path) -> bool:
        """Whether nothing under `path` changed for the grace period (False once it is gone)."""
        try:
            return self.now - newest_change(path) >= self.grace
        except FileNotFoundError:
            return False

    def remove(self, path: Path, why: str) -> bool:
        """Remove a file or folder (a folder renamed to a hidden name first); False when it was
        gone already."""
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
        where = str(path.relative_to(self.storage.root))
        log.info("sweeper: %s %s (%d bytes): %s", self.verb, where, size, why)
        self.report.bytes += size
        self.report.removed.append(where)
        return True

    @property
    def verb(self) -> str:
        return "would remove" if self.dry_run else "removed"

    def job_folders(self, area: str) -> None:
        folders = [p for p in _entries(self.storage.root / area) if SAFE_ID.match(p.name)]
        for start in range(0, len(folders), _CHECK_BATCH):
            batch = folders[start : start + _CHECK_BATCH]
            recorded = self.store.existing([p.name for p in batch])
            for folder in batch:
                if folder.name in recorded:
                    continue
                if not self.settled(folder):
                    self.report.young += 1
                elif self.remove(folder, "its job has no record (expired or never recorded)"):
                    self.report.orphans[area] += 1

    def leftovers(self) -> None:
        for area in HIDDEN_AREAS:
            for path in _entries(self.storage.root / area):
                hidden = path.name.startswith(".")
                if hidden and self.settled(path) and self.remove(path, "a staging leftover"):
                    self.report.leftovers += 1
        for model in _entries(self.storage.models):
            if model.name.startswith(".") or not model.is_dir():
                continue
            for path in _entries(model):
                temporary = TEMP_FILE.match(path.name) and path.is_file()
                if temporary and self.settled(path) and self.remove(path, "an unfinished write"):
                    self.report.leftovers += 1
            for path in _entries(model / VERSIONS_DIR):  # a version half-removed or half-written
                if (
                    path.name.startswith(".")
                    and self.settled(path)
                    and self.remove(path, "a staging leftover")
                ):
                    self.report.leftovers += 1

    def exports(self) -> None:
        for export in _entries(self.storage.root / EXPORTS_DIR):
            if export.name.startswith(".") or (self.storage.models / export.name).is_dir():
                continue
            if self.remove(export, "its model is gone"):
                self.report.exports += 1

    def run(self) -> SweepReport:
        for area in JOB_AREAS:
            self.job_folders(area)
        self.leftovers()
        self.exports()
        if not self.dry_run:
            self.report.index_entries = self.store.prune_owner_indexes()
        return self.report


def sweep(
    storage: Storage,
    store: JobStore,
    *,
    now: float | None = None,
    grace: float = GRACE_SECONDS,
    dry_run: bool = False,
) -> SweepReport:
    """Remove what no job, model or write in progress needs any more (see the module doc);
    `now` is the time folders' ages are measured at, `dry_run` only reports."""
    report = _Sweep(storage, store, time.time() if now is None else now, grace, dry_run).run()
    if report.count or report.index_entries:
        log.info("sweeper: %s", report.summary())
    return report


class Sweeper:
    """The sweep a worker's reconciler thread runs every `interval` seconds (0: never), under
    `LOCK_KEY` so that one worker sweeps at a time."""

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
        """A sweep when one is due and no other worker holds the lock; its report, else None."""
        if not self.due():
            return None
        self.last = self.clock()
        lock_ms = max(1, int(self.interval * 1000))
        if not self.store.redis.set(LOCK_KEY, holder, nx=True, px=lock_ms):
            return None
        return sweep(self.storage, self.store, grace=self.grace)
