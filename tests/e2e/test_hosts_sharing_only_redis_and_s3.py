"""A deployment over several hosts that share nothing but Redis and an S3 store.

The gateway, two inference workers and a training worker each run in a network namespace of
their own (tests/e2e/hosts.py), reaching only Redis (with a password) and a real S3 server
(SeaweedFS) on a private bridge, and each has its own, initially empty data directory. Every job
kind runs there: translations, samples, inspections, interpolations, projections, a model import
and export, a dataset upload and a training run whose worker is SIGKILLed after a checkpoint and
which resumes on a different training host, the model it registers being served by an inference
host that was running all along; deleting a model and sweeping expired jobs remove their objects.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from PIL import Image

import models
from core.jobs import JobStore
from core.object_store import ObjectStore
from core.settings import Settings
from ganserve.embedded_redis import EmbeddedRedis, free_port
from ganserve.launcher import Stack
from ganserve.processes import gateway_command, worker_command
from tests.e2e.hosts import isolated_hosts
from tests.e2e.stack import (
    png,
    save_tiny_models,
    upload_dataset,
    wait_job,
    wait_ready,
    zip_folder,
)
from tests.s3_server import aws_environment, seaweedfs
from training.demo import build_demo

HOSTS = ["gateway", "infer-a", "infer-b", "train-a", "train-b"]
STORE = "s3://ganserve-hosts/deployment"


@dataclass
class Deployment:
    """The running hosts: the stack of their processes, how to start each, the store."""

    stack: Stack
    client: httpx.Client
    objects: ObjectStore
    redis: redis.Redis
    data_dirs: dict[str, Path]
    start: dict[str, object]
    host_command: object  # (host, command) -> the command run in that host's namespace
    env: dict[str, str]  # what every host's processes get (the store, Redis)

    def run(self, host: str) -> None:
        self.start[host]()  # type: ignore[operator]

    def kill(self, host: str) -> None:
        """SIGKILL a host's processes (its worker and the worker's pool)."""
        process = self.stack.processes[host]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def keys(self, prefix: str) -> list[str]:
        return [info.key for info in self.objects.list(prefix)]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("hosts")
    with ExitStack() as cleanup:
        network = cleanup.enter_context(isolated_hosts(HOSTS))
        server = cleanup.enter_context(seaweedfs(root / "s3", ip=network.server_ip))
        cleanup.enter_context(aws_environment(server))
        redis_server = cleanup.enter_context(
            EmbeddedRedis(root / "redis", host=network.server_ip, password="hosts-secret")
        )
        objects = ObjectStore.open(STORE, root / "test-host")
        seed = root / "seed-models"
        save_tiny_models(seed, translator="p2p", sampler="digits")
        for model_id in ("p2p", "digits"):  # model folders an operator copied into the store
            objects.upload_folder(f"models/{model_id}", seed / model_id, last=["config.json"])
        port = free_port()
        data_dirs = {host: root / host for host in HOSTS}
        stack = Stack()
        cleanup.callback(stack.stop)
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")},
            **server.environment(),
            "GANSERVE_REDIS_URL": redis_server.url,
            "GANSERVE_STORAGE_URL": STORE,
            "GANSERVE_TORCH_THREADS": "1",
            "GANSERVE_VISIBILITY_TIMEOUT": "20",
            "GANSERVE_RECONCILE_SECONDS": "2",
        }

        def starter(host: str):
            env = {**base, "GANSERVE_DATA_DIR": str(data_dirs[host])}
            if host == "gateway":
                env |= {"GANSERVE_HOST": network.ip(host), "GANSERVE_PORT": str(port)}
                settings = Settings(host=network.ip(host), port=port, data_dir=data_dirs[host])
                command = gateway_command(settings)
            else:
                queue = "train" if host.startswith("train") else "infer"
                command = worker_command(queue, name=host)
            return lambda: stack.start(host, network.command(host, command), env)

        start = {host: starter(host) for host in HOSTS}
        for host in ("gateway", "infer-a", "train-a"):
            start[host]()
        client = cleanup.enter_context(
            httpx.Client(base_url=f"http://{network.ip('gateway')}:{port}", timeout=60)
        )
        wait_ready(client, stack, timeout=120)
        yield Deployment(
            stack,
            client,
            objects,
            redis.Redis.from_url(redis_server.url),
            data_dirs,
            start,
            network.command,
            base,
        )


def _ended(client: httpx.Client, response: httpx.Response) -> dict:
    assert response.status_code in (201, 202), response.text
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def _translated(client: httpx.Client, picture: bytes) -> dict:
    """A translation of `picture` by the seeded pix2pix model, ended successfully."""
    return _ended(
        client,
        client.post(
            "/v1/translations",
            files={"image": ("in.png", picture, "image/png")},
            data={"model": "p2p"},
        ),
    )


def _image(client: httpx.Client, url: str) -> Image.Image:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))


def _cached_versions(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "cache" / "models").glob("*") if p.is_dir())


def test_every_inference_kind_runs_on_hosts_that_share_only_redis_and_the_store(deployment):
    client = deployment.client
    translated = _translated(client, png(40, 24))
    assert _image(client, translated["result"]["images"][0]).size == (40, 24)
    assert deployment.keys(f"results/{translated['id']}")  # the result is in the store
    assert deployment.keys(f"uploads/{translated['id']}")
    sampled = _ended(client, client.post("/v1/samples", json={"model": "digits", "count": 2}))
    assert [_image(client, u).size for u in sampled["result"]["images"]] == [(32, 32)] * 2
    inspected = _ended(
        client,
        client.post(
            "/v1/inspections",
            data={"model": "digits", "class_label": "1"},
            files={"image": ("x.png", png(32, 32), "image/png")},
        ),
    )
    assert inspected["result"]
    walk = {"model": "digits", "start": {"seed": 1}, "end": {"seed": 2}, "frames": 3}
    interpolated = _ended(client, client.post("/v1/interpolations", json=walk))
    assert len(interpolated["result"]["images"]) == 3
    projected = _ended(
        client,
        client.post(
            "/v1/projections",
            data={"model": "digits", "steps": "5", "class_label": "1"},
            files={"image": ("t.png", png(32, 32), "image/png")},
        ),
    )
    assert _image(client, projected["result"]["images"][0]).size == (32, 32)
    # infer-a downloaded each model version it used into its own cache, once; nobody else did
    assert len(_cached_versions(deployment.data_dirs["infer-a"])) == 2
    assert _cached_versions(deployment.data_dirs["gateway"]) == []
    assert sorted(p.name for p in deployment.data_dirs["gateway"].iterdir()) == []

    deployment.kill("infer-a")  # another inference host takes over, its cache empty
    deployment.run("infer-b")
    again = _translated(client, png(16, 16))
    assert _image(client, again["result"]["images"][0]).size == (16, 16)
    assert len(_cached_versions(deployment.data_dirs["infer-b"])) == 1


def test_the_sweep_removes_an_expired_jobs_objects_from_the_store(deployment, tmp_path):
    client = deployment.client
    jobs = [_translated(client, png(16, 16, seed)) for seed in (1, 2)]
    expired, kept = jobs
    JobStore(deployment.redis).delete(expired["id"])  # its record expired (GANSERVE_RESULT_TTL)
    command = [sys.executable, "-m", "ganserve", "sweep", "--grace", "0"]
    swept = subprocess.run(
        deployment.host_command("gateway", command),  # type: ignore[operator]
        env={**deployment.env, "GANSERVE_DATA_DIR": str(tmp_path / "sweeping-host")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert swept.returncode == 0, swept.stdout + swept.stderr
    for area in ("results", "uploads"):
        assert deployment.keys(f"{area}/{expired['id']}") == []
        assert deployment.keys(f"{area}/{kept['id']}")


def test_imported_models_are_exported_and_deleted_with_their_objects(deployment, tmp_path):
    client = deployment.client
    folder = tmp_path / "imported"
    models.save(models.create("pix2pix-generator", image_size=32, base_width=4), folder)
    imported = _ended(
        client,
        client.post(
            "/v1/models",
            files={"file": ("m.zip", zip_folder(folder), "application/zip")},
            data={"id": "imported"},
        ),
    )
    model_id = imported["result"]["model"]
    assert any(k.endswith("/version.json") for k in deployment.keys(f"models/{model_id}"))
    exported = client.get(f"/v1/models/{model_id}/exports/safetensors")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    assert client.delete(f"/v1/models/{model_id}").status_code == 204
    left = deployment.keys(f"models/{model_id}")
    assert [k for k in left if "/versions/" in k] == []  # only the id's tombstone record stays


def test_a_killed_training_run_resumes_on_another_host_and_its_model_serves(deployment, tmp_path):
    client = deployment.client
    data = build_demo("digits", tmp_path / "digits", size=16, count=16)
    dataset = upload_dataset(client, data, "digits", "labeled")
    assert deployment.keys(f"datasets/{dataset['id']}")
    steps = 240
    config = {
        **{"width": 4, "latent_dim": 8, "batch_size": 4, "metrics_images": 16},
        **{"steps": steps, "checkpoint_every": 20, "sample_every": 20, "log_every": 5},
    }
    run = client.post(
        "/v1/training-runs",
        json={"family": "unetgan", "dataset": dataset["id"], "name": "hosts", "config": config},
    )
    assert run.status_code == 202, run.text
    job_id = run.json()["id"]
    deadline = time.monotonic() + 300
    while not deployment.objects.exists(f"runs/{job_id}/training_state.pt"):
        assert time.monotonic() < deadline, "no checkpoint reached the store"
        time.sleep(0.2)
    deployment.kill("train-a")  # mid-run, after a checkpoint
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] != "succeeded"
    deployment.run("train-b")  # a host that has never seen the run: it downloads it
    job = wait_job(client, job_id, timeout=600)
    assert job["status"] == "succeeded", job
    stats = (deployment.objects.read(f"runs/{job_id}/stats.jsonl") or b"").decode().splitlines()
    logged = [json.loads(line)["step"] for line in stats]
    assert logged == sorted(logged) and set(logged) == set(range(5, steps + 1, 5))  # no restart
    model = job["result"]["model"]
    sampled = _ended(client, client.post("/v1/samples", json={"model": model, "count": 1}))
    side = client.get(f"/v1/models/{model}").json()["image_size"]
    assert _image(client, sampled["result"]["images"][0]).size == (side, side)
