"""Projection jobs: the latent from which a sampling model redraws an uploaded image (GAN
inversion as in StyleGAN2's projector, Karras et al., CVPR 2020, section 5; the optimisation is
`models.projection`).

The upload is flattened on white, made grey or RGB as the model draws, cropped to its centred
square and resized (bicubic) to the generator's size: that is the target (result image 1). The
latent starts from the job's seed; with `discriminator_loss` `auto` (default) the feature loss
of the model's discriminator is added when its folder carries one (`on`: required, `off`:
never). Every `REPORTS` th of the steps the job reports its step, loss, PSNR and class, and
writes the current reconstruction where `GET /v1/jobs/{id}/preview` serves it; a cancellation is
seen before the next step. The found latent's image is drawn again on the sampling path (result
image 0), so a sample job given this latent draws exactly that image; PSNR and SSIM are measured
between it and the target.
"""

from __future__ import annotations

import torch
from PIL import Image, ImageOps

from core.jobs import JobStatus
from core.params import ProjectionParams, random_seed
from core.storage import LATENTS_FILE, PROJECTION_PREVIEW_FILE, upload_key
from models.images import from_pil, to_pil
from models.projection import ProjectionStep, ProjectionStopped, project, psnr, ssim
from workers.errors import JobFailure
from workers.inference import (
    generate_images,
    job_params,
    model_for,
    network_picture,
    png_bytes,
    read_input,
    stored_key,
    write_results,
)
from workers.jobs import JobContext, Outcome
from workers.latents import latent_result, latents_npy
from workers.model_cache import LoadedModel, fast_path, get_cache

REPORTS = 30  # progress reports (and previews) per projection


def target_picture(loaded: LoadedModel, image: Image.Image) -> Image.Image:
    """The upload as the generator draws: its channels, centred square, the model's size."""
    channels, size = loaded.card.channels, loaded.card.image_size
    picture = network_picture(loaded, image, channels)
    return ImageOps.fit(picture, (size, size), Image.Resampling.BICUBIC)


def _discriminator(ctx: JobContext, mode: str) -> LoadedModel | None:
    if mode == "off":
        return None
    assert ctx.job.model is not None
    try:
        return get_cache().get_discriminator(ctx.job.model)
    except JobFailure as exc:
        if exc.code == "no_discriminator" and mode == "auto":
            return None
        raise


def run_projection(ctx: JobContext) -> Outcome:
    """Run a projection job (see the module docstring)."""
    loaded = model_for(ctx, "sample")
    params = job_params(ctx)
    assert isinstance(params, ProjectionParams)
    seed = random_seed() if params.seed is None else params.seed
    image = stored_key(ctx, "image") or ""  # ProjectionParams requires one
    upload = read_input(ctx.storage.objects, image, ctx.settings.max_image_pixels)
    target = target_picture(loaded, upload)
    critic = _discriminator(ctx, params.discriminator_loss)
    preview = upload_key(ctx.job_id, PROJECTION_PREVIEW_FILE)

    def on_step(step: ProjectionStep) -> None:
        ctx.storage.objects.put(preview, png_bytes(to_pil(step.image)))  # (C, S, S), atomic
        detail = {
            "step": step.step,
            "total": step.total,
            "loss": round(step.loss, 6),
            "psnr": round(step.psnr, 3),
            "class_label": step.class_label,
        }
        ctx.report(step.step / step.total, detail)

    try:
        found = project(
            loaded.model,
            from_pil(target).to(loaded.device),  # (1, C, S, S)
            steps=params.steps,
            seed=seed,
            class_label=params.class_label,
            discriminator=None if critic is None else critic.model,
            on_step=on_step,
            report_every=max(1, params.steps // REPORTS),
            should_stop=ctx.cancel_requested,
        )
    except ProjectionStopped:
        return Outcome(JobStatus.cancelled, {})
    except ValueError as exc:
        raise JobFailure("invalid_parameter", str(exc)) from None
    y = None if found.class_label is None else torch.tensor([found.class_label])  # (1,)
    (reconstruction,) = generate_images(loaded, [(found.z, y)])[0]
    drawn, wanted = from_pil(reconstruction), from_pil(target)  # (1, C, S, S) each
    write_results(ctx, [reconstruction, target], {LATENTS_FILE: latents_npy(found.z)})
    result = {
        "model": ctx.job.model,
        "count": 2,
        "seed": seed,
        "steps": params.steps,
        "class_label": found.class_label,
        "discriminator_loss": critic is not None,
        "loss": round(found.final_loss, 6),
        "start_loss": round(found.start_loss, 6),
        "psnr": round(psnr(drawn, wanted), 3),
        "ssim": round(ssim(drawn, wanted), 4),
        "precision": fast_path().name,
        "latent": found.z[0].tolist(),
        **latent_result(found.z, y),
    }
    return Outcome(JobStatus.succeeded, result)
