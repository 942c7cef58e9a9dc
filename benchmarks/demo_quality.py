"""How good the demo models are: each figure beside its trivial baseline and real-vs-real floor.

Trains the demo models exactly as `make run` does (the configs of `ganserve.demo_models.DEMOS`,
through the worker's `build_run`, so the service's defaults apply) for a wall-clock budget each,
evaluating the exported model every `--every` seconds of training (evaluation time is not
counted), or evaluates the models a running stack has (`--models DIR`).

- translation (pix2pix, Isola et al. 2017): L1 and SSIM on the held-out split, each image
  translated as a translation job does (`models.pix2pix.translation.translate`), against the task's
  trivial baseline: the mean training colour (labels2photo, edges2photo) or the grey input copied to
  every channel (grey2colour). Target: L1 <= 0.17 x baseline, SSIM >= 0.60.
- digits (class-conditional U-Net GAN, Schonfeld et al. 2020): a classifier trained on real
  digits (scikit-learn SVC on 8x8 box-downsampled images, its held-out accuracy printed) names
  the class of 100 samples per class; and SWD (Karras et al. 2018) of as many samples as half the
  real digits against the other half, beside the floor of the two real halves. Targets: >= 98 %
  of samples in the asked class, SWD <= 2 x floor.
- faces (Progressive GAN, Karras et al. 2018): SWD of 50 samples against 50 real faces, beside
  the floor of the two halves of the 100 real faces. Target: SWD <= 1.3 x floor.

    .venv/bin/python benchmarks/demo_quality.py --minutes 10   # train every demo, 10 min each
    .venv/bin/python benchmarks/demo_quality.py --demo digits --minutes 12 --pictures docs/demo
    .venv/bin/python benchmarks/demo_quality.py --models var/models     # a running stack's models
    .venv/bin/python benchmarks/demo_quality.py --models ganserve/demo_weights   # the shipped ones
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import models
from core.families import FAMILIES
from core.model_registry import ModelRef, ModelRegistry
from core.storage import Storage
from ganserve.demo_models import DEMOS, DemoModel
from models.images import quantize
from models.sampling import sample
from training.data import ImageDataset, PairedDataset
from training.demo import DEMOS as DEMO_DATASETS
from training.demo import build_demo
from training.images import grid
from training.loop import Progress, Trainer
from training.metrics.generator_metrics import batches, translation_metrics
from training.metrics.paired import PairedMetrics
from training.metrics.swd import sliced_wasserstein_distance
from workers.training_jobs import build_run


def demo_kind(demo: DemoModel) -> str:
    """The dataset kind of the demo's dataset (`training.demo`)."""
    return DEMO_DATASETS[demo.name].kind


# ---------------------------------------------------------------------------------------------
# Figures


def translation_baseline(data: Path, image_size: int, task: str) -> dict[str, float]:
    """L1 / SSIM of the trivial answer: the mean training colour, or the grey input copied."""
    train = PairedDataset(data, image_size=image_size, augment=False)
    val = PairedDataset(data, image_size=image_size, split="val", augment=False)
    rng = torch.Generator().manual_seed(0)
    mean = torch.stack([train.get(i, rng)["B"] for i in range(len(train))]).mean(dim=(0, 2, 3))
    metrics = PairedMetrics()
    for i in range(len(val)):
        pair = val.get(i, rng)
        b = pair["B"][None]  # (1, Cb, S, S)
        if task == "grey2colour":
            guess = pair["A"][None].expand_as(b)  # the grey input on every channel
        else:
            guess = mean.view(1, -1, 1, 1).expand_as(b)
        metrics.add(guess, b)
    return metrics.compute()


def evaluate_translation(generator: nn.Module, data: Path, task: str) -> dict[str, Any]:
    """Held-out L1, SSIM, PSNR beside the trivial baseline (target: L1 <= 0.17x, SSIM >= 0.6)."""
    size = generator.config.image_size
    val = PairedDataset(data, image_size=size, split="val", augment=False)
    got = translation_metrics(generator, val)
    base = translation_baseline(data, size, task)
    return {
        "l1": got["l1"],
        "ssim": got["ssim"],
        "psnr": got["psnr"],
        "baseline_l1": base["l1"],
        "baseline_ssim": base["ssim"],
        "l1_ratio": got["l1"] / base["l1"],
        "target_met": got["l1"] <= 0.17 * base["l1"] and got["ssim"] >= 0.60,
    }


