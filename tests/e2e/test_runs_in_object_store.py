"""Datasets and training runs in the object store, through the real stack on a real S3 server
(SeaweedFS): a dataset uploaded, a tiny run trained, its previews and stats served by the gateway
from the store, its objects there; a run whose training worker is SIGKILLed after a checkpoint
resumes on a training worker with its own, empty data directory (it downloads the run folder)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from core.object_store import ObjectStore
from core.storage import dataset_key, run_key
from ganserve.launcher import Stack
from tests.e2e.stack import running_stack, upload_dataset, wait_job
from training.demo import build_demo

TINY = {"width": 4, "latent_dim": 8, "batch_size": 4, "sample_count": 4, "metrics_images": 16}
# a quick redelivery of a dead worker's message, and a quick look for jobs nobody runs
QUICK_REDELIVERY = {"GANSERVE_VISIBILITY_TIMEOUT": "6", "GANSERVE_RECONCILE_SECONDS": "1"}


@pytest.fixture
def digits(tmp_path) -> Path:
    """A small labeled image folder (3 classes of handwritten digits)."""
    return build_demo("digits", tmp_path / "digits", size=16, count=24)


def stored_names(objects: ObjectStore, prefix: str) -> set[str]:
    return {info.key.removeprefix(f"{prefix}/") for info in objects.list(prefix)}


def stats_steps(objects: ObjectStore, job_id: str) -> list[int]:
    """The steps of a run's stored stats (a last line still being written left out)."""
    text = (objects.read(run_key(job_id, "stats.jsonl")) or b"").decode()
    steps = []
    for line in text.splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except ValueError:
            continue
    return steps


def test_a_dataset_and_a_run_live_in_the_store(tmp_path, s3_url, digits):
    data_dir = tmp_path / "data"
    objects = ObjectStore.open(s3_url, tmp_path)
    with running_stack(data_dir, GANSERVE_STORAGE_URL=s3_url) as (client, _):
        dataset = upload_dataset(client, digits, "digits", "labeled")
        prefix = dataset_key(dataset["id"])
        names = stored_names(objects, prefix)
        assert "dataset.json" in names and len(names) == 1 + dataset["image_count"] == 25
        assert client.get("/v1/datasets").json()["datasets"][0]["id"] == dataset["id"]
        assert not list((data_dir / "datasets").iterdir())  # no local copy, no staging left
        config = {**TINY, "steps": 8, "sample_every": 4, "log_every": 2}
        job = client.post(
            "/v1/training-runs",
            json={"family": "unetgan", "dataset": dataset["id"], "config": config},
        ).json()
        done = wait_job(client, job["id"])
        assert done["status"] == "succeeded", done
        preview = client.get(f"/v1/jobs/{job['id']}/preview")
        assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")
        assert preview.headers["x-preview-step"] == "8"
        assert done["progress_detail"]["preview_step"] == 8
        first = client.get(f"/v1/jobs/{job['id']}/preview", params={"step": 4})
        assert first.status_code == 200 and first.content != preview.content
        stats = client.get(f"/v1/jobs/{job['id']}/stats").json()["stats"]
        assert sorted({row["step"] for row in stats}) == [2, 4, 6, 8]
        # the dataset, read from the store by the training worker, is in use no more
        deleted = client.delete(f"/v1/datasets/{dataset['id']}")
        assert deleted.status_code == 204, deleted.text
        assert objects.list(prefix) == []
        assert client.get(f"/v1/datasets/{dataset['id']}").status_code == 404
    run = stored_names(objects, run_key(job["id"]))
    for name in ("options.json", "stats.jsonl", "training_state.pt", "model/config.json"):
        assert name in run, name
    assert {"samples/step_0000004.png", "samples/step_0000008.png"} <= run
    assert any(name.startswith("tensorboard/") for name in run)
    assert not (data_dir / "runs" / job["id"]).exists()  # nothing stored locally
    assert not (data_dir / "work" / "runs" / job["id"]).exists()  # the working copy is gone
    assert list((data_dir / "cache" / "datasets").iterdir())  # the dataset, downloaded once


def _wait_for_checkpoint(objects: ObjectStore, job_id: str, stack: Stack) -> None:
    deadline = time.monotonic() + 120
    while not objects.exists(run_key(job_id, "training_state.pt")):
        assert stack.failed() is None, f"{stack.failed()} exited"
        assert time.monotonic() < deadline, "no checkpoint reached the store"
        time.sleep(0.1)


def test_a_killed_run_resumes_on_a_host_with_an_empty_data_directory(tmp_path, s3_url, digits):
    objects = ObjectStore.open(s3_url, tmp_path)
    other_host = tmp_path / "other-host"
    env = {"GANSERVE_STORAGE_URL": s3_url, **QUICK_REDELIVERY}
    with running_stack(tmp_path / "data", **env) as (client, stack):
        dataset = upload_dataset(client, digits, "digits", "labeled")
        config = {**TINY, "steps": 240, "checkpoint_every": 20, "sample_every": 20, "log_every": 5}
        job = client.post(
            "/v1/training-runs",
            json={"family": "unetgan", "dataset": dataset["id"], "config": config},
        ).json()
        _wait_for_checkpoint(objects, job["id"], stack)
        os.killpg(stack.processes["worker-train"].pid, signal.SIGKILL)  # pool and all
        stack.processes["worker-train"].wait()
        killed_at = max(stats_steps(objects, job["id"]))
        assert killed_at < 240, "the run ended before its worker was killed"
        grid = run_key(job["id"], "samples/step_0000020.png")
        written_before = objects.info(grid)
        assert written_before is not None
        # a training worker on another host: nothing shared but Redis and the store
        command, worker_env = stack.commands["worker-train"]
        stack.start("worker-train-2", command, {**worker_env, "GANSERVE_DATA_DIR": str(other_host)})
        done = wait_job(client, job["id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["steps"] == 240
    steps = stats_steps(objects, job["id"])
    assert steps == sorted(steps) and set(steps) == set(range(5, 241, 5))  # resumed, no gap
    # resumed from the checkpoint, not restarted: the grids from before the kill were kept as
    # they were (a restarted run would have written them again)
    assert objects.info(grid) == written_before
    assert list((other_host / "cache" / "datasets").iterdir())  # its own copy of the dataset
    assert not (other_host / "work" / "runs" / job["id"]).exists()
