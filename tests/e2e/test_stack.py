"""The whole stack end to end: real Redis, real Celery workers, real HTTP, real images."""

import io
import time

import pytest
from PIL import Image

import models
from tests.e2e.stack import png, running_stack, upload_dataset, wait_job
from training.demo import build_demo


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("stack")
    models.save(
        models.create("pix2pix-generator", image_size=32, base_width=4),
        data_dir / "models" / "tiny-p2p",
    )
    models.save(
        models.create("unetgan-generator", image_size=32, width=4, latent_dim=8, num_classes=3),
        data_dir / "models" / "tiny-digits",
    )
    with running_stack(data_dir) as (client, _stack):
        yield client, data_dir


def test_translation_keeps_the_input_size(stack):
    client, _ = stack
    response = client.post(
        "/v1/translations",
        files={"image": ("in.png", png(50, 37), "image/png")},
        data={"model": "tiny-p2p"},
    )
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    image = client.get(job["result"]["images"][0])
    assert image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (50, 37)


def test_prefer_wait_answers_the_ended_job_in_the_creating_request(stack):
    client, _ = stack
    response = client.post(
        "/v1/translations",
        files={"image": ("in.png", png(40, 24), "image/png")},
        data={"model": "tiny-p2p"},
        headers={"Prefer": "wait=30"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["preference-applied"] == "wait=30"
    job = response.json()
    assert job["status"] == "succeeded", job
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert client.get(response.headers["location"]).json() == job
    image = client.get(job["result"]["images"][0])
    assert Image.open(io.BytesIO(image.content)).size == (40, 24)
    sampled = client.post(  # a JSON request, several preferences, a capped wait
        "/v1/samples",
        json={"model": "tiny-digits", "count": 2, "seed": 3},
        headers={"Prefer": 'respond-async, wait="600"'},
    )
    assert sampled.status_code == 201, sampled.text
    assert sampled.headers["preference-applied"] == "wait=60"
    assert len(sampled.json()["result"]["images"]) == 2


def test_prefer_wait_leaves_errors_and_unended_jobs_as_they_were(stack, tmp_path):
    client, _ = stack
    missing = client.post(
        "/v1/samples", json={"model": "no-such-model"}, headers={"Prefer": "wait=5"}
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "model_not_found"
    assert "preference-applied" not in missing.headers
    ignored = client.post(  # not a whole number of seconds: the preference is ignored
        "/v1/samples", json={"model": "tiny-digits"}, headers={"Prefer": "wait=soon"}
    )
    assert ignored.status_code == 202
    wait_job(client, ignored.json()["id"])
    data = build_demo("faces", tmp_path / "faces", size=16, count=12)
    dataset = upload_dataset(client, data, "faces", "images")
    run = {
        "family": "pggan",
        "dataset": dataset["id"],
        "config": {"image_size": 16, "phase_images": 100000, "fmap_base": 64, "fmap_max": 16},
    }
    started = time.monotonic()
    slow = client.post("/v1/training-runs", json=run, headers={"Prefer": "wait=2"})
    assert slow.status_code == 202, slow.text  # a training run lasts longer than 2 s
    assert 2 <= time.monotonic() - started < 10
    assert slow.json()["status"] in ("queued", "running")
    assert "preference-applied" not in slow.headers
    assert client.post(f"/v1/jobs/{slow.json()['id']}/cancel").status_code == 202
    assert wait_job(client, slow.json()["id"])["status"] == "cancelled"


def test_same_seed_same_samples(stack):
    client, _ = stack
    bodies = []
    for _ in range(2):
        response = client.post(
            "/v1/samples", json={"model": "tiny-digits", "count": 3, "seed": 11, "class_label": 1}
        )
        assert response.status_code == 202, response.text
        job = wait_job(client, response.json()["id"])
        assert job["status"] == "succeeded", job
        assert len(job["result"]["images"]) == 3
        bodies.append([client.get(url).content for url in job["result"]["images"]])
    assert bodies[0] == bodies[1]
    assert Image.open(io.BytesIO(bodies[0][0])).size == (32, 32)


def test_training_run_registers_a_model_that_serves(stack, tmp_path):
    client, _ = stack
    data = build_demo("edges2photo", tmp_path / "pairs", size=32, count=8)
    dataset = upload_dataset(client, data, "pairs", "paired")
    assert dataset["image_count"] > 0
    run = client.post(
        "/v1/training-runs",
        json={
            "family": "pix2pix",
            "dataset": dataset["id"],
            "name": "e2e-p2p",
            "config": {"image_size": 32, "batch_size": 2, "steps": 40, "width": 4, "log_every": 1},
        },
    )
    assert run.status_code == 202, run.text
    seen = set()
    job = run.json()
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.05)  # polled, not long-polled (which answers at the end): progress is seen
        job = client.get(f"/v1/jobs/{job['id']}").json()
        seen.add(round(job["progress"], 3))
    assert job["status"] == "succeeded", job
    assert len(seen) > 1  # progress rose while it ran
    model_id = job["result"]["model"]
    listed = {m["id"]: m for m in client.get("/v1/models").json()["models"]}
    assert listed[model_id]["family"] == "pix2pix"
    translated = client.post(
        "/v1/translations",
        files={"image": ("in.png", png(40, 40, seed=2), "image/png")},
        data={"model": model_id},
    )
    assert wait_job(client, translated.json()["id"])["status"] == "succeeded"
    # the run saved its discriminator: the model inspects its own translation
    assert listed[model_id]["discriminator"] is True
    inspection = client.post(
        "/v1/inspections", data={"model": model_id, "source_job": translated.json()["id"]}
    )
    assert inspection.status_code == 202, inspection.text
    result = wait_job(client, inspection.json()["id"])
    assert result["status"] == "succeeded", result
    assert result["result"]["global_score"] is None and 0 <= result["result"]["map_min"] <= 1


def test_cancel_queued_and_running_training(stack, tmp_path):
    client, data_dir = stack
    data = build_demo("faces", tmp_path / "faces", size=16, count=12)
    dataset = upload_dataset(client, data, "faces", "images")
    long_run = {
        "family": "pggan",
        "dataset": dataset["id"],
        "config": {
            "image_size": 16,
            "phase_images": 100000,
            "fmap_base": 64,
            "fmap_max": 16,
            "latent_dim": 16,
            "batch_sizes": "4:4,8:4,16:4",
            "log_every": 1,
            "checkpoint_every": 5,
        },
    }
    running = client.post("/v1/training-runs", json=long_run).json()
    queued = client.post("/v1/training-runs", json=long_run).json()
    cancelled_queued = client.post(f"/v1/jobs/{queued['id']}/cancel")
    assert cancelled_queued.status_code in (200, 202)
    job = running
    while job["progress"] == 0 and job["status"] in ("queued", "running"):
        job = client.get(f"/v1/jobs/{running['id']}", params={"wait": 1}).json()
    assert client.post(f"/v1/jobs/{running['id']}/cancel").status_code in (200, 202)
    ended = wait_job(client, running["id"])
    assert ended["status"] == "cancelled"
    assert (data_dir / "runs" / running["id"] / "training_state.pt").exists()
    queued_job = client.get(f"/v1/jobs/{queued['id']}").json()
    assert queued_job["status"] == "cancelled" and queued_job["started_at"] is None
    assert not (data_dir / "runs" / queued["id"]).exists()


def test_a_background_run_serves_early_and_yields_to_a_user_run(stack, tmp_path):
    """The demo models' way of training: published at checkpoints, stepping aside for users."""
    client, _ = stack
    data = build_demo("edges2photo", tmp_path / "bg", size=32, count=8)
    dataset = upload_dataset(client, data, "bg", "paired")
    tiny = {"image_size": 32, "batch_size": 2, "width": 4, "log_every": 1}
    background = client.post(
        "/v1/training-runs",
        json={
            "family": "pix2pix",
            "dataset": dataset["id"],
            "name": "bg-demo",
            "background": True,
            "config": tiny | {"steps": 100000, "checkpoint_every": 5},
        },
    ).json()
    deadline = time.monotonic() + 120
    while "bg-demo" not in {m["id"] for m in client.get("/v1/models").json()["models"]}:
        assert time.monotonic() < deadline, "the background run published no model"
        time.sleep(0.5)
    first_run = client.get(f"/v1/jobs/{background['id']}").json()
    assert first_run["status"] == "running"
    user = client.post(
        "/v1/training-runs",
        json={"family": "pix2pix", "dataset": dataset["id"], "config": tiny | {"steps": 3}},
    ).json()
    job = wait_job(client, user["id"])
    assert job["status"] == "succeeded", job
    bg = client.get(f"/v1/jobs/{background['id']}").json()
    deadline = time.monotonic() + 120
    while bg["status"] == "queued" or bg["started_at"] == first_run["started_at"]:
        assert time.monotonic() < deadline, f"the background run did not come back: {bg}"
        bg = client.get(f"/v1/jobs/{background['id']}", params={"wait": 1}).json()
    # it stepped aside (back to the queue) while the user's run trained, and came back after
    # the user's run had started, resuming from its checkpoint
    assert bg["status"] == "running" and bg["progress"] > 0
    assert bg["started_at"] > job["started_at"]
    assert client.post(f"/v1/jobs/{background['id']}/cancel").status_code in (200, 202)
    assert wait_job(client, background["id"])["status"] == "cancelled"
    assert "bg-demo" in {m["id"] for m in client.get("/v1/models").json()["models"]}
