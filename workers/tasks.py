"""The Celery tasks: thin wrappers that take a job id and hand the job to `workers.jobs.run_job`.

The gateway records a job (`core.jobs.JobStore`) and sends the task by name with the job
id; the task reads everything else from the record and the storage root. The work modules
(`workers.inference`, `workers.interpolation`, `workers.projection`,
`workers.inspection`, `workers.training_jobs`) import torch, `models` and
`training`, so they are imported inside the tasks: the Celery parent process that imports this
module never loads torch and never touches CUDA before forking its pool.
"""

from __future__ import annotations

from core.jobs import (
    TASK_EXPORT,
    TASK_IMPORT,
    TASK_INSPECT,
    TASK_INTERPOLATE,
    TASK_PROJECT,
    TASK_SAMPLE,
    TASK_TRAIN,
    TASK_TRANSLATE,
)
from workers.celery_app import celery_app
from workers.jobs import run_job

# Times a job may be found abandoned by a dead worker and started again before it fails.
INFERENCE_MAX_ATTEMPTS = 3
TRAINING_MAX_ATTEMPTS = 10  # a long run outlives restarts and deploys, each one an attempt


@celery_app.task(name=TASK_TRANSLATE, bind=True)
def translate(self, job_id: str) -> None:
    """Translate the job's uploaded image with its pix2pix model."""
    from workers import inference

    run_job(self, job_id, inference.translate, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_SAMPLE, bind=True)
def sample(self, job_id: str) -> None:
    """Draw the job's samples from its U-Net GAN or Progressive GAN model."""
    from workers import inference

    run_job(self, job_id, inference.sample, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_INTERPOLATE, bind=True)
def interpolate(self, job_id: str) -> None:
    """Draw the frames between the job's two latents, and their animations."""
    from workers import interpolation

    run_job(self, job_id, interpolation.interpolate_job, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_PROJECT, bind=True)
def project(self, job_id: str) -> None:
    """Find the latent from which the job's model redraws the job's uploaded image."""
    from workers import projection

    run_job(self, job_id, projection.run_projection, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_INSPECT, bind=True)
def inspect(self, job_id: str) -> None:
    """Map where the job's model's discriminator finds the job's image real or fake."""
    from workers import inspection

    run_job(self, job_id, inspection.inspect, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_IMPORT, bind=True)
def import_model(self, job_id: str) -> None:
    """Register the job's uploaded model zip or reference checkpoint as a model."""
    from workers import model_import

    run_job(self, job_id, model_import.import_model, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_EXPORT, bind=True)
def export_model(self, job_id: str) -> None:
    """Write the job's model as ONNX into the export cache."""
    from workers import model_export

    run_job(self, job_id, model_export.export_model, max_attempts=INFERENCE_MAX_ATTEMPTS)


@celery_app.task(name=TASK_TRAIN, bind=True)
def train(self, job_id: str) -> None:
    """Run (or resume) the job's training run and register the model it produces."""
    from workers import training_jobs

    run_job(self, job_id, training_jobs.run_training, max_attempts=TRAINING_MAX_ATTEMPTS)
