"""Inspections: the work of the `infer` queue's realness-map jobs.

An inspection asks a model's trained discriminator where an image looks real or fake
(`models.realness`: U-Net GAN's per-pixel decoder map and global encoder score, Schonfeld et al.
CVPR 2020; pix2pix's PatchGAN patch scores, Isola et al. CVPR 2017). The job names the model
(`job.model`) and its params say what to look at:

- `image`: the key in the object store of the PNG to inspect (`uploads/<job>/image.png`: an
  upload, or a copy of an earlier job's result when the gateway inspects `source_job`'s output);
- `input`: for a pix2pix model, the key of the A image that `image` is meant to translate
  (PatchGAN judges the pair);
- `class_label` (optional): the class a class-conditional U-Net GAN judges the image as; without
  it, the class under which the discriminator finds the image most real;
- `width`, `height`, `source_job`: recorded by the gateway; the worker reads the size from the
  image itself.

The image (and input) are converted to the model's channels and resized (bicubic) to its square
training size, as translations in `resize` mode are. Waiting inspections of the same model share
forward passes (`workers.batching`); each map equals the image's map judged alone. The map is
resized (bilinear) back to the image's width and height. The least real region's box is found on
the map at the model's size and scaled to the image's pixels. Results: `0.png` the grey map (255 =
real) at the image's size, `1.png` the overlay (`workers.overlay`); `result` = `images`,
`global_score` (U-Net GAN; None for pix2pix), `map_mean`, `map_min`, `least_real_box` [x0, y0, x1,
y1] (x1, y1 exclusive), `class_label` (class-conditional U-Net GAN, else None) and `model`.

Failures: `model_not_found`, `no_discriminator` (the model folder carries none),
`not_inspectable` (a Progressive GAN: its critic gives one score per image and no map),
`input_required` (a pix2pix model without its A image), `invalid_parameter`, `input_missing`,
`bad_image`, `image_too_large`, `model_unloadable`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.families import FAMILIES, capable_titles
from core.jobs import JobStatus
from models.realness import (
    ConditionRequired,
    NoRealnessMap,
    Realness,
    check_class_label,
    least_real_box,
    realness_batch,
)
from workers.batching import Prepared, run_batched
from workers.errors import JobFailure
from workers.inference import (
    flatten_alpha,
    job_params,
    model_input,
    read_input,
    stored_key,
    write_results,
)
from workers.jobs import JobContext, Outcome
from workers.model_cache import LoadedModel, configure_torch, fast_path, get_cache
from workers.overlay import map_picture, overlay_picture

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Inspection:
    """A realness map at the image's size and what the job reports of it."""

    map: np.ndarray  # (H, W) float32 in [0, 1], 1 = looks real
    global_score: float | None
    class_label: int | None
    box: Box  # least real region, in the image's pixels


def scale_box(box: Box, source: tuple[int, int], target: tuple[int, int]) -> Box:
    """A box (x0, y0, x1, y1) on a `source` (W, H) picture, grown outwards onto `target` (W, H)."""
    (x0, y0, x1, y1), (sw, sh), (tw, th) = box, source, target
    return (
        math.floor(x0 * tw / sw),
        math.floor(y0 * th / sh),
        math.ceil(x1 * tw / sw),
        math.ceil(y1 * th / sh),
    )


def _discriminator_for(ctx: JobContext) -> LoadedModel:
    if not ctx.job.model:
        raise JobFailure("invalid_parameter", "the job names no model")
    configure_torch()
    cache = get_cache()
    card = cache.card(ctx.job.model)
    family = FAMILIES.get(card.family)  # None: a family this server lacks
    if family is None or not family.inspectable:
        mapped = capable_titles("inspectable")
        raise JobFailure(
            "not_inspectable",
            f"model {ctx.job.model!r} is a {card.family} model: its discriminator gives no "
            f"realness map ({mapped} models do)",
        )
    return cache.get_discriminator(ctx.job.model)


def _condition(ctx: JobContext, loaded: LoadedModel) -> torch.Tensor | None:
    """The A image as a paired discriminator's (pix2pix's) condition (1, C_A, S, S); None for
    the other families."""
    family = FAMILIES.get(loaded.card.family)
    if family is None or not family.paired_discriminator:
        return None
    key = stored_key(ctx, "input")
    if key is None or not ctx.storage.objects.exists(key):
        raise JobFailure(
            "input_required",
            f"model {loaded.id!r} is a {loaded.card.family} model: its discriminator judges an "
            "image together with the input (A) image it translates; send that image as the input",
        )
    picture = read_input(
        ctx.storage.objects, key, ctx.settings.max_image_pixels, "the input (A) image"
    )
    return model_input(loaded, picture, int(loaded.card.config.get("in_channels", 3)))


