"""Translations and samples: the work of the `infer` queue's jobs.

Translation (pix2pix). The input `uploads/<job>/input.png` is converted to the model's input
channels (1 -> grey "L", 3 -> "RGB") and run through the generator in the paper's test-time mode
(`models.pix2pix.translation`: each image normalised by its own statistics, dropout on and seeded
by the job's `seed`, so a seed repeats a translation). `mode=native` (the default) runs the fully
convolutional generator at the image's own resolution (reflect-padded to a multiple of its
stride, in tiles above `GANSERVE_MAX_TILE_PIXELS`); `mode=resize` squeezes the image to the
model's square training size (bicubic) and stretches the output back, which loses the fine
detail of large inputs. Either way the output has the input's width and height. The direction
(A->B or B->A) is baked into the model.

Sampling (U-Net GAN, Progressive GAN). `count` images from `seed` (the same seed and model give
the same images), a class label for class-conditional models (none: random labels drawn from the
seed) and optional truncation; or from given `latents` (vectors, or an earlier job's kept ones,
`workers.latents`) with their class labels, which give the same images bit for bit; or filtered
by the model's discriminator (`workers.filtering`). Every sampling job keeps its latents
(`latents.npy`, and inline in the result when small).

Both run through `workers.batching`: waiting jobs of the same model share forward passes, under
the fast path of `workers.fast_path` (bf16 autocast where the hardware has it). Both store their
images `results/<job>/<k>.<ext>` in the object store in the format the job asked for (`format`:
PNG by default, WebP or JPEG at `quality`; `encode_image`), each encoded in memory (results are
small) and written with one atomic `put`, and record how many (`count`) and their `format` and
`quality` only once all are stored, from which the gateway derives the image URLs and serves
them: a reader never sees half a result, and a job run again after its worker died writes the
same keys again. Parameters are parsed with the typed models of `core.params`; jobs without a
seed get a random one, recorded in the result.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError

from core.jobs import JobStatus
from core.object_store import ObjectStore
from core.params import (
    InvalidParams,
    JobParams,
    LatentsOfJob,
    ResultImageParams,
    SampleParams,
    parse_params,
    random_seed,
)
from core.storage import (
    LATENTS_FILE,
    PNG_COMPRESS_LEVEL,
    result_image_name,
    result_key,
    upload_key,
)
from models.images import from_pil, to_pil
from models.pix2pix import translation
from models.pix2pix.translation import (
    TestTimeRun,
    padded_size,
    plan_tiles,
    reflect_pad,
    total_stride,
    translate_native,
)
from models.sampling import generate, sample_inputs
from workers.batching import Prepared, run_batched, should_stop
from workers.errors import JobFailure, exception_text
from workers.fast_path import FastPath, bucket, pad_rows_to
from workers.filtering import filtered_samples
from workers.jobs import JobContext, Outcome
from workers.latents import kept_latents, labels_tensor, latent_result, latents_npy, vectors
from workers.model_cache import LoadedModel, configure_torch, fast_path, get_cache

CPU_TILE_PIXELS, CUDA_TILE_PIXELS = 2048 * 2048, 4096 * 4096
# libwebp's effort (0-6): 0 encoded 256x256 photo-like results 2-3x faster than Pillow's default
# 4, for 2-7% more bytes (docs/performance.md#result-formats).
WEBP_METHOD = 0


def job_params(ctx: JobContext) -> JobParams:
    """The job's typed parameters (`core.params`); a record that does not fit its kind fails
    `invalid_parameter` naming the field."""
    try:
        return parse_params(ctx.job.kind, ctx.job.params)
    except InvalidParams as exc:
        raise JobFailure("invalid_parameter", str(exc)) from None


def model_for(ctx: JobContext, task: str) -> LoadedModel:
    """The job's model's generator from the worker's cache; JobFailure when the job names no
    model or the model cannot do `task` ("translate" or "sample")."""
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


def png_bytes(image: Image.Image) -> bytes:
    """`image` encoded as PNG (at the service's fast compression level)."""
    return encode_image(image)


def encode_image(image: Image.Image, format: str = "png", quality: int | None = None) -> bytes:
    """`image` (grey "L" or "RGB", as the generators give them) encoded as `format`: PNG at
    the service's fast compression level, WebP or JPEG at `quality` (transparency, which JPEG
    cannot hold, flattened on white)."""
    buffer = io.BytesIO()
    if format == "png":
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif format == "webp":
        image.save(buffer, format="WEBP", quality=quality, method=WEBP_METHOD)
    elif format == "jpeg":
        if image.mode not in ("L", "RGB"):
            image = flatten_alpha(image).convert("RGB")
        image.save(buffer, format="JPEG", quality=quality)
    else:
        raise ValueError(f"unknown result image format {format!r}")
    return buffer.getvalue()


def result_encoding(ctx: JobContext) -> tuple[str, int | None]:
    """The format and quality a translation or sample job's images are written in."""
    params = job_params(ctx)
    assert isinstance(params, ResultImageParams)
    return params.encoding()


def write_results(
    ctx: JobContext,
    images: list[Image.Image],
    extra: Mapping[str, bytes] | None = None,
    encoding: tuple[str, int | None] = ("png", None),
) -> None:
    """Store `images` as `results/<job>/<k>.<ext>` in `encoding` (format, quality; the gateway
    serves them at `/v1/jobs/<job>/images/<k>` from the result's `count` and `format`, recorded
    after this) and the `extra` files (name: bytes) beside them, each with one atomic `put`.
    When one cannot be written (a full volume), those already written are removed, so nothing
    of the attempt stays."""
    objects = ctx.storage.objects
    format, quality = encoding
    try:
        for name, data in (extra or {}).items():
            objects.put(result_key(ctx.job_id, name), data)
        for k, image in enumerate(images):
            data = encode_image(image, format, quality)
            objects.put(result_key(ctx.job_id, result_image_name(k, format)), data)
    except BaseException:
        with contextlib.suppress(Exception):
            objects.delete_prefix(result_key(ctx.job_id, ""))
        raise


def stored_key(ctx: JobContext, name: str) -> str | None:
    """The key of the stored file the job's path parameter `name` names (None without one);
    JobFailure unless it is a key of the service's store (relative, no `.` or `..` parts)."""
    value = ctx.job.params.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise JobFailure("invalid_parameter", f"{name} must be a path, not {value!r}")
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise JobFailure("invalid_parameter", f"{name} must be a file in the service's storage")
    return value


def read_input(
    objects: ObjectStore, key: str, max_pixels: int, what: str = "the uploaded image"
) -> Image.Image:
    """The stored image `key`, decoded (raises JobFailure with a readable message naming
    `what`)."""
    data = objects.read(key)
    if data is None:
        raise JobFailure("input_missing", f"{what} of this job is no longer in storage")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise JobFailure(
                    "image_too_large",
                    f"{what} has {img.width}x{img.height} pixels, more than the "
                    f"{max_pixels} this service accepts",
                )
            img.load()
            return img.copy()
    except UnidentifiedImageError:
        raise JobFailure(
            "bad_image", f"{what} could not be read as an image: not a format Pillow reads"
        ) from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise JobFailure(
            "bad_image", f"{what} could not be read as an image: {exception_text(exc)}"
        ) from None


def flatten_alpha(image: Image.Image) -> Image.Image:
    """An image with transparency composited over white (other images as they are)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA"))
    return image


def network_picture(loaded: LoadedModel, image: Image.Image, channels: int) -> Image.Image:
    """A picture in the network's channels: transparency flattened on white, then grey (1
    channel) or RGB (3)."""
    if channels not in (1, 3):
        raise JobFailure(
            "model_unloadable",
            f"model {loaded.id!r} takes {channels}-channel images, which cannot be made from "
            "an uploaded picture",
        )
    return flatten_alpha(image).convert("L" if channels == 1 else "RGB")


def model_input(loaded: LoadedModel, image: Image.Image, channels: int) -> torch.Tensor:
    """A picture as the network's input at its square training size S: (1, channels, S, S) in
    [-1, 1] on the CPU (resized bicubic)."""
    size = loaded.card.image_size
    square = network_picture(loaded, image, channels).resize((size, size), Image.Resampling.BICUBIC)
    return from_pil(square)  # (1, C, S, S)


@dataclass(frozen=True)
class TranslationInput:
    """A translation job's input: the tensor it runs as, where its image lies in it, how."""

    x: torch.Tensor  # (1, C, H', W'): padded (native), square (resize) or as uploaded (tiled)
    seed: int
    size: tuple[int, int]  # the upload's (W, H)
    offset: tuple[int, int]  # (top, left) of the image in a padded x
    mode: str
    tiled: bool


