"""Prometheus metrics of a worker: what its jobs did, served from the worker's own endpoint.

A job runs in a pool process of the Celery worker (prefork), so the metrics are kept with
prometheus_client's multiprocess mode: every process writes its values to memory-mapped files in
one folder per worker, and the endpoint (an HTTP server thread in the worker's main process)
adds them up at each scrape. The folder is made afresh when the worker starts (its path in
PROMETHEUS_MULTIPROC_DIR, which the pool processes inherit) and removed when it stops; at each
scrape the live gauges of pool processes that exited (recycled, killed at a time limit) are
dropped (`mark_process_dead`), while their counts and histograms stay in the totals.

The endpoint is off unless `GANSERVE_WORKER_METRICS_PORT` is set; it binds to
`GANSERVE_WORKER_METRICS_HOST` (localhost by default). The queue depths and running counts are
the gateway's (`service.metrics`), read from Redis at its own `/metrics`.

The workers call the hooks below (`job_started`, `job_ended`, `batch_formed`, `model_cache`);
each is a no-op when the endpoint is off and never raises (a metric is not worth a job).
Torch-free: the Celery parent imports it; GPU memory is read only where a pool process has
imported torch and initialised CUDA.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec

from celery.signals import worker_init, worker_process_init, worker_shutdown

from core.jobs import Job, JobKind
from core.settings import get_settings

log = logging.getLogger(__name__)

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# A translation on a GPU takes milliseconds, a training run hours.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
DURATION_BUCKETS += (1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 7 * 24 * 3600)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
WAIT_BUCKETS += (1800, 3600, 4 * 3600)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
CacheEvent = Literal["load", "hit", "evict"]
CACHE_EVENTS: tuple[CacheEvent, ...] = ("load", "hit", "evict")
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w*_(\d+)\.db")

P = ParamSpec("P")


class _Metrics:
    """The worker's metrics, made once multiprocess mode is on (`start`)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.jobs = Counter(
            "ganserve_jobs",
            "Jobs that workers ended, by kind, outcome (succeeded, failed, cancelled) and error "
            "code (empty unless failed).",
            ["kind", "outcome", "code"],
            registry=None,
        )
        self.duration = Histogram(
            "ganserve_job_duration_seconds",
            "Seconds from a job's (last) start to its end, by kind and outcome.",
            ["kind", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=None,
        )
        self.queue_wait = Histogram(
            "ganserve_queue_wait_seconds",
            "Seconds a job waited from its submission to its first start, by kind.",
            ["kind"],
            buckets=WAIT_BUCKETS,
            registry=None,
        )
        self.batch_size = Histogram(
            "ganserve_batch_size",
            "Jobs an infer worker ran together (a leader and the waiting jobs of the same model "
            "and kind it took), by kind.",
            ["kind"],
            buckets=BATCH_BUCKETS,
            registry=None,
        )
        self.model_cache = Counter(
            "ganserve_model_cache_events",
            "Networks a worker's model cache loaded from storage (load), found loaded (hit) or "
            "dropped for lack of room (evict).",
            ["event"],
            registry=None,
        )
        self.gpu_memory = Gauge(
            "ganserve_gpu_memory_bytes",
            "GPU memory torch holds in the worker's processes, by device: allocated to tensors, "
            "or reserved by its caching allocator.",
            ["device", "state"],
            multiprocess_mode="livesum",
            registry=None,
        )
        for event in CACHE_EVENTS:  # present from the start, at 0
            self.model_cache.labels(event)


_metrics: _Metrics | None = None


def _never_raises(hook: Callable[P, None]) -> Callable[P, None]:
    """A hook that does nothing while the endpoint is off and logs instead of raising."""

    @functools.wraps(hook)
    def quiet(*args: P.args, **kwargs: P.kwargs) -> None:
        if _metrics is None:
            return
        try:
            hook(*args, **kwargs)
        except Exception:
            log.warning("could not record the metrics of %s", hook.__name__, exc_info=True)

    return quiet


@_never_raises
def job_started(job: Job) -> None:
    """A job was marked running: on its first attempt, how long it waited in its queue."""
    assert _metrics is not None
    if job.attempts == 1 and job.started_at is not None:
        wait = max(0.0, job.started_at - job.created_at)
        _metrics.queue_wait.labels(job.kind.value).observe(wait)


@_never_raises
def job_ended(job: Job) -> None:
    """A worker ended a job: its outcome and error code, how long its last attempt ran, and the
    GPU memory this process holds afterwards."""
    assert _metrics is not None
    if job.started_at is not None and job.finished_at is not None:
        seconds = max(0.0, job.finished_at - job.started_at)
        _metrics.duration.labels(job.kind.value, job.status.value).observe(seconds)
    code = job.error.code if job.error is not None else ""
    _metrics.jobs.labels(job.kind.value, job.status.value, code).inc()  # last: all else is in
    for device, state, value in gpu_memory(sys.modules.get("torch")):
        _metrics.gpu_memory.labels(device, state).set(value)


@_never_raises
def batch_formed(kind: JobKind, jobs: int) -> None:
    """An infer worker runs `jobs` jobs of `kind` together (1: alone)."""
    assert _metrics is not None
    _metrics.batch_size.labels(kind.value).observe(jobs)


@_never_raises
def model_cache(event: CacheEvent) -> None:
    """The model cache loaded a network, found one loaded, or dropped one."""
    assert _metrics is not None
    _metrics.model_cache.labels(event).inc()


def gpu_memory(torch: Any) -> Iterator[tuple[str, str, int]]:
    """(device, "allocated" or "reserved", bytes) of each CUDA device, when `torch` (the module,
    if this process imported it) has initialised CUDA; nothing otherwise."""
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return
    for index in range(torch.cuda.device_count()):
        yield f"cuda:{index}", "allocated", torch.cuda.memory_allocated(index)
        yield f"cuda:{index}", "reserved", torch.cuda.memory_reserved(index)


def forget_dead_processes(directory: str) -> list[int]:
    """Drop the live gauges of the processes that exited (`mark_process_dead`); their pids."""
    from prometheus_client.multiprocess import mark_process_dead

    dead = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        found = _LIVE_GAUGE_FILE.fullmatch(os.path.basename(path))
        if found and not _alive(int(found.group(1))):
            dead.add(int(found.group(1)))
    for pid in dead:
        mark_process_dead(pid, directory)
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerCollector:
    """The values every process of this worker wrote (`MultiProcessCollector`), once the live
    gauges of exited processes are dropped."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Any]:
        from prometheus_client.multiprocess import MultiProcessCollector

        forget_dead_processes(self.directory)
        yield from MultiProcessCollector(None, path=self.directory).collect()


@dataclass
class Endpoint:
    """A worker's running metrics endpoint and the folder its processes write to."""

    directory: str
    server: Any
    thread: Any

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server.server_port)

    def stop(self) -> None:
        """Stop serving and remove the folder."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        shutil.rmtree(self.directory, ignore_errors=True)


_endpoint: Endpoint | None = None


def start(host: str, port: int) -> Endpoint:
    """Turn multiprocess mode on in a fresh folder and serve the metrics on `host:port`, in this
    process (the worker's main one, before its pool forks). Raises OSError when the port is
    taken, RuntimeError when prometheus_client was imported before (then it is not in
    multiprocess mode)."""
    global _metrics
    directory = tempfile.mkdtemp(prefix="ganserve-worker-metrics-")
    os.environ[MULTIPROC_VARIABLE] = directory
    from prometheus_client import CollectorRegistry, start_http_server, values

    if not getattr(values.ValueClass, "_multiprocess", False):
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(
            "prometheus_client was imported before the worker's metrics started, so it is not "
            "in multiprocess mode"
        )
    registry = CollectorRegistry(auto_describe=True)
    registry.register(WorkerCollector(directory))
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    _metrics = _Metrics()
    return Endpoint(directory, server, thread)


@worker_init.connect
def _start_endpoint(**_: object) -> None:
    """In the worker's main process, before the pool forks: serve the metrics when
    `GANSERVE_WORKER_METRICS_PORT` is set."""
    global _endpoint
    settings = get_settings()
    if settings.worker_metrics_port is None:
        return
    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    try:
        _endpoint = start(host, port)
    except OSError as exc:
        raise SystemExit(
            f"ganserve worker: cannot serve metrics on {host}:{port} ({exc.strerror or exc}); "
            "set GANSERVE_WORKER_METRICS_PORT to a free port (each worker on a host needs its "
            "own), or unset it"
        ) from None
    log.info("worker metrics at http://%s:%d/metrics", host, _endpoint.port)


@worker_process_init.connect
def _close_inherited_listener(**_: object) -> None:
    """In each pool process: close its copy of the endpoint's listening socket (inherited at the
    fork; only the main process serves), so the port is free as soon as the main process is
    gone, even while a pool process outlives it."""
    if _endpoint is not None:
        _endpoint.server.socket.close()


@worker_shutdown.connect
def _stop_endpoint(**_: object) -> None:
    """Stop serving and remove the metrics folder when the worker stops."""
    global _endpoint, _metrics
    if _endpoint is not None:
        _metrics = None  # the hooks do nothing from now on
        _endpoint.stop()
        _endpoint = None
