"""How well a U-Net GAN discriminator's realness map finds generated patches in real images.

Schonfeld et al. ("A U-Net Based Discriminator for Generative Adversarial Networks", CVPR 2020)
train the decoder of D^U with CutMix consistency regularisation to mark, per pixel, which parts
of a mixed real/fake image are fake. This benchmark measures that on our models: it trains a
small U-Net GAN on a demo dataset (or loads `--model`), then for each trial pastes a patch of a
generated image into a real image at a random box (width and height uniform in [S/4, S/2], placed
uniformly; the patch comes from the same place of G's image, G conditioned on the real image's
class) and runs `models.realness.realness` (with the real image's class). Reported, averaged over
trials (± the standard error): the mean map inside the box and outside it, their difference
(outside - inside: how much less real the pasted patch looks), and the IoU of
`models.realness.least_real_box` with the pasted box. The same trials scored by an untrained
discriminator of the same architecture and config (fresh initialisation) are the chance
baseline; the last line is trained / untrained.

    .venv/bin/python benchmarks/inspect_localization.py                 # ~5 min on 2 CPU cores
    .venv/bin/python benchmarks/inspect_localization.py --steps 2000 --device cuda
    .venv/bin/python benchmarks/inspect_localization.py --model var/data/models/digits
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import models
from models.images import dequantize
from models.realness import least_real_box, realness
from training.data import ImageDataset
from training.demo import build_demo
from training.families.unetgan import UNetGANConfig
from training.loop import RunOptions, train

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Trial:
    """A real image with a generated patch pasted at `box` (x0, y0, x1, y1; x1, y1 exclusive)."""

    image: torch.Tensor  # (1, C, S, S) in [-1, 1]
    label: int | None
    box: Box


def train_model(args: argparse.Namespace, data: Path, out: Path) -> Path:
    """A small U-Net GAN (CutMix CR on after a short warm-up) trained on `data`; its folder."""
    options = RunOptions(
        data=data,
        out=out,
        image_size=args.image_size,
        batch_size=args.batch_size,
        steps=args.steps,
        seed=args.seed,
        device=args.device,
        sample_every=args.steps,
        checkpoint_every=args.steps,
        log_every=max(1, args.steps // 20),
    )
    config = UNetGANConfig(
        width=args.width, latent_dim=args.latent_dim, warmup_steps=max(1, args.steps // 4)
    )
    return train("unetgan", options, config).model_dir


def make_trials(dataset: ImageDataset, generator: nn.Module, count: int, seed: int) -> list[Trial]:
    """`count` real images, each with a patch of a generated image of its class pasted in."""
    rng = np.random.default_rng(seed)
    noise = torch.Generator().manual_seed(seed)
    size = dataset.image_size
    conditional = generator.config.num_classes > 0
    device = next(generator.parameters()).device
    trials = []
    for _ in range(count):
        index = int(rng.integers(len(dataset)))
        real = dequantize(dataset.pixels[index : index + 1])  # (1, C, S, S)
        label = int(dataset.labels[index]) if conditional else None
        z = torch.randn(1, generator.config.latent_dim, generator=noise).to(device)  # (1, Z)
        y = None if label is None else torch.tensor([label], device=device)  # (1,)
        with torch.no_grad():
            fake = generator(z, y).float().cpu()  # (1, C, S, S)
        width, height = (int(v) for v in rng.integers(size // 4, size // 2 + 1, size=2))
        x0, y0 = int(rng.integers(size - width + 1)), int(rng.integers(size - height + 1))
        image = real.clone()
        image[..., y0 : y0 + height, x0 : x0 + width] = fake[..., y0 : y0 + height, x0 : x0 + width]
        trials.append(Trial(image, label, (x0, y0, x0 + width, y0 + height)))
    return trials


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return w * h / (area - w * h)


def score(discriminator: nn.Module, trials: list[Trial]) -> dict[str, list[float]]:
    """Per trial: mean map inside and outside the pasted box, their difference, the box IoU."""
    rows: dict[str, list[float]] = {"inside": [], "outside": [], "out-in": [], "IoU": []}
    for trial in trials:
        realness_map = realness(discriminator, trial.image, class_label=trial.label).map.numpy()
        x0, y0, x1, y1 = trial.box
        patch = realness_map[y0:y1, x0:x1]  # (h, w)
        inside = float(patch.mean())
        outside = float((realness_map.sum() - patch.sum()) / (realness_map.size - patch.size))
        rows["inside"].append(inside)
        rows["outside"].append(outside)
        rows["out-in"].append(outside - inside)
        rows["IoU"].append(iou(least_real_box(realness_map), trial.box))
    return rows


def _mean_se(values: list[float]) -> str:
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f}±{se:.3f}"


def main() -> None:
    """Train (or load) a U-Net GAN, score trained and untrained D on the same trials, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an existing U-Net GAN model folder")
    parser.add_argument("--dataset", default="digits", choices=["digits", "faces"])
    parser.add_argument("--data", type=Path, help="real images (default: the demo dataset)")
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--width", type=int, default=16, help="G and D base width")
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, help="keep the trained run here (default: discard)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        size = models.read_card(args.model).image_size if args.model else args.image_size
        data = args.data or build_demo(args.dataset, Path(tmp) / args.dataset, size=size)
        started = time.perf_counter()
        folder = args.model or train_model(args, data, args.out or Path(tmp) / "run")
        trained_in = time.perf_counter() - started
        card = models.read_card(folder)
        generator = models.load(folder)
        trained = models.load_discriminator(folder)
        torch.manual_seed(args.seed)
        untrained = type(trained)(trained.config).eval()  # same architecture, fresh weights
        dataset = ImageDataset(
            data,
            image_size=card.image_size,
            channels=card.channels,
            conditional=card.num_classes > 0,
        )
        trials = make_trials(dataset, generator, args.trials, args.seed)
        results = {"trained": score(trained, trials), "untrained": score(untrained, trials)}
    how = "loaded" if args.model else f"trained {args.steps} steps in {trained_in:.0f} s"
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}; model {how}: "
        f"{card.family} {card.image_size}x{card.image_size}, {card.channels} channel(s), "
        f"{card.num_classes} classes, data {args.data or args.dataset}"
    )
    print(f"{len(trials)} trials, pasted boxes {size // 4}-{size // 2} px a side")
    columns = list(results["trained"])
    print(f"{'discriminator':13} " + " ".join(f"{c:>13}" for c in columns))
    for name, rows in results.items():
        print(f"{name:13} " + " ".join(f"{_mean_se(rows[c]):>13}" for c in columns))
    ratios = []
    for c in columns:
        base = statistics.fmean(results["untrained"][c])
        ratio = statistics.fmean(results["trained"][c]) / base if abs(base) > 1e-9 else float("nan")
        ratios.append(f"{ratio:.2f}x")
    print(f"{'trained/untr.':13} " + " ".join(f"{r:>13}" for r in ratios))


if __name__ == "__main__":
    main()
