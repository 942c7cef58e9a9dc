"""A full storage volume: the job fails `storage_full`, nothing half-written stays, work goes on.

The real case runs a real worker whose storage root is a small tmpfs filled to the brim (needs
root to mount, as on the CI machine; skipped elsewhere). Where no tmpfs can be mounted, the
in-process test makes the PNG writer raise ENOSPC instead.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import obstore
import pytest
import redis
from obstore.exceptions import GenericError

import training.state
from core.jobs import QUEUE_INFER, TASK_SAMPLE, Job, JobKind, JobStatus, JobStore
from core.storage import Storage
from tests.conftest import redis_db
from tests.workers.processes import WorkerProcess, client, ended, wait_for
from tests.workers.test_training_jobs import TINY
from tests.workers.tiny import save_tiny_model
from training.demo import build_demo
from training.state import load_state
from workers import inference
from workers.errors import describe
from workers.training_jobs import run_training


@pytest.fixture
def small_volume(tmp_path):
    """A 4 MiB tmpfs at tmp_path/volume, unmounted after the test."""
    volume = tmp_path / "volume"
    volume.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(volume)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield volume
    subprocess.run(["umount", "-l", str(volume)], check=False)


def fill(volume: Path) -> Path:
    """Fill the volume with one file until the disk is full; the file's path."""
    filler = volume / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 1024)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def leftovers(storage: Storage) -> list[str]:
    results = storage.root / "results"
    return sorted(p.name for p in results.iterdir()) if results.exists() else []


def test_a_job_on_a_full_volume_fails_storage_full_and_the_next_one_works(
    small_volume, redis_url, tmp_path
):
    url = redis_db(redis_url, 5)
    redis.Redis.from_url(url).flushdb()
    storage = Storage(small_volume / "data")
    storage.ensure()
    save_tiny_model(storage.models, "digits")
    store = JobStore(redis.Redis.from_url(url))
    worker = WorkerProcess(
        QUEUE_INFER,
        "full",
        {"GANSERVE_REDIS_URL": url, "GANSERVE_DATA_DIR": str(storage.root)},
        tmp_path / "worker.log",
    )

    def sample() -> Job:
        job = store.create(Job(kind=JobKind.sample, model="digits", params={"count": 16}))
        client(url).send_task(TASK_SAMPLE, args=[job.id], queue=QUEUE_INFER, task_id=job.id)
        return wait_for(store, job.id, ended, timeout=60)

    try:
        worker.wait_ready()
        filler = fill(small_volume)
        failed = sample()
        assert failed.status == JobStatus.failed
        assert failed.error.code == "storage_full", failed.error
        assert "storage volume is full" in failed.error.message
        assert leftovers(storage) == []  # no half-written result, no staging folder
        filler.unlink()  # space again: the same worker serves the next job
        done = sample()
        assert done.status == JobStatus.succeeded, done.error
        assert leftovers(storage) == [done.id]
    finally:
        worker.kill()
        shutil.rmtree(storage.root, ignore_errors=True)


def test_enospc_from_the_store_is_storage_full_with_nothing_left(
    make_context, fresh_cache, monkeypatch
):
    """The store fails the third write as obstore reports a full volume (its text naming a
    local path): the job fails `storage_full` naming the file, and the two written are gone."""
    ctx = make_context(JobKind.sample, "digits", count=4)
    put = obstore.put
    writes = []

    def full_at_the_third(store, key, *args, **kwargs):
        writes.append(key)
        if len(writes) < 3:
            return put(store, key, *args, **kwargs)
        raise GenericError(f"Unable to copy data to {ctx.storage.root}/x: (os error 28)")

    monkeypatch.setattr(obstore, "put", full_at_the_third)
    with pytest.raises(OSError) as raised:
        inference.sample(ctx)
    error = describe(raised.value)
    assert error.code == "storage_full"
    assert "(1.png)" in error.message  # latents.npy and 0.png were written first
    assert str(ctx.storage.root) not in error.message
    assert leftovers(ctx.storage) == []


def test_a_checkpoint_that_hits_a_full_disk_fails_storage_full_and_keeps_the_last_one(
    make_context, storage, monkeypatch
):
    data = build_demo("digits", storage.datasets / "d1", size=16, count=16)
    (data / "dataset.json").write_text(json.dumps({"id": "d1", "kind": "labeled"}))
    config = {**TINY, "steps": 4, "checkpoint_every": 2, "sample_every": 100}
    first = make_context(JobKind.training, family="unetgan", dataset="d1", config=config)
    run = storage.run_dir(first.job_id)
    saved = training.state.torch.save
    calls = []

    def full_after_the_first(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 1:
            return saved(obj, path, *args, **kwargs)
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(training.state.torch, "save", full_after_the_first)
    with pytest.raises(OSError) as raised:
        run_training(first)
    assert describe(raised.value).code == "storage_full"
    assert len(calls) == 2
    assert load_state(run)["step"] == 2  # the last whole checkpoint, readable
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []
