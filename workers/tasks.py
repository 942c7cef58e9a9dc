"""The Celery tasks: thin wrappers that take a job id and hand the job to `workers.jobs.run_job`.

The gateway records a job (`core.jobs.JobStore`) and sends the task by name with the job
id; the task reads everything else from the record and the storage root. The work modules
(`WORK_MODULE_OF_KIND`: `workers.inference`, `workers.interpolation`, `workers.projection`,
`workers.inspection`, ..., `workers.training_jobs`) import torch and `models` (and the training
job's `training`), so they are imported inside the tasks: the Celery parent process that imports
this module never loads torch and never touches CUDA before forking its pool.

Every task has soft and hard time limits (`workers.celery_app`). So that no limit counts, or
interrupts, the import of torch and the work modules (a module half imported breaks the process
for good), each pool process imports the work modules of the queues its worker consumes when it
starts, before its first task (`_import_the_work`): an infer worker's processes never load the
`training` package, which only `workers.training_jobs` (with `workers.distributed_training` and
`workers.training_rank`) imports. A pool process whose job a soft limit interrupted leaves once
the job's end is recorded (`run_job`: the interrupt may have landed in one of torch's own lazy
imports), and a task's request in the worker's main process (`JobRequest`) records a job whose
pool process was killed at the hard limit as failed `time_limit`, so it is not run again.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init
from celery.worker.request import Request

from core.jobs import (
    QUEUE_OF_KIND,
    TASK_EXPORT,
    TASK_IMPORT,
    TASK_INSPECT,
    TASK_INTERPOLATE,
    TASK_PROJECT,
    TASK_SAMPLE,
    TASK_TRAIN,
    TASK_TRANSLATE,
    JobKind,
)
from workers.celery_app import celery_app
from workers.jobs import (
    Work,
    interrupted_by_time_limit,
    leave_if_interrupted,
    record_hard_time_limit,
)
from workers.jobs import run_job as _run_job

# Times a job may be found abandoned by a dead worker and started again before it fails.
INFERENCE_MAX_ATTEMPTS = 3
TRAINING_MAX_ATTEMPTS = 10  # a long run outlives restarts and deploys, each one an attempt


# The module that does each kind's work (its task imports it).
WORK_MODULE_OF_KIND = {
    JobKind.translation: "workers.inference",
    JobKind.sample: "workers.inference",
    JobKind.interpolation: "workers.interpolation",
    JobKind.projection: "workers.projection",
    JobKind.inspection: "workers.inspection",
    JobKind.model_import: "workers.model_import",
    JobKind.model_export: "workers.model_export",
    JobKind.training: "workers.training_jobs",
}


def work_modules(queues: Iterable[str]) -> list[str]:
    """The work modules of the job kinds that the `queues` carry (`core.jobs.QUEUE_OF_KIND`)."""
    wanted = set(queues)
    return list(
        dict.fromkeys(
            module for kind, module in WORK_MODULE_OF_KIND.items() if QUEUE_OF_KIND[kind] in wanted
        )
    )


@worker_process_init.connect
def _import_the_work(**_: object) -> None:
    """In each pool process (after the fork: the parent stays torch-free), before its first
    task: import the work modules of the queues this worker consumes (`-Q`; the default queue
    without it), outside every task's time limit."""
    for name in work_modules(celery_app.amqp.queues.consume_from):
        importlib.import_module(name)


def run_job(task: Any, job_id: str, work: Work, *, max_attempts: int) -> None:
    """`workers.jobs.run_job`, then leave this pool process if a time limit interrupted it."""
    try:
        _run_job(task, job_id, work, max_attempts=max_attempts)
    except SoftTimeLimitExceeded:  # outside the work (its lease released): sent again later
        interrupted_by_time_limit()
    leave_if_interrupted()


class JobRequest(Request):
    """A job's task as the worker's main process sees it: at the hard time limit (Celery killed
    the pool process running it), the job is recorded failed `time_limit` (the killed process
    could not), instead of being found abandoned and run again."""

    def on_timeout(self, soft: bool, timeout: float) -> None:
        super().on_timeout(soft, timeout)
        if not soft and self.args:
            record_hard_time_limit(str(self.args[0]), self.worker_pid, self.id)


@celery_app.task(name=TASK_TRANSLATE, bind=True, Request=JobRequest)
def translate(self, job_id: str) -> None:
    """Translate the job's uploaded image with its pix2pix model."""
    from workers import inference

    run_job(self, job_id, inference.translate, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_SAMPLE, bind=True, Request=JobRequest)
def sample(self, job_id: str) -> None:
    """Draw the job's samples from its U-Net GAN or Progressive GAN model."""
    from workers import inference

    run_job(self, job_id, inference.sample, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_INTERPOLATE, bind=True, Request=JobRequest)
def interpolate(self, job_id: str) -> None:
    """Draw the frames between the job's two latents, and their animations."""
    from workers import interpolation

    run_job(self, job_id, interpolation.interpolate_job, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_PROJECT, bind=True, Request=JobRequest)
def project(self, job_id: str) -> None:
    """Find the latent from which the job's model redraws the job's uploaded image."""
    from workers import projection

    run_job(self, job_id, projection.run_projection, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_INSPECT, bind=True, Request=JobRequest)
def inspect(self, job_id: str) -> None:
    """Map where the job's model's discriminator finds the job's image real or fake."""
    from workers import inspection

    run_job(self, job_id, inspection.inspect, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_IMPORT, bind=True, Request=JobRequest)
def import_model(self, job_id: str) -> None:
    """Register the job's uploaded model zip or reference checkpoint as a model."""
    from workers import model_import

    run_job(self, job_id, model_import.import_model, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_EXPORT, bind=True, Request=JobRequest)
def export_model(self, job_id: str) -> None:
    """Write the job's model as ONNX into the export cache."""
    from workers import model_export

    run_job(self, job_id, model_export.export_model, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_TRAIN, bind=True, Request=JobRequest)
def train(self, job_id: str) -> None:
    """Run (or resume) the job's training run and register the model it produces."""
    from workers import training_jobs

    run_job(self, job_id, training_jobs.run_training, max_attempts=TRAINING_MAX_ATTEMPTS)
