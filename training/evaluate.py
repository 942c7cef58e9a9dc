"""`python -m training.evaluate`: SWD, FID, KID and IS between image folders or for a model
folder, and L1/PSNR/SSIM of a pix2pix model on a paired split.

SWD is the Progressive GAN paper's (Karras et al. 2018); FID (Heusel et al. 2017), KID
(Binkowski et al. 2018) and IS (Salimans et al. 2016) come from torchmetrics with the Inception
weights at `GANSERVE_INCEPTION_WEIGHTS` (nothing is downloaded); the pix2pix metrics follow
Isola et al. 2017's evaluation against ground truth. Folders may hold any mix of image sizes and
formats: every image is centre-cropped to a square and resized to one common side, which the
output states.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Annotated

import torch
import torch.nn.functional as F
import typer
from PIL import Image

import models
from core.settings import Settings
from models.images import quantize
from models.sampling import sample
from training.data import IMAGE_EXTENSIONS, DatasetError, ImageDataset, PairedDataset
from training.metrics.fidelity import compute_fidelity
from training.metrics.generator_metrics import batches, translation_metrics
from training.metrics.swd import sliced_wasserstein_distance

app = typer.Typer(
    help="Evaluate generated images or a model: swd, fid, kid, is, pix2pix.",
    no_args_is_help=True,
    add_completion=False,
)

RealOpt = Annotated[Path, typer.Option(help="folder of real images")]
FakeOpt = Annotated[Path | None, typer.Option(help="folder of generated images")]
ModelOpt = Annotated[
    Path | None, typer.Option(help="model folder to draw samples from, instead of --fake")
]
SizeOpt = Annotated[
    int | None,
    typer.Option(
        help="common side of the compared images (default: the model's size, else the smallest "
        "image side rounded down to a power of two)"
    ),
]
CountOpt = Annotated[
    int | None, typer.Option(help="samples to draw with --model (default: one per real image)")
]
SeedOpt = Annotated[int, typer.Option(help="seed of the metric's random draws and the samples")]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda or cuda:N")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Inception weights: pt_inception-2015-12-05-6726825d.pth or a .safetensors copy "
        "(default: GANSERVE_INCEPTION_WEIGHTS)",
    ),
]


def image_sides(folder: Path) -> list[int]:
    """The shorter side of every image under `folder` that Pillow can open (headers only)."""
    sides = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith("."):
            try:
                with Image.open(path) as image:
                    sides.append(min(image.size))
            except OSError:
                continue  # reported by name when the folder is decoded
    return sides


def common_size(*folders: Path) -> int:
    """The smallest image side of all folders, rounded down to a power of two (at least 16)."""
    sides = [side for folder in folders for side in image_sides(folder)]
    if not sides:
        raise DatasetError(f"no readable image in {', '.join(map(str, folders))}")
    return max(16, 2 ** int(math.log2(min(sides))))


def load_folder(folder: Path, size: int) -> torch.Tensor:
    """Every image of `folder` as uint8 (N, 3, size, size)."""
    return ImageDataset(folder, image_size=size, channels=3, conditional=False).pixels


def model_samples(model: Path, count: int, size: int, seed: int) -> torch.Tensor:
    """`count` samples of a model folder as uint8 (N, 3, size, size)."""
    images = quantize(sample(models.load(model), count, seed))  # (N, C, R, R)
    images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    if images.shape[-1] != size:
        images = F.interpolate(images.float(), size=(size, size), mode="area").round()
    return images.to(torch.uint8)


def image_sets(
    real: Path | None, fake: Path | None, model: Path | None, size, count, seed
) -> tuple[int, torch.Tensor | None, torch.Tensor]:
    """(side, real images or None, fake images) for a folder-or-model comparison."""
    if (fake is None) == (model is None):
        raise typer.BadParameter("give exactly one of --fake and --model")
    if size is None:
        folders = [f for f in (real, fake) if f is not None]
        size = models.read_card(model).image_size if model is not None else common_size(*folders)
    real_images = load_folder(real, size) if real is not None else None
    if fake is not None:
        return size, real_images, load_folder(fake, size)
    default = real_images.shape[0] if real_images is not None else 1000
    return size, real_images, model_samples(model, count or default, size, seed)


def report(results: dict, header: str, as_json: bool) -> None:
    """Print the results as a table, or as JSON on stdout with the header on stderr."""
    if as_json:
        typer.echo(header, err=True)
        typer.echo(json.dumps(results, indent=2))
        return
    typer.echo(header)
    for key, value in results.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        typer.echo(f"  {key:10} {shown}")


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


def _compare(metric: str, real, fake, model, size, count, seed, device, as_json, weights):
    weights = weights if weights is not None else Settings().inception_weights
    try:
        side, real_images, fake_images = image_sets(real, fake, model, size, count, seed)
        if metric == "swd":  # SWDAccumulator rejects sides SWD does not take (ValueError)
            results = sliced_wasserstein_distance(
                batches(real_images), batches(fake_images), side, seed=seed, device=device
            )
        else:
            results = compute_fidelity(
                batches(real_images) if real_images is not None else iter(()),
                batches(fake_images),
                weights=weights,
                metrics=[metric],
                device=device,
                seed=seed,
            )
    except (DatasetError, models.CheckpointError, ValueError) as exc:
        raise _fail(exc) from None
    counts = {"fake": fake_images.shape[0]}
    if real_images is not None:
        counts = {"real": real_images.shape[0], **counts}
    described = ", ".join(f"{n} {k}" for k, n in counts.items())
    report(results, f"{metric} at {side}x{side} ({described})", as_json)


def metric_options(
    real: RealOpt,
    fake: FakeOpt = None,
    model: ModelOpt = None,
    size: SizeOpt = None,
    count: CountOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    as_json: JsonOpt = False,
    weights: WeightsOpt = None,
) -> None:
    """The options of the metric commands, written once (its signature is what is used): each
    metric command takes those of them it needs."""


METRICS = {  # command: (its help, the options of `metric_options` it does not take)
    "swd": (
        "Multi-scale sliced Wasserstein distance (x1e3 per level and their average).",
        {"weights"},
    ),
    "fid": ("Frechet Inception distance (needs the Inception weights).", set()),
    "kid": (
        "Kernel Inception distance, mean and std over subsets (needs the Inception weights).",
        set(),
    ),
    "is": ("Inception score of generated images (needs the Inception weights).", {"real"}),
}


def add_metric(metric: str, summary: str, unused: set[str]) -> None:
    """Register the command of one metric, its options those of `metric_options` but `unused`."""
    options = inspect.signature(metric_options, eval_str=True).parameters.values()

    def command(**values) -> None:
        _compare(metric, **{"real": None, "weights": None, **values})

    command.__signature__ = inspect.Signature([p for p in options if p.name not in unused])
    command.__doc__ = summary
    app.command(metric)(command)


for _metric, (_summary, _unused) in METRICS.items():
    add_metric(_metric, _summary, _unused)


@app.command()
def pix2pix(
    model: Annotated[Path, typer.Option(help="pix2pix model folder")],
    data: Annotated[Path, typer.Option(help="paired dataset (aligned A|B or A/ B/ folders)")],
    split: Annotated[str, typer.Option(help="split to evaluate on")] = "val",
    limit: Annotated[int | None, typer.Option(help="evaluate at most N pairs")] = None,
    size: Annotated[
        int | None,
        typer.Option(help="load the pairs at this side (default: the model's size); needs --mode"),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="translate as a job in this mode does: native (at the pairs' own size) or "
            "resize (squeezed to the model's size and back); default: the model's size"
        ),
    ] = None,
    device: DeviceOpt = "cpu",
    as_json: JsonOpt = False,
) -> None:
    """L1, PSNR and SSIM of a pix2pix model's translations against the targets."""
    try:
        card = models.read_card(model)
        if card.task != "translate":
            raise ValueError(f"{model} is a {card.family} model, not a translation one")
        if mode not in (None, "native", "resize"):
            raise ValueError(f"--mode must be native or resize, not {mode!r}")
        if size is not None and mode is None:
            raise ValueError("--size needs --mode (native or resize)")
        direction = card.provenance.get("training", {}).get("direction", "AtoB")
        side = card.image_size if size is None else size
        pairs = PairedDataset(
            data, image_size=side, direction=direction, split=split, augment=False
        )
        generator = models.load(model, device=device)
        results = translation_metrics(generator, pairs, limit=limit, mode=mode)
    except (DatasetError, models.CheckpointError, ValueError) as exc:
        raise _fail(exc) from None
    report(
        results,
        f"{card.family} on {data} ({split}, {int(results['pairs'])} pairs, {side}px"
        f"{'' if mode is None else ', ' + mode})",
        as_json,
    )


if __name__ == "__main__":
    app()
