"""The command lines of ganserve's processes, shared by `ganserve up`, Docker Compose and the
Kubernetes manifests (deploy/kubernetes).

Gateway: uvicorn serving `service.app:serve`, in one process or several (`service.uvicorn_server`,
GANSERVE_GATEWAY_PROCESSES); workers: Celery on one queue each, prefetch 1, with the prefork pool
so CUDA is initialised only in the forked children that run the tasks; as many pool processes as
`workers.concurrency` decides when the worker starts (an infer worker: 2 on a host with an NVIDIA
GPU, 1 without, `GANSERVE_INFER_CONCURRENCY`; a train worker: 1) unless `concurrency` is given; a
worker's health check: `workers.liveness` pinging it.
"""

from __future__ import annotations

import sys

from core.jobs import QUEUES
from core.settings import Settings


def gateway_command(settings: Settings) -> list[str]:
    """uvicorn serving the gateway on the configured address, in the processes its environment's
    GANSERVE_GATEWAY_PROCESSES asks for (`service.uvicorn_server`)."""
    return [
        sys.executable,
        "-m",
        "service.uvicorn_server",
        "--factory",
        "service.app:serve",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--no-access-log",  # the gateway's own access log names each request's id
    ]


def worker_node(queue: str, name: str | None = None) -> str:
    """A worker's Celery node name template: `<name>@%h` (`%h`: the host's name)."""
    return f"{name or queue}@%h"


def worker_command(
    queue: str, concurrency: int | None = None, *, name: str | None = None
) -> list[str]:
    """A Celery worker consuming one queue, named `<name>@<host>` (`name` defaults to the queue),
    with `concurrency` pool processes (None: the worker decides, `workers.concurrency`)."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; choose one of {', '.join(QUEUES)}")
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"a worker runs at least 1 pool process, not {concurrency}")
    pool = [] if concurrency is None else ["--concurrency", str(concurrency)]
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "--quiet",  # no banner: every line in ganserve's log format (core.logs)
        "worker",
        "--queues",
        queue,
        *pool,
        "--hostname",
        worker_node(queue, name),
        "--loglevel",
        "INFO",
    ]


def worker_health_command(queue: str, *, name: str | None = None) -> list[str]:
    """The health check of the worker `worker_command(queue, name=name)` starts, run on its host:
    exit 0 when it answers a ping (`workers.liveness`)."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; choose one of {', '.join(QUEUES)}")
    return [sys.executable, "-m", "workers.liveness", worker_node(queue, name)]
