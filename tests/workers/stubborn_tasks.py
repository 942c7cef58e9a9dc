"""Test-only: imported into a test's worker (`--include tests.workers.stubborn_tasks`), it makes
a job whose params carry `"stubborn": <seconds>` sleep that long before its work, ignoring
Celery's soft time limit while it does (as work stuck in one long native call would), so that a
test can see the hard time limit kill the pool process. Other jobs run as they are. Production
code carries no such hook."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from workers import tasks
from workers.jobs import JobContext, Outcome, Work

_run_job = tasks.run_job


def _stubborn(work: Work) -> Work:
    def run(ctx: JobContext) -> Outcome:
        deadline = time.monotonic() + float(ctx.job.params.get("stubborn", 0))
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(SoftTimeLimitExceeded):  # only the hard limit stops it
                time.sleep(left)
        return work(ctx)

    return run


def run_job(task: Any, job_id: str, work: Work, **kwargs: Any) -> None:
    """`workers.jobs.run_job` with a stubborn job's work made to ignore the soft time limit."""
    _run_job(task, job_id, _stubborn(work), **kwargs)


tasks.run_job = run_job
