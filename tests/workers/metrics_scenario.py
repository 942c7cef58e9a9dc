"""Run as `python -m tests.workers.metrics_scenario`: `workers.metrics` in a fresh interpreter
(prometheus_client must not be imported before it starts), with forked processes recording as
Celery's pool processes do. Prints one JSON object: the scrapes taken along the way."""

import json
import multiprocessing
import time
import urllib.request

from core.jobs import Job, JobError, JobKind, JobStatus
from workers import metrics


def scrape(endpoint: metrics.Endpoint) -> str:
    url = f"http://127.0.0.1:{endpoint.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def ended(kind: JobKind, status: JobStatus, code: str | None = None) -> Job:
    """A job that waited 2 s, started and ran 3 s."""
    now = time.time()
    return Job(
        kind=kind,
        status=status,
        created_at=now - 5,
        started_at=now - 3,
        finished_at=now,
        attempts=1,
        error=JobError(code=code, message="it failed") if code else None,
    )


def short_lived(gpu_bytes: int) -> None:
    """A pool process that runs a translation in a batch of 3, fails an import, and exits."""
    job = ended(JobKind.translation, JobStatus.succeeded)
    metrics.job_started(job)
    metrics.batch_formed(JobKind.translation, 3)
    metrics.model_cache("load")
    metrics.model_cache("hit")
    metrics.job_ended(job)
    metrics.job_ended(ended(JobKind.model_import, JobStatus.failed, "not_a_model"))
    assert metrics._metrics is not None
    metrics._metrics.gpu_memory.labels("cuda:0", "allocated").set(gpu_bytes)


def long_lived(ready, leave) -> None:
    """A pool process that holds GPU memory until told to leave."""
    short_lived(1000)
    ready.set()
    leave.wait(30)


def main() -> None:
    endpoint = metrics.start("127.0.0.1", 0)
    forks = multiprocessing.get_context("fork")
    scrapes = {"empty": scrape(endpoint)}
    gone = forks.Process(target=short_lived, args=(500,))
    gone.start()
    gone.join()
    ready, leave = forks.Event(), forks.Event()
    alive = forks.Process(target=long_lived, args=(ready, leave))
    alive.start()
    ready.wait(30)
    scrapes["one_alive"] = scrape(endpoint)
    leave.set()
    alive.join()
    scrapes["none_alive"] = scrape(endpoint)
    endpoint.stop()
    print(json.dumps({"scrapes": scrapes, "directory": endpoint.directory}))


if __name__ == "__main__":
    main()
