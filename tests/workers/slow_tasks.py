"""Test-only: imported into a test's worker (`celery worker --include tests.workers.slow_tasks`),
it makes each job's first attempt sleep `SLOW_FIRST_ATTEMPT_SECONDS` after the job is marked
running, so a test can kill the worker (or Redis) while the job runs. Production code carries no
such hook; later attempts do not sleep."""

from __future__ import annotations

import os
import time
from typing import Any

from workers import tasks
from workers.jobs import JobContext, Outcome, Work

DELAY = float(os.environ.get("SLOW_FIRST_ATTEMPT_SECONDS", "0"))
_run_job = tasks.run_job


def _slowed(work: Work) -> Work:
    def run(ctx: JobContext) -> Outcome:
        if ctx.job.attempts == 1:
            time.sleep(DELAY)
        return work(ctx)

    return run


def run_job(task: Any, job_id: str, work: Work, **kwargs: Any) -> None:
    """`workers.jobs.run_job` with the first attempt's work slowed down."""
    _run_job(task, job_id, _slowed(work), **kwargs)


tasks.run_job = run_job
