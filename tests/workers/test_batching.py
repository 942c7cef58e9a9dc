"""Dynamic batching in a real worker process: batch-mates get exactly their batch-1 bytes, a bad
input fails alone, and a worker killed mid-batch loses nothing and runs nothing twice.

Jobs are recorded (which also offers them on their model's batch list) and their tasks sent
before the worker starts, so its first job finds the others waiting.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.jobs import QUEUE_INFER, Job, JobKind, JobStatus, task_message
from core.queues import queue_length
from core.storage import INPUT_FILE
from tests.workers.processes import WorkerSetting, client, ended, logged, wait_for
from tests.workers.tiny import save_tiny_discriminator, save_tiny_model

BATCH = 8


class Setting(WorkerSetting):
    """A storage root with tiny models and discriminators, a Redis database, fp32 workers."""

    def __init__(self, redis_url: str, tmp_path: Path) -> None:
        super().__init__(redis_url, tmp_path, db=3, slow_first_attempt=0.0)
        for model_id in ("p2p", "digits"):
            save_tiny_model(self.storage.models, model_id)
            save_tiny_discriminator(self.storage.models, model_id)
        self.env["GANSERVE_PRECISION"] = "fp32"  # batches equal batch 1 bit for bit in fp32
        self.celery = client(self.url)

    def picture(self, k: int) -> bytes:
        pixels = np.random.default_rng(k).integers(0, 256, (24 + k, 40, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return buffer.getvalue()

    def queue(self, kind: JobKind, model: str, k: int, picture: bytes | None = None) -> Job:
        """Record job number `k` of `kind` and send its task (an upload `picture` if given)."""
        job = Job(kind=kind, model=model)
        if kind == JobKind.translation:
            job.params = {"seed": 100 + k, "mode": "native" if k % 2 else "resize"}
        elif kind == JobKind.sample:
            job.params = {"seed": 200 + k, "count": 1 + k % 3}
        if picture is not None:
            path = self.storage.upload_dir(job.id) / INPUT_FILE
            path.parent.mkdir(parents=True)
            path.write_bytes(picture)
            if kind == JobKind.inspection:  # the last one asks for a class the model lacks
                job.params = {
                    "image": str(path.relative_to(self.storage.root)),
                    "class_label": 7 if k == BATCH - 1 else k % 3,
                }
        self.store.create(job)
        self.celery.send_task(**task_message(job))
        return job

    def queue_all(self, broken: int | None = None) -> list[Job]:
        """BATCH translations, samples and inspections; translation `broken` gets a cut PNG."""
        jobs = []
        for k in range(BATCH):
            picture = self.picture(k)
            jobs.append(
                self.queue(
                    JobKind.translation,
                    "p2p",
                    k,
                    picture[: len(picture) // 3] if k == broken else picture,
                )
            )
        jobs += [self.queue(JobKind.sample, "digits", k) for k in range(BATCH)]
        jobs += [self.queue(JobKind.inspection, "digits", k, self.picture(k)) for k in range(BATCH)]
        return jobs

    def results(self, jobs: list[Job]) -> list[list[bytes] | str]:
        """Each job's PNG bytes (or its error code), once all ended."""
        out = []
        for job in jobs:
            done = wait_for(self.store, job.id, ended, timeout=120)
            if done.status != JobStatus.succeeded:
                out.append(done.error.code if done.error else done.status.value)
                continue
            folder = self.storage.result_dir(job.id)
            out.append([(folder / f"{i}.png").read_bytes() for i in range(done.result["count"])])
        return out


@pytest.fixture
def setting(redis_url, tmp_path):
    setting = Setting(redis_url, tmp_path)
    yield setting
    setting.kill_workers()


def test_batched_jobs_get_the_bytes_they_get_alone_and_a_bad_input_fails_alone(setting):
    batched_jobs = setting.queue_all(broken=3)
    batched_worker = setting.worker("batched")
    batched = setting.results(batched_jobs)
    log = batched_worker.text()
    assert log.count(f"batched with {BATCH - 1} waiting jobs") >= 2, log[-3000:]
    batched_worker.kill()

    single_jobs = setting.queue_all(broken=3)
    setting.worker("single", GANSERVE_MAX_BATCH="1")
    single = setting.results(single_jobs)
    assert "batched with" not in setting.workers[-1].text()

    assert batched[3] == single[3] == "bad_image"  # the cut upload failed, alone
    assert batched[-1] == single[-1] == "invalid_parameter"  # the class the model lacks, alone
    failed = (3, 3 * BATCH - 1)
    assert all(isinstance(r, list) for i, r in enumerate(batched) if i not in failed)
    assert batched == single  # every other job: the same PNG bytes as at batch 1
    assert [len(r) for r in batched[BATCH : 2 * BATCH]] == [1 + k % 3 for k in range(BATCH)]
    for job in batched_jobs:
        assert setting.store.get(job.id).attempts == 1


def test_a_worker_killed_mid_batch_loses_no_job_and_runs_none_twice(setting):
    jobs = [setting.queue(JobKind.sample, "digits", k) for k in range(BATCH)]
    doomed = setting.worker("doomed", SLOW_BATCH_SECONDS="60")
    for job in jobs:  # the leader took every other job: all are running
        wait_for(setting.store, job.id, lambda j: j.status == JobStatus.running, timeout=60)
    doomed.kill()
    rescuer = setting.worker("rescuer")
    for job in jobs:
        done = wait_for(setting.store, job.id, ended, timeout=120)
        assert done.status == JobStatus.succeeded, done.error
        assert done.attempts == 2
        assert len(list(setting.storage.result_dir(job.id).glob("*.png"))) == done.result["count"]
    for job in jobs:
        logs = logged([doomed, rescuer], f"job {job.id} succeeded")
        assert logs.count(f"job {job.id} succeeded") == 1
    assert sorted(p.name for p in (setting.storage.root / "results").iterdir()) == sorted(
        job.id for job in jobs
    )  # no temporary folder left


def test_a_taken_mate_costs_no_delivery_of_its_own(setting):
    jobs = [setting.queue(JobKind.sample, "digits", k) for k in range(BATCH)]
    worker = setting.worker("once")
    for job in jobs:
        done = wait_for(setting.store, job.id, ended, timeout=120)
        assert done.status == JobStatus.succeeded and done.attempts == 1, done.error
    log = logged([worker], f"job {jobs[-1].id} succeeded")
    assert f"batched with {BATCH - 1} waiting jobs" in log
    # only the leader's message was delivered (the test's 4 s visibility timeout may deliver it
    # twice): the mates' messages were taken off the queue with them
    received = set(re.findall(r"ganserve\.sample\[(\w+)\] received", log))
    assert len(received) == 1, log[-3000:]
    assert queue_length(setting.store.redis, QUEUE_INFER) == 0
