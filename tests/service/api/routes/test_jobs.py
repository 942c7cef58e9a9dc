"""GET /v1/jobs, GET /v1/jobs/{id} (with ?wait), GET .../images/{k}, DELETE /v1/jobs/{id}."""

import io
import threading
import time

import pytest
from PIL import Image

from core.jobs import JobStatus


@pytest.fixture
def job(client) -> dict:
    response = client.post("/v1/samples", json={"model": "faces", "count": 2, "seed": 1})
    assert response.status_code == 202
    return response.json()


def test_get_job(client, job):
    response = client.get(f"/v1/jobs/{job['id']}")
    assert response.status_code == 200
    polled = response.json()
    assert polled == job
    assert polled["created_at"].endswith("Z")
    assert polled["started_at"] is None
    assert polled["progress"] == 0.0
    assert polled["result"] is None
    assert polled["error"] is None


def test_unknown_job_is_404(client):
    for job_id in ("0" * 32, "no-such-job", "bad.id"):
        response = client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "job_not_found"
    assert client.delete("/v1/jobs/" + "0" * 32).status_code == 404


def test_list_jobs_filters(client, job):
    ids = [j["id"] for j in client.get("/v1/jobs").json()["jobs"]]
    assert job["id"] in ids
    samples = client.get("/v1/jobs", params={"kind": "sample", "status": "queued"}).json()
    assert job["id"] in [j["id"] for j in samples["jobs"]]
    assert all(j["kind"] == "sample" for j in samples["jobs"])
    anything = client.get("/v1/jobs", params={"kind": "", "status": ""}).json()["jobs"]
    assert job["id"] in [j["id"] for j in anything]
    trainings = client.get("/v1/jobs", params={"kind": "training"}).json()["jobs"]
    assert job["id"] not in [j["id"] for j in trainings]
    for params in ({"status": "pending"}, {"kind": "video"}, {"limit": 0}):
        response = client.get("/v1/jobs", params=params)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_field"


def test_wait_long_polls_a_queued_job(client, job):
    started = time.monotonic()
    response = client.get(f"/v1/jobs/{job['id']}", params={"wait": 1})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert 0.9 <= elapsed < 5  # it waited, and not for long past the 1 s asked


def test_wait_returns_when_the_job_ends(client, gateway, job):
    store = gateway.store()

    def finish() -> None:
        time.sleep(0.4)
        store.update(job["id"], status=JobStatus.succeeded, finished_at=time.time(), progress=1)

    worker = threading.Thread(target=finish)
    started = time.monotonic()
    worker.start()
    response = client.get(f"/v1/jobs/{job['id']}", params={"wait": 10})
    elapsed = time.monotonic() - started
    worker.join()
    assert response.json()["status"] == "succeeded"
    assert response.json()["finished_at"].endswith("Z")
    assert elapsed < 5  # well before the 10 s wait


@pytest.mark.parametrize("wait", ["31", "0", "-1", "soon"])
def test_wait_out_of_range_is_422(client, job, wait):
    response = client.get(f"/v1/jobs/{job['id']}", params={"wait": wait})
    assert response.status_code == 422
    assert "wait" in response.json()["error"]["message"]


def test_result_images(client, gateway, job):
    results = gateway.data_dir / "results" / job["id"]
    results.mkdir(parents=True)
    for k in range(2):
        Image.new("RGB", (8, 8), (k * 100, 0, 0)).save(results / f"{k}.png")
    gateway.store().update(
        job["id"], status=JobStatus.succeeded, finished_at=time.time(), result={"count": 2}
    )
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["result"]["images"] == [
        f"/v1/jobs/{job['id']}/images/0",
        f"/v1/jobs/{job['id']}/images/1",
    ]
    response = client.get(done["result"]["images"][1])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).getpixel((0, 0)) == (100, 0, 0)
    missing = client.get(f"/v1/jobs/{job['id']}/images/2")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "image_not_found"
    assert client.get(f"/v1/jobs/{'0' * 32}/images/0").status_code == 404
    assert client.get(f"/v1/jobs/{job['id']}/images/-1").status_code == 422


def test_cancel_a_queued_job(client, gateway, job):
    response = client.delete(f"/v1/jobs/{job['id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    assert gateway.store().cancel_requested(job["id"])
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"
    again = client.delete(f"/v1/jobs/{job['id']}")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "job_ended"


def test_cancel_a_running_job(client, gateway, job):
    store = gateway.store()
    store.update(job["id"], status=JobStatus.running, started_at=time.time())
    response = client.delete(f"/v1/jobs/{job['id']}")
    assert response.status_code == 202
    assert response.json()["status"] == "running"  # the worker ends it cancelled
    assert store.cancel_requested(job["id"])
