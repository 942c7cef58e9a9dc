"""The tasks end to end: real `infer` and `train` Celery workers, a real Redis, real tiny models.

Jobs are recorded with JobStore and sent by task name, as the gateway does; the tests read the
records and the storage root only.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
import redis
from PIL import Image

import models
from core.jobs import (
    QUEUE_INFER,
    QUEUE_OF_KIND,
    QUEUE_TRAIN,
    TASK_OF_KIND,
    Job,
    JobKind,
    JobStatus,
    JobStore,
)
from core.model_folder import has_discriminator
from core.model_registry import ModelRegistry
from core.storage import RUN_STATE_FILE, Storage
from tests.conftest import redis_db
from tests.e2e.stack import version_folder
from tests.workers.files import put, read_png, upload
from tests.workers.processes import WorkerProcess, client, ended, wait_for
from tests.workers.tiny import save_tiny_discriminator, save_tiny_model
from training.demo import build_demo

TINY_TRAINING = {
    "width": 4,
    "latent_dim": 8,
    "batch_size": 4,
    "log_every": 1,
    "sample_count": 4,
    "metrics_images": 20,
}


class Stack:
    """Two workers on one storage root and one Redis database, and helpers to send jobs."""

    def __init__(self, url: str, storage: Storage, infer: WorkerProcess, train: WorkerProcess):
        self.url, self.storage, self.infer, self.train = url, storage, infer, train
        self.store = JobStore(redis.Redis.from_url(url))
        self.celery = client(url)

    def create(self, kind: JobKind, model: str | None = None, **params) -> Job:
        return self.store.create(Job(kind=kind, model=model, params=params, owner="tester"))

    def send(self, job: Job) -> Job:
        self.celery.send_task(TASK_OF_KIND[job.kind], args=[job.id], queue=QUEUE_OF_KIND[job.kind])
        return job

    def submit(self, kind: JobKind, model: str | None = None, **params) -> Job:
        return self.send(self.create(kind, model, **params))

    def wait(self, job: Job, timeout: float = 60.0, seen: list[Job] | None = None) -> Job:
        return wait_for(self.store, job.id, ended, timeout, seen)


@pytest.fixture(scope="module")
def stack(redis_url, tmp_path_factory) -> Iterator[Stack]:
    url = redis_db(redis_url, 1)
    redis.Redis.from_url(url).flushdb()
    root = tmp_path_factory.mktemp("stack")
    storage = Storage(root / "data")
    storage.ensure()
    for model_id in ("p2p", "digits"):
        save_tiny_model(storage.models, model_id)
    digits = build_demo("digits", storage.datasets / "digits1", size=16, count=20)
    (digits / "dataset.json").write_text(
        json.dumps(
            {
                "id": "digits1",
                "name": "digits",
                "kind": "labeled",
                "owner": "tester",
                "image_count": 20,
                "classes": [str(k) for k in range(10)],
            }
        )
    )
    env = {"GANSERVE_REDIS_URL": url, "GANSERVE_DATA_DIR": str(storage.root)}
    workers = []
    try:
        workers.append(WorkerProcess(QUEUE_INFER, "infer", env, root / "infer.log"))
        workers.append(WorkerProcess(QUEUE_TRAIN, "train", env, root / "train.log"))
        for worker in workers:
            worker.wait_ready()
        yield Stack(url, storage, *workers)
    finally:
        for worker in workers:
            worker.kill()


def test_a_translation_succeeds_and_keeps_the_input_size(stack):
    job = stack.create(JobKind.translation, "p2p", seed=3)
    upload(stack.storage, job.id, Image.new("RGB", (50, 37), (120, 40, 200)))
    done = stack.wait(stack.send(job))
    assert done.status == JobStatus.succeeded, done.error
    assert done.result["count"] == 1
    assert done.attempts == 1 and done.progress == 1.0 and done.finished_at >= done.started_at
    assert read_png(stack.storage.result_dir(job.id) / "0.png").size == (50, 37)


def test_samples_from_one_seed_are_identical(stack):
    jobs = [stack.submit(JobKind.sample, "digits", count=3, seed=42, class_label=1) for _ in "ab"]
    pictures = []
    for job in jobs:
        done = stack.wait(job)
        assert done.status == JobStatus.succeeded, done.error
        assert done.result["count"] == 3
        folder = stack.storage.result_dir(job.id)
        pictures.append([(folder / f"{k}.png").read_bytes() for k in range(3)])
    assert pictures[0] == pictures[1]


def test_a_cancelled_queued_job_never_runs(stack):
    cancelled = stack.create(JobKind.sample, "digits", count=1)
    stack.store.request_cancel(cancelled.id)  # the gateway's DELETE of a queued job
    stack.store.update(cancelled.id, status=JobStatus.cancelled)
    flagged = stack.create(JobKind.sample, "digits", count=1)
    stack.store.request_cancel(flagged.id)  # flag raised, record not yet changed
    for job in (cancelled, flagged):
        stack.send(job)
    after = stack.wait(stack.submit(JobKind.sample, "digits", count=1))  # the queue is FIFO
    assert after.status == JobStatus.succeeded
    for job in (cancelled, flagged):
        record = stack.store.get(job.id)
        assert record.status == JobStatus.cancelled
        assert record.attempts == 0 and record.started_at is None and record.result is None
        assert not stack.storage.result_dir(job.id).exists()


def test_failing_jobs_end_failed_with_a_readable_message(stack):
    save_tiny_model(stack.storage.models, "digits", seed=0)
    shutil.copytree(stack.storage.models / "digits", stack.storage.models / "doomed")
    gone = stack.create(JobKind.sample, "doomed", count=2)
    shutil.rmtree(stack.storage.models / "doomed")  # deleted after the job was queued
    corrupt = stack.create(JobKind.translation, "p2p")
    upload(stack.storage, corrupt.id, Image.new("RGB", (8, 8)))
    (stack.storage.upload_dir(corrupt.id) / "input.png").write_bytes(b"\x89PNG broken")
    for job in (gone, corrupt):
        stack.send(job)
    gone, corrupt = stack.wait(gone), stack.wait(corrupt)
    assert gone.status == JobStatus.failed and gone.error.code == "model_not_found"
    assert "there is no model called 'doomed'" in gone.error.message
    assert corrupt.status == JobStatus.failed and corrupt.error.code == "bad_image"
    assert corrupt.error.message.startswith("the uploaded image could not be read")
    assert gone.finished_at is not None and corrupt.finished_at is not None


def test_a_training_run_registers_a_model_the_infer_worker_serves(stack):
    config = {**TINY_TRAINING, "steps": 12}
    job = stack.submit(
        JobKind.training, family="unetgan", dataset="digits1", name="My Digits", config=config
    )
    seen: list[Job] = []
    done = stack.wait(job, timeout=120, seen=seen)
    assert done.status == JobStatus.succeeded, done.error
    progress = [j.progress for j in seen if j.status == JobStatus.running]
    assert any(0 < p < 1 for p in progress) and progress == sorted(progress)
    assert done.progress_detail["step"] == 12 and "G_enc" in done.progress_detail["losses"]
    model_id = done.result["model"]
    assert model_id == "my-digits" and done.result["steps"] == 12
    assert done.result["run"] == job.id and "swd_avg" in done.result["metrics"]
    folder = version_folder(stack.storage.models, model_id)
    assert done.result["model_ref"] == f"{model_id}@1" and folder.name == "1"
    card = models.read_card(folder)
    classes = [d for d in (stack.storage.datasets / "digits1").iterdir() if d.is_dir()]
    assert card.family == "unetgan" and card.image_size == 32
    assert card.num_classes == len(classes) > 1
    assert card.provenance["job"] == job.id and card.provenance["dataset"] == "digits1"
    assert "swd_avg" in card.metrics
    assert models.load(folder) is not None
    run = stack.storage.run_dir(job.id)
    for name in ("options.json", "stats.jsonl", RUN_STATE_FILE, "model/model.safetensors"):
        assert (run / name).exists(), name
    assert list((run / "samples").glob("*.png"))
    # the infer worker, running since before the model existed, serves it at once
    sampled = stack.wait(stack.submit(JobKind.sample, model_id, count=2, seed=0, class_label=1))
    assert sampled.status == JobStatus.succeeded, sampled.error
    assert read_png(stack.storage.result_dir(sampled.id) / "1.png").size == (32, 32)
    # the registered model keeps the run's discriminator: inspect the sample just drawn
    assert has_discriminator(folder)
    inspected = stack.wait(
        stack.submit(
            JobKind.inspection,
            model_id,
            image=f"results/{sampled.id}/1.png",  # its key in the store
            width=32,
            height=32,
            class_label=1,
            source_job=sampled.id,
        )
    )
    assert inspected.status == JobStatus.succeeded, inspected.error
    assert inspected.kind == JobKind.inspection and inspected.result["class_label"] == 1
    assert 0.0 <= inspected.result["global_score"] <= 1.0
    assert read_png(stack.storage.result_dir(inspected.id) / "0.png").size == (32, 32)


def test_cancelling_a_running_training_run_keeps_its_checkpoint(stack):
    config = {**TINY_TRAINING, "steps": 5000, "checkpoint_every": 1000, "sample_every": 1000}
    job = stack.submit(JobKind.training, family="unetgan", dataset="digits1", config=config)
    wait_for(stack.store, job.id, lambda j: j.progress > 0 or j.status.ended, timeout=60)
    stack.store.request_cancel(job.id)
    done = stack.wait(job)
    assert done.status == JobStatus.cancelled, done.error
    assert 0 < done.result["step"] < 5000 and done.result["run"] == job.id
    assert (stack.storage.run_dir(job.id) / RUN_STATE_FILE).is_file()
    registry = ModelRegistry.of(stack.storage)
    assert registry.versions(f"unetgan-{job.id[:8]}") == []  # its id claimed, nothing registered


def test_a_bad_training_config_fails_listing_the_valid_keys(stack):
    job = stack.submit(JobKind.training, family="unetgan", dataset="digits1", config={"stepz": 3})
    done = stack.wait(job)
    assert done.status == JobStatus.failed and done.error.code == "invalid_config"
    assert "stepz" in done.error.message and "valid fields:" in done.error.message


def test_an_inspection_maps_a_pix2pix_pair_at_the_images_size(stack):
    save_tiny_discriminator(stack.storage.models, "p2p")
    image = put(stack.storage, Image.effect_noise((70, 45), 50).convert("RGB"))
    a = put(stack.storage, Image.new("RGB", (70, 45), (250, 250, 250)), "input.png")
    job = stack.submit(JobKind.inspection, "p2p", image=image, input=a, width=70, height=45)
    done = stack.wait(job)
    assert done.status == JobStatus.succeeded, done.error
    result = done.result
    assert result["count"] == 2
    assert result["global_score"] is None and result["model"] == "p2p"
    assert 0.0 <= result["map_min"] <= result["map_mean"] <= 1.0
    x0, y0, x1, y1 = result["least_real_box"]
    assert 0 <= x0 < x1 <= 70 and 0 <= y0 < y1 <= 45
    grey = read_png(stack.storage.result_dir(job.id) / "0.png")
    overlay = read_png(stack.storage.result_dir(job.id) / "1.png")
    assert (grey.mode, grey.size) == ("L", (70, 45))
    assert overlay.mode == "RGB" and overlay.height > 45
    no_input = stack.wait(stack.submit(JobKind.inspection, "p2p", image=image))
    assert no_input.status == JobStatus.failed and no_input.error.code == "input_required"


def test_inspecting_a_model_without_a_discriminator_fails_with_no_discriminator(stack):
    image = put(stack.storage, Image.new("RGB", (32, 32), (10, 20, 30)))
    done = stack.wait(stack.submit(JobKind.inspection, "digits", image=image))
    assert done.status == JobStatus.failed and done.error.code == "no_discriminator"
    assert "'digits' carries no discriminator" in done.error.message
    assert not stack.storage.result_dir(done.id).exists()
