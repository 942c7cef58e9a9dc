"""Metrics of a generator: SWD and FID/KID/IS for sampling models, L1/PSNR/SSIM for pix2pix.

What the Progressive GAN paper reports (SWD, Karras et al. 2018), what U-Net GAN reports (FID,
Schonfeld et al. 2020) and what pix2pix judges translations by (Isola et al. 2017), computed for
a generator against real data. Used by `python -m training.evaluate` and by the training loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from models.images import dequantize, from_pil, quantize, to_pil
from models.pix2pix.translation import translate, translate_native
from models.sampling import sample
from training.data import PairedDataset, collate
from training.metrics.fidelity import UNAVAILABLE_PREFIX, compute_fidelity
from training.metrics.inception import FIDInception
from training.metrics.paired import PairedMetrics
from training.metrics.swd import sliced_wasserstein_distance, swd_resolutions

SAMPLING_METRICS = ("swd", "fid", "kid", "is")


def batches(images: torch.Tensor, size: int = 64) -> Iterator[torch.Tensor]:
    """Consecutive mini-batches of an image tensor."""
    return (images[i : i + size] for i in range(0, images.shape[0], size))


def match_resolution(pixels: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 (N, C, S, S) box-filtered down to (N, C, side, side) (a growing PGGAN's output)."""
    if pixels.shape[-1] == side:
        return pixels
    return quantize(F.adaptive_avg_pool2d(dequantize(pixels), side))


def sampling_metrics(
    generator: nn.Module,
    real: torch.Tensor,
    *,
    metrics: Sequence[str] = SAMPLING_METRICS,
    seed: int = 0,
    inception_weights: Path | str | FIDInception | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, float | str]:
    """Compare as many samples of `generator` as there are `real` images (uint8 (N, C, S, S)).

    Keys: "swd_<resolution>" per level and "swd_avg" (x1e3, lower is better), "fid",
    "kid_mean"/"kid_std", "is_mean"/"is_std"; a metric that cannot be computed here (no Inception
    weights, an image side SWD does not take) maps to a sentence saying why.
    """
    fake = quantize(sample(generator, real.shape[0], seed))  # (N, C, R, R) on the CPU
    real = match_resolution(real, fake.shape[-1])
    results: dict[str, float | str] = {}
    if "swd" in metrics:
        try:
            swd_resolutions(fake.shape[-1])
        except ValueError as exc:
            results["swd_avg"] = f"{UNAVAILABLE_PREFIX}{exc}"
        else:
            swd = sliced_wasserstein_distance(
                batches(real), batches(fake), fake.shape[-1], seed=seed, device=device
            )
            results.update({f"swd_{level}": value for level, value in swd.items()})
    asked = [m for m in metrics if m in ("fid", "kid", "is")]
    if asked:
        results.update(
            compute_fidelity(
                batches(real),
                batches(fake),
                weights=inception_weights,
                metrics=asked,
                device=device,
            )
        )
    return results


@torch.no_grad()
def _served(pixels: torch.Tensor) -> torch.Tensor:
    """An image (1, C, H, W) in [-1, 1] as the PNG a job serves: quantised to 8 bits."""
    return dequantize(quantize(pixels.cpu()).float()).to(pixels.device)


def _picture(pixels: torch.Tensor) -> Image.Image:
    return to_pil(pixels[0].cpu())


def translate_as_served(
    generator: nn.Module, a: torch.Tensor, seed: int, mode: str, max_tile_pixels: int
) -> torch.Tensor:
    """A translation job's output for the input a (1, C, H, W) of any size, in `mode`:

    `native`: the generator at a's own resolution (`models.pix2pix.translation.translate_native`);
    `resize`: a resized (bicubic, Pillow, as the worker does) to the model's square size,
    translated, and the output resized back. Quantised to 8 bits as the served PNG is.
    """
    height, width = a.shape[-2:]
    if mode == "native":
        return _served(translate_native(generator, a, seed, max_tile_pixels))
    size = generator.config.image_size
    square = from_pil(_picture(a).resize((size, size), Image.Resampling.BICUBIC)).to(a.device)
    output = _picture(translate(generator, square, seed))
    return from_pil(output.resize((width, height), Image.Resampling.BICUBIC)).to(a.device)


def translation_metrics(
    generator: nn.Module,
    pairs: PairedDataset,
    *,
    limit: int | None = None,
    seed: int = 0,
    mode: str | None = None,
    max_tile_pixels: int = 2048 * 2048,
) -> dict[str, float]:
    """L1, PSNR and SSIM of the generator's translations of `pairs` (no augmentation).

    Each pair is translated exactly as a translation job translates an image
    (`models.pix2pix.translation.translate`: one image, its own statistics, dropout seeded), pair i
    with seed `seed + i`, so these figures are what the service serves. With `mode` (`native` or
    `resize`), pairs of any size are translated as a job in that mode does, output quantised
    (`translate_as_served`).
    """
    device = next(generator.parameters()).device
    metrics = PairedMetrics()
    count = len(pairs) if limit is None else min(limit, len(pairs))
    rng = torch.Generator().manual_seed(0)
    rng_before = torch.get_rng_state()
    try:
        for i in range(count):
            pair = collate([pairs.get(i, rng)])
            a = pair["A"].to(device)  # (1, Ca, S, S)
            if mode is None:
                output = translate(generator, a, seed + i)
            else:
                output = translate_as_served(generator, a, seed + i, mode, max_tile_pixels)
            metrics.add(output, pair["B"].to(device))
    finally:
        torch.set_rng_state(rng_before)
    return {**metrics.compute(), "pairs": float(count)}
