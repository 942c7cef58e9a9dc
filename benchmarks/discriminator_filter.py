"""Do the discriminator's picks look more like the data? SWD of filtered and unfiltered samples.

For each sampling demo model (`digits`: class-conditional U-Net GAN, Schonfeld et al. 2020;
`faces`: Progressive GAN, Karras et al. 2018) and one seed, three sets of N images:

- unfiltered: a plain sample job (`models.sampling.sample`);
- top: `models.discriminator_filter.top_filter`, keep 0.5 (the N most real of 2N candidates);
- drs: `models.discriminator_filter.drs_filter`, Discriminator Rejection Sampling (Azadi et al.,
  ICLR 2019) with its defaults unless given (burn-in, percentile, max candidates).

Each set's multi-scale sliced Wasserstein distance (Karras et al. 2018, `training.metrics.swd`,
x1e3, averaged over the pyramid's levels; lower is closer) is measured against the real demo
images (`training.demo.build_demo`, at the generator's training size, box-filtered down to its
output resolution when a Progressive GAN is still growing), beside the floor of two halves of
the real images against each other, and as a ratio to the unfiltered set's. The networks run as
the infer worker runs them: bf16 autocast where `workers.fast_path` would use it (CUDA, or CPUs
with native bf16), else fp32; the output says which. JSON lines per set, then a markdown table.

    .venv/bin/python benchmarks/discriminator_filter.py --models var/data/models
    .venv/bin/python benchmarks/discriminator_filter.py --model digits=runs/digits/model \\
        --model faces=runs/faces/model
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import models
from core.params import DEFAULT_BURN_IN, DEFAULT_MAX_CANDIDATES, DEFAULT_PERCENTILE
from models.discriminator_filter import Filtered, drs_filter, top_filter
from models.images import quantize
from models.sampling import generate, sample_inputs
from training.data import ImageDataset
from training.demo import build_demo
from training.metrics.generator_metrics import batches, match_resolution
from training.metrics.swd import sliced_wasserstein_distance
from workers.fast_path import FastPath

DEFAULT_COUNTS = {"digits": 500, "faces": 100}


def swd(real: torch.Tensor, fake: torch.Tensor) -> float:
    """SWD x 1e3 averaged over levels of two uint8 (N, C, R, R) sets."""
    return sliced_wasserstein_distance(batches(real), batches(fake), real.shape[-1], seed=0)["avg"]


def real_images(name: str, generator: nn.Module, work: Path, side: int) -> torch.Tensor:
    """The real demo images, uint8 (N, C, side, side)."""
    data = build_demo(name, work / name, size=generator.config.image_size)
    pixels = ImageDataset(data, image_size=generator.config.image_size).pixels
    return match_resolution(pixels, side)


def floor(real: torch.Tensor) -> float:
    """SWD of two disjoint random halves of the real images."""
    order = torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(0))
    half = real.shape[0] // 2
    return swd(real[order[:half]], real[order[half : 2 * half]])


def unfiltered(generator: nn.Module, count: int, seed: int) -> Filtered:
    """A plain sample job's images, in the filters' result form."""
    z, y = sample_inputs(generator.config, count, seed)
    images = generate(generator, z, y)
    return Filtered(z, y, images, torch.full((count,), float("nan")), {"candidates": count})


def evaluate(
    name: str, folder: Path, count: int, seed: int, work: Path, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """One row per set of the model in `folder`: SWD against the real images and the ratio."""
    generator = models.load(folder)
    discriminator = models.load_discriminator(folder)
    fast = FastPath(next(generator.parameters()).device, precision="auto", compile=False)
    sets: dict[str, Callable[[], Filtered]] = {
        "unfiltered": lambda: unfiltered(generator, count, seed),
        "top": lambda: top_filter(generator, discriminator, count=count, seed=seed, keep=0.5),
        "drs": lambda: drs_filter(
            generator,
            discriminator,
            count=count,
            seed=seed,
            burn_in=args.burn_in,
            percentile=args.percentile,
            max_candidates=args.max_candidates,
        ),
    }
    side = generate(generator, *sample_inputs(generator.config, 1, seed)).shape[-1]
    real = real_images(name, generator, work, side)  # (M, C, R, R) uint8
    rows: list[dict[str, Any]] = [{"model": name, "set": "real halves (floor)", "swd": floor(real)}]
    print(json.dumps(rows[0]), flush=True)
    base = None
    for method, run in sets.items():
        start = time.perf_counter()
        with torch.no_grad(), fast.autocast():
            kept = run()
        seconds = time.perf_counter() - start
        got = swd(real, quantize(kept.images))
        base = got if base is None else base
        row = {
            "model": name,
            "set": method,
            "precision": fast.precision,
            "images": kept.images.shape[0],
            "resolution": side,
            "real_images": real.shape[0],
            "swd": got,
            "ratio": got / base,
            "seconds": round(seconds, 1),
            **kept.stats,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| model | set | precision | images | candidates | accepted | SWD x1e3 | / unfiltered |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        accepted = r.get("accepted", "")
        if r.get("filled_up"):
            accepted = f"{accepted} (+{r['images'] - accepted} filled)"
        ratio = f"{r['ratio']:.3f}" if "ratio" in r else ""
        lines.append(
            f"| {r['model']} | {r['set']} | {r.get('precision', '')} | {r.get('images', '')} "
            f"| {r.get('candidates', '')} | {accepted} | {r['swd']:.2f} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Evaluate the chosen models' three sets and print JSON lines and a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="a folder holding digits/ and faces/")
    parser.add_argument(
        "--model", action="append", default=[], help="NAME=FOLDER (digits or faces); repeatable"
    )
    parser.add_argument("--count", type=int, help="images per set (default: digits 500, faces 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--burn-in", type=int, default=DEFAULT_BURN_IN)
    parser.add_argument("--percentile", type=float, default=DEFAULT_PERCENTILE)
    parser.add_argument("--max-candidates", type=int, default=DEFAULT_MAX_CANDIDATES)
    parser.add_argument("--work", type=Path, help="keep the demo datasets here")
    args = parser.parse_args()
    chosen = dict(item.split("=", 1) for item in args.model)
    if args.models is not None:
        chosen = {name: str(args.models / name) for name in DEFAULT_COUNTS} | chosen
    if not chosen or set(chosen) - set(DEFAULT_COUNTS):
        parser.error("name the models: --models DIR or --model digits=DIR / faces=DIR")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for name, folder in chosen.items():
            count = args.count or DEFAULT_COUNTS[name]
            rows += evaluate(name, Path(folder), count, args.seed, work, args)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
