"""Interpolation jobs: frames along a path between two latents of a sampling model, as the
latent-space walks of Progressive GAN (Karras et al., ICLR 2018, and its interpolation video),
with spherical interpolation for Gaussian latents (White, "Sampling Generative Networks", 2016).

Each end is a seed (the latent, and for conditional models the class, of image 0 of a sample
job with that seed and truncation), a given vector, or a latent an earlier job kept. When both
ends have the same class every frame is drawn with it; when they differ, the generator's shared
class embedding is interpolated linearly between the two classes' rows (BigGAN's conditioning,
which U-Net GAN uses). The first and last frames are therefore the endpoints' own samples, bit
for bit. Frames run through `workers.batching` like samples (interpolations of one model share
forward passes) and are written as PNGs, one animated WebP and one GIF, and their latents.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch
from PIL import Image

from core.jobs import JobStatus
from core.params import InterpolationParams, LatentEndpoint
from core.storage import LATENTS_FILE
from models.latent_paths import class_embeddings, interpolate
from models.sampling import sample_inputs
from workers.batching import Prepared, run_batched, should_stop
from workers.errors import JobFailure
from workers.inference import generate_images, job_params, model_for, write_results
from workers.jobs import JobContext, Outcome
from workers.latents import kept_latents, labels_tensor, latent_result, latents_npy, vectors
from workers.model_cache import LoadedModel, fast_path


@dataclass(frozen=True)
class FramePath:
    """An interpolation's frames as the generator takes them: latents (F, Z), and either labels
    (F,) or class embeddings (F, E) (conditional models), or neither."""

    params: InterpolationParams
    z: torch.Tensor  # (F, Z)
    y: torch.Tensor | None  # (F,)
    embedding: torch.Tensor | None  # (F, E)
    classes: tuple[int | None, int | None]


def endpoint(
    ctx: JobContext, loaded: LoadedModel, end: LatentEndpoint, truncation: float | None
) -> tuple[torch.Tensor, int | None]:
    """One end's latent (Z,) and class (None for unconditional models)."""
    config = loaded.model.config
    if end.seed is not None:
        z, y = sample_inputs(
            config, 1, end.seed, class_label=end.class_label, truncation=truncation
        )
        return z[0], None if y is None else int(y[0])
    if end.latent is not None:
        z = vectors([end.latent], config.latent_dim)
    else:
        assert end.job is not None
        z = kept_latents(ctx.storage, end.job, [end.index], config.latent_dim)
    given = None if end.class_label is None else [end.class_label]
    labels_tensor(given, config.num_classes, 1)  # JobFailure unless it fits the model
    return z[0], end.class_label


def frames_path(ctx: JobContext, loaded: LoadedModel, params: InterpolationParams) -> FramePath:
    """The job's frames: the latent path and the class of each frame."""
    z0, y0 = endpoint(ctx, loaded, params.start, params.truncation)
    z1, y1 = endpoint(ctx, loaded, params.end, params.truncation)
    try:
        z = interpolate(z0, z1, params.frames, params.path)  # (F, Z)
    except ValueError as exc:
        raise JobFailure("invalid_parameter", str(exc)) from None
    if y0 is None or y1 is None:
        return FramePath(params, z, None, None, (y0, y1))
    if y0 == y1:
        y = torch.full((params.frames,), y0, dtype=torch.long)  # (F,)
        return FramePath(params, z, y, None, (y0, y1))
    embedding = class_embeddings(loaded.model, y0, y1, params.frames)  # (F, E)
    return FramePath(params, z, None, embedding.detach().float().cpu(), (y0, y1))


ANIMATION_OPTIONS = {"webp": {"lossless": True}, "gif": {}}  # per format, for Pillow's writer


def animation_files(frames: list[Image.Image], fps: int) -> dict[str, bytes]:
    """The frames as a looping animated WebP (lossless) and GIF: their bytes by file name
    (`animation.webp`, `animation.gif`)."""
    files = {}
    for fmt, options in ANIMATION_OPTIONS.items():
        buffer = io.BytesIO()
        frames[0].save(
            buffer,
            format=fmt.upper(),
            save_all=True,
            append_images=frames[1:],
            duration=round(1000 / fps),
            loop=0,
            **options,
        )
        files[f"animation.{fmt}"] = buffer.getvalue()
    return files


class InterpolationWork:
    """Interpolation jobs as `workers.batching` runs them: frames drawn with labels (or without
    classes) share passes, frames with interpolated class embeddings share theirs."""

    def load(self, ctx: JobContext) -> LoadedModel:
        return model_for(ctx, "sample")

    def prepare(self, ctx: JobContext, loaded: LoadedModel) -> Prepared:
        params = job_params(ctx)
        assert isinstance(params, InterpolationParams)
        path = frames_path(ctx, loaded, params)
        key = ("interpolation", path.embedding is not None)
        return Prepared(ctx, key, params.frames, path)

    def run(self, loaded: LoadedModel, members: list[Prepared]) -> list[list[Image.Image]]:
        paths: list[FramePath] = [m.data for m in members]
        embeddings = None if paths[0].embedding is None else [p.embedding for p in paths]
        stop = should_stop(members)
        return generate_images(loaded, [(p.z, p.y) for p in paths], embeddings, stop)

    def finish(self, prepared: Prepared, frames: list[Image.Image]) -> Outcome:
        ctx, path = prepared.ctx, prepared.data
        params = path.params
        extra = {LATENTS_FILE: latents_npy(path.z), **animation_files(frames, params.fps)}
        write_results(ctx, frames, extra)
        start, end = path.classes
        result = {
            "model": ctx.job.model,
            "count": len(frames),
            "frames": len(frames),
            "path": params.path,
            "fps": params.fps,
            "truncation": params.truncation,
            "start_class": start,
            "end_class": end,
            "animation": list(ANIMATION_OPTIONS),
            "precision": fast_path().name,
            **latent_result(path.z, path.y),
        }
        return Outcome(JobStatus.succeeded, result)


def interpolate_job(ctx: JobContext) -> Outcome:
    """Run an interpolation job (with any waiting batch-mates)."""
    return run_batched(ctx, InterpolationWork())
