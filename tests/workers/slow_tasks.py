"""Test-only: imported into a test's worker (`celery worker --include tests.workers.slow_tasks`),
it makes each job's first attempt sleep `SLOW_FIRST_ATTEMPT_SECONDS` after the job is marked
running, and a batch leader's first attempt sleep `SLOW_BATCH_SECONDS` once it has taken its
batch-mates, so a test can kill the worker (or Redis) while the job or batch runs. Production code
carries no such hook; later attempts do not sleep."""

from __future__ import annotations

import os
import time
from typing import Any

from workers import batching, tasks
from workers.jobs import JobContext, Outcome, Work

DELAY = float(os.environ.get("SLOW_FIRST_ATTEMPT_SECONDS", "0"))
BATCH_DELAY = float(os.environ.get("SLOW_BATCH_SECONDS", "0"))
_run_job = tasks.run_job
_take_mates = batching.take_mates


def take_mates(ctx: JobContext, limit: int, wait_seconds: float, mates: list[JobContext]) -> None:
    """`workers.batching.take_mates`, then the first attempt's sleep with the mates held."""
    _take_mates(ctx, limit, wait_seconds, mates)
    if ctx.job.attempts == 1 and mates:
        time.sleep(BATCH_DELAY)


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
batching.take_mates = take_mates
