"""The Celery application of the ganserve workers, configured from `core.settings`.

Start one worker process per queue (a long training run never blocks a translation):

    celery -A workers.celery_app worker -Q infer -n infer@%h   # translate, sample, inspect
    celery -A workers.celery_app worker -Q train -n train@%h   # training runs

The default prefork pool is the one to use: this module and `workers.tasks` import neither torch
nor the `models`/`training` packages, so the pool's child processes fork from a parent that never
touched CUDA, and each child initialises CUDA itself at its first job (`--pool solo` works too;
thread pools do not, since a loaded model is used by one job at a time). Without `-c`, a worker
runs the pool processes `workers.concurrency` decides (an infer worker: 2 on a host with an
NVIDIA GPU, 1 without, `GANSERVE_INFER_CONCURRENCY`; any other: 1), not Celery's one per CPU
core. Add inference workers with `-c N` or more processes on other hosts pointing at the same
Redis and storage root.

No job is lost when a worker dies: messages are acknowledged after the task returns
(`task_acks_late`), a pool child that dies mid-task gets its message requeued
(`task_reject_on_worker_lost`), a worker reserves one message at a time
(`worker_prefetch_multiplier=1`), and a message whose worker vanished altogether (SIGKILL, lost
host) is delivered again by Redis once its visibility timeout has passed. The timeout is
`GANSERVE_VISIBILITY_TIMEOUT` seconds (default 3600: far longer than an inference job); training
runs outlast it but are safe to deliver twice (a lease keeps one copy training, and a copy that
does run resumes from the last checkpoint).

Messages are only wake-up calls: the reconciler (`workers.reconciler`, a thread in each
worker's main process) sends the task again for any job whose record says it is not done while
no message waits for it and no worker holds it, e.g. after Redis restarted under a running job.
A worker waits for Redis for ever when it goes away (`broker_connection_max_retries=None`) and
recycles a pool child whose memory grew past `GANSERVE_WORKER_MAX_MEMORY_MB` after its task.

Every task has a time limit (`GANSERVE_INFER_TIME_LIMIT`, `GANSERVE_TRAIN_TIME_LIMIT`): a job
that runs past it is interrupted (Celery's soft time limit) and fails `time_limit`, and the worker
goes on with the next job in a fresh pool process (the interrupted one leaves: `workers.tasks`);
one that does not stop within `GANSERVE_TIME_LIMIT_GRACE` seconds more has its pool process
killed (the hard limit) and fails `time_limit` too.

Job state lives in our own records (`core.jobs.JobStore`), never in Celery's results,
so results are ignored; the broker and the result backend are both `GANSERVE_REDIS_URL`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.exceptions import Reject
from celery.signals import celeryd_init, setup_logging

from core.jobs import QUEUE_INFER, QUEUE_OF_KIND, TASK_OF_KIND, JobKind
from core.logs import configure_logging
from core.settings import Settings, get_settings
from workers.concurrency import pool_size

celery_app = Celery(
    "ganserve", include=["workers.tasks", "workers.reconciler", "workers.webhook_sender"]
)


PROCESS_START_SECONDS = 120.0


def time_limit_annotations(settings: Settings) -> dict[str, dict[str, int]]:
    """Every task's soft and hard time limits (`Settings.time_limits` of its queue): at the soft
    limit the job's work is interrupted (SoftTimeLimitExceeded) and `workers.jobs` fails it
    `time_limit`; at the hard limit the pool process is killed and `workers.tasks.JobRequest`
    fails it `time_limit`."""
    annotations = {}
    for kind in JobKind:
        soft, hard = settings.time_limits(QUEUE_OF_KIND[kind])
        annotations[TASK_OF_KIND[kind]] = {"soft_time_limit": soft, "time_limit": hard}
    return annotations


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration of the workers: the settings and the no-lost-jobs policy."""
    vt = settings.visibility_timeout
    transport_options = {
        "visibility_timeout": vt,
        # How often a worker looks for messages whose worker vanished: often enough that a
        # short (test) visibility timeout is honoured, at most once a minute by default.
        "unacked_restore_interval": max(1, min(60, vt // 20)),
        "unacked_restore_throttle": 1,
    }
    return dict(
        broker_url=settings.redis_url,
        result_backend=settings.redis_url,
        broker_transport_options=transport_options,
        result_backend_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for Redis for ever, never exits
        worker_max_memory_per_child=settings.worker_max_memory_mb * 1024 or None,  # KiB
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE_INFER,
        task_routes={TASK_OF_KIND[kind]: {"queue": QUEUE_OF_KIND[kind]} for kind in JobKind},
        task_annotations=time_limit_annotations(settings),
        # A pool process imports its queues' work modules (torch, models) before it says it is
        # up (`workers.tasks`): give it the time (Celery's default is 4 s).
        worker_proc_alive_timeout=PROCESS_START_SECONDS,
        worker_hijack_root_logger=False,
    )


# Read from the settings when the configuration is first used (the worker's start), not at import.
celery_app.add_defaults(lambda: celery_config(get_settings()))


class _NoRejectTraceback(logging.Filter):
    """A task that hands its message back (`Reject`: the worker is stopping, Redis failed) is
    logged in one line: it is how a Ctrl-C requeues a training run, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], Reject):
            record.exc_info = None
            record.exc_text = None
        return True


@setup_logging.connect
def _ganserve_logging(**_: object) -> None:
    """Celery logs in ganserve's format (`core.logs`) instead of its own."""
    configure_logging()
    logging.getLogger("celery.app.trace").addFilter(_NoRejectTraceback())


@celeryd_init.connect
def _require_redis(**_: object) -> None:
    """Refuse to start a worker without a Redis URL, saying what to set."""
    if not get_settings().redis_url:
        raise SystemExit(
            "ganserve workers need Redis: set GANSERVE_REDIS_URL (e.g. redis://localhost:6379/0) "
            "to the Redis the gateway uses, or start the whole stack with `ganserve up`, which "
            "runs an embedded Redis."
        )


@celeryd_init.connect
def _pool_size(conf: Any, options: dict[str, Any], **_: object) -> None:
    """A worker started without `--concurrency` runs `workers.concurrency.pool_size` pool
    processes (read by the worker right after this signal)."""
    if not options.get("concurrency"):
        conf.worker_concurrency = pool_size(options.get("queues"), get_settings())
