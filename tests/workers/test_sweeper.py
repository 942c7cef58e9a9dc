"""The sweeper (`workers.sweeper`) on real files and a real Redis: files of expired jobs go,
anything of a job with a record stays, new folders get their grace, staging leftovers and exports
of deleted models go, model folders never do; the reconciler thread runs it under a lock. The
store part again on both backends (a local folder and a real S3 server), and a real worker
sweeping S3."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

from core.jobs import Job, JobKind, JobStatus, JobStore
from core.object_store import ObjectStore
from core.storage import Storage, result_key, run_key, upload_key
from tests.workers.processes import WorkerSetting, logged
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


# -- both backends: the store part through Storage.objects, on a local folder and on S3 ------


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path) -> Storage:
    """A storage on the local backend (the data directory itself) or on the session's real S3
    server (SeaweedFS), with this test's own data directory."""
    data = tmp_path / "data"
    if request.param == "s3":
        url = request.getfixturevalue("s3_url")
        return Storage(data, ObjectStore.open(url, data))
    return Storage(data)


def put_job(storage: Storage, job_id: str) -> dict[str, bytes]:
    """A job's result, upload and training run objects (a hidden one among them): key -> bytes."""
    objects = {
        result_key(job_id, "0.png"): b"r" * 300,
        upload_key(job_id): b"u" * 200,
        run_key(job_id, "samples/step_0000010.png"): b"s" * 400,
        run_key(job_id, "checkpoint.pt"): b"c" * 500,
        run_key(job_id, ".stats.jsonl.abcd1234"): b"t" * 50,  # an interrupted write's
    }
    for key, data in objects.items():
        storage.objects.put(key, data)
    return objects


def stored(storage: Storage) -> dict[str, bytes]:
    """Every object in the store, hidden ones included: key -> bytes."""
    objects = storage.objects
    return {info.key: objects.read(info.key) for info in objects.list(hidden=True)}


def test_an_expired_jobs_objects_go_and_live_jobs_objects_stay(backend, redis_client):
    short, long = JobStore(redis_client, ttl=1), JobStore(redis_client, ttl=3600)
    expired = short.create(Job(kind=JobKind.training, owner="o"))
    short.update(expired.id, status=JobStatus.succeeded)
    queued = short.create(Job(kind=JobKind.translation, model="m", owner="o"))
    running = short.create(Job(kind=JobKind.training, owner="o"))
    short.update(running.id, status=JobStatus.running)
    ended = long.create(Job(kind=JobKind.sample, model="m", owner="o"))
    long.update(ended.id, status=JobStatus.succeeded)  # ended, its record not expired yet
    gone = put_job(backend, expired.id)
    for job in (queued, running, ended):
        put_job(backend, job.id)
    backend.objects.put("models/from-the-run/versions/1/model.safetensors", b"w" * 1000)
    time.sleep(1.3)  # the expired job's record lapses
    assert short.existing([expired.id, queued.id, running.id, ended.id]) == {
        queued.id,
        running.id,
        ended.id,
    }
    kept = {k: v for k, v in stored(backend).items() if k not in gone}

    report = sweep(backend, short, now=time.time() + OLD)

    assert stored(backend) == kept  # live jobs' objects and the model, byte for byte
    assert not any(backend.objects.exists(key) for key in gone)
    assert report.orphans == {"results": 1, "uploads": 1, "runs": 1}
    assert report.bytes == sum(len(data) for data in gone.values())
    assert sorted(report.removed) == sorted(
        f"{area}/{expired.id}" for area in ("results", "uploads", "runs")
    )
    assert report.index_entries == 1
    assert sweep(backend, short, now=time.time() + OLD).count == 0  # nothing more to do


def test_new_objects_without_a_record_are_kept_for_the_grace_period(backend, redis_client):
    store = JobStore(redis_client)
    job_id = uuid.uuid4().hex  # the gateway stored its upload and has not recorded the job yet
    backend.objects.put(upload_key(job_id), b"u" * 10)
    backend.objects.put(result_key(job_id, "0.png"), b"r" * 10)
    report = sweep(backend, store)
    assert report.count == 0 and report.young == 2
    report = sweep(backend, store, now=time.time() + GRACE_SECONDS / 2)
    assert report.count == 0 and report.young == 2 and backend.objects.exists(upload_key(job_id))
    report = sweep(backend, store, now=time.time() + GRACE_SECONDS + 5)
    assert report.orphans == {"results": 1, "uploads": 1, "runs": 0} and report.young == 0
    assert backend.objects.list() == []