def translation_input(
    loaded: LoadedModel, image: Image.Image, seed: int, mode: str, max_tile_pixels: int
) -> TranslationInput:
    """How one image runs through a generator in `mode` (see the module docstring)."""
    channels = int(loaded.card.config.get("in_channels", 3))
    if mode == "resize":
        return TranslationInput(
            model_input(loaded, image, channels), seed, image.size, (0, 0), mode, False
        )
    x = from_pil(network_picture(loaded, image, channels))  # (1, C, H, W)
    stride = total_stride(loaded.model)
    height, width = padded_size(x.shape[-2], x.shape[-1], stride)
    if plan_tiles(height, width, stride, max_tile_pixels) is not None:
        return TranslationInput(x, seed, image.size, (0, 0), mode, True)
    padded, offset = reflect_pad(x, stride)  # (1, C, H', W')
    return TranslationInput(padded, seed, image.size, offset, mode, False)


def translate_inputs(
    loaded: LoadedModel,
    inputs: list[TranslationInput],
    max_tile_pixels: int,
    should_stop: Callable[[], bool] | None = None,
) -> list[Image.Image]:
    """Translate inputs of one shape in one forward pass (a tiled one alone, asking
    `should_stop` before every tile); one picture each, at its upload's size."""
    generator, fast = loaded.model, fast_path(loaded.device)
    with torch.no_grad(), fast.autocast():
        if inputs[0].tiled:
            (only,) = inputs
            x = only.x.to(loaded.device)
            y = translate_native(generator, x, only.seed, max_tile_pixels, should_stop)
            return [to_pil(y[0].cpu())]
        x = fast.io.batch_to_device([i.x for i in inputs])  # (B, C, H', W')
        y = translate_batch(generator, x, [i.seed for i in inputs], fast)  # (B, C_out, H', W')
    pictures = []
    for item, out in zip(inputs, y, strict=True):
        width, height = item.size
        if item.mode == "resize":
            pictures.append(to_pil(out).resize((width, height), Image.Resampling.BICUBIC))
        else:
            top, left = item.offset
            pictures.append(to_pil(out[:, top : top + height, left : left + width]))
    return pictures


