"""A training run's folder in the store: this host's working copy, uploaded as it changes.

The training process writes its run folder (`training.run_files`: options.json, stats.jsonl,
samples/, tensorboard/, model/, training_state.pt) into a working copy under this host's data
directory (`Storage.run_working_copy`: `work/runs/<job id>/`), never into the store directly:
torch, TensorBoard and Pillow write files, and a file being written must never be what a reader
of the store sees. `RunSync` brings that folder to `runs/<job id>/` in the store, the same way on
both backends (on the local backend the store is another folder of the same disk):

- `pull()`, before the run starts or resumes: when the store holds a checkpoint that is not the
  one this working copy last exchanged with it (the copy is missing, was never synced, or another
  host has trained the run further since), the stored folder replaces the working copy; a host
  that resumes a run it was killed in keeps its own copy, which is as new or newer.
- `pushing()`, while the run trains: a thread uploads the files that changed every
  `SYNC_SECONDS`, and once more, synchronously, when the run stops (its last checkpoint, grid and
  stats in the store before the job reports them). A sample grid or checkpoint reaches the store
  within a second of being written.
- `discard()`, once the job has ended for good: the working copy is removed (the store keeps
  the run). A copy left by a worker killed here, of a run that ended elsewhere, is removed by
  the next run that starts on this host (`remove_stale_copies`).

Every object is uploaded whole (`ObjectStore.upload_file`), so a reader never sees half a
checkpoint. The checkpoint `training_state.pt` is opened first and uploaded last in each pass:
whatever the store holds, its stats, grids and model are at least as new as its checkpoint, so a
run resumed from it (which drops the stats logged after its step) misses nothing, even when its
worker was killed in the middle of a pass. A pass first renews the job's lease: a worker that
lost it (another took the run over) writes nothing more. A hidden manifest in the working copy
(`.sync.json`) records the size and change time of each file uploaded and the entity tag the
store gave it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from obstore.exceptions import BaseError as StoreError

from core.object_store import ObjectStore
from core.storage import RUN_STATE_FILE
from workers.errors import JobFailure

log = logging.getLogger(__name__)

MANIFEST_FILE = ".sync.json"
# How often the thread looks for changed files. One pass stats the folder's few dozen files and
# uploads what changed (a tiny run's pass on SeaweedFS: the stats file and a grid, a few ms), so a
# second keeps previews and loss curves live without a measurable cost to training.
SYNC_SECONDS = 1.0


def _visible_files(folder: Path) -> list[str]:
    """The folder's files by relative path, sorted; hidden parts (staging files) left out."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            found.append(relative.as_posix())
    return sorted(found)


