"""The three papers' central claims, in miniature, on the demo data and 2 CPU cores.

Each row trains two settings for the same wall-clock budget (training time only; evaluation is
not counted) with the demo configs of `ganserve.demo_models.DEMOS`, and says whether the paper's
direction holds here:

- pix2pix (Isola et al. 2017, Table 1 / Fig. 4): L1 + cGAN against L1 only (`gan_weight 0`) on
  `labels2photo`. The paper: the GAN term makes outputs sharper, at a small cost in L1. Figures:
  the finest-level SWD of translations against targets (sharpness: lower is better) and val L1.
- U-Net GAN (Schonfeld et al. 2020, Table 1): CutMix consistency regularisation against the
  basic U-Net GAN (`cutmix false`, hinge loss) on `digits`. Figure: SWD (lower is better).
- Progressive GAN (Karras et al. 2018, Sec. 5 / Fig. 4): progressive growing against training
  directly at the final resolution (the same networks started at the last, fully grown stage),
  same wall time, on `faces`. Figure: SWD at the final resolution, at every evaluation.

    .venv/bin/python benchmarks/paper_claims.py --minutes 6        # 6 settings x 6 min: ~40 min
    .venv/bin/python benchmarks/paper_claims.py --minutes 1 --only pix2pix
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from demo_quality import Clock, demo_kind, halves, swd
from torch import nn

from core.families import FAMILIES
from ganserve.demo_models import DEMOS
from models.images import quantize
from models.pix2pix.translation import translate
from models.sampling import sample
from training.data import ImageDataset, PairedDataset
from training.demo import build_demo
from training.loop import Progress, Trainer
from training.metrics.generator_metrics import translation_metrics
from training.metrics.swd import sliced_wasserstein_distance
from workers.training_jobs import build_run


def translation_figures(generator: nn.Module, data: Path) -> dict[str, float]:
    """Val L1 and the finest-level SWD of the translations against their targets."""
    size = generator.config.image_size
    val = PairedDataset(data, image_size=size, split="val", augment=False)
    train = PairedDataset(data, image_size=size, augment=False)  # more images for the SWD
    rng = torch.Generator().manual_seed(0)
    pairs = [train.get(i, rng) for i in range(min(len(train), 128))]
    fake = torch.cat([translate(generator, p["A"][None], seed=i) for i, p in enumerate(pairs)])
    real = torch.stack([p["B"] for p in pairs])
    levels = sliced_wasserstein_distance(quantize(real), quantize(fake), size, seed=0)
    return {"l1": translation_metrics(generator, val)["l1"], "swd_finest": levels[str(size)]}


def sampling_figures(generator: nn.Module, data: Path) -> dict[str, float]:
    """SWD of as many samples as half the real set against the other half."""
    dataset = ImageDataset(data, image_size=data_size(generator))
    _, real = halves(dataset.pixels)
    fake = quantize(sample(generator, real.shape[0], seed=1234))
    if fake.shape[-1] != real.shape[-1]:
        return {"swd": float("nan")}
    return {"swd": swd(real, fake)}


def data_size(generator: nn.Module) -> int:
    """The side of the images a generator makes at full growth."""
    config = generator.config
    return getattr(config, "image_size", None) or config.max_resolution


def train_for(
    family: str,
    overrides: dict[str, Any],
    minutes: float,
    work: Path,
    *,
    direct: bool = False,
    evaluations: int = 3,
) -> list[dict[str, Any]]:
    """Train one setting for `minutes`, evaluating `evaluations` times; the figures over time."""
    demo = next(d for d in DEMOS if d.family == family)
    data = build_demo(demo.name, work / "data" / family)
    name = f"{family}-{len(list(work.glob('run-*')))}"
    options, config = build_run(
        family,
        {**demo.config, **overrides},
        data=data,
        out=work / f"run-{name}",
        kind=demo_kind(demo),
        name=name,
        device="auto",
    )
    trainer = Trainer(family, options, config)
    if direct:  # start at the last, fully grown stage: no growing
        trainer.step = trainer.family.schedule.phase_starts[-1]
    figures = translation_figures if FAMILIES[family].task == "translate" else sampling_figures
    clock = Clock(time.perf_counter())
    every = minutes * 60 / evaluations
    history: list[dict[str, Any]] = []

    def on_progress(p: Progress) -> None:
        if clock.elapsed() < every * (len(history) + 1):
            return
        paused = time.perf_counter()
        history.append(
            {
                "seconds": round(clock.elapsed()),
                "step": p.step,
                **figures(trainer.family.export_generator(), data),
            }
        )
        clock.paused += time.perf_counter() - paused

    trainer.run(on_progress, should_stop=lambda: clock.elapsed() > minutes * 60)
    if not history or history[-1]["step"] != trainer.step:
        history.append(
            {
                "seconds": round(clock.elapsed()),
                "step": trainer.step,
                **figures(trainer.family.export_generator(), data),
            }
        )
    return history


CLAIMS = {
    "pix2pix": (
        "L1 + cGAN",
        {},
        "L1 only",
        {"gan_weight": 0.0},
        "swd_finest",
        "the GAN term gives sharper outputs (lower finest-level SWD)",
    ),
    "unetgan": (
        "CutMix CR",
        {"cutmix": True},
        "no CutMix (hinge)",
        {"cutmix": False},
        "swd",
        "CutMix consistency regularisation lowers SWD",
    ),
    # The same wall time for both: 9000 images a phase make the progressive schedule (4 -> 32 px)
    # last about the 6-minute budget; the direct setting trains only the last, stable 32 px
    # phase, which 30000 images make about as long (the phase length changes nothing else there).
    "pggan": (
        "progressive",
        {"phase_images": 9000},
        "direct at 32 px",
        {"phase_images": 30000, "direct": True},
        "swd",
        "progressive growing reaches a lower SWD in the same time",
    ),
}


def main() -> None:
    """Train both settings of each claim and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="training minutes per setting")
    parser.add_argument("--only", action="append", choices=sorted(CLAIMS), help="one family")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.only or list(CLAIMS):
            paper, paper_set, other, other_set, key, claim = CLAIMS[family]
            results = {}
            for label, settings in ((paper, paper_set), (other, other_set)):
                settings = dict(settings)
                direct = bool(settings.pop("direct", False))
                history = train_for(family, settings, args.minutes, Path(tmp), direct=direct)
                results[label] = history
                print(
                    json.dumps({"family": family, "setting": label, "history": history}), flush=True
                )
            a, b = results[paper][-1][key], results[other][-1][key]
            rows.append((family, paper, a, other, b, key, claim, a < b))
    print(f"\n| family | paper's setting | {'figure':>10} | other setting | figure | holds here? |")
    print("| --- | --- | --- | --- | --- | --- |")
    for family, paper, a, other, b, key, claim, holds in rows:
        print(
            f"| {family} | {paper} | {key} {a:.1f} | {other} | {key} {b:.1f} | "
            f"{'yes' if holds else 'no'}: {claim} |"
        )


if __name__ == "__main__":
    main()