def test_stale_exports_go_on_both_backends(backend, redis_client):
    store = JobStore(redis_client)
    backend.objects.put("models/kept/model.json", b'{"owner": "o"}')
    backend.objects.put("exports/kept/v1_x.onnx", b"k" * 64)
    backend.objects.put("exports/deleted/v1_x.onnx", b"d" * 64)
    backend.objects.put("exports/deleted/v1_x.zip", b"z" * 36)

    report = sweep(backend, store)

    assert report.exports == 1 and report.bytes == 100 and report.removed == ["exports/deleted"]
    assert [info.key for info in backend.objects.list()] == [
        "exports/kept/v1_x.onnx",
        "models/kept/model.json",
    ]


def test_a_dry_run_only_reports_on_both_backends(backend, redis_client):
    store = JobStore(redis_client)
    job_id = uuid.uuid4().hex
    objects = put_job(backend, job_id)
    before = stored(backend)
    report = sweep(backend, store, now=time.time() + OLD, dry_run=True)
    assert report.count == 3 and report.bytes == sum(len(data) for data in objects.values())
    assert stored(backend) == before


def test_every_worker_sweeps_its_own_data_directory(backend, redis_client):
    """The store part runs in the worker holding the lock only; a worker without it still
    sweeps its host's data directory (staging leftovers, the folder cache's downloads being
    staged)."""
    store = JobStore(redis_client)
    orphan = uuid.uuid4().hex
    put_job(backend, orphan)
    staging = write(backend.root / "cache" / "models" / ".sha256_ab.k2j4h5g6" / "config.json")
    leftover = write(backend.root / "datasets" / f".staging-{uuid.uuid4().hex}" / "a.png")
    cached = write(backend.root / "cache" / "models" / "sha256_cd" / "config.json")
    for path in (staging.parent, leftover.parent, cached.parent):
        age(path)
    redis_client.set(LOCK_KEY, "another worker", px=60_000)
    clock = [0.0]
    sweeper = Sweeper(backend, store, interval=60, grace=0, clock=lambda: clock[0])
    clock[0] = 61

    assert sweeper.sweep_if_due("this worker") is None  # the store part is another's
    assert not staging.parent.exists() and not leftover.parent.exists()
    assert cached.is_file()  # a finished download stays (core.folder_cache evicts those)
    assert backend.objects.exists(result_key(orphan, "0.png"))

    redis_client.delete(LOCK_KEY)
    clock[0] = 122
    report = sweeper.sweep_if_due("this worker")
    assert report is not None and report.orphans == {"results": 1, "uploads": 1, "runs": 1}
    assert not backend.objects.exists(result_key(orphan, "0.png"))


def test_a_workers_own_sweeper_removes_expired_jobs_objects_from_s3(s3_url, redis_url, tmp_path):
    """A real worker process on S3 (`GANSERVE_STORAGE_URL`), sweeping every second with no grace:
    the objects of a job whose record expired go, a live job's stay, read by another client."""
    setting = WorkerSetting(redis_url, tmp_path, db=11)
    objects = ObjectStore.open(s3_url, tmp_path / "elsewhere")  # another host's view
    storage = Storage(tmp_path / "host", objects)
    short = JobStore(setting.store.redis, ttl=1)
    expired = short.create(Job(kind=JobKind.translation, model="m", owner="o"))
    short.update(expired.id, status=JobStatus.succeeded)
    live = JobStore(setting.store.redis, ttl=3600).create(
        Job(kind=JobKind.translation, model="m", owner="o", status=JobStatus.succeeded)
    )
    gone = put_job(storage, expired.id)
    kept = put_job(storage, live.id)
    time.sleep(1.3)
    try:
        worker = setting.worker(
            "sweeper-s3",
            GANSERVE_STORAGE_URL=s3_url,
            GANSERVE_SWEEP_SECONDS="1",
            GANSERVE_SWEEP_GRACE_SECONDS="0",
            GANSERVE_RECONCILE_SECONDS="1",
        )
        deadline = time.monotonic() + 60
        while any(objects.exists(key) for key in gone) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(objects.exists(key) for key in gone), worker.text()[-3000:]
        assert f"sweeper: removed results/{expired.id}" in logged([worker], expired.id)
        assert {key: objects.read(key) for key in kept} == kept
    finally:
        setting.kill_workers()