def _stamp(path: Path) -> list[int] | None:
    """Size and change time of a file (what says it changed), None when it is gone."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return [status.st_size, status.st_mtime_ns]


def store_unavailable(how: str, exc: Exception) -> JobFailure:
    """The job's error when the object store fails it (the store's own text names paths and
    addresses: only its kind is said)."""
    return JobFailure(
        "storage_unavailable",
        f"the training run's files could not be {how} the object store ({type(exc).__name__}); "
        "the run can be submitted again",
    )


class RunSync:
    """The working copy `folder` of the run stored under `prefix` (see the module docstring).

    `may_write()` says whether this worker still holds the run (it renews the job's lease).
    """

    def __init__(
        self,
        objects: ObjectStore,
        prefix: str,
        folder: Path,
        may_write: Callable[[], bool] = lambda: True,
        interval: float = SYNC_SECONDS,
    ) -> None:
        self.objects = objects
        self.prefix = prefix.strip("/")
        self.folder = folder
        self.may_write = may_write
        self.interval = interval
        self._lock = threading.Lock()
        self._manifest: dict[str, dict[str, Any]] = self._read_manifest()

    # -- the manifest --------------------------------------------------------------------------

    def _read_manifest(self) -> dict[str, dict[str, Any]]:
        try:
            manifest = json.loads((self.folder / MANIFEST_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return manifest if isinstance(manifest, dict) else {}

    def _write_manifest(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(dir=self.folder, prefix=f"{MANIFEST_FILE}.")
        with os.fdopen(handle, "w") as out:
            json.dump(self._manifest, out)
        os.replace(staging, self.folder / MANIFEST_FILE)

    def _record(self, name: str, stamp: list[int]) -> None:
        info = self.objects.info(f"{self.prefix}/{name}")
        self._manifest[name] = {"local": stamp, "etag": info.etag if info else None}

    # -- pull ----------------------------------------------------------------------------------

    def pull(self) -> bool:
        """Make the working copy the stored run folder when the store's checkpoint is not the
        one this copy last exchanged with it; True when the folder was downloaded."""
        try:
            return self._pull()
        except StoreError as exc:
            raise store_unavailable("read from", exc) from None

    def _pull(self) -> bool:
        stored = self.objects.info(f"{self.prefix}/{RUN_STATE_FILE}")
        if stored is None:  # nothing to resume from: keep what is here (a fresh run)
            return False
        known = self._manifest.get(RUN_STATE_FILE)
        if (self.folder / RUN_STATE_FILE).is_file() and known and known["etag"] == stored.etag:
            return False  # the same checkpoint, or a newer one of this host's not yet uploaded
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.folder.parent, prefix=f".{self.folder.name}."))
        try:
            names = self.objects.download_folder(self.prefix, staging)
            shutil.rmtree(self.folder, ignore_errors=True)
            os.rename(staging, self.folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._manifest = {}
        for name in names:
            stamp = _stamp(self.folder / name)
            if stamp is not None:
                self._record(name, stamp)
        self._write_manifest()
        log.info("downloaded run folder %s (%d files)", self.prefix, len(names))
        return True

    # -- push ----------------------------------------------------------------------------------

    def push(self) -> list[str]:
        """Upload the files changed since they were last uploaded (the checkpoint last); the
        names uploaded. Nothing when this worker no longer holds the run."""
        with self._lock:
            if not self.may_write():
                return []
            state_path = self.folder / RUN_STATE_FILE
            state_stamp = _stamp(state_path)
            with contextlib.ExitStack() as files:
                state = None  # the checkpoint as it is now, held open while the rest goes up
                if state_stamp is not None and state_stamp != self._local(RUN_STATE_FILE):
                    with contextlib.suppress(FileNotFoundError):
                        state = files.enter_context(state_path.open("rb"))
                uploaded = []
                for name in _visible_files(self.folder):
                    stamp = _stamp(self.folder / name)
                    if name == RUN_STATE_FILE or stamp is None or stamp == self._local(name):
                        continue
                    self.objects.upload_file(f"{self.prefix}/{name}", self.folder / name)
                    self._record(name, stamp)
                    uploaded.append(name)
                if state is not None and state_stamp is not None:
                    self.objects.upload_file(f"{self.prefix}/{RUN_STATE_FILE}", state)
                    self._record(RUN_STATE_FILE, state_stamp)
                    uploaded.append(RUN_STATE_FILE)
            if uploaded:
                self._write_manifest()
            return uploaded

    def _local(self, name: str) -> list[int] | None:
        entry = self._manifest.get(name)
        return entry.get("local") if isinstance(entry, dict) else None

    @contextlib.contextmanager
    def pushing(self) -> Iterator[RunSync]:
        """Upload changes every `interval` seconds while the block runs, and all of them when it
        ends (JobFailure `storage_unavailable` when that last upload fails after a run that
        ended well; after a failure the first error stands and the upload's is logged)."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.interval):
                try:
                    self.push()
                except Exception:  # the store or Redis away for a moment: the next pass retries
                    log.warning("uploading run folder %s failed", self.prefix, exc_info=True)

        thread = threading.Thread(target=loop, name=f"sync-{self.folder.name[:8]}", daemon=True)
        thread.start()
        failed = True
        try:
            yield self
            failed = False
        finally:
            stop.set()
            thread.join()
            self._final_push(failed)

    def _final_push(self, failed: bool) -> None:
        try:
            self.push()
        except Exception as exc:
            log.warning("uploading run folder %s failed", self.prefix, exc_info=True)
            if failed:
                return
            if isinstance(exc, StoreError):
                raise store_unavailable("written to", exc) from None
            raise

    def discard(self) -> None:
        """Remove the working copy (the run has ended; the store keeps its folder)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def remove_stale_copies(folder: Path, is_live: Callable[[str], bool]) -> list[str]:
    """Remove the working copies in `folder` (`work/runs/`) whose job is not live any more (it
    ended, or its record expired): what a worker killed here left of a run that then ended on
    another host. The job ids removed."""
    removed = []
    for copy in sorted(folder.iterdir()) if folder.is_dir() else []:
        if copy.is_dir() and not copy.name.startswith(".") and not is_live(copy.name):
            shutil.rmtree(copy, ignore_errors=True)
            removed.append(copy.name)
    return removed
