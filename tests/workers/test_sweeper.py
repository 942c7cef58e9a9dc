"""The sweeper (`workers.sweeper`) on real files and a real Redis: files of expired jobs go,
anything of a job with a record stays, new folders get their grace, staging leftovers and exports
of deleted models go, model folders never do; the reconciler thread runs it under a lock."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

from core.jobs import Job, JobKind, JobStatus, JobStore
from core.storage import Storage
from workers.reconciler import Reconciler, ReconcilerThread
from workers.sweeper import GRACE_SECONDS, LOCK_KEY, Sweeper, sweep

OLD = 3 * GRACE_SECONDS  # seconds in the past that "old" files are dated


def write(path: Path, data: bytes = b"x" * 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def age(path: Path, seconds: float = OLD) -> None:
    """Date `path` and everything under it `seconds` in the past."""
    moment = time.time() - seconds
    for item in [*path.rglob("*"), path] if path.is_dir() else [path]:
        os.utime(item, (moment, moment), follow_symlinks=False)


def job_files(storage: Storage, job_id: str) -> list[Path]:
    """A job's result, upload and training run folders with a file or two each, all old."""
    folders = [storage.result_dir(job_id), storage.upload_dir(job_id), storage.run_dir(job_id)]
    write(folders[0] / "0.png", b"r" * 300)
    write(folders[1] / "input.png", b"u" * 200)
    write(folders[2] / "samples" / "step_0000010.png", b"s" * 400)
    write(folders[2] / "checkpoint.pt", b"c" * 500)
    for folder in folders:
        age(folder)
    return folders


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def model_folder(storage: Storage, model_id: str, job_id: str) -> Path:
    folder = storage.models / model_id
    card = {"family": "pix2pix", "provenance": {"job": job_id, "run": job_id, "owner": "o"}}
    write(folder / "config.json", json.dumps(card).encode())
    write(folder / "model.safetensors", b"w" * 1000)
    age(folder)
    return folder


@pytest.fixture
def storage(tmp_path) -> Storage:
    storage = Storage(tmp_path / "data")
    storage.ensure()
    return storage


def test_an_expired_jobs_files_go_and_live_jobs_files_stay(storage, redis_client):
    short, long = JobStore(redis_client, ttl=1), JobStore(redis_client, ttl=3600)
    expired = short.create(Job(kind=JobKind.training, owner="o"))
    short.update(expired.id, status=JobStatus.succeeded)
    queued = short.create(Job(kind=JobKind.translation, model="m", owner="o"))
    running = short.create(Job(kind=JobKind.training, owner="o"))
    short.update(running.id, status=JobStatus.running)
    ended = long.create(Job(kind=JobKind.sample, model="m", owner="o"))
    long.update(ended.id, status=JobStatus.succeeded)  # ended, its record not expired yet
    gone = job_files(storage, expired.id)
    for job in (queued, running, ended):
        job_files(storage, job.id)
    model = model_folder(storage, "from-the-expired-run", expired.id)  # the run's registered copy
    time.sleep(1.3)  # the expired job's record lapses
    assert short.existing([expired.id, queued.id, running.id, ended.id]) == {
        queued.id,
        running.id,
        ended.id,
    }
    kept = {k: v for k, v in snapshot(storage.root).items() if expired.id not in k}

    report = sweep(storage, short)

    assert not any(folder.exists() for folder in gone)
    assert snapshot(storage.root) == kept  # live jobs' files and the model, byte for byte
    assert model.is_dir()
    assert report.orphans == {"results": 1, "uploads": 1, "runs": 1}
    assert report.bytes == 300 + 200 + 400 + 500
    assert sorted(report.removed) == sorted(
        f"{area}/{expired.id}" for area in ("results", "uploads", "runs")
    )
    assert report.index_entries == 1  # the expired id left the owner's job index
    assert sweep(storage, short).count == 0  # nothing more to do


def test_a_new_folder_without_a_record_is_kept_for_the_grace_period(storage, redis_client):
    store = JobStore(redis_client)
    job_id = uuid.uuid4().hex  # the gateway wrote its upload and has not recorded the job yet
    upload = write(storage.upload_dir(job_id) / "input.png").parent
    report = sweep(storage, store)
    assert upload.is_dir() and report.count == 0 and report.young == 1
    touched = write(storage.result_dir(job_id) / "0.png").parent
    age(touched)
    write(touched / "1.png")  # a folder with a new file is new: its newest change counts
    report = sweep(storage, store, now=time.time() + GRACE_SECONDS / 2)
    assert touched.is_dir() and report.young == 2
    report = sweep(storage, store, now=time.time() + GRACE_SECONDS + 1)
    assert not upload.exists() and not touched.exists()
    assert report.orphans == {"results": 1, "uploads": 1, "runs": 0}


