"""Training runs on two devices through the real stack: on this CPU host, two gloo processes.

The gateway, Redis and the workers are real processes; the training worker starts each run under
torchrun. Runs are tiny (a U-Net GAN on 16 digits at 32 px) so each takes seconds.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.stack import running_stack, upload_dataset, wait_job
from tests.workers.test_distributed_training import training_processes, wait_gone
from training.demo import build_demo

TINY = {"width": 4, "latent_dim": 8, "batch_size": 4, "log_every": 1, "metrics_images": 16}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("ddp")
    env = {"GANSERVE_VISIBILITY_TIMEOUT": "4", "GANSERVE_RECONCILE_SECONDS": "1"}  # quick resume
    with running_stack(data_dir, **env) as (client, processes):
        digits = build_demo("digits", tmp_path_factory.mktemp("digits"), size=16, count=16)
        dataset = upload_dataset(client, digits, "digits", "labeled")
        yield client, processes, data_dir, dataset["id"]


def test_a_two_device_run_reports_progress_and_registers_a_model_that_serves(stack):
    client, _, data_dir, dataset = stack
    body = {"family": "unetgan", "dataset": dataset, "devices": 2, "config": TINY | {"steps": 20}}
    job = client.post("/v1/training-runs", json=body).json()
    assert job["params"]["devices"] == 2
    details = []
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.1)  # polled: the progress is seen as it rises
        job = client.get(f"/v1/jobs/{job['id']}").json()
        if job["progress_detail"]:
            details.append(job["progress_detail"])
    assert job["status"] == "succeeded", job
    steps = [d["step"] for d in details]
    assert len(set(steps)) > 1 and steps == sorted(steps)  # progress rose while it ran
    assert all(d["total"] == 20 and "D_real" in d["losses"] for d in details)
    run = data_dir / "runs" / job["id"]
    assert json.loads((run / "options.json").read_text())["world_size"] == 2
    logged = client.get(f"/v1/jobs/{job['id']}/stats").json()
    assert len(logged["stats"]) >= 20
    preview = client.get(f"/v1/jobs/{job['id']}/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
    model = job["result"]["model"]
    listed = {m["id"]: m for m in client.get("/v1/models").json()["models"]}
    assert listed[model]["family"] == "unetgan"
    sampled = client.post("/v1/samples", json={"model": model, "count": 2, "seed": 1}).json()
    assert wait_job(client, sampled["id"])["status"] == "succeeded"
    assert training_processes(job["id"]) == []


def test_a_two_device_run_whose_worker_is_killed_resumes_on_a_new_worker(stack):
    client, processes, data_dir, dataset = stack
    config = TINY | {"steps": 30, "checkpoint_every": 3}
    body = {"family": "unetgan", "dataset": dataset, "devices": 2, "config": config}
    job = client.post("/v1/training-runs", json=body).json()
    state = data_dir / "runs" / job["id"] / "training_state.pt"
    deadline = time.monotonic() + 120
    while not state.exists():  # its first checkpoint
        assert time.monotonic() < deadline, client.get(f"/v1/jobs/{job['id']}").json()
        time.sleep(0.05)
    assert len(training_processes(job["id"])) == 3  # torchrun and its two training processes
    processes.reap("worker-train")  # SIGKILL to the worker's process group, pool and all
    killed = client.get(f"/v1/jobs/{job['id']}").json()
    assert killed["status"] == "running" and 0 < killed["progress"] < 1
    assert wait_gone(job["id"]) == []  # torchrun and its ranks died with the worker
    processes.restart("worker-train")
    done = wait_job(client, job["id"], timeout=180)
    assert done["status"] == "succeeded", done
    assert done["result"]["steps"] == 30
    assert done["started_at"] > killed["started_at"]  # a second attempt, on the new worker
    stats = (data_dir / "runs" / job["id"] / "stats.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in stats]
    assert steps == sorted(steps) and set(steps) == set(range(1, 31))  # resumed, not restarted
    assert steps[0] == 1 and len(steps) == 30 + 1  # each step once, and the end's metrics
    assert training_processes(job["id"]) == []
