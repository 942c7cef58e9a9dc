"""Fair share between API keys on the real stack: a key's own queue limit (429 `key_queue_full`),
operators exempt, and another key's job passing a flood instead of waiting behind it."""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

import models
from tests.e2e.stack import png, running_stack, wait_job

KEYS = {"flooder": "fair-flooder-key", "other": "fair-other-key", "operator": "fair-operator-key"}
PER_KEY = 24
FLOOD = 32


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fair")
    torch.manual_seed(0)
    models.save(  # a sampler slow enough on one core that a flood of it takes a while
        models.create("unetgan-generator", image_size=64, width=16, latent_dim=32),
        data_dir / "models" / "slow",
    )
    models.save(
        models.create("pix2pix-generator", image_size=32, base_width=4), data_dir / "models" / "p2p"
    )
    env = {
        "GANSERVE_API_KEYS": f"{KEYS['flooder']},{KEYS['other']}",
        "GANSERVE_OPERATOR_KEYS": KEYS["operator"],
        "GANSERVE_MAX_QUEUED_JOBS_PER_KEY": str(PER_KEY),
        "GANSERVE_MAX_QUEUED_JOBS": "500",
        "GANSERVE_MAX_BATCH": "1",  # one job per pass: the order of the queue is what is seen
    }
    with running_stack(data_dir, **env) as (client, _):
        yield client


def _as(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


def _flood(client: httpx.Client, who: str, count: int) -> list[httpx.Response]:
    body = {"model": "slow", "count": 16}
    return [client.post("/v1/samples", json=body, headers=_as(who)) for _ in range(count)]


def _status(client: httpx.Client, job_id: str, who: str) -> str:
    return client.get(f"/v1/jobs/{job_id}", headers=_as(who)).json()["status"]


def test_a_key_past_its_share_gets_429_and_others_pass_its_flood(stack):
    flood = _flood(stack, "flooder", FLOOD)
    accepted = [r.json()["id"] for r in flood if r.status_code == 202]
    refused = [r for r in flood if r.status_code == 429]
    assert PER_KEY <= len(accepted) < FLOOD and refused
    assert {r.json()["code"] for r in refused} == {"key_queue_full"}
    assert all(r.headers["Retry-After"] for r in refused)
    assert "GANSERVE_MAX_QUEUED_JOBS_PER_KEY" in refused[0].json()["detail"]
    started = time.monotonic()
    other = stack.post(
        "/v1/translations",
        files={"image": ("in.png", png(32, 32), "image/png")},
        data={"model": "p2p"},
        headers=_as("other"),
    )
    assert other.status_code == 202  # another key's share is its own
    assert wait_job(stack, other.json()["id"], key=KEYS["other"])["status"] == "succeeded"
    waited = time.monotonic() - started
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda j: _status(stack, j, "flooder"), accepted))
    # served after at most the flood's first FAIR_SHARE_STEP jobs, not behind all of them
    assert statuses.count("queued") >= len(accepted) // 2, (waited, statuses)
    beyond = _flood(stack, "operator", 2)  # an operator has no limit of its own
    assert [r.status_code for r in beyond] == [202, 202]
    for job_id in accepted + [r.json()["id"] for r in beyond]:
        stack.post(f"/v1/jobs/{job_id}/cancel", headers=_as("operator"))