def test_staging_leftovers_go_once_settled(storage, redis_client):
    store = JobStore(redis_client, ttl=3600)
    live = store.create(Job(kind=JobKind.training))
    store.update(live.id, status=JobStatus.running)
    live_temp = write(storage.run_dir(live.id) / ".stats.jsonl.abcd1234")  # a live job's
    age(storage.run_dir(live.id))
    old = [
        write(storage.root / "results" / f".{uuid.uuid4().hex}.k2j4h5g6" / "0.png"),
        write(storage.root / "uploads" / f".{uuid.uuid4().hex}.swept-123" / "input.png"),
        write(storage.root / "runs" / f".{uuid.uuid4().hex}.x1y2z3w4" / "checkpoint.pt"),
        write(storage.models / ".labels2photo.ab12cd34" / "model.safetensors"),
        write(storage.models / ".labels2photo.old-1700000000" / "config.json"),
        write(storage.datasets / f".staging-{uuid.uuid4().hex}" / "files" / "a.png"),
        write(storage.root / "exports" / ".m.onnx.qwer5678"),
        write(storage.models / "mine" / "versions" / ".2.deleted-17000" / "model.safetensors"),
        write(storage.models / "mine" / "versions" / ".3.retiring-17000" / "config.json"),
    ]
    kept_version = write(storage.models / "mine" / "versions" / "4" / "model.safetensors")
    lock = write(storage.models / "mine" / ".lock")
    age(lock)
    model = model_folder(storage, "labels2photo", "some-run")
    temp = write(model / ".config.json.a1b2c3d4")  # an interrupted atomic_write
    for path in old:
        age(next(p for p in (path, *path.parents) if p.name.startswith(".")))
    age(temp)
    fresh = write(storage.root / "results" / f".{uuid.uuid4().hex}.newnew12" / "0.png")

    report = sweep(storage, store)

    assert not any(path.exists() for path in old) and not temp.exists()
    assert report.leftovers == len(old) + 1
    assert fresh.exists()  # being written
    assert live_temp.exists()  # inside a live job's folder: never touched
    assert (model / "config.json").exists() and (model / "model.safetensors").exists()
    assert kept_version.exists() and lock.exists()  # a version, and the model's lock file


def test_exports_of_deleted_models_go_and_models_never(storage, redis_client):
    store = JobStore(redis_client)
    kept = model_folder(storage, "kept", "run-1")
    write(storage.root / "exports" / "kept" / "model.onnx", b"k" * 64)
    write(storage.root / "exports" / "deleted" / "model.onnx", b"d" * 64)
    write(storage.root / "exports" / "deleted" / "model.zip", b"z" * 36)
    orphan_model = model_folder(storage, "no-job-record", uuid.uuid4().hex)

    report = sweep(storage, store)

    assert report.exports == 1 and report.bytes == 100
    assert not (storage.root / "exports" / "deleted").exists()
    assert (storage.root / "exports" / "kept" / "model.onnx").exists()
    assert kept.is_dir() and orphan_model.is_dir()  # models/ holds no job folders


def test_a_dry_run_only_reports(storage, redis_client):
    store = JobStore(redis_client)
    folders = job_files(storage, uuid.uuid4().hex)
    before = snapshot(storage.root)
    report = sweep(storage, store, dry_run=True)
    assert report.count == 3 and report.bytes == 1400
    assert snapshot(storage.root) == before and all(f.is_dir() for f in folders)


def test_one_worker_sweeps_at_a_time_every_interval(storage, redis_client):
    store = JobStore(redis_client)
    clock = [0.0]
    first = Sweeper(storage, store, interval=60, clock=lambda: clock[0])
    second = Sweeper(storage, store, interval=60, clock=lambda: clock[0])
    assert first.sweep_if_due("a") is None  # not due right after start
    clock[0] = 61
    assert first.sweep_if_due("a") is not None
    assert second.sweep_if_due("b") is None  # the lock: one sweep per interval
    assert redis_client.get(LOCK_KEY) == b"a"
    assert Sweeper(storage, store, interval=0, clock=lambda: 1e9).sweep_if_due("c") is None


def test_the_reconciler_thread_sweeps(storage, redis_client):
    store = JobStore(redis_client)
    orphan = job_files(storage, uuid.uuid4().hex)
    reconciler = Reconciler(store, send=lambda job: None, grace=60)
    sweeper = Sweeper(storage, store, interval=0.2)
    thread = ReconcilerThread(reconciler, "test", 0.1, sweeper).start()
    try:
        deadline = time.monotonic() + 10
        while any(f.exists() for f in orphan) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        thread.stop()
    assert not any(f.exists() for f in orphan)
