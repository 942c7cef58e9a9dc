"""Metrics end to end: the stack `ganserve up` runs (embedded Redis, gateway, a worker per
queue with its own metrics port), real jobs, real scrapes of the gateway's and the workers'
/metrics, and the Grafana dashboard's queries checked against the names those scrapes return.

The tests run in order: each one's jobs add to the workers' counters."""

import os
import signal
import socket
import time
from dataclasses import dataclass

import httpx
import pytest
import torch

from core.jobs import QUEUE_INFER, QUEUE_TRAIN
from core.settings import Settings
from ganserve.embedded_redis import free_port
from ganserve.launcher import Stack, local_stack
from tests.deploy.test_grafana import metric_names, queries
from tests.e2e.stack import png, save_tiny_models, upload_dataset, wait_job, wait_ready
from tests.prometheus import Samples, names, scrape, total, value
from training.demo import build_demo

TRANSLATED = {"kind": "translation", "outcome": "succeeded"}


def two_free_ports() -> int:
    """A port that is free on 127.0.0.1 together with the next one (`ganserve up` gives the
    infer worker the first, the train worker the second)."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


@dataclass
class Metered:
    """The running stack, its HTTP client and its three metrics endpoints."""

    client: httpx.Client
    stack: Stack
    gateway: str
    infer: str
    train: str

    def translate(self, seed: int = 0) -> str:
        response = self.client.post(
            "/v1/translations",
            files={"image": ("in.png", png(24, 16, seed), "image/png")},
            data={"model": "p2p"},
        )
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def ended(self, url: str, count: int) -> Samples:
        """A scrape of the worker at `url` once it counts `count` ended jobs: a worker counts a
        job just after writing its end, which the client may see first."""
        deadline = time.monotonic() + 30
        while total(samples := scrape(url), "ganserve_jobs_total") < count:
            assert time.monotonic() < deadline, f"{url} counts fewer than {count} jobs"
            time.sleep(0.1)
        return samples

    def depth(self, queue: str) -> float | None:
        return value(scrape(self.gateway), "ganserve_queue_depth", queue=queue)

    def running(self, queue: str) -> float | None:
        return value(scrape(self.gateway), "ganserve_jobs_running", queue=queue)


@pytest.fixture(scope="module")
def metered(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("metered")
    save_tiny_models(data_dir / "models", translator="p2p", sampler="digits")
    port = two_free_ports()
    settings = Settings(
        data_dir=data_dir, port=free_port(), redis_url=None, worker_metrics_port=port
    )
    with local_stack(settings) as running:
        client = httpx.Client(base_url=running.url, timeout=60)
        wait_ready(client, running.stack)
        yield Metered(
            client,
            running.stack,
            f"{running.url}/metrics",
            f"http://127.0.0.1:{port}/metrics",
            f"http://127.0.0.1:{port + 1}/metrics",
        )


def test_each_worker_serves_its_metrics_and_the_gateway_the_queues(metered):
    for url in (metered.infer, metered.train):
        fresh = scrape(url)
        assert value(fresh, "ganserve_model_cache_events_total", event="load") == 0
        assert total(fresh, "ganserve_jobs_total") == 0
    gateway = scrape(metered.gateway)
    for queue in (QUEUE_INFER, QUEUE_TRAIN):
        assert value(gateway, "ganserve_queue_depth", queue=queue) == 0
        assert value(gateway, "ganserve_jobs_running", queue=queue) == 0


def test_a_translation_a_cache_hit_and_a_failure_are_counted(metered):
    assert wait_job(metered.client, metered.translate())["status"] == "succeeded"
    first = metered.ended(metered.infer, 1)
    assert value(first, "ganserve_jobs_total", code="", **TRANSLATED) == 1
    assert value(first, "ganserve_job_duration_seconds_count", **TRANSLATED) == 1
    assert value(first, "ganserve_job_duration_seconds_sum", **TRANSLATED) > 0
    assert value(first, "ganserve_queue_wait_seconds_count", kind="translation") == 1
    assert value(first, "ganserve_batch_size_count", kind="translation") == 1
    assert value(first, "ganserve_batch_size_sum", kind="translation") == 1  # alone
    assert value(first, "ganserve_model_cache_events_total", event="load") == 1
    assert value(first, "ganserve_model_cache_events_total", event="hit") == 0

    assert wait_job(metered.client, metered.translate(seed=1))["status"] == "succeeded"
    second = metered.ended(metered.infer, 2)
    assert value(second, "ganserve_jobs_total", code="", **TRANSLATED) == 2
    assert value(second, "ganserve_model_cache_events_total", event="load") == 1
    assert value(second, "ganserve_model_cache_events_total", event="hit") == 1

    pickle_head = b"\x80\x02" + b"garbage" * 10  # not a checkpoint the worker can read
    response = metered.client.post(
        "/v1/models", files={"file": ("latest_net_G.pth", pickle_head)}, data={"id": "ref"}
    )
    assert response.status_code == 202, response.text
    job = wait_job(metered.client, response.json()["id"])
    assert job["status"] == "failed", job
    code = job["error"]["code"]
    assert code == "unsupported_checkpoint"
    failed = metered.ended(metered.infer, 3)
    imports = {"kind": "model_import", "outcome": "failed"}
    assert value(failed, "ganserve_jobs_total", code=code, **imports) == 1
    assert value(failed, "ganserve_job_duration_seconds_count", **imports) == 1
    assert value(failed, "ganserve_jobs_total", code="", **TRANSLATED) == 2
    assert total(scrape(metered.train), "ganserve_jobs_total") == 0  # the infer worker's jobs


def test_the_queue_fills_while_the_worker_is_stopped_and_drains_in_batches(metered):
    worker = metered.stack.processes["worker-infer"]
    os.killpg(worker.pid, signal.SIGTERM)  # stops as `docker stop` stops it
    worker.wait(timeout=60)
    with pytest.raises(httpx.ConnectError):  # its port is free (no pool process holds it)
        scrape(metered.infer)
    jobs = [metered.translate(seed=10 + i) for i in range(5)]
    queued_at = time.time()
    assert metered.depth(QUEUE_INFER) == 5
    assert metered.depth(QUEUE_TRAIN) == 0
    assert metered.running(QUEUE_INFER) == 0
    time.sleep(1)
    waited = time.time() - queued_at  # each job waits at least this long: nothing runs them
    metered.stack.restart("worker-infer")
    ended = [wait_job(metered.client, job) for job in jobs]
    assert [job["status"] for job in ended] == ["succeeded"] * 5
    # the messages of the jobs that ran in another's batch wait until the worker skips them
    deadline = time.monotonic() + 30
    while metered.depth(QUEUE_INFER) != 0:
        assert time.monotonic() < deadline, "the queue did not drain"
        time.sleep(0.1)

    drained = metered.ended(metered.infer, 5)  # a new worker: its counts start again
    assert value(drained, "ganserve_jobs_total", code="", **TRANSLATED) == 5
    assert value(drained, "ganserve_batch_size_sum", kind="translation") == 5
    batches = value(drained, "ganserve_batch_size_count", kind="translation")
    assert batches is not None and batches < 5  # waiting jobs ran together
    assert value(drained, "ganserve_batch_size_bucket", kind="translation", le="1.0") < batches
    wait = {"kind": "translation"}
    assert value(drained, "ganserve_queue_wait_seconds_count", **wait) == 5
    assert value(drained, "ganserve_queue_wait_seconds_sum", **wait) >= 5 * waited
    assert value(drained, "ganserve_model_cache_events_total", event="load") == 1


def test_a_running_training_run_is_seen_and_its_cancellation_counted(metered, tmp_path):
    data = build_demo("faces", tmp_path / "faces", size=16, count=12)
    dataset = upload_dataset(metered.client, data, "faces", "images")
    run = {
        "family": "pggan",
        "dataset": dataset["id"],
        "config": {"image_size": 16, "phase_images": 100000, "fmap_base": 64, "fmap_max": 16},
    }
    job = metered.client.post("/v1/training-runs", json=run).json()
    deadline = time.monotonic() + 120
    while metered.client.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued":
        assert time.monotonic() < deadline, "the training run did not start"
        time.sleep(0.2)
    assert metered.running(QUEUE_TRAIN) == 1
    assert metered.client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    assert wait_job(metered.client, job["id"])["status"] == "cancelled"
    assert metered.running(QUEUE_TRAIN) == 0
    trained = metered.ended(metered.train, 1)
    cancelled = {"kind": "training", "outcome": "cancelled"}
    assert value(trained, "ganserve_jobs_total", code="", **cancelled) == 1
    assert value(trained, "ganserve_job_duration_seconds_count", **cancelled) == 1
    assert value(trained, "ganserve_queue_wait_seconds_count", kind="training") == 1


def test_the_dashboard_queries_only_metrics_that_exist(metered):
    scraped: Samples = {}
    for url in (metered.gateway, metered.infer, metered.train):
        scraped |= scrape(url)
    exist = names(scraped)
    if not torch.cuda.is_available():  # GPU memory is reported by CUDA workers only
        assert "ganserve_gpu_memory_bytes" not in exist
        exist.add("ganserve_gpu_memory_bytes")  # tests/workers/test_metrics.py scrapes it
    for title, expr in queries():
        missing = metric_names(expr) - exist
        assert not missing, f"panel {title!r} queries {missing}, which no scrape returns"
