"""Discriminator-guided sampling jobs: the model's trained discriminator picks which of the
generator's candidates a sample job keeps (`models.discriminator_filter`: "keep the most real",
and Discriminator Rejection Sampling, Azadi et al., ICLR 2019).

The candidates are drawn from the job's seed and run on the same fast path as plain samples, so
every kept image is the image its latent gives in a plain sample job, and the same seed keeps the
same images. The candidate loops ask the job's cancellation flag before every chunk of
candidates, so a cancelled job stops within a chunk's time (`models.stopping.Stopped`, which
`workers.batching` ends as `cancelled`).
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from core.params import DrsFilter, SampleParams, TopFilter
from models.discriminator_filter import drs_filter, top_filter
from models.images import to_pil
from workers.errors import JobFailure
from workers.jobs import JobContext
from workers.model_cache import LoadedModel, fast_path, get_cache


def filtered_samples(
    ctx: JobContext, loaded: LoadedModel, params: SampleParams, seed: int
) -> tuple[list[Image.Image], torch.Tensor, torch.Tensor | None, dict[str, Any]]:
    """The job's `count` kept images, their latents (N, Z), labels (N,) or None, and what the
    filter did (method, candidates drawn, accepted, their scores)."""
    assert params.filter is not None and ctx.job.model is not None
    critic = get_cache().get_discriminator(ctx.job.model)
    fast = fast_path(loaded.device)
    common = {
        "count": params.count,
        "seed": seed,
        "class_label": params.class_label,
        "truncation": params.truncation,
        "should_stop": ctx.cancel_requested,
    }
    try:
        with torch.no_grad(), fast.autocast():
            if isinstance(params.filter, TopFilter):
                kept = top_filter(
                    loaded.model,
                    critic.model,
                    keep=params.filter.keep,
                    pixel_weight=params.filter.pixel_weight,
                    **common,
                )
            else:
                assert isinstance(params.filter, DrsFilter)
                kept = drs_filter(
                    loaded.model,
                    critic.model,
                    burn_in=params.filter.burn_in,
                    percentile=params.filter.percentile,
                    max_candidates=params.filter.max_candidates,
                    **common,
                )
    except ValueError as exc:
        raise JobFailure("invalid_parameter", str(exc)) from None
    report = {
        **params.filter.model_dump(),
        **kept.stats,
        "scores": [round(float(s), 4) for s in kept.scores],
    }
    return [to_pil(image) for image in kept.images], kept.z, kept.labels, report
