"""The Celery app's configuration: routes, the no-lost-jobs policy, torch-free imports, Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.jobs import (
    QUEUE_INFER,
    QUEUE_TRAIN,
    TASK_INSPECT,
    TASK_SAMPLE,
    TASK_TRAIN,
    TASK_TRANSLATE,
)
from core.settings import Settings
from tests.workers.processes import ROOT
from workers import celery_app as app_module
from workers.celery_app import celery_app

CELERY = Path(sys.executable).with_name("celery")


def test_no_job_is_lost_when_a_worker_dies():
    conf = celery_app.conf
    assert conf.task_acks_late is True and conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == 3600  # far over an inference
    assert conf.task_ignore_result is True and conf.worker_hijack_root_logger is False
    assert conf.broker_connection_max_retries is None  # waits for Redis, never gives up
    assert conf.worker_max_memory_per_child == 8192 * 1024  # KiB: GANSERVE_WORKER_MAX_MEMORY_MB


def test_tasks_are_routed_to_their_queues_under_the_contract_names():
    import workers.tasks  # noqa: F401  (registers the tasks)

    routes = celery_app.conf.task_routes
    inference = (TASK_TRANSLATE, TASK_SAMPLE, TASK_INSPECT)
    assert all(routes[task]["queue"] == QUEUE_INFER for task in inference)
    assert routes[TASK_TRAIN]["queue"] == QUEUE_TRAIN
    assert {*inference, TASK_TRAIN} <= set(celery_app.tasks)


def test_the_visibility_timeout_and_the_lease_come_from_the_settings(monkeypatch):
    monkeypatch.setenv("GANSERVE_VISIBILITY_TIMEOUT", "7")
    settings = Settings()
    assert settings.visibility_timeout == 7 and settings.lease_seconds == 3
    assert app_module.celery_config(settings)["broker_transport_options"]["visibility_timeout"] == 7
    for bad in ("soon", "0"):
        monkeypatch.setenv("GANSERVE_VISIBILITY_TIMEOUT", bad)
        with pytest.raises(ValidationError, match="visibility_timeout"):
            Settings()


def test_the_celery_parent_never_imports_torch():
    code = (
        "import sys, workers.celery_app, workers.tasks, workers.jobs; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert not any(m.split('.')[0] in ('models', 'training') for m in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_pool_process_imports_the_work_of_its_workers_queues_only():
    from workers.tasks import work_modules

    infer = work_modules([QUEUE_INFER])
    assert "workers.inference" in infer and "workers.training_jobs" not in infer
    assert work_modules([QUEUE_TRAIN]) == ["workers.training_jobs"]
    assert work_modules([QUEUE_INFER, QUEUE_TRAIN]) == [*infer, "workers.training_jobs"]


def test_an_infer_pool_process_never_imports_training():
    code = (
        "import importlib, sys; from workers.tasks import work_modules; "
        f"[importlib.import_module(m) for m in work_modules([{QUEUE_INFER!r}])]; "
        "assert 'torch' in sys.modules; "
        "assert not any(m.split('.')[0] == 'training' for m in sys.modules), 'training imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_worker_without_redis_refuses_to_start_and_says_why():
    env = {k: v for k, v in os.environ.items() if k != "GANSERVE_REDIS_URL"}
    result = subprocess.run(
        [str(CELERY), "-A", "workers.celery_app", "worker", "-Q", QUEUE_INFER],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "ganserve workers need Redis: set GANSERVE_REDIS_URL" in result.stdout + result.stderr


def test_a_rejected_task_is_logged_without_a_traceback():
    """A Ctrl-C hands a training run's message back (`Reject`): one line, no traceback."""
    import logging
    import sys

    from celery.exceptions import Reject

    from workers.celery_app import _NoRejectTraceback

    try:
        raise Reject("stopped at step 770 of 20000", requeue=True)
    except Reject:
        record = logging.LogRecord(
            "celery.app.trace", 30, __file__, 1, "reject", (), sys.exc_info()
        )
    assert _NoRejectTraceback().filter(record) and record.exc_info is None
    try:
        raise ValueError("a real error")
    except ValueError:
        other = logging.LogRecord("celery.app.trace", 40, __file__, 1, "boom", (), sys.exc_info())
    assert _NoRejectTraceback().filter(other) and other.exc_info is not None