def swd(real: torch.Tensor, fake: torch.Tensor) -> float:
    """SWD x 1e3 averaged over levels, uint8 (N, C, S, S) sets."""
    return sliced_wasserstein_distance(batches(real), batches(fake), real.shape[-1], seed=0)["avg"]


def halves(pixels: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint random halves of an image set (the real-vs-real floor of SWD)."""
    order = torch.randperm(pixels.shape[0], generator=torch.Generator().manual_seed(seed))
    half = pixels.shape[0] // 2
    return pixels[order[:half]], pixels[order[half : 2 * half]]


def digit_features(pixels: torch.Tensor) -> np.ndarray:
    """uint8 (N, 1, S, S) -> (N, 64) floats: box-downsampled to 8x8."""
    return F.adaptive_avg_pool2d(pixels.float() / 255, 8).flatten(1).numpy()


def digit_classifier(dataset: ImageDataset) -> tuple[Any, float]:
    """An SVC trained on 80 % of the real digits and its accuracy on the other 20 %."""
    from sklearn.svm import SVC

    x, y = digit_features(dataset.pixels), dataset.labels.numpy()
    order = np.random.default_rng(0).permutation(len(y))
    cut = int(0.8 * len(y))
    classifier = SVC(gamma="scale").fit(x[order[:cut]], y[order[:cut]])
    accuracy = float((classifier.predict(x[order[cut:]]) == y[order[cut:]]).mean())
    return classifier.fit(x, y), accuracy


def evaluate_digits(generator: nn.Module, data: Path) -> dict[str, Any]:
    """Share of samples in the asked class (by the SVC) and SWD beside the real-vs-real floor."""
    dataset = ImageDataset(data, image_size=generator.config.image_size)
    classifier, real_accuracy = digit_classifier(dataset)
    names = [int(n) for n in dataset.class_names]
    hits = []
    for k in range(dataset.num_classes):
        drawn = quantize(sample(generator, 100, seed=k, class_label=k))  # (100, 1, S, S)
        hits.append(float((classifier.predict(digit_features(drawn)) == names[k]).mean()))
    real_a, real_b = halves(dataset.pixels)
    fake = quantize(sample(generator, real_a.shape[0], seed=1234))
    floor, got = swd(real_a, real_b), swd(real_b, fake)
    accuracy = float(np.mean(hits))
    return {
        "class_accuracy": accuracy,
        "per_class": [round(h, 2) for h in hits],
        "chance": 1 / dataset.num_classes,
        "classifier_real_accuracy": real_accuracy,
        "swd": got,
        "swd_floor": floor,
        "swd_ratio": got / floor,
        "target_met": accuracy >= 0.98 and got <= 2 * floor,
    }


def evaluate_faces(generator: nn.Module, data: Path) -> dict[str, Any]:
    """SWD at the final resolution beside the floor of the two halves of the real faces."""
    size = generator.config.max_resolution
    dataset = ImageDataset(data, image_size=size)
    real_a, real_b = halves(dataset.pixels)
    fake = quantize(sample(generator, real_a.shape[0], seed=1234))
    if fake.shape[-1] != size:  # still growing: not yet at the final resolution
        return {"resolution": fake.shape[-1], "target_met": False}
    floor, got = swd(real_a, real_b), swd(real_b, fake)
    return {
        "swd": got,
        "swd_floor": floor,
        "swd_ratio": got / floor,
        "target_met": got <= 1.3 * floor,
    }


def evaluate(demo: DemoModel, generator: nn.Module, data: Path) -> dict[str, Any]:
    """The demo's figures (its family's evaluator)."""
    if FAMILIES[demo.family].task == "translate":
        return evaluate_translation(generator, data, demo.name)
    if demo.name == "digits":
        return evaluate_digits(generator, data)
    return evaluate_faces(generator, data)


# ---------------------------------------------------------------------------------------------
# Pictures


def picture(demo: DemoModel, generator: nn.Module, data: Path, scale: int = 3) -> Image.Image:
    """Input/output/target rows (translation), a row per class (digits), a grid of faces."""
    if FAMILIES[demo.family].task == "translate":
        from models.pix2pix.translation import translate

        val = PairedDataset(
            data, image_size=generator.config.image_size, split="val", augment=False
        )
        rng = torch.Generator().manual_seed(0)
        rows = []
        for i in range(min(6, len(val))):
            pair = val.get(i, rng)
            out = translate(generator, pair["A"][None], seed=i)[0]
            a = pair["A"].expand_as(pair["B"])
            rows += [a, out, pair["B"]]
        image = grid(torch.stack(rows), 3)
    elif classes := getattr(generator.config, "num_classes", 0):  # a class-conditional model
        rows = [sample(generator, 10, seed=k, class_label=k) for k in range(classes)]
        image = grid(torch.cat(rows), 10)
    else:
        image = grid(sample(generator, 64, seed=0), 8)
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


# ---------------------------------------------------------------------------------------------
# Training as `make run` does


@dataclass
class Clock:
    """Training seconds, not counting the time spent evaluating."""

    start: float
    paused: float = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.paused


def train_and_watch(
    demo: DemoModel, work: Path, minutes: float, every: float, overrides: dict[str, Any]
) -> tuple[list[dict[str, Any]], nn.Module, Path]:
    """Train `demo` for `minutes` of training time, evaluating every `every` seconds."""
    data = build_demo(demo.name, work / "data" / demo.name)
    config = {**demo.config, **overrides}
    options, family_config = build_run(
        demo.family,
        config,
        data=data,
        out=work / "runs" / demo.name,
        kind=demo_kind(demo),
        name=demo.name,
        device="auto",
    )
    trainer = Trainer(demo.family, options, family_config)
    clock = Clock(time.perf_counter())
    history: list[dict[str, Any]] = []
    next_eval = every

    def on_progress(p: Progress) -> None:
        nonlocal next_eval
        if clock.elapsed() < next_eval and p.step < p.total:
            return
        paused = time.perf_counter()
        figures = evaluate(demo, trainer.family.export_generator(), data)
        row = {"seconds": round(clock.elapsed()), "step": p.step, "total": p.total, **figures}
        history.append(row)
        print(json.dumps({"demo": demo.name, **row}), flush=True)
        next_eval = clock.elapsed() + every
        clock.paused += time.perf_counter() - paused

    trainer.run(on_progress, should_stop=lambda: clock.elapsed() > minutes * 60)
    return history, trainer.family.export_generator(), data


def main() -> None:
    """Train (or evaluate) the chosen demos and print their figures as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="append", help="which demo (default: all)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training minutes per demo")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between evaluations")
    parser.add_argument("--set", default="{}", help="JSON overrides of the demo config")
    parser.add_argument("--dataset", help="train the chosen demo on this training.demo dataset")
    parser.add_argument("--models", type=Path, help="evaluate these model folders instead")
    parser.add_argument("--pictures", type=Path, help="write one PNG per demo here")
    parser.add_argument("--work", type=Path, help="keep datasets and runs here")
    args = parser.parse_args()
    chosen = [d for d in DEMOS if not args.demo or d.name in args.demo]
    if args.dataset:
        chosen = [DemoModel(args.dataset, d.family, d.config) for d in chosen]
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for demo in chosen:
            if args.models is not None:
                registry = ModelRegistry.of(Storage(args.models.parent))
                _, version = registry.resolve(ModelRef(demo.name))
                generator = models.load(registry.local_folder(version))  # its newest version
                data = build_demo(demo.name, work / "data" / demo.name)
                row = evaluate(demo, generator, data)
                print(json.dumps({"demo": demo.name, **row}), flush=True)
            else:
                history, generator, data = train_and_watch(
                    demo, work, args.minutes, args.every, json.loads(args.set)
                )
                met = [r for r in history if r["target_met"]]
                when = f"{met[0]['seconds']} s" if met else "not reached"
                print(f"# {demo.name}: target {when}; last {json.dumps(history[-1])}", flush=True)
            if args.pictures is not None:
                args.pictures.mkdir(parents=True, exist_ok=True)
                picture(demo, generator, data).save(args.pictures / f"{demo.name}.png")


if __name__ == "__main__":
    main()
