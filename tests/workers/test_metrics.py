"""A worker's metrics: what forked processes record is added up at its endpoint, live gauges of
exited processes are dropped, hooks never fail a job, a taken port stops the worker clearly."""

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.jobs import QUEUE_INFER, Job, JobKind, JobStatus
from tests.prometheus import parse, value
from tests.workers.processes import WorkerProcess
from workers import metrics

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scenario() -> dict:
    """`tests/workers/metrics_scenario.py`'s scrapes, parsed, and its metrics folder."""
    run = subprocess.run(
        [sys.executable, "-m", "tests.workers.metrics_scenario"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_VARIABLE},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    return {
        "scrapes": {name: parse(text) for name, text in found["scrapes"].items()},
        "directory": Path(found["directory"]),
    }


def test_the_cache_events_are_there_at_zero_before_any_job(scenario):
    empty = scenario["scrapes"]["empty"]
    for event in ("load", "hit", "evict"):
        assert value(empty, "ganserve_model_cache_events_total", event=event) == 0
    assert not any(name == "ganserve_jobs_total" for name, _ in empty)


def test_what_the_processes_recorded_is_added_up(scenario):
    scrape = scenario["scrapes"]["none_alive"]  # two processes, each recorded the same
    translated = {"kind": "translation", "outcome": "succeeded"}
    assert value(scrape, "ganserve_jobs_total", code="", **translated) == 2
    failed = {"kind": "model_import", "outcome": "failed"}
    assert value(scrape, "ganserve_jobs_total", code="not_a_model", **failed) == 2
    assert value(scrape, "ganserve_job_duration_seconds_count", **translated) == 2
    assert value(scrape, "ganserve_job_duration_seconds_sum", **translated) == pytest.approx(6)
    assert value(scrape, "ganserve_job_duration_seconds_count", **failed) == 2
    wait = {"kind": "translation"}
    assert value(scrape, "ganserve_queue_wait_seconds_count", **wait) == 2
    assert value(scrape, "ganserve_queue_wait_seconds_sum", **wait) == pytest.approx(4)
    assert value(scrape, "ganserve_queue_wait_seconds_bucket", le="1.0", **wait) == 0
    assert value(scrape, "ganserve_queue_wait_seconds_bucket", le="2.5", **wait) == 2
    assert value(scrape, "ganserve_batch_size_sum", kind="translation") == 6
    assert value(scrape, "ganserve_batch_size_bucket", kind="translation", le="2.0") == 0
    assert value(scrape, "ganserve_batch_size_bucket", kind="translation", le="3.0") == 2
    assert value(scrape, "ganserve_model_cache_events_total", event="load") == 2
    assert value(scrape, "ganserve_model_cache_events_total", event="hit") == 2


def test_gpu_memory_counts_only_live_processes(scenario):
    allocated = {"device": "cuda:0", "state": "allocated"}
    # the first process (500 bytes) had exited: its gauge is gone; the second holds 1000
    assert value(scenario["scrapes"]["one_alive"], "ganserve_gpu_memory_bytes", **allocated) == 1000
    assert (
        value(scenario["scrapes"]["none_alive"], "ganserve_gpu_memory_bytes", **allocated) is None
    )


def test_the_metrics_folder_goes_when_the_endpoint_stops(scenario):
    assert scenario["directory"].name.startswith("ganserve-worker-metrics-")
    assert not scenario["directory"].exists()


def test_a_failing_hook_logs_and_never_fails_the_job(monkeypatch, caplog):
    broken = SimpleNamespace(jobs=None, batch_size=None)  # `.labels` of None raises
    monkeypatch.setattr(metrics, "_metrics", broken)
    job = Job(kind=JobKind.sample, status=JobStatus.succeeded, started_at=1.0, finished_at=2.0)
    with caplog.at_level(logging.WARNING, logger="workers.metrics"):
        metrics.job_ended(job)
        metrics.batch_formed(JobKind.sample, 2)
    assert [r.getMessage() for r in caplog.records] == [
        "could not record the metrics of job_ended",
        "could not record the metrics of batch_formed",
    ]


def test_hooks_do_nothing_while_the_endpoint_is_off(monkeypatch):
    calls = []
    monkeypatch.setattr(metrics, "gpu_memory", lambda torch: calls.append(torch) or iter(()))
    assert metrics._metrics is None  # never started in the test process
    metrics.job_ended(Job(kind=JobKind.sample, status=JobStatus.succeeded))
    assert calls == []


class FakeCuda:
    """torch.cuda on a host with two GPUs (the tests run on CPUs)."""

    def __init__(self, initialized: bool) -> None:
        self.initialized = initialized

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return self.initialized

    def device_count(self) -> int:
        return 2

    def memory_allocated(self, index: int) -> int:
        return 100 + index

    def memory_reserved(self, index: int) -> int:
        return 200 + index


def test_gpu_memory_reads_each_device_once_cuda_is_initialised():
    assert list(metrics.gpu_memory(SimpleNamespace(cuda=FakeCuda(True)))) == [
        ("cuda:0", "allocated", 100),
        ("cuda:0", "reserved", 200),
        ("cuda:1", "allocated", 101),
        ("cuda:1", "reserved", 201),
    ]
    assert list(metrics.gpu_memory(SimpleNamespace(cuda=FakeCuda(False)))) == []
    assert list(metrics.gpu_memory(None)) == []  # torch not imported: never imported for it


def test_gpu_memory_of_the_real_torch_on_this_host():
    import torch

    found = list(metrics.gpu_memory(torch))
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        assert found == []
    else:
        assert {state for _, state, _ in found} == {"allocated", "reserved"}


def test_a_worker_whose_metrics_port_is_taken_stops_saying_why(redis_url, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = WorkerProcess(
            QUEUE_INFER,
            "metrics-port",
            {
                "GANSERVE_REDIS_URL": redis_url,
                "GANSERVE_DATA_DIR": str(tmp_path / "data"),
                "GANSERVE_WORKER_METRICS_PORT": str(port),
            },
            tmp_path / "worker.log",
        )
        try:
            assert worker.process.wait(timeout=60) != 0
        finally:
            worker.kill()
    assert f"cannot serve metrics on 127.0.0.1:{port}" in worker.text()
    assert "set GANSERVE_WORKER_METRICS_PORT to a free port" in worker.text()