@dataclass(frozen=True)
class InspectionInput:
    """An inspection's image as uploaded, and as the discriminator takes it."""

    image: Image.Image
    x: torch.Tensor  # (1, C, S, S)
    condition: torch.Tensor | None  # (1, C_A, S, S) for pix2pix
    class_label: int | None


def inspect_inputs(loaded: LoadedModel, inputs: list[InspectionInput]) -> list[Inspection]:
    """The realness maps of inputs of one shape, judged in one forward pass, each at its own
    image's size."""
    gan_mode = loaded.card.provenance.get("training", {}).get("gan_mode")
    x = torch.cat([i.x for i in inputs])  # (B, C, S, S)
    conditions = None if inputs[0].condition is None else torch.cat([i.condition for i in inputs])
    try:
        with fast_path(loaded.device).autocast():
            results = realness_batch(
                loaded.model,
                x,
                conditions,
                [i.class_label for i in inputs],
                least_squares=gan_mode == "lsgan",
            )
    except NoRealnessMap as exc:
        raise JobFailure("not_inspectable", str(exc)) from None
    except ConditionRequired as exc:
        raise JobFailure("input_required", str(exc)) from None
    except ValueError as exc:
        raise JobFailure("invalid_parameter", str(exc)) from None
    return [
        _at_image_size(item.image, result) for item, result in zip(inputs, results, strict=True)
    ]


def _at_image_size(image: Image.Image, result: Realness) -> Inspection:
    width, height = image.size
    map_ = result.map.float()  # (S, S)
    size = (map_.shape[1], map_.shape[0])  # (S, S) as (W, H)
    box = scale_box(least_real_box(map_.numpy()), size, (width, height))
    full = F.interpolate(map_[None, None], size=(height, width), mode="bilinear")
    full_map = full[0, 0].clamp(0, 1).numpy()  # (1, 1, H, W) -> (H, W)
    return Inspection(full_map, result.global_score, result.class_label, box)


class InspectionWork:
    """Inspection jobs as `workers.batching` runs them."""

    def load(self, ctx: JobContext) -> LoadedModel:
        return _discriminator_for(ctx)

    def prepare(self, ctx: JobContext, loaded: LoadedModel) -> Prepared:
        image_key = stored_key(ctx, "image")
        if image_key is None:
            raise JobFailure("invalid_parameter", "the job names no image to inspect")
        objects, limit = ctx.storage.objects, ctx.settings.max_image_pixels
        image = read_input(objects, image_key, limit, "the image to inspect")
        class_label = job_params(ctx).class_label
        try:  # checked per job, so one bad label cannot fail the batch it joins
            check_class_label(loaded.model, class_label)
        except ValueError as exc:
            raise JobFailure("invalid_parameter", str(exc)) from None
        x = model_input(loaded, image, loaded.card.channels)  # (1, C, S, S)
        item = InspectionInput(image, x, _condition(ctx, loaded), class_label)
        key = (tuple(x.shape), None if item.condition is None else tuple(item.condition.shape))
        return Prepared(ctx, key, 1, item)

    def run(self, loaded: LoadedModel, members: list[Prepared]) -> list[Inspection]:
        return inspect_inputs(loaded, [m.data for m in members])

    def finish(self, prepared: Prepared, found: Inspection) -> Outcome:
        ctx = prepared.ctx
        base = flatten_alpha(prepared.data.image).convert("RGB")
        write_results(ctx, [map_picture(found.map), overlay_picture(base, found.map, found.box)])
        result: dict[str, Any] = {
            "count": 2,
            "global_score": found.global_score,
            "map_mean": float(found.map.mean()),
            "map_min": float(found.map.min()),
            "least_real_box": list(found.box),
            "class_label": found.class_label,
            "model": ctx.job.model,
        }
        return Outcome(JobStatus.succeeded, result)


def inspect(ctx: JobContext) -> Outcome:
    """Run an inspection job (with any waiting batch-mates): the realness map and overlay PNGs
    and the numbers."""
    return run_batched(ctx, InspectionWork())
