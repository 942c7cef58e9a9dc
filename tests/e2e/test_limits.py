"""Every request is bounded, end to end: a real stack (embedded Redis, gateway, Celery workers),
tiny real models, real HTTP.

- the smallest truncation draws at once (the old rejection loop never ended below it) and a
  smaller one is a 422 naming `truncation`;
- latents out of range or not finite are a 422 naming them;
- `DELETE` of a running discriminator rejection sampling job stops it within seconds, and the
  worker serves the next job.

(Time limits with real workers: `tests/workers/test_time_limits.py`.)
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.params import MAX_LATENT_ABS, MIN_TRUNCATION
from tests.e2e.stack import running_stack, save_tiny_models, wait_job

SAMPLER = "tiny-u"  # 3-class U-Net GAN, 32 px RGB, latent_dim 8, with its discriminator
Z = 8


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("limits-stack")
    save_tiny_models(data_dir / "models", translator="tiny-p2p", sampler=SAMPLER)
    with running_stack(data_dir) as (http, _stack):
        yield http


def run(client, path: str, body: dict, timeout: float = 120) -> dict:
    """Submit a JSON job and wait for it to succeed; its result."""
    response = client.post(path, json=body)
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"], timeout=timeout)
    assert job["status"] == "succeeded", job
    return job["result"]


def field_error(response, field: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "invalid_field" and field in error["detail"], error
    return error["detail"]


def test_the_smallest_truncation_draws_at_once_and_a_smaller_one_is_422(client):
    started = time.monotonic()
    body = {"model": SAMPLER, "count": 64, "seed": 3, "truncation": MIN_TRUNCATION}
    drawn = run(client, "/v1/samples", body, timeout=60)
    assert time.monotonic() - started < 60
    latents = np.asarray(drawn["latents"], np.float32)  # inline: 64 x 8 numbers
    assert latents.shape == (64, Z) and np.abs(latents).max() <= np.float32(MIN_TRUNCATION)
    assert np.abs(latents).max() > MIN_TRUNCATION / 2  # spread over [-t, t], not all zero
    walk = {"model": SAMPLER, "start": {"seed": 1}, "end": {"seed": 2}, "frames": 3}
    run(client, "/v1/interpolations", {**walk, "truncation": MIN_TRUNCATION}, timeout=60)
    for too_small in (MIN_TRUNCATION * 0.99, 1e-6, 1e-300):
        field_error(
            client.post("/v1/samples", json={**body, "truncation": too_small}), "truncation"
        )
        field_error(
            client.post("/v1/interpolations", json={**walk, "truncation": too_small}), "truncation"
        )


def test_latents_out_of_range_or_not_finite_are_422(client):
    inside = [MAX_LATENT_ABS] + [-MAX_LATENT_ABS] + [0.0] * (Z - 2)
    run(client, "/v1/samples", {"model": SAMPLER, "latents": [inside], "class_labels": [1]})
    outside = [0.0] * (Z - 1) + [MAX_LATENT_ABS * 1.5]
    body = {"model": SAMPLER, "latents": [outside], "class_labels": [1]}
    assert "latents.0.7" in field_error(client.post("/v1/samples", json=body), "latents")
    for number in ("NaN", "Infinity", "-1e400"):
        raw = '{"model": "tiny-u", "class_labels": [0], "latents": [[' + number + ", 0, 0, 0"
        raw += ", 0, 0, 0, 0]]}"
        response = client.post(
            "/v1/samples", content=raw, headers={"Content-Type": "application/json"}
        )
        assert "finite" in field_error(response, "latents.0.0")


def test_deleting_a_running_drs_sample_stops_it_within_seconds(client):
    # DRS at its most: 4096 burn-in and 16384 more candidates, some 30 s on one core
    drs = {"method": "drs", "burn_in": 4096, "max_candidates": 16384, "percentile": 100}
    response = client.post(
        "/v1/samples", json={"model": SAMPLER, "count": 64, "seed": 5, "filter": drs}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while client.get(f"/v1/jobs/{job_id}").json()["status"] != "running":
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.1)
    time.sleep(2)  # well inside the candidate loop
    asked = time.monotonic()
    cancel = client.post(f"/v1/jobs/{job_id}/cancel")
    assert cancel.status_code == 202, cancel.text
    job = wait_job(client, job_id, timeout=30)
    assert job["status"] == "cancelled", job
    assert time.monotonic() - asked < 5, "the job did not stop within seconds"
    assert job["result"] in (None, {})
    # the worker goes on: the next job is served at once
    started = time.monotonic()
    run(client, "/v1/samples", {"model": SAMPLER, "count": 2, "seed": 6})
    assert time.monotonic() - started < 30