def translate_image(
    loaded: LoadedModel,
    image: Image.Image,
    seed: int,
    mode: str = "resize",
    max_tile_pixels: int = 2048 * 2048,
) -> Image.Image:
    """Translate one image with a pix2pix generator; the output has the input's size."""
    item = translation_input(loaded, image, seed, mode, max_tile_pixels)
    return translate_inputs(loaded, [item], max_tile_pixels)[0]


def translate_batch(
    generator: torch.nn.Module, x: torch.Tensor, seeds: list[int], fast: FastPath
) -> torch.Tensor:
    """`models.pix2pix.translation.translate_batch` on the fast path: (B, C, H, W) on the device ->
    (B, C_out, H, W) float32 on the CPU. When the path compiles, the batch runs padded to its
    power-of-two bucket, with CUDA graphs at the model's own size under reduce-overhead; the
    dropout masks are inputs of the compiled function, copied to the device as `x` was."""
    rows, size = x.shape[0], (x.shape[-2], x.shape[-1])
    if fast.compile:
        padded = bucket(rows)
        seeds = seeds + [seeds[0]] * (padded - rows)
        x = pad_rows_to(x, padded)
    masks = fast.io.to_device(*translation.draw_masks(generator, seeds, size))

    def run(x: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
        return translation.forward(generator, x, TestTimeRun((x.shape[-2], x.shape[-1]), masks))

    square = generator.config.image_size
    run = fast.compiled(generator, "translate", run, graphs=size == (square, square))
    return fast.io.to_host(run(x, masks)[:rows].float().clamp(-1, 1))


class TranslationWork:
    """Translation jobs as `workers.batching` runs them."""

    def load(self, ctx: JobContext) -> LoadedModel:
        return model_for(ctx, "translate")

    def prepare(self, ctx: JobContext, loaded: LoadedModel) -> Prepared:
        params = job_params(ctx)
        seed = random_seed() if params.seed is None else params.seed
        image = read_input(
            ctx.storage.objects, upload_key(ctx.job_id), ctx.settings.max_image_pixels
        )
        item = translation_input(loaded, image, seed, params.mode, max_tile_pixels(ctx, loaded))
        key = ("tiled", ctx.job_id) if item.tiled else (item.mode, tuple(item.x.shape))
        square = loaded.card.image_size**2
        rows = -(-item.x.shape[-2] * item.x.shape[-1] // square)  # model-size images it weighs
        return Prepared(ctx, key, rows, item)

    def run(self, loaded: LoadedModel, members: list[Prepared]) -> list[Image.Image]:
        limit = max_tile_pixels(members[0].ctx, loaded)
        return translate_inputs(loaded, [m.data for m in members], limit, should_stop(members))

    def finish(self, prepared: Prepared, output: Image.Image) -> Outcome:
        ctx, item = prepared.ctx, prepared.data
        encoding = result_encoding(ctx)
        write_results(ctx, [output], encoding=encoding)
        format, quality = encoding
        result = {
            "count": 1,
            "model": ctx.job.model,
            "seed": item.seed,
            "mode": item.mode,
            "tiled": item.tiled,
            "precision": fast_path().precision if item.tiled else fast_path().name,
            "width": output.width,
            "height": output.height,
            "format": format,
            "quality": quality,
        }
        return Outcome(JobStatus.succeeded, result)


def translate(ctx: JobContext) -> Outcome:
    """Run a translation job (with any waiting batch-mates): one image of the input's size."""
    return run_batched(ctx, TranslationWork())


def _latents(
    loaded: LoadedModel,
    count: int,
    seed: int,
    class_label: int | None,
    truncation: float | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    try:
        return sample_inputs(
            loaded.model.config, count, seed, class_label=class_label, truncation=truncation
        )
    except ValueError as exc:
        raise JobFailure("invalid_parameter", str(exc)) from None


def given_latents(
    ctx: JobContext, loaded: LoadedModel, params: SampleParams
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The latents (N, Z) and labels (N,) or None a sample job names instead of a seed."""
    config = loaded.model.config
    if isinstance(params.latents, LatentsOfJob):
        source = params.latents
        z = kept_latents(ctx.storage, source.job, source.indices, config.latent_dim)
    else:
        z = vectors(params.latents, config.latent_dim)
    labels = params.class_labels
    if labels is None and params.class_label is not None:
        labels = [params.class_label] * z.shape[0]
    return z, labels_tensor(labels, config.num_classes, z.shape[0])


def generate_images(
    loaded: LoadedModel,
    latents: list[tuple[torch.Tensor, torch.Tensor | None]],
    embeddings: list[torch.Tensor] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[list[Image.Image]]:
    """The images of several jobs' latents (N_i, Z) in one pass of the generator (on the fast
    path), with labels (N_i,) or, for interpolated classes, class embeddings (N_i, E);
    `should_stop` is asked before every chunk (`models.sampling.generate`)."""
    z = torch.cat([z for z, _ in latents])  # (N, Z)
    labels = [y for _, y in latents]
    y = None if labels[0] is None else torch.cat(labels)  # (N,)
    extra = {} if embeddings is None else {"class_embedding": torch.cat(embeddings)}  # (N, E)
    fast = fast_path(loaded.device)
    network = fast.sampler(loaded.model)
    with torch.no_grad(), fast.autocast():
        batch = generate(network, z, y, should_stop=should_stop, **extra)  # (N, C, H, W)
    pictures, start = [], 0
    for z_i, _ in latents:
        pictures.append([to_pil(image) for image in batch[start : start + len(z_i)]])
        start += len(z_i)
    return pictures


@dataclass(frozen=True)
class SampleInput:
    """A sampling job's draw: its params, seed (None for given latents), latents and labels
    (None for a filtered job: the filter draws them)."""

    params: SampleParams
    seed: int | None
    z: torch.Tensor | None  # (N, Z)
    y: torch.Tensor | None  # (N,)


@dataclass(frozen=True)
class SampleOutput:
    """A sampling job's images with their latents, labels and, when filtered, how."""

    images: list[Image.Image]
    z: torch.Tensor  # (N, Z)
    y: torch.Tensor | None  # (N,)
    filtered: dict[str, Any] | None = None


class SampleWork:
    """Sampling jobs as `workers.batching` runs them: plain and given-latent draws share
    forward passes; a filtered one runs alone (it draws until its filter has enough)."""

    def load(self, ctx: JobContext) -> LoadedModel:
        return model_for(ctx, "sample")

    def prepare(self, ctx: JobContext, loaded: LoadedModel) -> Prepared:
        params = job_params(ctx)
        assert isinstance(params, SampleParams)
        if params.latents is not None:
            z, y = given_latents(ctx, loaded, params)
            return Prepared(ctx, ("sample",), len(z), SampleInput(params, None, z, y))
        seed = random_seed() if params.seed is None else params.seed
        if params.filter is not None:
            key = ("filtered", ctx.job_id)
            return Prepared(ctx, key, params.count, SampleInput(params, seed, None, None))
        z, y = _latents(loaded, params.count, seed, params.class_label, params.truncation)
        return Prepared(ctx, ("sample",), params.count, SampleInput(params, seed, z, y))

    def run(self, loaded: LoadedModel, members: list[Prepared]) -> list[SampleOutput]:
        if members[0].key[0] == "filtered":
            (only,) = members
            params, seed = only.data.params, only.data.seed
            return [SampleOutput(*filtered_samples(only.ctx, loaded, params, seed))]
        inputs = [m.data for m in members]
        stop = should_stop(members)
        pictures = generate_images(loaded, [(i.z, i.y) for i in inputs], should_stop=stop)
        return [SampleOutput(p, i.z, i.y) for p, i in zip(pictures, inputs, strict=True)]

    def finish(self, prepared: Prepared, output: SampleOutput) -> Outcome:
        ctx, draw = prepared.ctx, prepared.data
        params = draw.params
        format, quality = params.encoding()
        extra = {LATENTS_FILE: latents_npy(output.z)}
        write_results(ctx, output.images, extra, (format, quality))
        result = {
            "model": ctx.job.model,
            "seed": draw.seed,
            "count": len(output.images),
            "format": format,
            "quality": quality,
            "class_label": params.class_label,
            "truncation": params.truncation,
            "precision": fast_path().name,
            **latent_result(output.z, output.y),
        }
        if isinstance(params.latents, LatentsOfJob):
            result["latents_from"] = params.latents.model_dump()
        if output.filtered is not None:
            result["filter"] = output.filtered
        return Outcome(JobStatus.succeeded, result)


def sample(ctx: JobContext) -> Outcome:
    """Run a sampling job (with any waiting batch-mates): `count` images from the model."""
    return run_batched(ctx, SampleWork())


def max_tile_pixels(ctx: JobContext, loaded: LoadedModel) -> int:
    """The largest padded image a translation runs in one piece (`GANSERVE_MAX_TILE_PIXELS`)."""
    if ctx.settings.max_tile_pixels is not None:
        return ctx.settings.max_tile_pixels
    return CUDA_TILE_PIXELS if loaded.device.type == "cuda" else CPU_TILE_PIXELS
