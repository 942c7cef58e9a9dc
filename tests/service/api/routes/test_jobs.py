"""GET /v1/jobs (pages, filters), GET /v1/jobs/{id} (with ?wait), GET .../images/{k},
POST /v1/jobs/{id}/cancel, DELETE /v1/jobs/{id}."""

import io
import threading
import time

import pytest
from PIL import Image

from core.jobs import JobStatus
from tests.service.factories import expect_error, sample_result


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
        assert response.json()["code"] == "job_not_found"
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
        assert response.json()["code"] == "invalid_field"


def test_the_job_list_pages_with_a_cursor_newest_first(client):
    made = [
        client.post("/v1/samples", json={"model": "faces", "count": 1, "seed": k}).json()["id"]
        for k in range(5)
    ]
    made += [client.post("/v1/samples", json={"model": "digits", "count": 1}).json()["id"]]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, "model": "faces"} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/jobs", params=params).json()
        pages += 1
        seen += [j["id"] for j in page["jobs"]]
        assert len(page["jobs"]) <= 2 and all(j["model"].startswith("faces@") for j in page["jobs"])
        cursor = page["next"]
        if cursor is None:
            break
    faces = [j for j in seen if j in made]
    assert faces == made[:5][::-1]  # newest first, each once, across pages
    assert len(seen) == len(set(seen))
    exact = client.get("/v1/jobs", params={"model": "digits@1", "limit": 1000}).json()
    assert made[5] in [j["id"] for j in exact["jobs"]] and exact["next"] is None
    other = client.get("/v1/jobs", params={"model": "digits@2"}).json()["jobs"]
    assert made[5] not in [j["id"] for j in other]
    for cursor in ("not-a-cursor", "bnVsbA", "W10"):  # garbage, base64 of null and of []
        bad = client.get("/v1/jobs", params={"cursor": cursor})
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"


def test_delete_an_ended_job_and_its_files(client, gateway, job):
    store = gateway.store()
    result = gateway.data_dir / "results" / job["id"]
    result.mkdir(parents=True)
    (result / "0.png").write_bytes(b"png")
    running = client.delete(f"/v1/jobs/{job['id']}")
    assert running.status_code == 409 and running.json()["code"] == "job_not_ended"
    assert f"POST /v1/jobs/{job['id']}/cancel" in running.json()["detail"]
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 200  # nothing removed
    store.update(job["id"], status=JobStatus.succeeded, finished_at=time.time())
    deleted = client.delete(f"/v1/jobs/{job['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert not result.exists()
    assert job["id"] not in [j["id"] for j in client.get("/v1/jobs").json()["jobs"]]
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 404


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
    assert "wait" in response.json()["detail"]


def test_result_images(client, gateway, job):
    results = gateway.data_dir / "results" / job["id"]
    results.mkdir(parents=True)
    for k in range(2):
        Image.new("RGB", (8, 8), (k * 100, 0, 0)).save(results / f"{k}.png")
    gateway.store().update(
        job["id"], status=JobStatus.succeeded, finished_at=time.time(), result=sample_result(2)
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
    assert missing.json()["code"] == "image_not_found"
    assert client.get(f"/v1/jobs/{'0' * 32}/images/0").status_code == 404
    assert client.get(f"/v1/jobs/{job['id']}/images/-1").status_code == 422


def test_cancel_a_queued_job(client, gateway, job):
    response = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    assert gateway.store().cancel_requested(job["id"])
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"
    again = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "job_ended"


def test_cancel_a_running_job(client, gateway, job):
    store = gateway.store()
    store.update(job["id"], status=JobStatus.running, started_at=time.time())
    response = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "running"  # the worker ends it cancelled
    assert store.cancel_requested(job["id"])


@pytest.mark.parametrize(
    ("fmt", "name", "media_type", "pillow"),
    [("webp", "0.webp", "image/webp", "WEBP"), ("jpeg", "0.jpg", "image/jpeg", "JPEG")],
)
def test_a_result_image_is_served_in_its_format(
    client, gateway, job, fmt, name, media_type, pillow
):
    results = gateway.data_dir / "results" / job["id"]
    results.mkdir(parents=True)
    Image.new("RGB", (64, 48), (30, 160, 90)).save(results / name, format=pillow, quality=90)
    result = sample_result(1) | {"format": fmt, "quality": 90}
    gateway.store().update(
        job["id"], status=JobStatus.succeeded, finished_at=time.time(), result=result
    )
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert (done["result"]["format"], done["result"]["quality"]) == (fmt, 90)
    url = done["result"]["images"][0]
    assert url == f"/v1/jobs/{job['id']}/images/0"  # the same URL whatever the format
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    with Image.open(io.BytesIO(response.content)) as image:
        assert (image.format, image.size) == (pillow, (64, 48))
    etag = response.headers["etag"]
    part = client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert part.status_code == 206 and part.content == response.content[:10]
    assert part.headers["content-type"] == media_type
    expect_error(client.get(f"/v1/jobs/{job['id']}/images/1"), 404, "image_not_found")


def test_a_result_that_records_no_format_is_png(client, gateway, job):
    results = gateway.data_dir / "results" / job["id"]
    results.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(results / "0.png")
    Image.new("RGB", (8, 8)).save(results / "0.webp")  # not this job's format: never served
    gateway.store().update(
        job["id"], status=JobStatus.succeeded, finished_at=time.time(), result=sample_result(1)
    )
    assert client.get(f"/v1/jobs/{job['id']}").json()["result"].get("format") is None
    response = client.get(f"/v1/jobs/{job['id']}/images/0")
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).format == "PNG"
