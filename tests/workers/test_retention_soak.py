"""Soak: 500 small real jobs through a real worker with a 2 s `GANSERVE_RESULT_TTL`; once they
ended and their records expired, a sweep brings the disk usage of results/, uploads/ and runs/
back to where it started. The worker's own sweeper (its reconciler thread, every second here)
runs meanwhile: it removes an old orphan and leaves every live job's files alone, and the files
of an earlier job whose record has not expired survive it all."""

from __future__ import annotations

import io
import time
import uuid

import numpy as np
import pytest
from PIL import Image

from core.jobs import Job, JobKind, JobNotFound, JobStatus, JobStore, task_message
from core.storage import INPUT_FILE
from core.usage import folder_bytes
from tests.workers.processes import WorkerSetting, client, logged
from tests.workers.test_sweeper import age, write
from tests.workers.tiny import save_tiny_model
from workers.sweeper import GRACE_SECONDS, JOB_AREAS, sweep

JOBS = 500
TRANSLATIONS = 100  # with an upload each; the rest are samples of one image
TTL = 2


def picture(k: int) -> bytes:
    pixels = np.random.default_rng(k).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def setting(redis_url, tmp_path):
    setting = WorkerSetting(redis_url, tmp_path, db=9)
    for model_id in ("faces", "p2p"):
        save_tiny_model(setting.storage.models, model_id)
    yield setting
    setting.kill_workers()


def test_disk_usage_returns_to_its_start_after_500_jobs(setting):
    storage, store = setting.storage, setting.store

    def usage() -> int:
        return sum(folder_bytes(storage.root / area) for area in JOB_AREAS)

    began = time.monotonic()
    keeper = JobStore(store.redis, ttl=3600).create(  # an earlier job, not expired: it stays
        Job(kind=JobKind.sample, model="faces", owner="keeper", status=JobStatus.succeeded)
    )
    kept = write(storage.result_dir(keeper.id) / "0.png", picture(JOBS))
    start = usage()
    orphan = write(storage.result_dir(uuid.uuid4().hex) / "0.png").parent  # of a lost record
    age(orphan)

    celery, ids = client(setting.url), []
    for k in range(JOBS):
        if k < TRANSLATIONS:
            job = Job(kind=JobKind.translation, model="p2p", params={"seed": k, "mode": "resize"})
            write(storage.upload_dir(job.id) / INPUT_FILE, picture(k))  # before the record
        else:
            job = Job(kind=JobKind.sample, model="faces", params={"seed": k, "count": 1})
        store.create(job)
        celery.send_task(**task_message(job))
        ids.append(job.id)
    worker = setting.worker(
        "soak",
        GANSERVE_RESULT_TTL=str(TTL),
        GANSERVE_SWEEP_SECONDS="1",
        GANSERVE_RECONCILE_SECONDS="1",
    )

    pending = set(ids)
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            try:
                if not store.get(job_id).status.ended:
                    continue
            except JobNotFound:  # ended and expired already: live records never expire
                pass
            pending.discard(job_id)
        time.sleep(0.2)
    assert not pending, f"{len(pending)} jobs did not end:\n{worker.text()[-3000:]}"
    ran = time.monotonic() - began
    assert "sweeper: removed results/" + orphan.name in logged([worker], orphan.name)
    assert not orphan.exists()  # the worker's own sweeper took the old orphan
    # every job succeeded: its result is there (the worker's sweeps left live jobs alone)
    assert all((storage.result_dir(i) / "0.png").is_file() for i in ids)
    assert all((storage.upload_dir(i) / INPUT_FILE).is_file() for i in ids[:TRANSLATIONS])
    peak = usage()

    while store.existing(ids) and time.monotonic() < deadline + 10:
        time.sleep(0.2)  # the records lapse TTL seconds after each job ended
    assert not store.existing(ids)
    report = sweep(storage, store, now=time.time() + GRACE_SECONDS + 1)  # past the grace period

    assert report.orphans == {"results": JOBS, "uploads": TRANSLATIONS, "runs": 0}
    assert usage() == start < peak
    assert report.bytes == peak - start
    assert kept.read_bytes() == picture(JOBS)
    assert store.owners() == ["keeper"]  # the soak's ids left the owners' job indexes
    print(  # the soak's numbers, shown with pytest -s
        f"\nsoak: {JOBS} jobs ended in {ran:.1f} s; bytes under results/uploads/runs: "
        f"start {start}, peak {peak}, after the sweep {usage()}; whole test "
        f"{time.monotonic() - began:.1f} s"
    )
