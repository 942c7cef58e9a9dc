"""The latent space end to end: a real stack (embedded Redis, gateway, Celery workers), tiny
real models, real HTTP, PNGs, WebPs, GIFs and .npy files decoded as a client would.

- latents out and back in: the same latent gives the same PNG bytes;
- interpolations: the end frames are the endpoints' own samples; the animations play;
- projections: an image drawn by the model comes back at PSNR >= 25 dB, its latent redraws
  the reconstruction, progress and previews are reported, a projection can be cancelled;
- discriminator-guided sampling keeps the requested share, reproducibly.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

import models
from tests.e2e.stack import running_stack, save_tiny_models, save_with_discriminator, wait_job

SAMPLER = "tiny-u"  # 3-class U-Net GAN, 32 px RGB, latent_dim 8, with its discriminator
PGGAN = "tiny-pg"  # unconditional Progressive GAN, 16 px RGB, latent_dim 8, no discriminator
PGGAN_D = "tiny-pg-d"  # the same with its critic
PGGAN_CONFIG = {"max_resolution": 16, "latent_dim": 8, "fmap_base": 32, "fmap_max": 16}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("latent-stack")


@pytest.fixture(scope="module")
def client(data_dir):
    models_dir = data_dir / "models"
    save_tiny_models(models_dir, translator="tiny-p2p", sampler=SAMPLER)
    torch.manual_seed(1)
    generator = models.create("pggan-generator", **PGGAN_CONFIG)
    models.save(generator, models_dir / PGGAN)
    critic_config = {k: v for k, v in PGGAN_CONFIG.items() if k != "latent_dim"}
    save_with_discriminator(
        models_dir / PGGAN_D, generator, models.create("pggan-discriminator", **critic_config)
    )
    with running_stack(data_dir) as (http, _stack):
        yield http


def run(client, path: str, body: dict) -> dict:
    """Submit a JSON job and wait for it to succeed; its result."""
    response = client.post(path, json=body)
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job["result"]


def png_bytes(client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    Image.open(io.BytesIO(response.content)).load()
    return response.content


def images(client, result: dict) -> list[bytes]:
    return [png_bytes(client, url) for url in result["images"]]


def npy(client, result: dict) -> np.ndarray:
    response = client.get(result["latents_url"])
    assert response.status_code == 200
    return np.load(io.BytesIO(response.content), allow_pickle=False)


def test_latents_round_trip_bit_for_bit(client):
    drawn = run(client, "/v1/samples", {"model": SAMPLER, "count": 20, "seed": 7})
    assert (drawn["latent_count"], drawn["latent_dim"]) == (20, 8)
    kept = npy(client, drawn)
    assert kept.dtype == np.float32 and kept.shape == (20, 8)
    assert np.array_equal(kept, np.asarray(drawn["latents"], np.float32))  # inline == file
    labels = drawn["class_labels"]
    assert len(labels) == 20 and all(0 <= y < 3 for y in labels)
    pictures = images(client, drawn)

    given = {"model": SAMPLER, "latents": drawn["latents"], "class_labels": labels}
    again = run(client, "/v1/samples", given)
    assert images(client, again) == pictures
    assert again["seed"] is None and again["class_labels"] == labels

    by_reference = {"model": SAMPLER, "latents": {"job": drawn["latents_url"].split("/")[3]}}
    by_reference["latents"]["indices"] = [17, 1]  # 2 rows, drawn in a pass of 20
    picked = run(client, "/v1/samples", by_reference)
    assert images(client, picked) == [pictures[17], pictures[1]]
    assert picked["class_labels"] == [labels[17], labels[1]]
    assert np.array_equal(npy(client, picked), kept[[17, 1]])


def test_unconditional_latents_and_truncation_recorded(client):
    drawn = run(client, "/v1/samples", {"model": PGGAN, "count": 3, "seed": 2, "truncation": 0.5})
    assert drawn["truncation"] == 0.5 and drawn["class_labels"] is None
    assert np.abs(np.asarray(drawn["latents"])).max() <= 0.5
    again = run(client, "/v1/samples", {"model": PGGAN, "latents": drawn["latents"]})
    assert images(client, again) == images(client, drawn)


def frames_of(client, url: str, fmt: str) -> int:
    response = client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == f"image/{fmt}"
    with Image.open(io.BytesIO(response.content)) as animation:
        assert animation.format == fmt.upper() and animation.is_animated
        return animation.n_frames


def test_interpolation_ends_are_the_endpoint_samples(client):
    first = run(client, "/v1/samples", {"model": PGGAN, "seed": 11})
    last = run(client, "/v1/samples", {"model": PGGAN, "seed": 12})
    body = {"model": PGGAN, "start": {"seed": 11}, "end": {"seed": 12}, "frames": 6}
    walk = run(client, "/v1/interpolations", body)
    frames = images(client, walk)
    assert len(frames) == 6
    assert frames[0] == images(client, first)[0]
    assert frames[-1] == images(client, last)[0]
    assert len(set(frames)) > 2  # it moves
    assert frames_of(client, walk["animation"]["webp"], "webp") == 6
    assert frames_of(client, walk["animation"]["gif"], "gif") == 6
    path = npy(client, walk)
    assert path.shape == (6, 8)
    assert np.array_equal(path[0], npy(client, first)[0])
    # slerp keeps the norm of Gaussian latents on the way; a straight line cuts inside
    linear = run(client, "/v1/interpolations", {**body, "path": "linear"})
    middle = np.linalg.norm(npy(client, linear)[3]), np.linalg.norm(path[3])
    assert middle[0] < middle[1]


def test_interpolation_between_classes_and_from_kept_latents(client):
    start = run(client, "/v1/samples", {"model": SAMPLER, "seed": 4, "class_label": 0})
    end = run(client, "/v1/samples", {"model": SAMPLER, "seed": 5, "class_label": 2})
    start_id, end_id = (r["latents_url"].split("/")[3] for r in (start, end))
    body = {"model": SAMPLER, "start": {"job": start_id}, "end": {"job": end_id}, "frames": 5}
    walk = run(client, "/v1/interpolations", body)
    assert (walk["start_class"], walk["end_class"]) == (0, 2)
    assert walk["class_labels"] is None  # the classes in between are blends
    frames = images(client, walk)
    assert frames[0] == images(client, start)[0]
    assert frames[-1] == images(client, end)[0]
    same = run(client, "/v1/interpolations", {**body, "end": {"job": end_id, "class_label": 0}})
    assert same["class_labels"] == [0] * 5


def upload(picture: bytes) -> dict:
    return {"image": ("target.png", picture, "image/png")}


def test_projection_reconstructs_an_image_the_model_drew(client):
    drawn = run(client, "/v1/samples", {"model": SAMPLER, "seed": 3, "class_label": 1})
    target = images(client, drawn)[0]
    response = client.post(
        "/v1/projections",
        data={"model": SAMPLER, "steps": "120", "seed": "1", "class_label": "1"},
        files=upload(target),
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    job = wait_job(client, job_id)
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["psnr"] >= 25, result
    assert 0 < result["ssim"] <= 1 and result["loss"] < result["start_loss"]
    assert result["discriminator_loss"] is True  # the folder carries D: auto uses it
    assert job["progress_detail"]["step"] == 120 and job["progress"] == 1.0
    reconstruction, seen = images(client, result)
    assert Image.open(io.BytesIO(seen)).size == (32, 32)
    assert png_bytes(client, f"/v1/jobs/{job_id}/preview")
    # the latent it found redraws its reconstruction exactly, and can start an interpolation
    redrawn = run(client, "/v1/samples", {"model": SAMPLER, "latents": {"job": job_id}})
    assert images(client, redrawn) == [reconstruction]
    assert redrawn["latents"] == [result["latent"]]
    walk = run(
        client,
        "/v1/interpolations",
        {"model": SAMPLER, "start": {"job": job_id}, "end": {"seed": 9}, "frames": 3},
    )
    assert images(client, walk)[0] == reconstruction


def test_projection_of_a_photo_of_any_size_and_class_search(client):
    pixels = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    response = client.post(
        "/v1/projections",
        data={"model": SAMPLER, "steps": "10", "discriminator_loss": "off"},
        files=upload(buffer.getvalue()),
    )
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["class_label"] in (0, 1, 2)  # found by the search
    assert job["result"]["discriminator_loss"] is False
    assert isinstance(job["params"]["seed"], int)


def test_projection_without_a_discriminator(client):
    picture = images(client, run(client, "/v1/samples", {"model": PGGAN, "seed": 1}))[0]
    asked = client.post(
        "/v1/projections",
        data={"model": PGGAN, "discriminator_loss": "on"},
        files=upload(picture),
    )
    assert asked.status_code == 409 and asked.json()["code"] == "no_discriminator"
    auto = client.post(
        "/v1/projections", data={"model": PGGAN, "steps": "5"}, files=upload(picture)
    )
    job = wait_job(client, auto.json()["id"])
    assert job["status"] == "succeeded" and job["result"]["discriminator_loss"] is False


def test_a_projection_can_be_cancelled(client):
    picture = images(client, run(client, "/v1/samples", {"model": PGGAN_D, "seed": 1}))[0]
    response = client.post(
        "/v1/projections",
        data={"model": PGGAN_D, "steps": "5000", "discriminator_loss": "on"},
        files=upload(picture),
    )
    job_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while client.get(f"/v1/jobs/{job_id}").json()["progress"] == 0:
        assert time.monotonic() < deadline, "the projection reported no progress"
        time.sleep(0.2)
    assert png_bytes(client, f"/v1/jobs/{job_id}/preview")  # the reconstruction so far
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    job = wait_job(client, job_id)
    assert job["status"] == "cancelled"
    assert job["progress_detail"]["step"] < 5000


def test_keep_the_most_real(client):
    body = {"model": SAMPLER, "count": 4, "seed": 21, "filter": {"method": "top", "keep": 0.5}}
    kept = run(client, "/v1/samples", body)
    assert len(kept["images"]) == 4 and kept["filter"]["candidates"] == 8
    assert kept["filter"]["method"] == "top"
    assert images(client, run(client, "/v1/samples", body)) == images(client, kept)
    candidates = npy(client, run(client, "/v1/samples", {"model": SAMPLER, "count": 8, "seed": 21}))
    chosen = npy(client, kept)
    assert all(any(np.array_equal(row, c) for c in candidates) for row in chosen)
    # every kept image is the plain image of its latent
    again = run(
        client,
        "/v1/samples",
        {"model": SAMPLER, "latents": kept["latents"], "class_labels": kept["class_labels"]},
    )
    assert images(client, again) == images(client, kept)


@pytest.mark.parametrize("model", [SAMPLER, PGGAN_D])
def test_discriminator_rejection_sampling(client, model):
    body = {"model": model, "count": 3, "seed": 8, "filter": {"method": "drs", "burn_in": 16}}
    kept = run(client, "/v1/samples", body)
    assert len(kept["images"]) == 3 and kept["latent_count"] == 3
    assert kept["filter"]["method"] == "drs" and kept["filter"]["candidates"] >= 3
    assert images(client, run(client, "/v1/samples", body)) == images(client, kept)


def test_a_filter_needs_the_discriminator(client):
    body = {"model": PGGAN, "filter": {"method": "top"}}
    response = client.post("/v1/samples", json=body)
    assert response.status_code == 409 and response.json()["code"] == "no_discriminator"


def test_a_kept_latent_whose_file_is_gone_fails_clearly(client, data_dir):
    drawn = run(client, "/v1/samples", {"model": PGGAN, "seed": 30})
    job_id = drawn["latents_url"].split("/")[3]
    (data_dir / "results" / job_id / "latents.npy").unlink()
    response = client.post("/v1/samples", json={"model": PGGAN, "latents": {"job": job_id}})
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "latents_missing"
    assert job_id in job["error"]["message"]
