"""Translations and samples: the work of the `infer` queue's jobs.

Translation (pix2pix). The input `uploads/<job>/input.png` is converted to the model's input
channels (1 -> grey "L", 3 -> "RGB"), resized (bicubic) to the model's square training size, run
through the generator in the paper's test-time mode (dropout on, batch statistics; the dropout
noise is seeded by the job's `seed`, so a seed repeats a translation), and the output is resized
(bicubic) back to the input's width and height: a translation keeps the input's size and aspect
ratio. Resizing rather than tiling keeps the whole image in the network's view, as in training;
fine detail of inputs much larger than the model's size is lost. The direction (A->B or B->A) is
baked into the model.

Sampling (U-Net GAN, Progressive GAN). `count` images from `seed` (the same seed and model give
the same images), a class label for class-conditional models (none: random labels drawn from the
seed) and optional truncation.

Both write PNGs `results/<job>/<k>.png` through a temporary folder renamed into place, so a job
run again after its worker died never leaves a mix of two attempts, and record how many
(`count`), from which the gateway derives the image URLs. Parameters are parsed with the typed
models of `core.params`; jobs without a seed get a random one, recorded in the result.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from core.jobs import JobStatus
from core.params import InvalidParams, JobParams, parse_params, random_seed
from core.storage import INPUT_FILE, staging_folder
from models.pix2pix import translate as translate_tensor
from models.sampling import sample as draw_samples
from training.images import dequantize, to_pil
from workers.errors import JobFailure
from workers.jobs import JobContext, Outcome
from workers.model_cache import LoadedModel, configure_torch, get_cache


def job_params(ctx: JobContext) -> JobParams:
    """The job's typed parameters (`core.params`); a record that does not fit its kind fails
    `invalid_parameter` naming the field."""
    try:
        return parse_params(ctx.job.kind, ctx.job.params)
    except InvalidParams as exc:
        raise JobFailure("invalid_parameter", str(exc)) from None


def _model_for(ctx: JobContext, task: str) -> LoadedModel:
    if not ctx.job.model:
        raise JobFailure("invalid_parameter", "the job names no model")
    configure_torch()
    loaded = get_cache().get(ctx.job.model)
    if loaded.card.task != task:
        doing = {"translate": "translates images", "sample": "draws samples"}
        raise JobFailure(
            "wrong_model_task",
            f"model {loaded.id!r} is a {loaded.card.family} model that "
            f"{doing.get(loaded.card.task, loaded.card.task)}; this job needs a model that "
            f"{doing[task]}",
        )
    return loaded


def write_results(ctx: JobContext, images: list[Image.Image]) -> None:
    """Save `images` as `results/<job>/<k>.png` atomically (the gateway serves them at
    `/v1/jobs/<job>/images/<k>` from the result's `count`)."""
    final = ctx.storage.result_dir(ctx.job_id)
    with staging_folder(final) as tmp:
        for k, image in enumerate(images):
            image.save(tmp / f"{k}.png", format="PNG")
        if final.exists():  # an earlier attempt finished writing but died before recording
            shutil.rmtree(final)
        tmp.rename(final)


def read_input(path: Path, max_pixels: int, what: str = "the uploaded image") -> Image.Image:
    """The uploaded image, decoded (raises JobFailure with a readable message naming `what`)."""
    if not path.is_file():
        raise JobFailure("input_missing", f"{what} of this job is no longer in storage")
    try:
        with Image.open(path) as img:
            if img.width * img.height > max_pixels:
                raise JobFailure(
                    "image_too_large",
                    f"{what} has {img.width}x{img.height} pixels, more than the "
                    f"{max_pixels} this service accepts",
                )
            img.load()
            return img.copy()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise JobFailure("bad_image", f"{what} could not be read as an image: {exc}") from None


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """A Pillow image (L or RGB) -> (1, C, H, W) float in [-1, 1]."""
    array = np.asarray(image, dtype=np.float32)  # (H, W) or (H, W, C)
    if array.ndim == 2:
        array = array[:, :, None]
    return dequantize(torch.from_numpy(array).permute(2, 0, 1)[None])  # (1, C, H, W)


def flatten_alpha(image: Image.Image) -> Image.Image:
    """An image with transparency composited over white (other images as they are)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA"))
    return image


def model_input(loaded: LoadedModel, image: Image.Image, channels: int) -> torch.Tensor:
    """A picture as the network's input: (1, channels, S, S) in [-1, 1] on the model's device.

    Transparency is flattened on white, the picture converted to grey (1 channel) or RGB (3)
    and resized (bicubic) to the model's square training size S.
    """
    if channels not in (1, 3):
        raise JobFailure(
            "model_unloadable",
            f"model {loaded.id!r} takes {channels}-channel images, which cannot be made from "
            "an uploaded picture",
        )
    size = loaded.card.image_size
    mode = "L" if channels == 1 else "RGB"
    square = flatten_alpha(image).convert(mode).resize((size, size), Image.Resampling.BICUBIC)
    return _to_tensor(square).to(loaded.device)  # (1, C, S, S)


def translate_image(loaded: LoadedModel, image: Image.Image, seed: int) -> Image.Image:
    """Translate one image with a pix2pix generator; the output has the input's size."""
    width, height = image.size
    x = model_input(loaded, image, int(loaded.card.config.get("in_channels", 3)))  # (1, C, S, S)
    y = translate_tensor(loaded.model, x, seed).cpu()  # (1, C_out, S, S)
    return to_pil(y[0]).resize((width, height), Image.Resampling.BICUBIC)


def translate(ctx: JobContext) -> Outcome:
    """Run a translation job: uploaded image in, one PNG of the same size out."""
    params = job_params(ctx)
    seed = random_seed() if params.seed is None else params.seed
    image = read_input(
        ctx.storage.upload_dir(ctx.job_id) / INPUT_FILE, ctx.settings.max_image_pixels
    )
    loaded = _model_for(ctx, "translate")
    output = translate_image(loaded, image, seed)
    if ctx.cancel_requested():
        return Outcome(JobStatus.cancelled, {})
    write_results(ctx, [output])
    return Outcome(
        JobStatus.succeeded,
        {
            "count": 1,
            "model": loaded.id,
            "seed": seed,
            "width": output.width,
            "height": output.height,
        },
    )


def sample_images(
    loaded: LoadedModel,
    count: int,
    seed: int,
    class_label: int | None = None,
    truncation: float | None = None,
) -> list[Image.Image]:
    """`count` images from a sampling generator (same seed and model -> same images)."""
    try:
        batch = draw_samples(
            loaded.model, count, seed, class_label=class_label, truncation=truncation
        )  # (N, C, H, W) in [-1, 1] on the CPU
    except ValueError as exc:
        raise JobFailure("invalid_parameter", str(exc)) from None
    return [to_pil(image) for image in batch]


def sample(ctx: JobContext) -> Outcome:
    """Run a sampling job: `count` PNGs from the model."""
    params = job_params(ctx)
    seed = random_seed() if params.seed is None else params.seed
    count, class_label, truncation = params.count, params.class_label, params.truncation
    loaded = _model_for(ctx, "sample")
    images = sample_images(loaded, count, seed, class_label, truncation)
    if ctx.cancel_requested():
        return Outcome(JobStatus.cancelled, {})
    write_results(ctx, images)
    return Outcome(
        JobStatus.succeeded,
        {
            "model": loaded.id,
            "seed": seed,
            "count": count,
            "class_label": class_label,
            "truncation": truncation,
        },
    )
