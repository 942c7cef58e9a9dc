"""service.jobs: backpressure per queue, the public JSON of a job."""

import pytest
from celery import Celery

from core.jobs import QUEUE_INFER, Job, JobKind
from core.model_registry import ModelRegistry
from core.params import TranslationParams
from core.public_jobs import public_job
from core.queues import queue_length
from tests.service.factories import given, translation_result


def test_queue_length_counts_what_celery_sent(gateway):
    client = gateway.redis()
    client.delete("probe")
    app = Celery("probe", broker=gateway.redis_url, set_as_current=False)
    try:
        app.send_task("ganserve.probe", args=["x"], queue="probe")
        app.send_task("ganserve.probe", args=["y"], queue="probe", priority=5)
        assert queue_length(client, "probe") == 2
    finally:
        client.delete(*client.keys("probe*"), *client.keys("_kombu.binding.probe*"))
        app.close()


def test_full_queue_answers_429_with_retry_after(strict_gateway):
    strict_gateway.redis().delete(QUEUE_INFER)
    with strict_gateway.client() as http:
        codes = [http.post("/v1/samples", json={"model": "faces"}) for _ in range(3)]
        assert [r.status_code for r in codes] == [202, 202, 429]
        refused = codes[2]
        assert refused.json()["code"] == "queue_full"
        assert int(refused.headers["Retry-After"]) > 0
        # training has its own queue
        assert queue_length(strict_gateway.redis(), "train") == 0
        jobs = http.get("/v1/jobs").json()["jobs"]
        assert len(jobs) == 2  # the refused request recorded no job
        strict_gateway.redis().delete(QUEUE_INFER)
        assert http.post("/v1/samples", json={"model": "faces"}).status_code == 202


def test_job_json_hides_paths_and_links_result_images():
    job = Job(
        kind=JobKind.translation,
        owner="someone",
        model="facades",
        params={"seed": 1, "input": "/data/uploads/x/input.png"},
        result=translation_result(8, 8) | {"count": 2},
        progress=1.5,
    )
    out = public_job(job).model_dump()
    assert given(out["params"]) == {"seed": 1, "mode": "native"}  # the typed params' default
    assert out["result"]["images"] == [f"/v1/jobs/{job.id}/images/{k}" for k in range(2)]
    assert out["progress"] == 1.0
    assert "owner" not in out


def test_a_version_removed_before_its_job_is_recorded_is_a_404(gateway, tmp_path):
    """The gateway asks again, once the job is recorded (from then on retention keeps the
    version for it), whether the version it pinned is still there."""
    from fastapi import Response

    from core.jobs import JobNotFound, JobStore
    from core.object_store import ObjectStore
    from service.errors import ApiError
    from service.jobs import JobQueue
    from tests.service.factories import write_model_folder

    store = JobStore(gateway.redis())
    write_model_folder(
        tmp_path, "gone-soon", architecture="pix2pix-generator", family="pix2pix", task="translate"
    )
    registry = ModelRegistry(tmp_path)
    digest = registry.version_digest(registry.pinned_version("gone-soon@1", None))
    app = Celery("probe", broker=gateway.redis_url, set_as_current=False)
    objects = ObjectStore.local(tmp_path)
    queue = JobQueue(store, app, gateway.redis(), 100, "anonymous", Response(), tmp_path, objects)
    try:
        kept = queue.new(JobKind.translation, "gone-soon@1", digest)
        assert queue.submit(kept, TranslationParams(seed=1)).model == "gone-soon@1"
        (tmp_path / "gone-soon" / "model.safetensors").write_bytes(b"other weights")
        late = queue.new(JobKind.translation, "gone-soon@1", kept.model_digest)
        with pytest.raises(ApiError) as refused:
            queue.submit(late, TranslationParams(seed=1))
        assert refused.value.status_code == 404 and refused.value.code == "model_not_found"
        with pytest.raises(JobNotFound):
            store.get(late.id)  # nothing recorded, nothing queued
    finally:
        gateway.redis().delete(QUEUE_INFER)
        app.close()
